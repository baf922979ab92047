"""One commit of the live generation, as the engine searches it.

:class:`Snapshot` pins a Whoosh commit: its table of contents (read once, since a
later commit deletes the file), one searcher every thread shares (on the process's
shared segment readers, see :mod:`readers`), and :class:`DocArrays`, the
per-document columns facets, filters and BM25 need, built from per-segment columns
cached by segment id: segments never change, so a commit adding a few documents
reads only its new segment. :class:`ResultCache` keeps answers keyed by snapshot,
so any change invalidates them.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
from whoosh.index import TOC, FileIndex
from whoosh.reading import EmptyReader, IndexReader, MultiReader, SegmentReader
from whoosh.searching import Searcher

from .backend.readers import ReaderPool
from .schema import BIGRAM_FIELDS, CATEGORY, DAY, WORD_FIELDS
from .scoring import leaf_lengths

SCORED_FIELDS = WORD_FIELDS + BIGRAM_FIELDS


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
    commit adding a few documents costs only its new segment's columns; ``readers``
    are the commit's segment readers, in order (only those of new segments are read).
    """

    def __init__(self, toc: TOC, readers: Sequence[SegmentReader], segment_cache: dict | None = None) -> None:
        cache = segment_cache if segment_cache is not None else {}
        segments = list(toc.segments)
        count = sum(segment.doc_count_all() for segment in segments)
        names: dict[str, int] = {}
        ordinals = np.zeros(count, dtype=np.int32)
        days = np.zeros(count, dtype=np.int32)
        self.lengths = {field: np.zeros(count, dtype=np.float64) for field in SCORED_FIELDS}
        self.live = np.zeros(count, dtype=bool)
        offset = 0
        for segment, reader in zip(segments, readers, strict=True):
            key = segment.segment_id()
            columns = cache.get(key)
            if columns is None:  # only segments new since the last snapshot are read
                columns = cache[key] = SegmentColumns(reader)
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
    """One commit of one generation: what every thread searches until the next refresh.

    ``searcher`` is shared by all threads: its segment readers are the process's shared
    ones (see :mod:`readers`), safe to read from several threads at once.
    """

    generation: str
    toc_generation: int
    index: FileIndex
    toc: TOC
    searcher: Searcher
    arrays: DocArrays
    opened_at: float
    large_articles: LargeArticleCache = dataclasses.field(default_factory=lambda: LargeArticleCache())

    @property
    def key(self) -> tuple[str, int]:
        return (self.generation, self.toc_generation)

    @classmethod
    def open(cls, generation: str, index: FileIndex, toc_generation: int, pool: ReaderPool, weighting,
             segment_columns: dict | None = None, opened_at: float = 0.0) -> Snapshot:
        """Pin commit ``toc_generation`` of ``index`` (read through :func:`readers.open_mapped`).

        Segments already in ``pool`` are not opened again. Raises FileNotFoundError when
        the commit was replaced and its files deleted meanwhile (take the newer one).
        """
        storage = index.storage
        toc = TOC.read(storage, index.indexname, gen=toc_generation, schema=index.schema)
        views = pool.views(storage, toc.schema, toc.segments, toc.generation)
        reader: IndexReader
        if not views:
            reader = EmptyReader(toc.schema)
        elif len(views) == 1:
            reader = views[0]
        else:
            reader = MultiReader(views, generation=toc.generation)
        arrays = DocArrays(toc, views, segment_columns)
        searcher = Searcher(reader, weighting=weighting, fromindex=index)
        return cls(generation, toc_generation, index, toc, searcher, arrays, opened_at)


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
