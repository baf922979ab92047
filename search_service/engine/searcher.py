"""Search the live index: tiers, filters, facets, snippets, as plain data.

:class:`SearchEngine` is shared by every thread of the server. It keeps one
:class:`Snapshot` of the live generation (the Whoosh index at one commit, one
searcher on it, and per-document arrays of category, day, year and month) that
every thread searches: the segment readers under it are opened once per process
and are safe to share (see :mod:`readers`). A new commit or a newly published
generation is seen by the next request (see :meth:`SearchEngine.snapshot`);
requests in flight finish on the snapshot they started with.

Matching documents come from :mod:`docsets` (posting blocks as numpy arrays),
scores from :mod:`scoring` (BM25 in numpy), facets are ``numpy.bincount`` over
the matched document numbers instead of Whoosh's ``groupedby`` (an order of
magnitude faster), and snippets come from :mod:`highlight` (no re-segmentation).
Result types are in :mod:`results`, snapshots in :mod:`snapshot`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

import numpy as np

from ..article import Article
from ..config import SETTINGS_BY_NAME
from ..errors import IndexUnavailable, NotFound, SearchError
from ..freshness import looked, looked_again
from ..rules.curations import Curation, Resolved
from ..rules.source import RulesSource
from ..rules.synonyms import DeskSynonymSource
from ..text import analysis, pinyin, regional
from ..text.analysis import normalize
from ..text.highlight import Highlighter
from ..text.synonyms import SynonymSource, SynonymTable
from . import query as q
from .backend.commit import Generation
from .backend.readers import ReaderPool
from .compiler import CompiledQuery, verbatim_query
from .correction import Correction, Corrector, Evidence, SegmentVocabulary, Vocabulary, syllables
from .docsets import DocSetEvaluator, PhraseCache, PostingsCache, union
from .request import SearchRequest, date_bounds
from .results import (
    CategoryCount,
    FacetValue,
    Hit,
    IndexStats,
    SearchResults,
    Similar,
    SimilarArticle,
    Suggestion,
    selected_month,
    selected_year,
)
from .schema import BODY, ID, SCRIPT_STABLE, TITLE, TITLE_CHARS, TITLE_PINYIN, WORD_FIELDS, from_stored
from .scoring import Bm25
from .snapshot import ResultCache, SegmentColumns, Snapshot
from .store import CURRENT_FILE, IndexStore, retry_vanished
from .syntax import Not, Term, is_negative_only, parsed, positive_terms

# Related articles: how much of a body to read, and how many of its key terms to use.
SIMILAR_TEXT_CHARS = 3000
SIMILAR_TERMS = 12
SUGGEST_EXCERPT_CHARS = 60
# Pinyin typed so far, in letters, before suggestions look for titles by it: "zh" starts the
# pinyin of thousands of words (every one of them a term to read) and tells the box nothing.
SUGGEST_PINYIN_MIN = 3
SUGGEST_EXCERPT_SCAN = 1500
log = logging.getLogger(__name__)

# Attempts to run a request when the files of its snapshot vanish under it (see _on_snapshot).
_STALE_RETRIES = 4
# Decoded postings kept per process, by segment and term (see docsets.PostingsCache).
POSTINGS_CACHE_BYTES = 128 * 1024 * 1024
# What phrase verification learned, by segment and phrase (see docsets.PhraseCache).
PHRASE_CACHE_BYTES = 16 * 1024 * 1024
# Verbatim counts kept for the correction's weighing (texts of the newest snapshot).
VERBATIM_CACHE_ENTRIES = 100_000
# What SearchEngine.warm() runs before the server reports ready: words (one common, two
# joined), a prefix, pinyin (relaxation and suggestions), and words no article has
# (partial matches, did-you-mean), and a Taiwan word (the regional vocabulary's converters).
WARM_QUERIES = ("中国", "经济 发展", "科技*", "zhongguo", "量子纠缠态坍缩哲学", "人工智慧")



def _setting_default(name: str):
    return SETTINGS_BY_NAME[name].default


#: EngineOptions fields whose setting has another name (the rest share the setting's name).
_SETTING_OF = {"fuzzy_pinyin": "correction_fuzzy_pinyin"}


@dataclasses.dataclass(frozen=True)
class EngineOptions:
    """The settings the engine uses: each field is the setting of the same name in
    ``config.SETTINGS`` (default included), except where :data:`_SETTING_OF` says otherwise."""

    title_boost: float = _setting_default("title_boost")
    snippet_length: int = _setting_default("snippet_length")
    reload_interval: float = _setting_default("reload_interval")
    cache_entries: int = _setting_default("cache_entries")
    synonyms_file: str = _setting_default("synonyms_file")
    bm25_b: float = _setting_default("bm25_b")
    bm25_k1: float = _setting_default("bm25_k1")
    max_prefix_terms: int = _setting_default("max_prefix_terms")
    correction: bool = _setting_default("correction")
    fuzzy_pinyin: bool = _setting_default("correction_fuzzy_pinyin")

    @classmethod
    def from_settings(cls, settings) -> EngineOptions:
        return cls(**{field.name: getattr(settings, _SETTING_OF.get(field.name, field.name))
                      for field in dataclasses.fields(cls)})


# --------------------------------------------------------------------------- strategy seam


@dataclasses.dataclass
class Tier:
    """Matches of one kind, ranked after the tiers before it; ``score`` None = listed by date.

    ``name`` becomes each hit's ``match``: ``words`` (shown as ``all_words``), ``substring``,
    ``pinyin`` or ``partial``; ``all`` lists every match without a query.
    """

    name: str
    docs: np.ndarray
    score: Callable[[np.ndarray], np.ndarray] | None


class Matching:
    """What a :class:`Retrieval` may use for one request: the request, its compiled query, and
    the engine's matching (sorted live document numbers) and BM25 scoring on one snapshot."""

    def __init__(self, execution: _Execution) -> None:
        self._execution = execution

    @property
    def request(self) -> SearchRequest:
        return self._execution.request

    @property
    def compiled(self) -> CompiledQuery:
        """The request's query compiled with the engine's title boost and synonyms."""
        return self._execution.compiled

    @property
    def title_boost(self) -> float:
        return self._execution.engine.options.title_boost

    @property
    def live(self) -> np.ndarray:
        """A boolean mask over document numbers: True for the live (not deleted) documents."""
        return self._execution.arrays.live

    def docs(self, query: q.Query, within: np.ndarray | None = None) -> np.ndarray:
        """Sorted live document numbers matching ``query`` (among the True of mask ``within``)."""
        return self._execution.docsets.docs(query, within=within)

    def scores(self, query: q.Query, docs: np.ndarray) -> np.ndarray:
        """BM25 of ``query`` for each of ``docs`` (sorted), with the engine's k1 and b."""
        return self._execution.scorer.scores(query, docs)

    def in_filters(self, docs: np.ndarray) -> np.ndarray:
        """The ``docs`` the request's category and date filters keep."""
        category_ok, date_ok = self._execution._filter_masks()
        return _kept(_kept(docs, category_ok), date_ok)


