"""snapshot and readers: one commit pinned (its files mapped), readers shared by threads and commits,
per-document columns cached by segment, the caches.

Also the risky path of merges: a merge deletes the files of the segments it replaced while older
snapshots may still be reading them. A snapshot made before keeps answering from its mapped
files; one made after the files went meets a missing file, which the engine answers by moving to
the newest snapshot and running the request again.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time

import numpy as np
import pytest

from search_service.article import Article
from search_service.engine import indexer, merging
from search_service.engine.backend.commit import Generation
from search_service.engine.backend.readers import ReaderPool
from search_service.engine.docsets import DocSetEvaluator
from search_service.engine.request import SearchRequest
from search_service.engine.schema import BODY, ID
from search_service.engine.searcher import EngineOptions, SearchEngine
from search_service.engine.snapshot import LargeArticleCache, ResultCache, Snapshot
from search_service.engine.store import IndexStore


def article(doc_id: str, category: str = "智慧城市案例", day: int = 1, body: str = "高新区智慧城市建设") -> Article:
    return Article(doc_id, f"智慧城市{doc_id}", body, category, dt.date(2024, 5, day))


@pytest.fixture()
def store(tmp_path, jieba_cache) -> IndexStore:
    """Three segments: a build of four articles, then two one-article commits."""
    store = IndexStore(tmp_path / "index")
    indexer.rebuild(store, [article("a", "产业规划", 1), article("b", day=2), article("c", "政策解读", 3),
                            article("d", day=4)])
    indexer.update(store, [article("e", "政策解读", 5)])
    indexer.update(store, [article("f", day=6)])
    return store


def pin(store: IndexStore, segment_cache: dict | None = None, pool: ReaderPool | None = None) -> Snapshot:
    """A snapshot of the live commit, as the engine makes one."""
    generation = Generation(store.open_current())
    return Snapshot.open(store.current_name(), generation, generation.latest(),
                         pool if pool is not None else ReaderPool(), segment_cache, time.time())


def stored_ids(snap: Snapshot) -> set[str]:
    """The ids of the snapshot's live articles, read from their stored fields."""
    return {snap.commit.stored_fields(int(d))[ID] for d in snap.arrays.live_docnums}


def has_id(snap: Snapshot, doc_id: str) -> bool:
    return DocSetEvaluator(snap.commit, snap.arrays.live).term(ID, doc_id).size > 0


def on_disk(store: IndexStore) -> set[str]:
    return set(os.listdir(store.current_path()))


def test_a_searcher_of_an_old_snapshot_keeps_answering_after_a_merge_deletes_its_files(store):
    old = pin(store)
    evaluator = DocSetEvaluator(old.commit, old.arrays.live)
    before = (stored_ids(old), evaluator.term(BODY, "智慧城市").tolist())
    files = on_disk(store)
    result = merging.merge(store.current_path(), everything=True)
    assert result is not None and result.merged_segments == 3
    assert files - on_disk(store), "the merge deleted no file the old snapshot reads"
    # Every page the old searcher reads is still mapped: same documents, same postings.
    assert (stored_ids(old), DocSetEvaluator(old.commit, old.arrays.live).term(BODY, "智慧城市").tolist()) == before
    assert old.commit.stored_fields(0)[ID] in before[0]
    # Readers opened on it only now would need the deleted files: that is the engine's retry case.
    with pytest.raises(FileNotFoundError):
        old.source.commit(old.toc_generation, ReaderPool())
    new = pin(store)
    assert new.toc_generation > old.toc_generation and stored_ids(new) == before[0]


