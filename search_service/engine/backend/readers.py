"""Segment readers opened once per process and shared by every thread and every snapshot.

Whoosh gives each searcher its own segment readers, and a reader keeps a read position
in each of its files (``seek`` then ``read``), so two threads cannot share one. Per
thread, though, every commit made each of the server's threads open the new segment's
readers again, and every deletion in a large segment made each thread reopen that
segment entirely: at the site's scale ~100 ms per segment per thread per commit, and
~10 mapped files per segment per thread.

Here a segment's files are opened once per process:

* :class:`SegmentFiles` maps each file of a segment whole (``mmap``) when the segment
  is opened and hands out :class:`MappedFile` objects whose read position is kept
  **per thread** (:class:`PositionalBuffer`); reads at an explicit offset
  (``get_int(pos)``, what the term table does) slice the map directly. The bytes live
  once, in the page cache, shared by threads and worker processes alike.
* :class:`ReaderPool` keeps one open reader per segment; a snapshot gets a
  :class:`SegmentView` of it carrying that commit's deletions, so a commit that marks
  deletions in a large segment costs nothing to open.

Files are never unmapped explicitly: a snapshot being searched by one thread while
another moves on to the next commit must keep reading. A map is released when the last
reader using it is garbage (and a map outlives its file's deletion, which a merge does).
"""

from __future__ import annotations

import copy
import hashlib
import io
import mmap
import os
import pickle
import struct
import sys
import threading
from array import array
from collections.abc import Iterator

from whoosh.filedb.filestore import FileStorage
from whoosh.filedb.structfile import StructFile
from whoosh.index import FileIndex
from whoosh.reading import SegmentReader

__all__ = ["MappedFile", "MappedStorage", "PositionalBuffer", "ReaderPool", "SegmentFiles", "SegmentView",
           "TermTable", "open_mapped", "raw_postings", "raw_postings_of_bytes"]


class _Position(threading.local):
    offset = 0


class PositionalBuffer:
    """A read-only file over a buffer (a memory map) whose position is the calling thread's own.

    Enough of the file protocol for Whoosh's readers and for ``pickle.load``: ``read``,
    ``readline``, ``seek``, ``tell``. ``close`` drops nothing: other threads may still be
    reading, and the map goes when the last reference does.
    """

    def __init__(self, buffer) -> None:
        self._buffer = buffer
        self._size = len(buffer)
        self._position = _Position()

    def __len__(self) -> int:
        return self._size

    def read(self, size: int | None = -1) -> bytes:
        start = self._position.offset
        end = self._size if size is None or size < 0 else min(self._size, start + size)
        self._position.offset = max(start, end)
        return bytes(self._buffer[start:end])

    def readline(self, size: int | None = -1) -> bytes:
        start = self._position.offset
        limit = self._size if size is None or size < 0 else min(self._size, start + size)
        if isinstance(self._buffer, memoryview):  # a window: no find() of its own
            newline = bytes(self._buffer[start:limit]).find(b"\n")
            newline = newline if newline < 0 else start + newline
        else:
            newline = self._buffer.find(b"\n", start, limit)
        end = limit if newline < 0 else newline + 1
        self._position.offset = max(start, end)
        return bytes(self._buffer[start:end])

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_CUR:
            offset += self._position.offset
        elif whence == os.SEEK_END:
            offset += self._size
        if offset < 0:
            raise ValueError(f"negative seek position {offset}")
        self._position.offset = offset
        return offset

    def tell(self) -> int:
        return self._position.offset

    def get(self, position: int, length: int) -> bytes:
        """``length`` bytes at ``position``, the position left alone."""
        return bytes(self._buffer[position:position + length])

    def window(self, position: int, length: int) -> PositionalBuffer:
        """A file over ``length`` bytes at ``position`` (no copy), with positions of its own."""
        return PositionalBuffer(memoryview(self._buffer)[position:position + length])

    def close(self) -> None:
        pass


class MappedFile(StructFile):
    """Whoosh's structured file over a :class:`PositionalBuffer`: safe to share between threads."""

    _PICKLE_WINDOW = 4096

    def __init__(self, buffer: PositionalBuffer, name: str | None = None) -> None:
        super().__init__(buffer, name=name)
        self._positional = buffer

    def get(self, position, length):
        # What Whoosh's term table and columns read: straight from the map, no position.
        return self._positional.get(position, length)

    def view(self, position: int, length: int) -> memoryview:
        """``length`` bytes at ``position`` as a view of the map: nothing copied."""
        return memoryview(self._positional._buffer)[position:position + length]

    def get_array(self, position, typecode, length):
        values = array(typecode)
        values.frombytes(self.get(position, length * values.itemsize))
        if sys.byteorder == "little":
            values.byteswap()  # Whoosh writes arrays big-endian
        return values

    def read_pickle(self):
        # pickle.load on a Python-level file calls read() for every opcode; unpickle a
        # window of bytes instead and move the position past what was consumed.
        start = self.tell()
        window = self._PICKLE_WINDOW
        while True:
            chunk = io.BytesIO(self._positional.get(start, window))
            try:
                value = pickle.load(chunk)
            except (EOFError, pickle.UnpicklingError):
                if start + window >= len(self._positional):
                    raise
                window *= 16
                continue
            self.seek(start + chunk.tell())
            return value

    def subset(self, offset, length, name=None):
        # The sub-files of a compound segment (indexes written before segments were left
        # uncompound): windows on the same map, each with its own per-thread position.
        return MappedFile(self._positional.window(offset, length), name=name or self._name)

    def close(self):
        self.is_closed = True