class Retrieval(Protocol):
    """Another way to find and rank the matches of a query (see :class:`Strategy`)."""

    def tiers(self, matching: Matching) -> tuple[list[Tier], str | None]:
        """The tiers of a query with positive terms sorted by relevance, best tier first, and
        the ``relaxed`` label of the results (None, "substring" or "any_word")."""
        ...


@dataclasses.dataclass(frozen=True)
class Strategy:
    """How the engine retrieves: the engine as it is by default. Benchmarks compose other
    strategies here (``bench/relevance.py``) instead of reaching into the engine's internals.

    ``retrieval``: tiers of relevance-sorted queries with positive terms; the engine still
    filters, counts facets, pages, ranks each tier by its score (ties newest first) and
    builds the hits, but runs no correction and no page fill of its own.
    ``synonyms``: False searches without synonym expansion (the built-in list,
    ``synonyms_file`` and the desk's groups all ignored). ``regional``: False searches without the
    regional vocabulary (Taiwan's 人工智慧 for the mainland's 人工智能 and back).
    ``curations``: False applies no staff curation (pinned and hidden results, see ``rules``).
    """

    retrieval: Retrieval | None = None
    synonyms: bool = True
    curations: bool = True
    #: False: no regional vocabulary at query time (人工智慧 finds only 人工智慧; see ``text.regional``).
    regional: bool = True


