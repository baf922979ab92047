"""One commit of the live generation, as the engine searches it.

:class:`Snapshot` pins a Whoosh commit (its table of contents is read once, since a
later commit deletes the file) and carries :class:`DocArrays`, the per-document
columns facets, filters and BM25 need, built from per-segment columns cached by
segment id: segments never change, so a commit adding a few documents reads only
its new segment. :class:`ResultCache` keeps answers keyed by snapshot, so any
change invalidates them.
"""

from __future__ import annotations

import dataclasses
import io
import mmap
import os
import threading
from collections import OrderedDict

import numpy as np
from whoosh.filedb.filestore import FileStorage
from whoosh.filedb.structfile import StructFile
from whoosh.index import TOC, FileIndex
from whoosh.reading import EmptyReader, MultiReader, SegmentReader
from whoosh.searching import Searcher

from .docsets import PostingsCache
from .schema import BIGRAM_FIELDS, CATEGORY, DAY, WORD_FIELDS
from .scoring import leaf_lengths

SCORED_FIELDS = WORD_FIELDS + BIGRAM_FIELDS
# Decoded postings kept per snapshot (see docsets.PostingsCache).
POSTINGS_CACHE_BYTES = 128 * 1024 * 1024


class MappedStorage(FileStorage):
    """A generation folder opened for reading, every file read through ``mmap``.

    Each thread's searcher opens its own segment readers. Read through ``mmap`` the
    bytes they touch live once, in the page cache, shared by every thread and every
    worker process (file-backed memory), instead of once per reader in the heap.

    Whoosh's ``supports_mmap`` only decides how a *compound* segment (the ``.seg``
    files of indexes written before segments were left uncompound) is opened: with
    it, ``CompoundStorage`` maps the file and then wraps each sub-file in
    ``BufferFile(BytesIO(...))`` -- a private copy of the segment per reader. With it
    off, sub-files are windows (``SubFile``) on the file this class opened, which is
    itself mapped: old compound indexes are read without copies too.
    """

    supports_mmap = False

    def __init__(self, path) -> None:
        super().__init__(str(path), supports_mmap=False, readonly=True)

    def open_file(self, name, **kwargs):
        with open(self._fpath(name), "rb") as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                return StructFile(io.BytesIO(b""), name=name, **kwargs)  # mmap refuses empty files
            # The map holds its own reference to the file: the descriptor can close now,
            # and a segment file deleted by a later commit stays readable while mapped.
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        return StructFile(mapped, name=name, **kwargs)


def open_mapped(index: FileIndex) -> FileIndex:
    """The same index (name, schema) read through :class:`MappedStorage`."""
    return FileIndex(MappedStorage(index.storage.folder), schema=index.schema, indexname=index.indexname)


class SegmentColumns:
    """Facet and length columns of one segment; segments never change, so this is cached by id."""

    def __init__(self, reader) -> None:
        count = reader.doc_count_all()
        names: dict[str, int] = {}
        codes = np.zeros(count, dtype=np.int32)
        days = np.zeros(count, dtype=np.int32)
        if count:
            for docnum, value in enumerate(reader.column_reader(CATEGORY)):
                if isinstance(value, bytes):
                    value = value.decode("utf-8")
                codes[docnum] = names.setdefault(value or "", len(names))
            days[:] = np.fromiter((int(v or 0) for v in reader.column_reader(DAY)), dtype=np.int32, count=count)
        self.category_names = list(names)
        self.category_codes = codes
        self.day = days
        self.lengths = {field: leaf_lengths(reader, field) for field in SCORED_FIELDS}