def _map_file(path: str):
    """The whole file as a read-only memory map (``b""`` when empty: mmap refuses empty files)."""
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return b""
        # The map holds its own reference to the file: the descriptor can close now, and a
        # segment file deleted by a later commit or a merge stays readable while mapped.
        return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)


class MappedStorage(FileStorage):
    """A generation folder opened for reading, every file mapped whole and shareable between threads.

    Whoosh's ``supports_mmap`` only decides how a *compound* segment is opened: with it,
    ``CompoundStorage`` maps the file and then copies each sub-file into a ``BytesIO``,
    a private copy of the segment per reader. With it off, sub-files are
    :meth:`MappedFile.subset` windows on the map this class made: no copies either way.
    """

    supports_mmap = False

    def __init__(self, path) -> None:
        super().__init__(str(path), supports_mmap=False, readonly=True)

    def open_file(self, name, **kwargs):
        return MappedFile(PositionalBuffer(_map_file(self._fpath(name))), name=name)


class SegmentFiles(MappedStorage):
    """The files of one segment, every one mapped when the segment is opened.

    Whoosh opens a segment's column files (stored fields, lengths) on first use and
    checks on disk that they exist: a merge deleting them in between would make an
    article's stored fields vanish from a snapshot that still lists it. Mapped up front,
    the segment reads the same whatever happens to the folder afterwards.
    """

    def __init__(self, path, names) -> None:
        super().__init__(path)
        self._maps = {name: _map_file(self._fpath(name)) for name in names}
        #: What readers derive once from these files and share (see ``commit.Segment``).
        self.derived: dict[str, object] = {}

    def mapped(self, name: str):
        """The map of one of the segment's files (``b""`` when empty), or None when it has no such file."""
        return self._maps.get(name)

    def open_file(self, name, **kwargs):
        mapped = self._maps.get(name)
        if mapped is None:
            return super().open_file(name, **kwargs)
        return MappedFile(PositionalBuffer(mapped), name=name)  # the same map, a position of its own

    def file_exists(self, name) -> bool:
        return name in self._maps or super().file_exists(name)

    def file_length(self, name) -> int:
        mapped = self._maps.get(name)
        return len(mapped) if mapped is not None else super().file_length(name)


def open_mapped(index: FileIndex) -> FileIndex:
    """The same index (name, schema) read through :class:`MappedStorage`."""
    return FileIndex(MappedStorage(index.storage.folder), schema=index.schema, indexname=index.indexname)


class SegmentView(SegmentReader):
    """A segment's shared, already open reader seen with one commit's deletions.

    Deletions are the only thing about a segment that changes from commit to commit,
    and Whoosh reads them from the segment object its per-document reader holds: the
    view shares the term table, postings and columns of ``base`` and carries its own
    per-document reader pointing at ``segment``.
    """

    def __init__(self, base: SegmentReader, segment, generation: int | None) -> None:
        # super().__init__ is not called on purpose: it would open every file again.
        self.schema = base.schema
        self.is_closed = False
        self._segment = segment
        self._segid = segment.segment_id()
        self._gen = generation
        self._storage = base._storage
        self._codec = base._codec
        self._terms = base._terms
        self._perdoc = copy.copy(base._perdoc)  # shares the open column files, not the deletions
        self._perdoc._segment = segment

    def close(self) -> None:
        # The files are shared with every other view of the segment.
        self.is_closed = True


def _open_segment(folder: str, schema, segment, generation: int | None, names: list[str]) -> SegmentReader:
    prefix = segment.segment_id() + "."
    files = SegmentFiles(folder, [name for name in names if name.startswith(prefix)])
    return SegmentReader(files, schema, segment, generation=generation)