class SearchEngine:
    """Thread-safe entry point for searching one data folder."""

    def __init__(self, index_dir: Path | str, options: EngineOptions = EngineOptions(),
                 strategy: Strategy = Strategy()) -> None:
        self.store = IndexStore(index_dir)
        self.options = options
        self.strategy = strategy
        self.cache = ResultCache(options.cache_entries)
        # Staff rules (docs/ADMIN.md), checked per request: curations, desk synonyms, dictionary words.
        self.rules = RulesSource.for_index(index_dir, on_dictionary_change=self.cache.clear)
        self.synonyms = DeskSynonymSource(
            SynonymSource(options.synonyms_file or None, check_interval=max(options.reload_interval, 0.5)), self.rules)
        self._snapshot: Snapshot | None = None
        # Never checked: -inf, not 0 (the monotonic clock starts near 0 at boot).
        self._last_check = -math.inf
        self._lock = threading.Lock()
        # One open reader per segment for the whole process (see readers.ReaderPool).
        self._readers = ReaderPool()
        self._segment_columns: dict[str, SegmentColumns] = {}
        self.postings = PostingsCache(POSTINGS_CACHE_BYTES)
        self.phrases = PhraseCache(PHRASE_CACHE_BYTES)
        # Correction vocabulary: per segment (cached by segment id), one per snapshot key.
        self._vocabulary: tuple[tuple[str, int], Vocabulary] | None = None
        self._vocabulary_lock = threading.Lock()
        self._segment_vocabularies: dict[str, SegmentVocabulary] = {}
        # Fingerprint of the files a change of the index touches (see _disk_stamp), and their paths
        # as strings (pathlib's joins cost as much as the stat calls).
        self._stamp: tuple | None = None
        self._current_path = str(self.store.root / CURRENT_FILE)
        self._generations_path = str(self.store.generations_dir)
        self._category_names: tuple[tuple, tuple[str, ...]] | None = None  # (snapshot key, names)
        # Articles holding a text verbatim, for the correction's weighing (per snapshot).
        self._verbatim = _VerbatimCounts(VERBATIM_CACHE_ENTRIES)

    def synonym_table(self) -> SynonymTable:
        """The synonyms searches expand with now (none when the strategy says so)."""
        return self.synonyms.table() if self.strategy.synonyms else _NO_SYNONYMS

    def curation_for(self, text: str) -> Curation | None:
        """Staff's pinned and hidden results for query ``text`` (None without, or when the strategy says so)."""
        return self.rules.current().curation(text) if self.strategy.curations else None

    # -- snapshots and searchers --------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The current snapshot, refreshed when the index changed.

        Every call compares a cheap fingerprint of the files that a commit, a publish or
        a rollback changes (two ``stat`` calls, see :meth:`_disk_stamp`), so a write
        acknowledged by any process -- another worker of ``serve --workers`` included --
        is seen by the next search. The full check (reading ``CURRENT``, listing the
        generation's commits) runs when the fingerprint moved, and at least every
        ``reload_interval`` seconds. Within ``freshness.one_look`` (a GET request) the first
        answer stands: one request reads one snapshot.
        """
        return looked(self, self._look)

    def _look(self) -> Snapshot:
        now = time.monotonic()
        snap = self._snapshot
        if snap is not None and self._unchanged(snap, now):
            return snap
        with self._lock:
            snap = self._snapshot
            if snap is not None and self._unchanged(snap, now):
                return snap
            self._last_check = now
            # Taken before looking: any change after this point moves the stamp again.
            stamp = self._disk_stamp(self.store.current_name())
            self._stamp = stamp if stamp is not None and stamp[-1] else None
            name = self.store.current_name()
            if name is None:
                self._snapshot = None
                raise IndexUnavailable(
                    f"No index in {self.store.root}: build one with `search-service index --rebuild PATH`."
                )
            if snap is not None and snap.generation == name and snap.source.latest() == snap.toc_generation:
                return snap
            self._snapshot = self._open_snapshot(name)
            self.cache.clear()
            return self._snapshot

    # A stamp younger than this is not trusted: file times tick coarsely (a few ms).
    STAMP_SETTLE_SECONDS = 0.05

    def _unchanged(self, snap: Snapshot, now: float) -> bool:
        return (now - self._last_check < self.options.reload_interval and self._stamp is not None
                and self._disk_stamp(snap.generation) == self._stamp)

    def _disk_stamp(self, generation: str | None) -> tuple | None:
        """(generation, CURRENT's inode and mtime, the generation folder's mtime, settled), or None.

        A publish or a rollback replaces ``CURRENT`` (a new inode); a commit adds a table
        of contents to the generation's folder (its mtime moves). Two changes within one
        tick of the file clock look alike, so ``settled`` is False while the newest mtime
        is under STAMP_SETTLE_SECONDS old, and an unsettled stamp is never trusted.
        """
        if generation is None:
            return None
        try:
            current = os.stat(self._current_path)
            folder = os.stat(os.path.join(self._generations_path, generation))
        except OSError:
            return None
        newest = max(current.st_mtime_ns, folder.st_mtime_ns) / 1e9
        settled = time.time() - newest > self.STAMP_SETTLE_SECONDS
        return (generation, current.st_ino, current.st_mtime_ns, folder.st_mtime_ns, settled)

    def _open_snapshot(self, name: str) -> Snapshot:
        """Open the newest commit of generation ``name`` (the table of contents and every segment).

        A commit or merge of another thread or process can replace the newest commit and
        delete its files between listing and opening (the table of contents, or a merged
        segment): the whole open starts again from the listing (see ``store.retry_vanished``).
        """

        def open_newest() -> Snapshot:
            generation = Generation(self.store.open_current())
            return Snapshot.open(name, generation, generation.latest(), self._readers, self._segment_columns,
                                 time.time())

        snap = retry_vanished(open_newest)
        # Readers of segments gone from this commit (merged away, an older generation)
        # are not needed again; snapshots still being searched keep theirs alive.
        self._readers.keep_only(snap.source.folder, snap.commit.segment_ids)
        return snap

    def refresh(self) -> Snapshot:
        """Check for a new generation or commit now, ignoring reload_interval."""
        self._last_check = -math.inf
        return looked_again(self, self._look())

    def warm(self, queries: tuple[str, ...] = WARM_QUERIES) -> float:
        """Do before the server is ready what the first searches would otherwise do; seconds taken.

        Opens the snapshot (every segment's readers, the facet columns) and runs
        ``queries`` through every path a search can take (words, substring, partial
        match, pinyin, suggestions, an article), which loads jieba's and pypinyin's
        lazily read dictionaries and the correction vocabulary. Every thread shares the
        snapshot's searcher, so no thread's first request opens anything. The result
        cache is emptied afterwards (warm-up answers are not anybody's request). Raises
        :class:`IndexUnavailable` without an index.
        """
        started = time.perf_counter()
        snap = self.snapshot()  # IndexUnavailable without an index
        missing = missing_format_fields(snap)
        if missing:
            log.info("this index was written before its format had %s: it answers the same, and "
                     "`search-service reindex` makes it faster (docs/DEPLOY.md, section 7)", " and ".join(missing))
        if self.options.correction:
            # The correction vocabulary (every word of the index by pinyin) takes seconds to
            # read at the site's scale: a reader's first slip must not pay for it.
            self.vocabulary()
        for text in queries:
            with contextlib.suppress(SearchError):  # e.g. a prefix expanding past max_prefix_terms
                self.suggest(text)
                hits = self.search(SearchRequest(q=text, page_size=1)).hits
                if hits:
                    self.document(hits[0].id)
        self.cache.clear()
        return time.perf_counter() - started

    def close(self) -> None:
        """Let go of the snapshot and the segment readers (at shutdown; searching again reopens them).

        Nothing is unmapped under a request still running: a reader's files go when
        the last snapshot using them does.
        """
        with self._lock:
            self._snapshot = None
            self._readers.clear()
            self._segment_columns.clear()

    def vocabulary(self) -> Vocabulary:
        """The correction vocabulary of the current snapshot (see :mod:`correction`).

        Built on the first search that needs a correction and kept until the next commit;
        call this before reporting ready to pay for it at start-up instead (warming).
        """
        return self._on_snapshot(self._vocabulary_of)

    def _vocabulary_of(self, snap: Snapshot) -> Vocabulary:
        held = self._vocabulary
        if held is not None and held[0] == snap.key:
            return held[1]
        with self._vocabulary_lock:
            held = self._vocabulary
            if held is not None and held[0] == snap.key:
                return held[1]
            vocabulary = Vocabulary.of_segments(snap.commit.segments, WORD_FIELDS, self._segment_vocabularies,
                                                title_field=TITLE)
            syllables()  # the pinyin syllable table, read once per process
            self._vocabulary = (snap.key, vocabulary)
            return vocabulary

    def _evidence(self, snap: Snapshot, docsets: DocSetEvaluator) -> Evidence:
        """The index's evidence for the correction's weighing (see :mod:`correction`), on ``snap``."""
        return _IndexEvidence(self._verbatim, snap.key, docsets)

    def is_ready(self) -> bool:
        """True when an index is open (for health checks)."""
        try:
            self.snapshot()
            return True
        except IndexUnavailable:
            return False

    # -- search ---------------------------------------------------------------------------

    def _on_snapshot(self, work):
        """Run ``work(snapshot)`` on the current snapshot, retrying on a vanished file.

        A snapshot's readers map every file of its segments when it is made, and a
        mapped file stays readable after a merge deletes it; a file missing at that
        moment (the commit was replaced meanwhile) is answered by moving to the newest
        snapshot and running again.
        """
        snap = self.snapshot()
        for attempt in range(_STALE_RETRIES):
            try:
                return work(snap)
            except FileNotFoundError:
                if attempt == _STALE_RETRIES - 1:
                    raise
                snap = self.refresh()
        raise AssertionError("unreachable")

    def search(self, request: SearchRequest) -> SearchResults:
        """Run one search; repeated requests on the same snapshot come from the cache."""
        return self._execute(request, count_only=False)

    def count(self, request: SearchRequest) -> SearchResults:
        """How many articles ``request`` finds, and how its query was relaxed: the search's
        ``total``, ``relaxed``, correction and did-you-mean (``suggestion``), without facets,
        ranking or hits (``hits`` and ``facets`` are empty). For callers that need only these,
        e.g. analytics and the search box's count of results."""
        return self._execute(request, count_only=True)

    def _execute(self, request: SearchRequest, *, count_only: bool) -> SearchResults:
        started = time.perf_counter()

        synonyms = self.synonym_table()
        curation = self.curation_for(request.q)

        def work(snap: Snapshot) -> SearchResults:
            # The synonym table and the query's curation are part of the key: editing them changes answers.
            key = (snap.key, hash(synonyms.groups), count_only, request.cache_key(),
                   curation.key if curation is not None else None)
            cached = self.cache.get(key)
            if cached is not None:
                return dataclasses.replace(cached, cached=True, took_ms=(time.perf_counter() - started) * 1000)
            results = _Execution(self, snap, request, synonyms, count_only=count_only, curation=curation).run()
            results.took_ms = (time.perf_counter() - started) * 1000
            results.generation = snap.generation
            self.cache.put(key, results)
            return results

        return self._on_snapshot(work)

    def document(self, doc_id: str) -> Article:
        """The stored article with this id, or :class:`NotFound`."""
        return from_stored(self._on_snapshot(lambda snap: self._stored(snap, doc_id)))

    def _stored(self, snap: Snapshot, doc_id: str) -> dict:
        found = DocSetEvaluator(snap.commit, snap.arrays.live).term(ID, doc_id)
        if not found.size:
            raise NotFound(f"No article with id {doc_id!r}.")
        return snap.large_articles.stored_fields(snap.commit, int(found[0]))

    def similar(self, doc_id: str, limit: int = 5) -> Similar:
        """Articles sharing this one's key terms (tf-idf of its words), itself excluded."""
        return self._on_snapshot(lambda snap: self._similar(snap, doc_id, limit))

    def _similar(self, snap: Snapshot, doc_id: str, limit: int) -> Similar:
        evaluator = DocSetEvaluator(snap.commit, snap.arrays.live, self.postings, self.phrases)
        own = evaluator.term(ID, doc_id)
        if not own.size:
            raise NotFound(f"No article with id {doc_id!r}.")
        article = from_stored(snap.large_articles.stored_fields(snap.commit, int(own[0])))
        counts: dict[str, float] = {}
        # The title counts double; a long body is sampled from its start, where news puts the point.
        for weight, text in ((2.0, article.title), (1.0, article.body[:SIMILAR_TEXT_CHARS])):
            for word in analysis.query_words(text):
                if len(word) >= 2 and not word.isdigit():
                    counts[word] = counts.get(word, 0.0) + weight
        total_docs = max(1, int(snap.arrays.live_docnums.size))

        def best(words: Iterable[str], frequency: Callable[[str], int]) -> list[tuple[float, str]]:
            weighted = []
            for word in words:
                df = frequency(word)
                if df <= 1:
                    continue  # only in this article: says nothing about others
                weighted.append((counts[word] * float(np.log(total_docs / df)), word))
            return sorted(weighted, reverse=True)

        # Ranking every word by its decoded postings cost ~20 ms per article; the term table's
        # document frequency is a lookup. It also counts deleted documents (an updated article's
        # old version), so only the best candidates are ranked again on their live documents.
        candidates = best(counts, lambda word: snap.commit.doc_frequency(BODY, word))[:SIMILAR_TERMS * 3]
        weighted = best((word for _, word in candidates), lambda word: int(evaluator.term(BODY, word).size))
        terms = [(word, weight) for weight, word in weighted[:SIMILAR_TERMS] if weight > 0]
        if not terms:
            return Similar(doc_id, [], [])
        top = terms[0][1]
        query = q.Or(tuple(q.Or((q.Term(TITLE, word, self.options.title_boost * weight / top),
                                 q.Term(BODY, word, weight / top))) for word, weight in terms))
        docs = evaluator.docs(query)
        docs = docs[docs != own[0]]
        scores = self._scorer(snap, evaluator).scores(query, docs)
        order = np.lexsort((-snap.arrays.day[docs], -np.round(scores, 6)))[:limit]
        similar = []
        for i in order.tolist():
            other = from_stored(snap.commit.stored_fields(int(docs[i])))
            similar.append(SimilarArticle(other.id, other.title, other.category,
                                          other.date.isoformat() if other.date else None, other.url,
                                          round(float(scores[i]), 4)))
        return Similar(doc_id, [word for word, _ in terms], similar)

    def suggest(self, text: str, limit: int = 8, excerpt: bool = False, explain: bool = False) -> list[Suggestion]:
        """Titles for as-you-type suggestions: titles containing the text verbatim first,
        then the best articles with every word. Matches are marked in ``title_html``;
        with ``excerpt``, ``excerpt_html`` holds a line of the body around the match; with
        ``explain``, only a suggestion whose title does not show the match gets that line, and
        only when the line shows it (the same line ``excerpt`` gives).

        Answers are kept in the result cache with the searches (the same snapshot key): the first
        characters readers type recur, and one character expands to hundreds of index terms."""

        curation = self.curation_for(text)

        def work(snap: Snapshot) -> list[Suggestion]:
            key = ("suggest", snap.key, text, limit, excerpt, explain, curation.key if curation is not None else None)
            cached = self.cache.get(key)
            if cached is None:
                cached = self._suggest(snap, text, limit, excerpt, curation, explain)
                self.cache.put(key, cached)
            return [dataclasses.replace(item) for item in cached]  # callers may change their copies

        return self._on_snapshot(work)

    def _suggest(self, snap: Snapshot, text: str, limit: int, excerpt: bool = False,
                 curation: Curation | None = None, explain: bool = False) -> list[Suggestion]:
        compiled = CompiledQuery(parsed(text).node, self.options.title_boost)
        if compiled.node is None or is_negative_only(compiled.node):
            return []
        evaluator = DocSetEvaluator(snap.commit, snap.arrays.live, self.postings, self.phrases)
        curated = curation.resolve(snap.key, lambda doc_id: evaluator.term(ID, doc_id)) if curation else None
        for field, stem in compiled.prefixes():  # word* expanding too far: 400 (max_prefix_terms)
            evaluator.expand_prefix(field, stem, limit=self.options.max_prefix_terms)
        highlighter = Highlighter(compiled.highlight_terms())
        in_title = CompiledQuery(_title_only(compiled.node), self.options.title_boost)
        queries = [in_title.substring(), in_title.words(), compiled.words()]
        key = pinyin.query_key(text)
        if key and len(key) >= SUGGEST_PINYIN_MIN:
            # Typed in pinyin: titles whose words' pinyin (or initials) start with it.
            queries.append(q.Prefix(TITLE_PINYIN, key))
        # Ranked by the results' own BM25 (one ranker for the box and the results page).
        scorer = self._scorer(snap, evaluator)
        # Staff's pins first, in their order; pinned and hidden articles are not suggested again.
        chosen: dict[int, None] = dict.fromkeys(curated.pinned.tolist()[:limit]) if curated else {}
        skip = set(curated.removed.tolist()) if curated else set()
        for query in queries:
            if len(chosen) >= limit:
                break
            docs = evaluator.docs(query)
            for docnum, _ in _best(docs, scorer.scores(query, docs), snap.arrays.day, limit * 2 + len(skip)):
                if docnum in skip:
                    continue
                chosen.setdefault(docnum, None)
                if len(chosen) >= limit:
                    break
        pinned = curated.pinned_set() if curated else frozenset()
        suggestions = []
        for docnum in chosen:
            article = from_stored(snap.commit.stored_fields(docnum))
            marker = highlighter
            if key and not highlighter.spans(article.title):
                marker = Highlighter([normalize(w) for w in pinyin.words_with_prefix(article.title, key)])
            item = Suggestion(article.id, article.title, marker.mark(article.title), article.category,
                              article.date.isoformat() if article.date else None, article.url,
                              pinned=docnum in pinned)
            if excerpt or (explain and "<mark>" not in item.title_html):
                # Only on request, and from the body's opening part: a snippet costs about 1.4 µs
                # per character (normalization), too much for every keystroke on long articles.
                item.excerpt_html = highlighter.snippet(article.body[:SUGGEST_EXCERPT_SCAN], SUGGEST_EXCERPT_CHARS)
                if not excerpt and "<mark>" not in item.excerpt_html:
                    item.excerpt_html = None  # explaining: a line without the match explains nothing
            suggestions.append(item)
        return suggestions

    def _scorer(self, snap: Snapshot, evaluator: DocSetEvaluator) -> Bm25:
        """The engine's BM25 over one snapshot: results, suggestions and related articles alike."""
        return Bm25(evaluator, snap.arrays.lengths, snap.arrays.average_lengths, int(snap.arrays.live_docnums.size),
                    k1=self.options.bm25_k1, b=self.options.bm25_b)

    def category_names(self) -> tuple[str, ...]:
        """The categories of the live index, most articles first (those of :meth:`stats`), without
        the rest of the statistics: every filtered search checks its categories against them."""
        snap = self.snapshot()
        known = self._category_names
        if known is not None and known[0] == snap.key:
            return known[1]
        names = tuple(name for name, _ in _category_counts(snap))
        self._category_names = (snap.key, names)
        return names

    def stats(self) -> IndexStats:
        """Document count, categories with counts, date range, generation and build info."""
        snap = self.snapshot()
        arrays = snap.arrays
        live = arrays.live
        categories = _category_counts(snap)
        days = arrays.day[live & (arrays.day > 0)]
        size = self.store.current_bytes()
        return IndexStats(
            documents=int(live.sum()),
            categories=[CategoryCount(name, count) for name, count in categories],
            date_min=_day_iso(int(days.min())) if days.size else None,
            date_max=_day_iso(int(days.max())) if days.size else None,
            undated=int((arrays.day[live] == 0).sum()),
            generation=snap.generation,
            commit=snap.toc_generation,
            index_bytes=size,
            build=self.store.build_info(snap.generation),
        )


def _category_counts(snap: Snapshot) -> list[tuple[str, int]]:
    """(category, live articles) for every category with any, most articles first, then by name."""
    arrays = snap.arrays
    counts = np.bincount(arrays.category[arrays.live], minlength=len(arrays.category_names))
    return sorted(((name, int(counts[i])) for i, name in enumerate(arrays.category_names) if counts[i]),
                  key=lambda item: (-item[1], item[0]))


class _VerbatimCounts:
    """How many articles hold a text verbatim, kept for the newest snapshot asked about.

    The weighing of a query asks about its words and their alternatives, and the same ones
    recur from query to query; a phrase of common bigrams costs milliseconds to verify."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._snapshot: object = None
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def get(self, snapshot: object, text: str) -> int | None:
        return self._counts.get(text) if snapshot == self._snapshot else None

    def clear(self) -> None:
        with self._lock:
            self._counts = {}

    def put(self, snapshot: object, text: str, count: int) -> None:
        with self._lock:
            if snapshot != self._snapshot:
                self._snapshot, self._counts = snapshot, {}
            elif len(self._counts) >= self.limit:
                self._counts.clear()  # rare: a cheap bound instead of an LRU's bookkeeping
            self._counts[text] = count


class _IndexEvidence(Evidence):
    """:class:`correction.Evidence` from one snapshot's index (live articles, filters ignored)."""

    def __init__(self, counts: _VerbatimCounts, snapshot: object, docsets: DocSetEvaluator) -> None:
        self.counts = counts
        self.snapshot = snapshot
        self.docsets = docsets

    def verbatim(self, text: str) -> int:
        norm = normalize(text)
        found = self.counts.get(self.snapshot, norm)
        if found is None:
            found = int(self.docsets.docs(verbatim_query(norm)).size)
            self.counts.put(self.snapshot, norm, found)
        return found


def _day_iso(day: int) -> str:
    return f"{day // 10000:04d}-{day // 100 % 100:02d}-{day % 100:02d}"


class _Execution:
    """One search request against one snapshot."""

    def __init__(self, engine: SearchEngine, snap: Snapshot, request: SearchRequest,
                 synonyms: SynonymTable, *, count_only: bool = False, curation: Curation | None = None) -> None:
        self.engine = engine
        self.count_only = count_only
        self.curation = curation
        self.snap = snap
        self.arrays = snap.arrays
        self.request = request
        self.docsets = DocSetEvaluator(snap.commit, snap.arrays.live, engine.postings, engine.phrases)
        self.compiled = CompiledQuery(request.syntax.node, engine.options.title_boost, synonyms,
                                      self._regional if engine.strategy.regional else None)
        self.scorer = engine._scorer(snap, self.docsets)
        #: Did-you-mean decided by the weighing (see :meth:`_weigh_correction`), when any.
        self.offer: str | None = None
        #: True for the search of a correction: it is not weighed again.
        self.weighed = False

    def run(self) -> SearchResults:
        request, arrays = self.request, self.arrays
        node = self.compiled.node
        for field, stem in self.compiled.prefixes():  # word* expanding too far: 400 (max_prefix_terms)
            self.docsets.expand_prefix(field, stem, limit=self.engine.options.max_prefix_terms)
        category_ok, date_ok = self._filter_masks()
        relaxed = None
        plain = self.compiled.is_plain()
        exact: np.ndarray = _EMPTY  # words ∪ substring matches: partial matches exclude them
        if node is None:
            tiers = [Tier("all", arrays.live_docnums, None)]
        elif is_negative_only(node):
            tiers = [Tier("all", self._docs(self.compiled.words()), None)]
        elif self.engine.strategy.retrieval is not None and request.sort == "relevance":
            tiers, relaxed = self.engine.strategy.retrieval.tiers(Matching(self))
            tiers = tiers or [Tier("words", _EMPTY, None)]
            plain = False  # the strategy's tiers are the whole answer: no fill with partial matches
        else:
            words_query = self.compiled.words()
            words = self._docs(words_query)
            # Only documents not matched by words need their substrings checked.
            not_words = arrays.live.copy()
            not_words[words] = False
            substring = self.docsets.docs(self.compiled.substring(), within=not_words)
            exact = union([words, substring])
            tiers = [Tier("words", words, self._combined if plain else self._bm25(words_query)),
                     Tier("substring", substring, self._bm25(self.compiled.substring()))]
            if plain and self.engine.options.correction and not self.weighed:
                corrected = self._weigh_correction(words, substring)
                if corrected is not None:
                    return corrected
            if words.size == 0 and substring.size == 0:
                tiers, relaxed = self._relax(plain)
            elif words.size == 0:
                relaxed = "substring"
        curated = self._curated()
        if curated is not None:
            # Staff's curation (rules/curations.py): pinned and hidden documents leave every tier; the
            # pinned ones come first in their order, then filtered like the rest.
            for tier in tiers:
                tier.docs = curated.without(tier.docs)
            if curated.pinned.size and tiers[0].score is not None:
                tiers.insert(0, Tier("pinned", curated.pinned, curated.score))
        matched = np.concatenate([t.docs for t in tiers]) if len(tiers) > 1 else tiers[0].docs
        facets = {} if self.count_only else self._facets(matched, category_ok, date_ok)
        for tier in tiers:
            tier.docs = _kept(_kept(tier.docs, category_ok), date_ok)
        total = sum(int(t.docs.size) for t in tiers)
        if self.count_only:
            return SearchResults(request, total, [], facets, 0.0, relaxed, suggestion=self._suggestion(relaxed, total))
        stop = request.offset + request.page_size
        if plain and relaxed in (None, "substring") and request.sort == "relevance" and total and stop > total:
            # The page reaches past the last exact match: fill it with partial matches, ranked
            # after every exact one. Computed only then; totals and facets count exact matches.
            rest_mask = arrays.live.copy()  # changed below
            for mask in (category_ok, date_ok):
                if mask is not None:
                    rest_mask &= mask
            rest_mask[exact] = False
            if curated is not None:
                rest_mask[curated.removed] = False
            tiers.append(Tier("partial", self._partial(rest_mask), self._combined))
        ranked = self._page(tiers)
        terms = self.compiled.highlight_terms()
        if relaxed == "pinyin":
            # Mark the Chinese words the pinyin stood for.
            key = pinyin.query_key(request.q) or ""
            for docnum, _, _ in ranked:
                title = self.snap.commit.stored_fields(docnum)[TITLE]
                terms += [normalize(w) for w in pinyin.words_with_key(title, key)]
        highlighter = Highlighter(terms)
        hits = self._hits(ranked, request.offset, highlighter)
        unmatched = self._unmatched() if relaxed == "any_word" else []
        return SearchResults(request, total, hits, facets, 0.0, relaxed,
                             highlight_terms=highlighter.terms, expansions=self.compiled.expansions(),
                             suggestion=self._suggestion(relaxed, total), unmatched=unmatched)

    def _suggestion(self, relaxed: str | None, total: int) -> str | None:
        """The did-you-mean: the weighing's offer, else for a query without exact matches the one
        :meth:`_did_you_mean` finds."""
        if self.offer is None and (relaxed is not None or total == 0):
            return self._did_you_mean()
        return self.offer

    def _curated(self) -> Resolved | None:
        if self.curation is None:
            return None
        return self.curation.resolve(self.snap.key, lambda doc_id: self.docsets.term(ID, doc_id))

    # -- tiers and their scores -------------------------------------------------------------

    def _bm25(self, query: q.Query) -> Callable[[np.ndarray], np.ndarray]:
        return lambda docs: self.scorer.scores(query, docs)

    def _combined(self, docs: np.ndarray) -> np.ndarray:
        """Words and shared character bigrams in one score (see docs/BENCHMARKS.md#relevance)."""
        any_word = self.scorer.scores(self.compiled.any_word(), docs)
        return any_word + BIGRAM_WEIGHT * self.scorer.scores(self.compiled.bigrams_any(), docs)

    def _partial(self, within: np.ndarray) -> np.ndarray:
        """Documents sharing any word or character bigram of the query, minus its -words."""
        docs = self.docsets.docs(q.Or((self.compiled.any_word(), self.compiled.bigrams_any())), within=within)
        negatives = self.compiled.negatives()
        if not isinstance(negatives, q.Nothing) and docs.size:
            docs = np.setdiff1d(docs, self._docs(negatives), assume_unique=True)
        return docs

    # -- relaxation and correction ---------------------------------------------------------

    def _relax(self, plain: bool) -> tuple[list[Tier], str | None]:
        """No article has every word, nor the text verbatim: pinyin, then partial matches."""
        key = pinyin.query_key(self.request.q)
        if key:
            query = q.Term(TITLE_PINYIN, key)
            docs = self._docs(query)
            if docs.size:
                return [Tier("pinyin", docs, self._bm25(query))], "pinyin"
        if plain:
            docs = self._partial(self.arrays.live)
            return [Tier("partial", docs, self._combined)], ("any_word" if docs.size else None)
        any_word = self.compiled.any_word()
        docs = self._docs(any_word)
        return [Tier("partial", docs, self._bm25(any_word))], ("any_word" if docs.size else None)

    def _weigh_correction(self, words: np.ndarray, substring: np.ndarray) -> SearchResults | None:
        """What the reader meant, decided on the index's evidence (see :mod:`correction`).

        A typed query with no exact match is corrected as before (:meth:`Corrector.correct`);
        any query is then weighed against its same-sound alternatives (:meth:`Corrector.weigh`):
        one that wins clearly is answered with (its results, and ``correction`` says so), one
        that wins less clearly is offered (``suggestion``, kept in :attr:`offer`). With
        ``correct=0`` nothing is answered with, and the correction the page would have made is
        offered instead, so the two never disagree. Returns the corrected results, or None.
        """
        corrector = Corrector(self.engine._vocabulary_of(self.snap), fuzzy_pinyin=self.engine.options.fuzzy_pinyin)
        # Full-width letters (an IME in full-width mode: ｚｈｉｈｕｉ) read as the pinyin they are.
        typed = analysis.fold_width(self.request.q)
        correction = None
        if substring.size == 0 and (words.size == 0 or self._only_fragments(words)):
            correction = corrector.correct(typed, self._exact_count)
        if correction is None:
            weighing = corrector.weigh(typed, self.engine._evidence(self.snap, self.docsets))
            self.offer = weighing.suggestion
            if weighing.correction is not None:
                exact = self._exact_count(weighing.correction.text, weighing.correction.kind == "pinyin")
                if exact:
                    correction = dataclasses.replace(weighing.correction, exact=exact)
                else:
                    self.offer = self.offer or weighing.correction.text
        if correction is None:
            return None
        if not self.request.correct or self.curation is not None:
            # correct=0, or staff curated this very query (docs/ADMIN.md): the results as typed, and
            # what the page would otherwise have answered with offered.
            self.offer = correction.text
            return None
        return self._corrected(correction)

    def _corrected(self, correction: Correction) -> SearchResults:
        """The results of ``correction`` in place of the typed query's, saying so."""
        corrected = dataclasses.replace(self.request, q=correction.text, correct=False)
        execution = _Execution(self.engine, self.snap, corrected, self.compiled.synonyms, count_only=self.count_only,
                               curation=self.curation)
        execution.weighed = True
        results = execution.run()
        results.request = self.request
        results.searched = correction.text
        results.suggestion = correction.alternative
        results.correction = {"typed": self.request.q, "searched": correction.text, "kind": correction.kind,
                              "changes": [{"typed": a, "searched": b} for a, b in correction.changes]}
        return results

    def _regional(self, text: str) -> list[tuple[str, str]]:
        """The regional words of a query term whose counterpart the index holds (see ``text.regional``)."""
        pairs = regional.counterparts(text)
        if not pairs:
            return []
        evidence = self.engine._evidence(self.snap, self.docsets)
        return [(typed, other) for typed, other in pairs if evidence.verbatim(other)]

    def _only_fragments(self, words: np.ndarray) -> bool:
        """True when the all-words matches hold a typed word only as scattered single characters
        (see :func:`_fragmented`) and none of them has the query verbatim."""
        if not _fragmented(self.compiled):
            return False
        within = np.zeros(self.arrays.live.size, dtype=bool)
        within[words] = True
        return not self.docsets.docs(self.compiled.substring(), within=within).size

    def _exact_count(self, text: str, verbatim: bool) -> int:
        """Documents ``text`` matches exactly: every word or verbatim (only verbatim when asked)."""
        compiled = CompiledQuery(parsed(text).node, self.engine.options.title_boost, self.compiled.synonyms)
        if compiled.node is None:
            return 0
        if not verbatim and not _fragmented(compiled):
            found = self._docs(compiled.words()).size
            if found:
                return int(found)
        return int(self._docs(compiled.substring()).size)

    def _unmatched(self) -> list[str]:
        """The query's words that no article contains, in title or body (for the partial-match notice)."""
        missing: dict[str, None] = {}
        for term in positive_terms(self.compiled.node):
            if term.prefix:
                continue
            for word in analysis.query_words(term.text) or [normalize(term.text).strip()]:
                if not any(self.docsets.term(field, word).size for field in WORD_FIELDS):
                    missing.setdefault(word, None)
        return list(missing)

    def _did_you_mean(self) -> str | None:
        """For a query without exact matches: a text of the titles' vocabulary with the same pinyin
        that has exact matches itself, or whose every word is found where the typed query has a word
        found nowhere; else None (never text weaker than what was typed: 豳鬰爨齉 is not offered
        豳与爨齉, which nothing matches either).

        The whole query first (只会城市 -> 智慧城市, zhihuichengshi -> 智慧城市), then each
        query word that no article contains.
        """
        found = self._title_pinyin_match()
        if found is None:
            return None
        if self._exact_count(found, False):
            return found
        # Not found together (园区 智慧), but each of its words is, where the typed query has a word
        # no article holds (只会): still stronger than what was typed.
        if self._words_found(found) and not self._words_found(self.request.q):
            return found
        return None

    def _words_found(self, text: str) -> bool:
        """Whether every word of ``text`` is in some article (title or body); False without words."""
        words = [w for term in positive_terms(parsed(text).node) if not term.prefix
                 for w in analysis.query_words(term.text)]
        return bool(words) and all(any(self.docsets.term(field, w).size for field in WORD_FIELDS) for w in words)

    def _title_pinyin_match(self) -> str | None:
        q = self.request.q.strip()
        whole = pinyin.query_key(q) or (pinyin.pinyin_key(q) if analysis.has_cjk(q) else "")
        if whole:
            word = self._title_word_for_key(whole)
            if word and normalize(word) != normalize(q):
                return word
        if not analysis.has_cjk(q):
            return None
        corrected = q
        for word in analysis.query_words(q):
            if any(self.docsets.term(field, word).size for field in WORD_FIELDS):
                continue
            replacement = self._title_word_for_key(pinyin.pinyin_key(word))
            if replacement:
                corrected = _replace_normalized(corrected, word, replacement)
        return corrected if normalize(corrected) != normalize(q) else None

    def _title_word_for_key(self, key: str) -> str | None:
        if len(key) < 2:
            return None
        docs = self.docsets.term(TITLE_PINYIN, key)
        if not docs.size:
            return None
        # The most recent articles' titles give the word in its current spelling.
        for docnum in docs[np.argsort(-self.arrays.day[docs], kind="stable")][:5].tolist():
            words = pinyin.words_with_key(self.snap.commit.stored_fields(docnum)[TITLE], key)
            if words:
                return normalize(max(words, key=len))  # in the script the vocabulary is in
        return None

    # -- matching ---------------------------------------------------------------------------

    def _docs(self, query: q.Query) -> np.ndarray:
        return self.docsets.docs(query)

    def _filter_masks(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The documents the category filter keeps and those the date filter keeps (masks over
        all documents), each None when the request has no such filter (most searches)."""
        arrays, request = self.arrays, self.request
        category_ok = date_ok = None
        if request.categories:
            wanted = [arrays.category_ordinal[c] for c in request.categories if c in arrays.category_ordinal]
            category_ok = np.isin(arrays.category, np.array(wanted, dtype=np.int32))
        if request.date_from or request.date_to:
            low, high = date_bounds(request)
            date_ok = (arrays.day >= low) & (arrays.day <= high)
        return category_ok, date_ok

    # -- facets ---------------------------------------------------------------------------------

    def _facets(self, matched: np.ndarray, category_ok: np.ndarray | None, date_ok: np.ndarray | None) -> dict:
        arrays, request = self.arrays, self.request
        # Disjunctive: each facet is counted without its own filter, so the other
        # values stay visible (with their counts) while one is selected.
        in_dates = _kept(matched, date_ok)
        counts = np.bincount(arrays.category[in_dates], minlength=len(arrays.category_names))
        selected = set(request.categories)
        names = arrays.category_names
        # Only the categories the matches have (a few of the index's hundreds), then any selected
        # one they lack; the sort below decides the order.
        present = np.flatnonzero(counts)
        categories = [FacetValue(names[i], count, names[i] in selected)
                      for i, count in zip(present.tolist(), counts[present].tolist())]
        categories += [FacetValue(name, 0, True) for name in sorted(selected)
                       if name in arrays.category_ordinal and not counts[arrays.category_ordinal[name]]]
        # A selected category with no document in this index still shows, with 0.
        categories += [FacetValue(c, 0, True) for c in request.categories if c not in arrays.category_ordinal]
        categories.sort(key=lambda v: (-v.count, v.value))

        in_categories = _kept(matched, category_ok)
        years = arrays.year[in_categories]
        years = years[years > 0]
        year_counts = np.bincount(years) if years.size else np.zeros(0, dtype=np.int64)
        chosen_year = selected_year(request)
        facets = {
            "category": categories,
            "year": [
                FacetValue(str(y), int(year_counts[y]), chosen_year == int(y))
                for y in np.nonzero(year_counts)[0][::-1]
            ],
        }
        if chosen_year is not None:
            in_year = in_categories[arrays.year[in_categories] == chosen_year]
            month_counts = np.bincount(arrays.month[in_year], minlength=13)
            chosen_month = selected_month(request)
            facets["month"] = [
                FacetValue(f"{chosen_year:04d}-{m:02d}", int(month_counts[m]), chosen_month == m)
                for m in range(1, 13)
                if month_counts[m]
            ]
        return facets

    # -- ranking ---------------------------------------------------------------------------------

    def _page(self, tiers: list[Tier]) -> list[tuple[int, float | None, str | None]]:
        """The requested page: by date over all tiers, or by relevance tier after tier."""
        request = self.request
        start, stop = request.offset, request.offset + request.page_size
        if request.sort != "relevance" or tiers[0].score is None:
            docs = np.concatenate([t.docs for t in tiers]) if len(tiers) > 1 else tiers[0].docs
            labels = np.concatenate([np.full(t.docs.size, i) for i, t in enumerate(tiers)]) if len(tiers) > 1 \
                else np.zeros(docs.size, dtype=int)
            days = self.arrays.day[docs]
            order = np.lexsort((docs, days)) if request.sort == "date_asc" else np.lexsort((-docs, -days))
            page = order[start:stop]
            return [(int(docs[i]), None, _match_label(tiers[int(labels[i])].name)) for i in page]
        ranked: list[tuple[int, float | None, str | None]] = []
        before = 0
        for tier in tiers:
            if before >= stop:
                break
            if tier.docs.size and before + tier.docs.size > start:
                if tier.score is None:  # only the "all" tier, always alone, lists by date
                    raise SearchError(f"tier {tier.name!r} has no score to rank by relevance")
                best = self._scored(tier.score, tier.docs, stop - before)
                ranked += [(docnum, score, _match_label(tier.name)) for docnum, score in best]
            else:
                ranked += [(-1, None, None)] * min(int(tier.docs.size), stop - before)  # skipped whole
            before += int(tier.docs.size)
        return [item for item in ranked[start:stop] if item[0] >= 0]

    def _scored(self, score: Callable[[np.ndarray], np.ndarray], docs: np.ndarray,
                limit: int) -> list[tuple[int, float]]:
        """The best ``limit`` of ``docs`` by ``score``, ties broken by date (newest first)."""
        if not docs.size or limit <= 0:
            return []
        return _best(docs, score(docs), self.arrays.day, limit)

    def _hits(self, ranked: list[tuple[int, float | None, str | None]], offset: int,
              highlighter: Highlighter) -> list[Hit]:
        """The page's hits: stored fields, titles marked and snippets, each step for all of them in
        turn, so that the same code runs ten times in a row from warm caches rather than
        interleaved with decoding the next record (a small gain: see the commit that made it)."""
        stored = [self.snap.large_articles.stored_fields(self.snap.commit, docnum) for docnum, _, _ in ranked]
        articles = [from_stored(fields) for fields in stored]
        stable = [bool(fields.get(SCRIPT_STABLE)) for fields in stored]  # OpenCC would change nothing
        titles = [highlighter.mark(article.title, script_stable=steady) for article, steady in zip(articles, stable)]
        length = self.engine.options.snippet_length
        snippets = [highlighter.snippet(article.body, length, script_stable=steady)
                    for article, steady in zip(articles, stable)]
        return [
            Hit(
                id=article.id,
                title=article.title,
                title_html=title_html,
                snippet=snippet,
                category=article.category,
                date=article.date.isoformat() if article.date else None,
                url=article.url,
                source=article.source,
                score=round(score, 4) if score is not None and match != "pinned" else None,
                rank=offset + i + 1,
                match=match,
                pinned=match == "pinned",
            )
            for i, ((_, score, match), article, title_html, snippet)
            in enumerate(zip(ranked, articles, titles, snippets))
        ]


_EMPTY = np.zeros(0, dtype=np.int64)
_NO_SYNONYMS = SynonymTable()
# Weight of shared character bigrams against words in the partial-match score, chosen by
# bench.relevance (docs/BENCHMARKS.md#relevance): on the e-commerce set MRR@10 peaks at 1.5
# (0.5: 0.728, 1.5: 0.745); the site set is flat from 0.75 up.
BIGRAM_WEIGHT = 1.5


#: Fields a newer index format added for speed alone, with what they are for (an index without
#: them answers the same, more slowly): shown to the operator, who may reindex.
SPEED_FIELDS = {
    TITLE_CHARS: "the character fields (title_ch, body_ch: one-character prefixes as one term)",
    SCRIPT_STABLE: "script_stable (hits highlighted without OpenCC when it would change nothing)",
}


def missing_format_fields(snap: Snapshot) -> list[str]:
    """What of :data:`SPEED_FIELDS` the snapshot's index lacks (its schema is the generation's), and
    the posting arrays when a segment has none (written before them: ``backend/lists.py``)."""
    segments = snap.commit.segments
    missing = [what for field, what in SPEED_FIELDS.items()
               if segments and not all(segment.has_field(field) for segment in segments)]
    if segments and not all(segment.has_posting_arrays() for segment in segments):
        missing.append("the posting arrays (each segment's .lst file: posting lists read without decoding)")
    return missing


def _best(docs: np.ndarray, scores: np.ndarray, day: np.ndarray, limit: int) -> list[tuple[int, float]]:
    """The best ``limit`` of ``docs`` by ``scores``, ties broken by date (newest first), then number."""
    if not docs.size or limit <= 0:
        return []
    scores = np.round(scores, 6)
    days = day[docs]
    if docs.size > limit * 4:
        # Only the best candidates need a full sort; keep every doc tied at the cut.
        cut = np.partition(scores, docs.size - limit)[docs.size - limit]
        keep = scores >= cut
        docs, scores, days = docs[keep], scores[keep], days[keep]
    order = np.lexsort((docs, -days, -scores))[:limit]
    return [(int(docs[i]), float(scores[i])) for i in order]


def _match_label(tier: str) -> str | None:
    return {"words": "all_words", "all": None}.get(tier, tier)


def _kept(docs: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Those of ``docs`` that ``mask`` (over all documents) keeps; all of them without a mask."""
    return docs if mask is None else docs[mask[docs]]


def _fragmented(compiled: CompiledQuery) -> bool:
    """True when jieba broke a typed word into single characters (企业新用 → 企业/新/用).

    Articles that merely contain 新 and 用 somewhere are no exact match for a word that
    occurs nowhere verbatim: such a query may still be a slip worth correcting.
    """
    for term in positive_terms(compiled.node):
        words = analysis.query_words(term.text)
        if len(words) > 1 and any(len(w) == 1 and analysis.has_cjk(w) for w in words):
            return True
    return False


def _replace_normalized(text: str, word: str, replacement: str) -> str:
    """Replace the occurrence of normalized ``word`` in ``text`` (offsets agree after normalize)."""
    start = normalize(text).find(word)
    return text if start < 0 else text[:start] + replacement + text[start + len(word):]


def _title_only(node):
    """The same query with every term restricted to the title."""
    if isinstance(node, Term):
        return dataclasses.replace(node, field=TITLE)
    if isinstance(node, Not):
        return Not(_title_only(node.child))
    return type(node)(tuple(_title_only(child) for child in node.children))


