"""One commit of a generation as the engine reads it: :class:`Commit` and its :class:`Segment` s.

This is the read side of the engine's seam with Whoosh. The engine (``docsets``, ``scoring``,
``snapshot``, ``searcher``, ``correction``) asks a segment for a term's postings as numpy
arrays, the terms of a field, per-document lengths and columns, stored fields and phrase
positions; how Whoosh 3 segments keep them is known only here and in :mod:`readers`.

Several answers have a fast path that reads Whoosh's W3 structures directly (posting blocks
decoded a block at a time, the one-byte length columns, the term table's document
frequencies) and a slow path through Whoosh's public API for anything else. Every call
counts the path it took in :data:`PATHS`; the tests assert the slow paths are never taken on
the service's own indexes, so a Whoosh release that changes those structures fails a test
instead of silently making every search slower.
"""

from __future__ import annotations

import bisect
import functools
import pickle
import threading
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np
from isal import isal_zlib
from whoosh import columns
from whoosh import query as wq
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, STORED_COLUMN, W3TermInfo
from whoosh.index import TOC, FileIndex
from whoosh.reading import SegmentReader, TermNotFound
from whoosh.searching import Searcher
from whoosh.util.numeric import byte_to_length

from . import lists
from .postings import decode_position_lists, list_arrays, list_position_values
from .readers import MappedFile, ReaderPool, SegmentFiles, TermTable, open_mapped

__all__ = ["PATHS", "Commit", "Generation", "Segment"]

#: How many times each fast path ("…:fast") and its fallback ("…:slow") ran, in this process.
PATHS: Counter[str] = Counter()
_paths_lock = threading.Lock()

_EMPTY = np.zeros(0, dtype=np.int64)
_EMPTY_F = np.zeros(0, dtype=np.float64)
# A phrase key is a document's number above its position's bits (see Segment.phrase).
_POSITION_BITS = 32
# The compressed bytes of one document in a W3 compressed-bytes column (its base class's read).
_VAR_BYTES_AT = columns.VarBytesColumn.Reader.__getitem__
# Whoosh stores a field's length in one byte; this table undoes that encoding.
_BYTE_TO_LENGTH = np.array([byte_to_length(b) for b in range(256)], dtype=np.float64)


class PostingsStore(Protocol):
    """Where decoded postings are kept by (segment id, field, term) (``docsets.PostingsCache``)."""

    def get(self, key: tuple[str, str, str]) -> tuple[np.ndarray, np.ndarray] | None: ...

    def put(self, key: tuple[str, str, str], value: tuple[np.ndarray, np.ndarray]) -> None: ...


def _took(path: str) -> None:
    with _paths_lock:
        PATHS[path] += 1