def test_a_snapshot_the_engine_still_serves_after_a_merge_deleted_its_files_answers_in_full(store):
    # The engine trusts a fingerprint of CURRENT and the generation folder's mtime; a merge within
    # one tick of a coarse file clock leaves it unchanged (as here, where the mtime is put back).
    engine = SearchEngine(store.root, EngineOptions(reload_interval=3600, cache_entries=0, correction=False))
    try:
        time.sleep(SearchEngine.STAMP_SETTLE_SECONDS * 2)  # a settled stamp: trusted until it moves
        folder = store.current_path()
        stamp = os.stat(folder)
        first = engine.snapshot()
        assert merging.merge(folder, everything=True) is not None
        os.utime(folder, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
        assert engine.snapshot() is first  # the engine has not noticed the merge
        # Every file of `first` was mapped when it was made: hits, stored fields, articles all there.
        results = engine.search(SearchRequest(q="智慧城市"))
        assert results.total == 6 and {h.id for h in results.hits} == set("abcdef")
        assert all(hit.title for hit in results.hits)
        assert engine.document("f").title == "智慧城市f"
        assert engine.refresh().toc_generation > first.toc_generation  # the next check moves to the merge
        assert engine.search(SearchRequest(q="智慧城市")).total == 6
    finally:
        engine.close()


def test_refresh_checks_the_disk_even_on_a_machine_booted_less_than_a_reload_interval_ago(store, monkeypatch):
    # The monotonic clock counts from boot: "never checked" must not be time 0, or on a machine up for
    # less than reload_interval every check looks recent and refresh() returns the old snapshot.
    engine = SearchEngine(store.root, EngineOptions(reload_interval=3600, cache_entries=0, correction=False))
    try:
        monkeypatch.setattr(time, "monotonic", lambda: 60.0)  # booted a minute ago
        time.sleep(SearchEngine.STAMP_SETTLE_SECONDS * 2)
        first = engine.snapshot()
        folder = store.current_path()
        stamp = os.stat(folder)
        assert merging.merge(folder, everything=True) is not None
        os.utime(folder, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # the fingerprint does not move
        assert engine.snapshot() is first
        assert engine.refresh().toc_generation > first.toc_generation
    finally:
        engine.close()


def test_a_snapshot_is_pinned_to_its_commit_and_segments_are_opened_once_per_process(store):
    pool = ReaderPool()
    old = pin(store, pool=pool)
    assert len(pool) == 3
    indexer.update(store, [article("g")])
    assert indexer.delete(store, ["a"]) == ["a"]
    assert stored_ids(old) == set("abcdef")  # a later commit is not seen
    assert has_id(old, "a")
    new = pin(store, pool=pool)
    assert stored_ids(new) == set("bcdefg") and not has_id(new, "a")
    assert len(pool) == 4  # only the new segment was opened
    old_leaves = {segment.id: segment._reader for segment in old.commit.segments}
    new_leaves = {segment.id: segment._reader for segment in new.commit.segments}
    common = set(old_leaves) & set(new_leaves)
    assert len(common) == 3
    # Each segment's files are the same open ones in both commits, the one with a new deletion too...
    assert all(new_leaves[sid]._terms is old_leaves[sid]._terms for sid in common)
    # ...while the deletion is the new commit's alone.
    changed = [sid for sid in common if new_leaves[sid].has_deletions()]
    assert len(changed) == 1 and not old_leaves[changed[0]].has_deletions()
    assert DocSetEvaluator(old.commit, old.arrays.live).term(ID, "a").size == 1
    assert DocSetEvaluator(new.commit, new.arrays.live).term(ID, "a").size == 0
    merging.merge(store.current_path(), everything=True)
    pin(store, pool=pool)
    pool.keep_only(str(store.current_path()), [])  # the engine forgets what a commit no longer has
    assert len(pool) == 0
    assert stored_ids(new) == set("bcdefg")  # a snapshot still in use keeps its readers


def test_doc_arrays_hold_categories_days_lengths_and_deletions(store):
    indexer.delete(store, ["c"])
    snap = pin(store)
    arrays = snap.arrays
    with store.open_current().searcher() as searcher:  # Whoosh's own view: the oracle
        by_id = {searcher.stored_fields(d)[ID]: d for d in range(searcher.doc_count_all())
                 if not searcher.reader().is_deleted(d)}
    assert arrays.live.sum() == 5 and arrays.live_docnums.tolist() == sorted(by_id.values())
    category = {doc_id: arrays.category_names[arrays.category[d]] for doc_id, d in by_id.items()}
    assert category == {"a": "产业规划", "b": "智慧城市案例", "d": "智慧城市案例", "e": "政策解读", "f": "智慧城市案例"}
    assert {doc_id: int(arrays.day[d]) for doc_id, d in by_id.items()} == {
        "a": 20240501, "b": 20240502, "d": 20240504, "e": 20240505, "f": 20240506}
    assert set(arrays.year[arrays.live].tolist()) == {2024} and set(arrays.month[arrays.live].tolist()) == {5}
    assert all(arrays.lengths[BODY][d] > 0 for d in by_id.values())
    assert arrays.average_lengths[BODY] == pytest.approx(float(np.mean(arrays.lengths[BODY][arrays.live])))


def test_segment_columns_are_read_once_and_forgotten_when_merged_away(store):
    cache: dict = {}
    pin(store, cache)
    assert len(cache) == 3
    kept = dict(cache)
    indexer.update(store, [article("g", "新分类", 7)])
    arrays = pin(store, cache).arrays
    assert len(cache) == 4 and all(cache[key] is columns for key, columns in kept.items())  # only the new one read
    assert "新分类" in arrays.category_names  # a category new in the new segment gets its own code
    merging.merge(store.current_path(), everything=True)
    pin(store, cache)
    assert len(cache) == 1 and not set(cache) & set(kept)


def test_large_article_cache_keeps_only_long_articles_and_the_latest_few(store):
    indexer.update(store, [Article(f"long{i}", "长文", "智慧城市" * 30) for i in range(3)])
    cache = LargeArticleCache(entries=2, min_chars=100)
    commit = pin(store).commit
    docnum = {commit.stored_fields(d)[ID]: d for d in range(commit.doc_count)}
    short = cache.stored_fields(commit, docnum["a"])
    assert cache.stored_fields(commit, docnum["a"]) is not short  # not kept: decoded again
    first = cache.stored_fields(commit, docnum["long0"])
    assert cache.stored_fields(commit, docnum["long0"]) is first  # kept
    cache.stored_fields(commit, docnum["long1"])
    cache.stored_fields(commit, docnum["long2"])  # two entries: long0, least recently used, goes
    assert cache.stored_fields(commit, docnum["long0"]) is not first
    cache.clear()
    assert cache.stored_fields(commit, docnum["long2"])["body"] == "智慧城市" * 30


def test_result_cache_is_a_bounded_lru_that_counts():
    cache = ResultCache(capacity=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)  # b is the least recently used
    assert (cache.get("b"), cache.get("a"), cache.get("c")) == (None, 1, 3)
    assert (cache.hits, cache.misses) == (3, 1)
    cache.clear()
    assert cache.get("a") is None
    off = ResultCache(capacity=0)
    off.put("a", 1)
    assert off.get("a") is None


def test_searches_running_through_commits_and_merges_never_fail_nor_go_back(store):
    engine = SearchEngine(store.root, EngineOptions(reload_interval=0, cache_entries=0, correction=False))
    stop = threading.Event()
    errors: list[str] = []
    seen: list[list[int]] = [[] for _ in range(4)]

    def search(totals: list[int]) -> None:
        while not stop.is_set():
            try:
                totals.append(engine.search(SearchRequest(q="智慧城市")).total)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(repr(exc))

    threads = [threading.Thread(target=search, args=(totals,)) for totals in seen]
    try:
        for thread in threads:
            thread.start()
        for i in range(8):
            indexer.update(store, [article(f"w{i}")])
            if i % 3 == 2:  # the merge deletes files the searchers' snapshots were reading
                assert merging.merge(store.current_path(), everything=True) is not None
            wait_until_seen = time.monotonic() + 10
            while not all(totals and totals[-1] == 7 + i for totals in seen):
                assert time.monotonic() < wait_until_seen and not errors, errors
                time.sleep(0.005)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        engine.close()
    assert not errors, errors[:3]
    for totals in seen:
        assert totals == sorted(totals) and totals[-1] == 14  # a search never sees an older commit


def test_refreshing_while_commits_and_merges_replace_the_newest_commit_never_fails(store):
    # Opening a snapshot lists the newest table of contents and then reads it and its segments;
    # a commit (or a merge's swap) in between deletes what was listed. Every open must land on a
    # newer commit instead of failing: a failed refresh was a public 500 and a write
    # acknowledged with visible: false.
    engine = SearchEngine(store.root, EngineOptions(reload_interval=0, cache_entries=0, correction=False))
    stop = threading.Event()
    writes = [0]

    def write_in_a_loop() -> None:
        writer = 0
        while not stop.is_set():
            writer += 1
            indexer.open_writer(store.current_path()).commit()  # a new table of contents, the old one deleted
            if writer % 10 == 0:
                merging.merge(store.current_path(), everything=True)
            writes[0] = writer

    committer = threading.Thread(target=write_in_a_loop)
    errors: list[str] = []
    refreshed = 0
    committer.start()
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                engine.refresh()
                refreshed += 1
            except Exception as exc:  # noqa: BLE001 - counted below
                errors.append(repr(exc))
    finally:
        stop.set()
        committer.join(30)
        engine.close()
    assert writes[0] > 20 and refreshed > 20
    assert not errors, f"{len(errors)} of {refreshed + len(errors)} refreshes failed: {errors[:2]}"


def test_related_articles_weigh_words_by_live_documents_not_by_deleted_old_versions(store):
    # 量子 and 玫瑰 are in article a alone, but a's old version (deleted by the update, still counted
    # by the term table's document frequency) has them too: they must not become key terms of a.
    body = "高新区智慧城市建设，量子玫瑰与园区规划。"
    indexer.update(store, [article("a", "产业规划", 1, body=body)])
    indexer.update(store, [article("a", "产业规划", 1, body=body + "再次更新。")])
    indexer.update(store, [article("g", day=7, body="园区规划与智慧城市建设")])
    engine = SearchEngine(store.root, EngineOptions(reload_interval=0, cache_entries=0, correction=False))
    try:
        related = engine.similar("a", 5)
        assert related.terms and not {"量子", "玫瑰"} & set(related.terms)
        assert "园区" in related.terms or "规划" in related.terms  # shared with g: a key term
        assert "g" in {item.id for item in related.similar} and "a" not in {item.id for item in related.similar}
    finally:
        engine.close()


def test_the_index_size_counts_what_is_there_while_merges_and_rebuilds_remove_files(store, monkeypatch):
    # /api/stats and the pages count the live generation's bytes while a merge or commit removes a
    # segment's files, or a rebuild replaces the whole generation: that was a 500 under load
    # (FileNotFoundError between the listing and a file's stat).
    from search_service.engine import store as store_module

    path = store.current_path()
    expected = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    assert store.current_bytes() == expected > 0
    engine = SearchEngine(store.root, EngineOptions(cache_entries=0))
    engine.snapshot()
    real_listdir = os.listdir
    monkeypatch.setattr(store_module.os, "listdir", lambda folder: real_listdir(folder) + ["gone-meanwhile.seg"])
    assert store.current_bytes() == expected  # a file removed after the listing is not counted
    calls = []

    def replaced_once(folder):
        calls.append(folder)
        if len(calls) == 1:
            raise FileNotFoundError(folder)  # the generation was replaced after CURRENT was read
        return real_listdir(folder)

    monkeypatch.setattr(store_module.os, "listdir", replaced_once)
    assert store.current_bytes() == expected and len(calls) == 2
    calls.clear()
    assert engine.stats().index_bytes == expected
