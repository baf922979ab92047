"""Pinned and hidden results: the pure functions, on a real index, and end to end through SearchEngine
(docs/ADMIN.md#where-the-rules-meet-the-engine)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
import time

import numpy as np
import pytest

from search_service.article import Article
from search_service.engine import indexer
from search_service.engine.docsets import DocSetEvaluator
from search_service.engine.request import SearchRequest
from search_service.engine.schema import ID
from search_service.engine.store import IndexStore
from search_service.rules import edits
from search_service.rules.curations import Curation, Resolved, curate_docnums, curate_hits, curate_tiers, resolve
from search_service.rules.store import RulesDB, rules_path


def article(doc_id: str, title: str, body: str, category: str = "园区规划", day: str = "2024-05-01") -> Article:
    return Article(doc_id, title, body, category, dt.date.fromisoformat(day))


ARTICLES = [
    article("a1", "园区规划的五个要点", "园区规划要看产业、空间和配套。", day="2024-01-01"),
    article("a2", "园区规划与产业选择", "园区规划中的主导产业选择。", day="2024-02-01"),
    article("a3", "园区规划：基础设施共享", "园区规划中的基础设施共享。", day="2024-03-01"),
    article("a4", "存量园区更新规划", "存量园区更新的园区规划办法。", category="产业规划", day="2024-04-01"),
    article("b1", "智慧城市平台建设", "城市运行平台与数据开放。", category="智慧城市案例", day="2023-06-01"),
    article("b2", "低空经济布局", "低空经济要避免一哄而上。", category="产业规划", day="2025-01-01"),
]


# --------------------------------------------------------------------------- pure functions


def test_without_removes_exactly_the_curated_documents():
    rng = np.random.default_rng(7)
    for _ in range(200):
        docs = np.unique(rng.integers(0, 500, size=rng.integers(0, 300)))
        removed = np.unique(rng.integers(0, 520, size=rng.integers(0, 40)))
        kept = Resolved(np.zeros(0, dtype=np.int64), removed).without(docs)
        assert kept.tolist() == np.setdiff1d(docs, removed).tolist()


def test_the_pinned_tier_is_ranked_in_staff_order():
    resolved = Resolved(np.array([30, 4, 17]), np.array([4, 17, 30]))
    scores = resolved.score(np.array([4, 17, 30]))
    assert [d for _, d in sorted(zip(-scores, [4, 17, 30]))] == [30, 4, 17]
    pinned, tiers = curate_tiers([np.array([1, 4, 9]), np.array([17, 20, 30])], resolved)
    assert pinned.tolist() == [30, 4, 17] and [t.tolist() for t in tiers] == [[1, 9], [20]]


def test_suggestions_put_pins_first_and_drop_hidden():
    resolved = Resolved(np.array([8, 3]), np.array([3, 5, 8]))  # 5 hidden
    assert curate_docnums([1, 5, 3, 2, 9], resolved, limit=4) == [8, 3, 1, 2]
    assert curate_docnums([1], resolved, limit=1) == [8]


def test_curated_hits_are_the_same_curated_twice():
    curation = Curation("园区", ("p2", "p1"), ("h",))
    hits = ["x", "h", "p1", "y"]
    once = curate_hits(hits, curation, str, lambda doc_id: doc_id if doc_id == "p2" else None, limit=10)
    assert once == [("p2", True), ("p1", True), ("x", False), ("y", False)]
    again = curate_hits([h for h, _ in once], curation, str, lambda doc_id: None, limit=10)
    assert again == once
    gone = curate_hits(hits, Curation("园区", ("missing",)), str, lambda doc_id: None, limit=2)
    assert gone == [("x", False), ("h", False)]


# --------------------------------------------------------------------------- on a real index


def _evaluator(engine):
    snap = engine.snapshot()
    return snap, DocSetEvaluator(snap.commit, snap.arrays.live)


def test_resolved_on_a_real_index_follows_updates_and_skips_missing_ids(make_engine):
    engine = make_engine(ARTICLES)
    snap, evaluator = _evaluator(engine)
    curation = Curation("园区规划", ("a3", "gone", "a1"), ("a2",))
    resolved = curation.resolve(snap.key, lambda doc_id: evaluator.term(ID, doc_id))
    titles = [snap.commit.stored_fields(int(d))["id"] for d in resolved.pinned]
    assert titles == ["a3", "a1"] and resolved.missing == ("gone",)
    assert curation.resolve(snap.key, lambda doc_id: pytest.fail("memoized per snapshot")) is resolved
    # Rewriting a pinned article gives it a new document number: the next snapshot finds that one.
    indexer.update(IndexStore(engine.store.root), [dataclasses.replace(ARTICLES[2], title="园区规划（修订）")])
    snap2, evaluator2 = _evaluator(engine)
    again = curation.resolve(snap2.key, lambda doc_id: evaluator2.term(ID, doc_id))
    assert snap2.commit.stored_fields(int(again.pinned[0]))["title"] == "园区规划（修订）"
    assert int(again.pinned[0]) not in resolved.pinned.tolist()


def test_applied_to_a_real_query_s_tier(make_engine):
    engine = make_engine(ARTICLES)
    snap, evaluator = _evaluator(engine)
    from search_service.engine.compiler import compile_query

    tier = evaluator.docs(compile_query("园区规划").words())
    resolved = resolve(["b2", "a4"], ["a1"], lambda doc_id: evaluator.term(ID, doc_id))
    pinned, (rest,) = curate_tiers([tier], resolved)
    ids = lambda docs: [snap.commit.stored_fields(int(d))["id"] for d in docs]  # noqa: E731
    assert ids(pinned) == ["b2", "a4"]  # b2 does not even match: staff may pin any article
    assert sorted(ids(rest)) == ["a2", "a3"]


# --------------------------------------------------------------------------- through the engine


def _rule(engine, query: str, pin=(), hide=()) -> None:
    db = RulesDB(rules_path(engine.store.root))
    if pin or hide:
        edits.set_curation(db, query, {"pin": list(pin), "hide": list(hide)}, "测试")
    else:
        edits.delete_curation(db, query, "测试")


def _ids(results) -> list[str]:
    return [hit.id for hit in results.hits]


def test_pinned_first_hidden_never_filters_still_apply(make_engine):
    engine = make_engine(ARTICLES)
    before = engine.search(SearchRequest(q="园区规划"))
    assert "a1" in _ids(before)
    _rule(engine, "園區規劃", pin=["b2", "a3"], hide=["a1"])  # the rule is written in Traditional
    results = engine.search(SearchRequest(q="园区规划"))
    assert _ids(results)[:2] == ["b2", "a3"] and "a1" not in _ids(results)
    first = results.hits[0]
    assert first.pinned and first.match == "pinned" and first.score is None and first.rank == 1
    assert first.to_json()["pinned"] is True and results.hits[2].to_json()["pinned"] is False
    assert results.total == before.total - 1 + 1  # a1 hidden, b2 added (a3 was a match already)
    # Page 2 never brings the hidden one back; every page together lists each article once.
    pages = [_ids(engine.search(SearchRequest(q="园区规划", page=p, page_size=2))) for p in (1, 2, 3, 4)]
    flat = [i for page in pages for i in page]
    assert "a1" not in flat and len(flat) == len(set(flat))
    # A category filter drops a pinned article outside it; facets count what is shown.
    planning = engine.search(SearchRequest(q="园区规划", categories=("园区规划",)))
    assert _ids(planning)[0] == "a3" and "b2" not in _ids(planning)
    counts = {f.value: f.count for f in results.facets["category"]}
    assert counts["产业规划"] == 2 and counts["园区规划"] == 2  # b2 + a4; a2 + a3 (a1 hidden)
    # Sorted by date, the pinned articles are among the results at their dates.
    by_date = engine.search(SearchRequest(q="园区规划", sort="date_desc"))
    assert _ids(by_date)[0] == "b2" and "a1" not in _ids(by_date)
    # Another query is untouched.
    assert engine.search(SearchRequest(q="低空经济")).hits[0].pinned is False


def test_the_box_shows_pins_first_and_never_the_hidden(make_engine):
    engine = make_engine(ARTICLES)
    assert "a1" in [s.id for s in engine.suggest("园区规划", 5)]
    _rule(engine, "园区规划", pin=["b1"], hide=["a1"])
    suggestions = engine.suggest("园区规划", 5)
    assert suggestions[0].id == "b1" and suggestions[0].pinned and suggestions[0].to_json()["pinned"] is True
    assert "a1" not in [s.id for s in suggestions] and not suggestions[1].pinned


def test_a_change_is_in_effect_on_the_next_search_of_every_engine(make_engine):
    engine = make_engine(ARTICLES)
    other = type(engine)(engine.store.root, engine.options)  # another worker process's engine
    try:
        for each in (engine, other):
            each.search(SearchRequest(q="园区规划"))  # cached now
        _rule(engine, "园区规划", pin=["b1"])
        assert _ids(other.search(SearchRequest(q="园区规划")))[0] == "b1"
        assert _ids(engine.search(SearchRequest(q="园区规划")))[0] == "b1"
        _rule(engine, "园区规划")
        assert "b1" not in _ids(other.search(SearchRequest(q="园区规划")))
    finally:
        other.close()


def test_rules_survive_a_rebuild_and_a_rollback(make_engine):
    engine = make_engine(ARTICLES)
    _rule(engine, "园区规划", pin=["b1"], hide=["a1"])
    store = IndexStore(engine.store.root)
    indexer.rebuild(store, list(reversed(ARTICLES)), procs=1)  # new document numbers
    assert _ids(engine.refresh() and engine.search(SearchRequest(q="园区规划")))[0] == "b1"
    indexer.rollback(store)
    results = engine.search(SearchRequest(q="园区规划"))
    assert _ids(results)[0] == "b1" and "a1" not in _ids(results)


def test_a_curation_costs_little_and_no_rule_costs_nothing_measurable(make_engine):
    engine = make_engine(ARTICLES, cache_entries=0)

    def median_ms(query: str) -> float:
        times = []
        for _ in range(60):
            started = time.perf_counter()
            engine.search(SearchRequest(q=query))
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)

    db = RulesDB(rules_path(engine.store.root))  # other queries' rules: looked up in a dictionary
    db.change("测试", "300 rules", [("curation", f"别的词{i}", {"pin": ["b1"], "hide": []}) for i in range(300)])
    plain = median_ms("低空经济")
    state = engine.rules.current()
    started = time.perf_counter()
    for _ in range(10_000):
        engine.rules.current().curation("低空经济")
    lookup_ms = (time.perf_counter() - started) / 10_000 * 1000
    assert lookup_ms < 0.1, lookup_ms  # the whole per-request cost of rules for a query without one
    _rule(engine, "低空经济", pin=["a1", "a2", "a3"], hide=["b1"])
    assert engine.rules.current().version != state.version
    curated = median_ms("低空经济")
    assert curated - plain < 1.0, (plain, curated)


def test_a_curated_query_is_answered_as_typed_and_its_correction_only_offered(make_engine):
    # Staff curated this very text: their pins are what readers get, not a homophone's results.
    engine = make_engine(ARTICLES)
    corrected = engine.search(SearchRequest(q="智惠城市"))
    assert corrected.correction is not None and corrected.searched == "智慧城市"
    _rule(engine, "智惠城市", pin=["b2"])
    results = engine.search(SearchRequest(q="智惠城市"))
    assert results.correction is None and results.suggestion == "智慧城市"
    assert _ids(results)[0] == "b2" and results.hits[0].pinned