class Segment:
    """One segment of a commit: a shared reader seen with that commit's deletions.

    Document numbers given and taken here are local to the segment (0 .. ``doc_count``);
    ``offset`` is where they start in the commit.
    """

    def __init__(self, reader: SegmentReader, offset: int) -> None:
        self._reader = reader
        self.offset = offset
        self.doc_count = reader.doc_count_all()
        segment = reader.segment()
        self.id: str = segment.segment_id()
        self._segment = segment
        self._searcher: Searcher | None = None
        self._term_table: TermTable | None = None

    # -- documents --------------------------------------------------------------------------

    def deleted(self) -> np.ndarray:
        """Local numbers of the documents this commit has deleted."""
        if not self._segment.has_deletions():
            return _EMPTY
        return np.fromiter(self._segment.deleted_docs(), dtype=np.int64)

    def stored_fields(self, docnum: int) -> dict:
        """The document's stored fields (title, body, ...): Whoosh's compressed pickle, inflated
        by ISA-L (2.3x zlib's speed on these bodies, a tenth of a first-pass search)."""
        column = self._stored_column
        if column is None:
            _took("stored:slow")
            return self._reader.stored_fields(docnum)
        _took("stored:fast")
        compressed = _VAR_BYTES_AT(column, docnum)
        if not compressed:
            return {}
        data = isal_zlib.decompress(compressed)
        return pickle.loads(data) if data else {}

    @functools.cached_property
    def _stored_column(self):
        """The W3 codec's stored-fields column reader (compressed bytes), or None when the
        segment keeps them some other way (then Whoosh decodes them)."""
        perdoc = getattr(self._reader, "_perdoc", None)
        cached_reader = getattr(perdoc, "_cached_reader", None)
        if cached_reader is None:
            return None
        try:
            pickled = cached_reader("_stored", STORED_COLUMN)
        except Exception:  # noqa: BLE001 - no stored column of the W3 kind: the slow path
            return None
        compressed = getattr(pickled, "_child", None)
        if (type(pickled) is not columns.PickleColumn.Reader
                or type(compressed) is not columns.CompressedBytesColumn.Reader
                or getattr(compressed, "_decompress", None) is not zlib.decompress):
            return None
        return compressed

    def column(self, field: str) -> list:
        """The column values of ``field`` for every document (category, day)."""
        if not self.doc_count:
            return []
        return list(self._reader.column_reader(field))

    def lengths(self, field: str) -> np.ndarray:
        """Per-document token count of ``field`` (Whoosh's one-byte approximation)."""
        column = _length_column(self._reader, field)
        if column is not None:
            _took("lengths:fast")
            return _BYTE_TO_LENGTH[np.fromiter(column, dtype=np.uint8, count=self.doc_count)]
        _took("lengths:slow")
        return np.array([self._reader.doc_field_length(d, field) for d in range(self.doc_count)], dtype=np.float64)

    # -- terms --------------------------------------------------------------------------------

    def has_field(self, field: str) -> bool:
        return field in self._reader.schema

    def has_terms(self, field: str) -> bool:
        """True when this segment's term table holds terms of ``field`` (False for a field that
        segment was written without, even when the index's schema has it now)."""
        fieldmap = getattr(getattr(self._reader, "_terms", None), "_fieldmap", None)
        return fieldmap is not None and field in fieldmap

    def postings(self, field: str, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(document numbers, term frequencies) of a term, deleted documents included."""
        info = self._term_info(field, text)
        if info is None:
            return _EMPTY, _EMPTY_F
        return self._info_arrays(field, info)

    def _term_info(self, field: str, text: str):
        """The term table's entry of a term (one lookup), or None when the segment lacks it."""
        schema = self._reader.schema
        if field not in schema:
            return None
        terms = self._reader._terms
        table = self._term_table
        if table is None:
            table = self._term_table = TermTable(terms._tindex)
        if not table.fast:
            _took("term_info:slow")
            try:
                return terms.term_info(field, schema[field].to_bytes(text))
            except TermNotFound:
                return None
        value = table.get(terms._keycoder(field, schema[field].to_bytes(text)))
        return None if value is None else W3TermInfo.from_bytes(value)

    def _info_arrays(self, field: str, info) -> tuple[np.ndarray, np.ndarray]:
        """(document numbers, frequencies) of the postings a term table entry points to."""
        if info.is_inlined():
            # A term of one document: its posting sits in the term table itself.
            _took("postings:inlined")
            ids, weights, _ = info.inlined_postings()
            return np.array(ids, dtype=np.int64), np.array(weights, dtype=np.float64)
        posting_arrays = self._posting_arrays
        if posting_arrays is not None:
            offset, _ = info.extent()
            arrays = posting_arrays.get(offset, info.doc_frequency())
            if arrays is not None:
                _took("postings:arrays")
                return arrays
        arrays = list_arrays(self._posting_bytes(info))
        if arrays is not None:
            _took("postings:fast")
            return arrays
        return _posting_arrays(self._reader._codec.postings_reader(
            self._reader._terms._postfile, info, self._reader.schema[field].format))

    def has_posting_arrays(self) -> bool:
        """True when the segment's posting lists are read from its ``.lst`` file (:mod:`lists`);
        False for a segment written before those files (or whose file is not usable)."""
        return self._posting_arrays is not None

    @functools.cached_property
    def _posting_arrays(self) -> lists.PostingArrays | None:
        """The segment's posting lists as arrays (its ``.lst`` file), or None without a usable one.
        Opened once per process and segment: every commit's view of the segment shares it."""
        files = self._reader._storage
        if not isinstance(files, SegmentFiles):
            return None
        name = self.id + lists.EXTENSION
        if name not in files.derived:
            mapped = files.mapped(name)
            files.derived[name] = None if mapped is None else lists.open_arrays(mapped, self.doc_count, name)
        return files.derived[name]  # type: ignore[return-value]

    def doc_frequency(self, field: str, text: str) -> int:
        """Documents with the term, deleted ones included (from the term table: no postings read)."""
        return self._reader.doc_frequency(field, text)

    def expand_prefix(self, field: str, prefix: str) -> Iterator[str]:
        """Terms of ``field`` starting with ``prefix``, in order (no postings are read)."""
        entries = self._term_range(field, prefix)
        if entries is None:
            for term in self._reader.expand_prefix(field, prefix):
                yield term.decode("utf-8") if isinstance(term, bytes) else term
            return
        # The keys alone (Whoosh's own listing builds a term object per key: thousands for a
        # one-character prefix).
        for text, _ in entries:
            yield text

    def prefix_postings(self, field: str, prefix: str,
                        cache: PostingsStore | None = None) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """(term, document numbers, frequencies) of every term of ``field`` starting with ``prefix``,
        in order, deleted documents included: one scan of the term table's range in its map, no
        lookup per term (a one-character prefix expands to hundreds of terms).

        ``cache``: decoded postings by (segment id, field, term), consulted before a term is
        decoded and given what is: letters typed one by one (``cha``, ``chat``) expand to the
        same terms again.
        """
        entries = self._term_range(field, prefix)
        if entries is None:
            _took("prefix_postings:slow")
            for text in self.expand_prefix(field, prefix):
                ids, freqs = self.postings(field, text)
                yield text, ids, freqs
            return
        _took("prefix_postings:fast")
        for text, value in entries:
            key = (self.id, field, text)
            found = cache.get(key) if cache is not None else None
            if found is None:
                found = self._info_arrays(field, W3TermInfo.from_bytes(value))
                if cache is not None:
                    cache.put(key, found)
            yield text, found[0], found[1]

    def _term_range(self, field: str, prefix: str) -> Iterator[tuple[str, bytes]] | None:
        """(term, raw term table entry) of every term of ``field`` starting with ``prefix``, in order,
        read from the mapped table in one scan; None when this segment's table is not W3's."""
        terms = getattr(self._reader, "_terms", None)
        if terms is None or field not in getattr(terms, "_fieldmap", {}) or not hasattr(terms, "_keycoder"):
            return None
        table = self._term_table
        if table is None:
            table = self._term_table = TermTable(terms._tindex)
        encoded = prefix.encode("utf-8")
        key_prefix = terms._keycoder(field, encoded)
        skip = len(key_prefix) - len(encoded)  # the field number before the term
        return ((key[skip:].decode("utf-8"), value) for key, value in table.items_with_prefix(key_prefix))

    def terms(self, field: str) -> Iterator[str]:
        """Every term of ``field``, in order."""
        for term in self._reader.field_terms(field):
            yield term.decode("utf-8") if isinstance(term, bytes) else term

    def term_frequencies(self, field: str, start: str) -> Iterator[tuple[str, int]]:
        """(term, document frequency) of the terms of ``field`` from ``start`` on, in order.

        Whoosh's ``iter_field`` decodes a whole term info per term, unpickling the postings
        inlined in it (most rare terms): about 100 µs a term. The W3 term table is read
        directly instead, decoding only the document frequency from the fixed-size head of
        each value.
        """
        reader = self._reader
        terms = getattr(reader, "_terms", None)
        table = getattr(terms, "_tindex", None)
        fieldmap = getattr(terms, "_fieldmap", None)
        head = getattr(W3TermInfo, "_struct", None)
        if terms is not None and table is not None and isinstance(fieldmap, dict) and field in fieldmap \
                and head is not None and hasattr(table, "items_from"):
            _took("term_frequencies:fast")
            prefix = terms._keycoder(field, b"")
            # Keys are the field number then the term's UTF-8 bytes, in byte order: start at
            # ``start`` and stop at the next field.
            for key, value in table.items_from(prefix + start.encode("utf-8")):
                if not key.startswith(prefix):
                    break
                yield key[len(prefix):].decode("utf-8", "replace"), head.unpack_from(value)[2]
            return
        _took("term_frequencies:slow")
        if field not in reader.schema:
            return
        for text, info in reader.iter_field(field, start):
            yield (text.decode("utf-8") if isinstance(text, bytes) else text), info.doc_frequency()

    def phrase(self, field: str, words: Sequence[str], docnums: np.ndarray) -> np.ndarray:
        """Those of ``docnums`` (sorted) where ``words`` occur at consecutive positions of ``field``.

        Each (document, position - i) of word i is one int64 key; a document holds the phrase
        when some key of the first word is a key of every word. The keys of all candidates are
        intersected by numpy at once, and each word's positions are read only for the
        documents the words before it left.
        """
        wanted = docnums.tolist()
        holding = docnums  # what the words so far leave (all of them before the first word)
        starts: np.ndarray | None = None  # keys of phrase starts found so far
        for shift, word in enumerate(words):
            found = self._position_values(field, word, wanted)
            if found is None:
                return self._phrase_by_whoosh(field, words, docnums)
            found_docs, values = found
            if not found_docs:
                _took("phrase:fast")
                return _EMPTY
            counts, positions = decode_position_lists(values)
            keys = (np.repeat(np.array(found_docs, dtype=np.int64), counts) << _POSITION_BITS) + (positions - shift)
            if shift:
                keys = keys[positions >= shift]  # word i before position i: no phrase starts there
            starts = keys if starts is None else _kept_in(starts, keys)
            if not starts.size:
                _took("phrase:fast")
                return _EMPTY
            holding = starts >> _POSITION_BITS  # ascending, as the keys are
            holding = holding[np.concatenate(([True], holding[1:] != holding[:-1]))]
            wanted = holding.tolist()
        _took("phrase:fast")
        return holding

    def _position_values(self, field: str, word: str, docnums: list[int]) -> tuple[list[int], list[bytes]] | None:
        """Those of ``docnums`` holding ``word`` and their positions values (see
        :func:`postings.decode_position_lists`); None: not readable here."""
        info = self._term_info(field, word)
        if info is None:
            return [], []
        if info.is_inlined():
            ids, _, values = info.inlined_postings()
            if not isinstance(values, (tuple, list)) or not all(isinstance(v, bytes) for v in values):
                return None
            wanted = set(docnums)
            kept = [(docnum, value) for docnum, value in zip(ids, values) if docnum in wanted]
            return [docnum for docnum, _ in kept], [value for _, value in kept]
        return list_position_values(self._posting_view(info), docnums)

    def _posting_bytes(self, info) -> bytes:
        """The bytes of the posting list a (not inlined) term table entry points to."""
        return self._reader._terms._postfile.get(*_extent(info))

    def _posting_view(self, info) -> bytes | memoryview:
        """:meth:`_posting_bytes` as a view of the mapped file where it is one (no copy)."""
        postfile = self._reader._terms._postfile
        if not isinstance(postfile, MappedFile):
            return self._posting_bytes(info)
        return postfile.view(*_extent(info))

    def _phrase_by_whoosh(self, field: str, words: Sequence[str], docnums: np.ndarray) -> np.ndarray:
        _took("phrase:slow")
        if self._searcher is None:
            self._searcher = Searcher(self._reader)
        matcher = wq.Phrase(field, list(words)).matcher(self._searcher)
        verified = []
        for docnum in docnums.tolist():
            if not matcher.is_active():
                break
            if matcher.id() < docnum:
                matcher.skip_to(docnum)
                if not matcher.is_active():
                    break
            if matcher.id() == docnum:
                verified.append(docnum)
        return np.array(verified, dtype=np.int64)


def _extent(info) -> tuple[int, int]:
    """(offset, length) of the posting list a term table entry points to."""
    offset, length = info.extent()
    if isinstance(length, tuple):  # W3TermInfo.from_bytes keeps struct.unpack's 1-tuple
        length = length[0]
    return offset, length


def _kept_in(keys: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Those of ``keys`` that ``other`` holds, both ascending (a binary search each: ``np.isin``
    sorts both again)."""
    if not other.size:
        return other
    at = np.searchsorted(other, keys)
    at[at == other.size] = 0
    return keys[other[at] == keys]


class Commit:
    """One commit (table of contents) of a generation: its segments in order.

    Document numbers of the commit are the segments' local numbers plus their offsets.
    Shared by every thread: the segments' readers are safe to read concurrently.
    """

    def __init__(self, number: int, segments: list[Segment]) -> None:
        self.number = number
        self.segments = segments
        self.doc_count = sum(segment.doc_count for segment in segments)
        self._starts = [segment.offset for segment in segments]

    @property
    def segment_ids(self) -> list[str]:
        return [segment.id for segment in self.segments]

    def locate(self, docnum: int) -> tuple[Segment, int]:
        """The segment of commit document ``docnum`` and its local number there."""
        index = bisect.bisect_right(self._starts, docnum) - 1
        if index < 0 or docnum >= self.doc_count:
            raise IndexError(f"no document {docnum} in this commit of {self.doc_count}")
        segment = self.segments[index]
        return segment, docnum - segment.offset

    def stored_fields(self, docnum: int) -> dict:
        segment, local = self.locate(docnum)
        return segment.stored_fields(local)

    def doc_frequency(self, field: str, text: str) -> int:
        return sum(segment.doc_frequency(field, text) for segment in self.segments)

    @classmethod
    def of_readers(cls, readers: Sequence[SegmentReader], number: int = 0) -> Commit:
        """A commit over Whoosh segment readers (also an index in memory, for tests and tools)."""
        segments, offset = [], 0
        for reader in readers:
            segments.append(Segment(reader, offset))
            offset += reader.doc_count_all()
        return cls(number, segments)


class Generation:
    """A generation folder opened for reading: its commits, every file mapped (see :mod:`readers`)."""

    def __init__(self, index: FileIndex) -> None:
        self._index = open_mapped(index)
        self.folder: str = index.storage.folder

    def latest(self) -> int:
        """The number of the newest commit."""
        return self._index.latest_generation()

    def commit(self, number: int, pool: ReaderPool) -> Commit:
        """Commit ``number``. Segments already in ``pool`` are not opened again. Raises
        FileNotFoundError when the commit was replaced and its files deleted meanwhile."""
        index = self._index
        toc = TOC.read(index.storage, index.indexname, gen=number, schema=index.schema)
        views = pool.views(index.storage, toc.schema, toc.segments, toc.generation)
        return Commit.of_readers(views, toc.generation)


def _length_column(reader, field: str):
    # The W3 codec keeps lengths in a hidden one-byte column "_<field>_len".
    perdoc = getattr(reader, "_perdoc", None)
    cached_reader = getattr(perdoc, "_cached_reader", None)
    if cached_reader is None:
        return None
    try:
        return cached_reader(f"_{field}_len", LENGTHS_COLUMN)
    except Exception:  # noqa: BLE001 - no such column in this segment: the slow path
        return None


def _posting_arrays(matcher) -> tuple[np.ndarray, np.ndarray]:
    """All (document ids, weights) of a leaf posting matcher, block by block where the codec allows."""
    if hasattr(matcher, "_read_ids") and hasattr(matcher, "_read_weights") and hasattr(matcher, "_next_block"):
        # W3LeafMatcher: whole blocks instead of id by id, but through the matcher's generator
        # per posting (postings.list_arrays refused these bytes).
        _took("postings:slow")
        id_blocks, weight_blocks = [], []
        while matcher.is_active():
            if matcher._ids is None:
                matcher._read_ids()
            if matcher._weights is None:
                matcher._read_weights()
            id_blocks.append(np.asarray(matcher._ids[matcher._i:], dtype=np.int64))
            weight_blocks.append(np.asarray(matcher._weights[matcher._i:], dtype=np.float64))
            matcher._next_block()
        if not id_blocks:
            return _EMPTY, _EMPTY_F
        return np.concatenate(id_blocks), np.concatenate(weight_blocks)
    # A term seen in one document has its posting inlined in the term table (a ListMatcher):
    # one id, read the public way. Anything else here is a slow path.
    _took("postings:inlined" if type(matcher).__name__ == "ListMatcher" else "postings:slow")
    ids, weights = [], []
    while matcher.is_active():
        ids.append(matcher.id())
        weights.append(matcher.weight())
        matcher.next()
    return np.array(ids, dtype=np.int64), np.array(weights, dtype=np.float64)
