"""One commit of the live generation, as the engine searches it.

:class:`Snapshot` pins a commit (``backend.commit.Commit``: its table of contents read
once, since a later commit deletes the file; its segments on the process's shared
readers, see ``backend.readers``), which every thread searches, and :class:`DocArrays`, the
per-document columns facets, filters and BM25 need, built from per-segment columns
cached by segment id: segments never change, so a commit adding a few documents
reads only its new segment. :class:`ResultCache` keeps answers keyed by snapshot,
so any change invalidates them.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict

import numpy as np

from .backend.commit import Commit, Generation, Segment
from .backend.readers import ReaderPool
from .schema import BIGRAM_FIELDS, CATEGORY, DAY, WORD_FIELDS

SCORED_FIELDS = WORD_FIELDS + BIGRAM_FIELDS


class SegmentColumns:
    """Facet and length columns of one segment; segments never change, so this is cached by id."""

    def __init__(self, segment: Segment) -> None:
        count = segment.doc_count
        names: dict[str, int] = {}
        codes = np.zeros(count, dtype=np.int32)
        days = np.zeros(count, dtype=np.int32)
        if count:
            for docnum, value in enumerate(segment.column(CATEGORY)):
                if isinstance(value, bytes):
                    value = value.decode("utf-8")
                codes[docnum] = names.setdefault(value or "", len(names))
            days[:] = np.fromiter((int(v or 0) for v in segment.column(DAY)), dtype=np.int32, count=count)
        self.category_names = list(names)
        self.category_codes = codes
        self.day = days
        self.lengths = {field: segment.lengths(field) for field in SCORED_FIELDS}


class DocArrays:
    """Per-document facet columns of one index commit, indexed by the commit's document number.

    Built from per-segment columns (``segment_cache``, keyed by segment id) so that a
    commit adding a few documents costs only its new segment's columns (only new
    segments are read).
    """

    def __init__(self, commit: Commit, segment_cache: dict | None = None) -> None:
        cache = segment_cache if segment_cache is not None else {}
        segments = commit.segments
        count = commit.doc_count
        names: dict[str, int] = {}
        ordinals = np.zeros(count, dtype=np.int32)
        days = np.zeros(count, dtype=np.int32)
        self.lengths = {field: np.zeros(count, dtype=np.float64) for field in SCORED_FIELDS}
        self.live = np.zeros(count, dtype=bool)
        offset = 0
        for segment in segments:
            key = segment.id
            columns = cache.get(key)
            if columns is None:  # only segments new since the last snapshot are read
                columns = cache[key] = SegmentColumns(segment)
            size = columns.day.size
            remap = np.array([names.setdefault(name, len(names)) for name in columns.category_names],
                             dtype=np.int32)
            if size:
                ordinals[offset:offset + size] = remap[columns.category_codes] if remap.size else 0
            days[offset:offset + size] = columns.day
            for field, lengths in columns.lengths.items():
                self.lengths[field][offset:offset + size] = lengths
            self.live[offset:offset + size] = True
            deleted = segment.deleted()
            if deleted.size:
                self.live[deleted + offset] = False
            offset += size
        # Segments no longer in this commit will not come back: forget their columns.
        current = {segment.id for segment in segments}
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

    def stored_fields(self, commit: Commit, docnum: int) -> dict:
        """``commit.stored_fields(docnum)``, from the cache when the article is a long one."""
        with self._lock:
            fields = self._items.get(docnum)
            if fields is not None:
                self._items.move_to_end(docnum)
                return fields
        fields = commit.stored_fields(docnum)
        if len(fields.get("body") or "") >= self.min_chars:
            with self._lock:
                self._items[docnum] = fields
                while len(self._items) > self.entries:
                    self._items.popitem(last=False)
        return fields


@dataclasses.dataclass
class Snapshot:
    """One commit of one generation: what every thread searches until the next refresh.

    ``commit`` is shared by all threads: its segment readers are the process's shared ones
    (see ``backend.readers``), safe to read from several threads at once.
    """

    generation: str
    source: Generation  # the generation folder, opened: its newer commits
    commit: Commit
    arrays: DocArrays
    opened_at: float
    large_articles: LargeArticleCache = dataclasses.field(default_factory=lambda: LargeArticleCache())

    @property
    def toc_generation(self) -> int:
        """The commit's number."""
        return self.commit.number

    @property
    def key(self) -> tuple[str, int]:
        return (self.generation, self.commit.number)

    @classmethod
    def open(cls, name: str, generation: Generation, number: int, pool: ReaderPool,
             segment_columns: dict | None = None, opened_at: float = 0.0) -> Snapshot:
        """Pin commit ``number`` of generation ``name``.

        Segments already in ``pool`` are not opened again. Raises FileNotFoundError when
        the commit was replaced and its files deleted meanwhile (take the newer one).
        """
        commit = generation.commit(number, pool)
        return cls(name, generation, commit, DocArrays(commit, segment_columns), opened_at)


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