class DocArrays:
    """Per-document facet columns of one index commit, indexed by Whoosh document number.

    Built from per-segment columns (``segment_cache``, keyed by segment id) so that a
    commit adding a few documents costs only its new segment's columns.
    """

    def __init__(self, storage, toc: TOC, segment_cache: dict | None = None) -> None:
        cache = segment_cache if segment_cache is not None else {}
        segments = list(toc.segments)
        count = sum(segment.doc_count_all() for segment in segments)
        names: dict[str, int] = {}
        ordinals = np.zeros(count, dtype=np.int32)
        days = np.zeros(count, dtype=np.int32)
        self.lengths = {field: np.zeros(count, dtype=np.float64) for field in SCORED_FIELDS}
        self.live = np.zeros(count, dtype=bool)
        offset = 0
        for segment in segments:
            key = segment.segment_id()
            columns = cache.get(key)
            if columns is None:
                # Only segments new since the last snapshot are opened and read.
                reader = SegmentReader(storage, toc.schema, segment, generation=toc.generation)
                try:
                    columns = cache[key] = SegmentColumns(reader)
                finally:
                    reader.close()
            size = columns.day.size
            remap = np.array([names.setdefault(name, len(names)) for name in columns.category_names],
                             dtype=np.int32)
            if size:
                ordinals[offset:offset + size] = remap[columns.category_codes] if remap.size else 0
            days[offset:offset + size] = columns.day
            for field, lengths in columns.lengths.items():
                self.lengths[field][offset:offset + size] = lengths
            self.live[offset:offset + size] = True
            if segment.has_deletions():
                deleted = np.fromiter(segment.deleted_docs(), dtype=np.int64)
                self.live[deleted + offset] = False
            offset += size
        # Segments no longer in this commit will not come back: forget their columns.
        current = {segment.segment_id() for segment in segments}
        for key in [k for k in cache if k not in current]:
            del cache[key]
        self.live_docnums = np.flatnonzero(self.live).astype(np.int64)
        self.average_lengths = {
            field: max(1.0, float(lengths[self.live].mean())) if self.live_docnums.size else 1.0
            for field, lengths in self.lengths.items()
        }
        self.category_names = list(names)
        self.category_ordinal = names
        self.category = ordinals
        self.day = days
        self.year = days // 10000
        self.month = days // 100 % 100


class LargeArticleCache:
    """The decoded stored fields of the few longest articles this snapshot's searches meet.

    Whoosh keeps all of a document's stored fields in one compressed pickle and decodes all
    of it, body included, for every hit: for an article near ``max_article_kb`` that costs
    as much as a whole search, and every search that finds it would pay again. Articles whose
    body has at least ``min_chars`` characters are kept (at most ``entries``, least recently
    used first out); ordinary ones are never cached (decoding them is cheap). Thread-safe;
    the dicts handed out are shared and must not be changed.
    """

    def __init__(self, entries: int = 8, min_chars: int = 50_000) -> None:
        self.entries = entries
        self.min_chars = min_chars
        self._items: OrderedDict[int, dict] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every kept article."""
        with self._lock:
            self._items.clear()

    def stored_fields(self, searcher: Searcher, docnum: int) -> dict:
        """``searcher.stored_fields(docnum)``, from the cache when the article is a long one."""
        with self._lock:
            fields = self._items.get(docnum)
            if fields is not None:
                self._items.move_to_end(docnum)
                return fields
        fields = searcher.stored_fields(docnum)
        if len(fields.get("body") or "") >= self.min_chars:
            with self._lock:
                self._items[docnum] = fields
                while len(self._items) > self.entries:
                    self._items.popitem(last=False)
        return fields


@dataclasses.dataclass
class Snapshot:
    """One commit of one generation: what every thread searches until the next refresh."""

    generation: str
    toc_generation: int
    index: FileIndex
    arrays: DocArrays
    opened_at: float
    postings: PostingsCache = dataclasses.field(default_factory=lambda: PostingsCache(POSTINGS_CACHE_BYTES))
    large_articles: LargeArticleCache = dataclasses.field(default_factory=lambda: LargeArticleCache())

    @property
    def key(self) -> tuple[str, int]:
        return (self.generation, self.toc_generation)

    toc: TOC | None = None

    def open_searcher(self, weighting, reuse: Searcher | None = None) -> Searcher:
        """A new searcher on exactly this commit (never a later one).

        The commit's table of contents is read once, when the snapshot is made: a later
        commit deletes the TOC file of this one.
        """
        storage = self.index.storage
        if self.toc is None:
            self.toc = TOC.read(storage, self.index.indexname, gen=self.toc_generation, schema=self.index.schema)
        toc = self.toc
        # Reuse the segment readers of the thread's previous searcher where the segment and
        # its deletions are unchanged: opening a segment's term table costs ~100 ms.
        reusable = {}
        if reuse is not None:
            for leaf, _ in reuse.reader().leaf_readers():
                segment = leaf.segment()
                if segment is not None:
                    reusable[(segment.segment_id(), segment.deleted_count())] = leaf
        readers = []
        for segment in toc.segments:
            leaf = reusable.pop((segment.segment_id(), segment.deleted_count()), None)
            readers.append(leaf if leaf is not None else
                           SegmentReader(storage, toc.schema, segment, generation=toc.generation))
        for leaf in reusable.values():
            leaf.close()
        if not readers:
            reader = EmptyReader(toc.schema)
        elif len(readers) == 1:
            reader = readers[0]
        else:
            reader = MultiReader(readers, generation=toc.generation)
        return Searcher(reader, weighting=weighting, fromindex=self.index)


class ResultCache:
    """A small thread-safe LRU of search results keyed by (snapshot, request)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key):
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key, value) -> None:
        if self.capacity <= 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


# --------------------------------------------------------------------------- engine