class ReaderPool:
    """One open reader per segment for a whole process; not thread-safe (the engine holds a lock)."""

    def __init__(self) -> None:
        self._readers: dict[tuple[str, str], SegmentReader] = {}

    def __len__(self) -> int:
        return len(self._readers)

    def views(self, storage, schema, segments, generation: int | None) -> list[SegmentView]:
        """A view per segment with exactly that commit's deletions; opens only segments new to the pool.

        Raises FileNotFoundError when a segment's files are gone (a later commit or merge
        deleted them): the caller moves to the newer commit.
        """
        folder = storage.folder
        names: list[str] | None = None
        views = []
        for segment in segments:
            key = (folder, segment.segment_id())
            base = self._readers.get(key)
            if base is not None and base.doc_count_all() != segment.doc_count_all():
                base = None  # not the segment this reader was opened for (an id used twice)
            if base is None:
                if names is None:
                    names = os.listdir(folder)
                base = self._readers[key] = _open_segment(folder, schema, segment, generation, names)
            views.append(SegmentView(base, segment, generation))
        return views

    def keep_only(self, folder: str, segment_ids) -> None:
        """Forget the readers of ``folder``'s segments not in ``segment_ids``: they will not return."""
        wanted = {(folder, segment_id) for segment_id in segment_ids}
        for key in [key for key in self._readers if key not in wanted]:
            del self._readers[key]

    def clear(self) -> None:
        self._readers.clear()


def raw_postings_of_bytes(reader: SegmentReader, field: str, btext: bytes):
    """:func:`raw_postings` of a term given as its index bytes (any field type, numbers too)."""
    return reader._terms.matcher(field, btext, reader.schema[field].format)


def raw_postings(reader: SegmentReader, field: str, text: str):
    """A leaf matcher over every posting of a term in one segment, deleted documents included.

    ``SegmentReader.postings`` wraps the matcher in a filter when the segment has
    deletions, which hides the block-reading methods :mod:`docsets` uses; deletions are
    applied by the caller instead (the snapshot's live mask).
    """
    return reader._terms.matcher(field, reader._text_to_bytes(field, text), reader.schema[field].format)


_POINTER = struct.Struct("!Iq")   # a hash slot: the key's hash, the item's position (filetables._pointer)
_LENGTHS = struct.Struct("!ii")   # an item: key length, value length (filetables._lengths)


class TermTable:
    """Looks terms up in a segment's term table (Whoosh's ``OrderedHashReader``) straight in its map.

    Whoosh's lookup copies every slot and key it reads out of the file (``dbfile.get``) and
    hashes with ``int(md5(key).hexdigest(), 16)``: ~20 µs a term, once per term per segment per
    query, the largest cost of a search over many segments. This reads the same slots with
    ``unpack_from`` on the map and the same hash from the digest's last four bytes. A table
    not in a map (an index in memory) or hashed otherwise is looked up Whoosh's way.
    """

    def __init__(self, tindex) -> None:
        self._tindex = tindex
        buffer = getattr(getattr(tindex.dbfile, "_positional", None), "_buffer", None)
        self._buffer = buffer if isinstance(buffer, mmap.mmap) else None
        self._tables = tindex.tables
        self.fast = self._buffer is not None and getattr(tindex, "hashtype", None) == 0  # 0: md5_hash

    def items_with_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) of every key starting with ``prefix``, in key order (one scan of the map)."""
        buffer = self._buffer
        tindex = self._tindex
        if buffer is None or not self.fast:
            for key, value in tindex.items_from(prefix):
                if not key.startswith(prefix):
                    return
                yield key, value
            return
        position = tindex.closest_key_pos(prefix)  # a binary search over the ordered index
        if position is None:
            return
        end = tindex.endofdata
        unpack = _LENGTHS.unpack_from
        size = _LENGTHS.size
        while position < end:
            key_length, value_length = unpack(buffer, position)
            key_start = position + size
            value_start = key_start + key_length
            key = buffer[key_start:value_start]
            if not key.startswith(prefix):
                return
            position = value_start + value_length
            yield key, buffer[value_start:position]

    def get(self, key: bytes) -> bytes | None:
        """The value stored for ``key``, or None."""
        buffer = self._buffer
        if buffer is None or not self.fast:
            return self._tindex.get(key)
        keyhash = int.from_bytes(hashlib.md5(key, usedforsecurity=False).digest()[-4:], "big")
        start, slots = self._tables[keyhash & 255]
        if not slots:
            return None
        slot = (keyhash >> 8) % slots
        for _ in range(slots):
            slot_hash, item = _POINTER.unpack_from(buffer, start + slot * _POINTER.size)
            if not item:
                return None
            if slot_hash == keyhash:
                key_length, value_length = _LENGTHS.unpack_from(buffer, item)
                key_start = item + _LENGTHS.size
                if key_length == len(key) and buffer[key_start:key_start + key_length] == key:
                    value_start = key_start + key_length
                    return buffer[value_start:value_start + value_length]
            slot = slot + 1 if slot + 1 < slots else 0
        return None
