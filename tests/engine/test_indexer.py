"""Index generations: atomic publish, failed builds, add/replace/delete, rollback, strict mode."""

from __future__ import annotations

import os
import threading
import time

import pytest
from whoosh.index import TOC

from search_service.article import Article
from search_service.engine import indexer
from search_service.engine.request import SearchRequest
from search_service.engine.searcher import EngineOptions, SearchEngine
from search_service.engine.store import (
    BUILDER_PID_FILE,
    BUILDING_PREFIX,
    JOURNAL_FILE,
    IndexStore,
    journal_append,
    journal_since,
)
from search_service.errors import IndexUnavailable


def article(doc_id: str, title: str = "智慧城市", body: str = "高新区智慧城市建设") -> Article:
    return Article(doc_id, title, body, "智慧城市案例")


@pytest.fixture()
def store(tmp_path, jieba_cache) -> IndexStore:
    return IndexStore(tmp_path / "index")


def total(store, q="智慧城市") -> int:
    # Closed at once: segments are non-compound, so an engine holds open files until closed.
    engine = SearchEngine(store.root, EngineOptions(reload_interval=0, cache_entries=0))
    try:
        return engine.search(SearchRequest(q=q)).total
    finally:
        engine.close()


def test_no_index_is_unavailable(store):
    with pytest.raises(IndexUnavailable, match="index --rebuild"):
        store.open_current()


def test_rebuild_publishes_a_new_generation_and_prunes(store):
    first = indexer.rebuild(store, [article("1")], keep=2)
    second = indexer.rebuild(store, [article("1"), article("2")], keep=2)
    third = indexer.rebuild(store, [article("3")], keep=2)
    assert store.current_name() == third.generation
    assert store.generation_names() == [second.generation, third.generation]
    assert first.generation not in store.generation_names()
    assert total(store) == 1
    assert store.build_info()["documents"] == 1


def test_failed_build_leaves_the_old_generation_serving(store):
    indexer.rebuild(store, [article("1")])
    live = store.current_name()

    def broken():
        yield article("2")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        indexer.rebuild(store, broken())
    assert store.current_name() == live
    assert store.generation_names() == [live]
    assert total(store) == 1


def test_strict_build_commits_nothing(store):
    indexer.rebuild(store, [article("1")])
    live = store.current_name()
    result = indexer.rebuild(store, [article("2"), article("3")], should_commit=lambda: False)
    assert not result.committed and store.current_name() == live and total(store) == 1


def test_update_adds_and_replaces_by_id(store):
    indexer.rebuild(store, [article("1")])
    indexer.update(store, [article("1", title="园区规划", body="园区规划"), article("2")])
    assert total(store) == 1 and total(store, "园区规划") == 1


def test_a_running_engine_sees_commits_and_new_generations(store):
    indexer.rebuild(store, [article("1")])
    engine = SearchEngine(store.root, EngineOptions(reload_interval=0))
    assert engine.search(SearchRequest(q="智慧城市")).total == 1
    indexer.update(store, [article("2")])
    assert engine.search(SearchRequest(q="智慧城市")).total == 2  # cache invalidated too
    indexer.rebuild(store, [article("9")])
    assert engine.search(SearchRequest(q="智慧城市")).total == 1
    engine.close()


def test_delete_and_rollback(store):
    indexer.rebuild(store, [article("1"), article("2")])
    indexer.rebuild(store, [article("3")])
    assert indexer.delete(store, ["3", "nope"]) == ["3"]
    assert total(store) == 0
    previous = indexer.rollback(store).generation
    assert store.current_name() == previous and total(store) == 2
    with pytest.raises(IndexUnavailable, match="roll back"):
        indexer.rollback(store)


def test_parallel_rebuild_gives_the_same_index(store, tmp_path):
    words = ["园区规划", "产业集群", "专精特新", "低空经济"]
    docs = [article(str(i), title=f"智慧城市{words[i % 4]}", body=f"第{i}号 高新区智慧城市" + words[i % 3] * (i % 5 + 1))
            for i in range(150)]  # three batches of building.BATCH_ARTICLES: both workers get some
    serial = IndexStore(tmp_path / "serial")
    indexer.rebuild(serial, docs, procs=1)
    indexer.rebuild(store, docs, procs=2)
    live = store.open_current()
    # Two workers, a segment each, merged into one at the end of the build.
    assert len(TOC.read(live.storage, live.indexname).segments) == 1
    stored = {a.id: a for a in store.stored_articles()}
    assert stored == {a.id: a for a in serial.stored_articles()} and len(stored) == 150

    def answers(index_store, q):
        engine = SearchEngine(index_store.root, EngineOptions(reload_interval=0, cache_entries=0))
        try:
            results = engine.search(SearchRequest(q=q, page_size=100))
            # Partial matches that fill the page tie on score often; which tie comes first follows
            # document numbers, which differ between the builds: their scores are compared, not ids.
            return (results.total, sorted((h.id, round(h.score or 0, 6)) for h in results.hits if h.match != "partial"),
                    sorted(round(h.score or 0, 6) for h in results.hits if h.match == "partial"),
                    {name: [(v.value, v.count) for v in values] for name, values in results.facets.items()})
        finally:
            engine.close()

    for q in ["智慧城市", "园区规划", "产业集群 高新区", '"城市产业"', "专精*"]:
        assert answers(store, q) == answers(serial, q), q  # same documents, same statistics, same scores


def ids_in(store) -> set[str]:
    return {a.id for a in store.stored_articles()}


def test_delete_lands_in_a_rebuild_published_between_its_open_and_its_commit(store):
    indexer.rebuild(store, [article("1"), article("2")])
    first = store.current_name()

    def ids_while_a_rebuild_is_published():
        # delete() reads its ids with its writer open on the first generation: a rebuild
        # publishes a new generation (with the same articles) right then.
        indexer.rebuild(store, [article("1"), article("2"), article("3")])
        yield "2"

    assert indexer.delete(store, ids_while_a_rebuild_is_published()) == ["2"]
    assert store.current_name() != first
    assert ids_in(store) == {"1", "3"}  # the delete is in the published generation, not lost in the old one


def test_update_lands_in_a_rebuild_published_while_it_read(store):
    indexer.rebuild(store, [article("1")])
    first = store.current_name()

    def articles_while_a_rebuild_is_published():
        yield article("2")
        indexer.rebuild(store, [article("1"), article("9")])
        yield article("3")

    result = indexer.update(store, articles_while_a_rebuild_is_published())
    assert result.committed and result.generation != first == "g000001"
    assert ids_in(store) == {"1", "2", "3", "9"}  # the replay branch wrote both into the new generation


def test_rollback_carries_over_writes_acknowledged_since_the_newer_generation(store):
    indexer.rebuild(store, [article("1"), article("2")])
    indexer.rebuild(store, [article("1"), article("3")])
    engine = SearchEngine(store.root, EngineOptions(reload_interval=0))
    indexer.update(store, [article("4"), article("3", title="园区规划", body="园区规划")])
    assert indexer.delete(store, ["1"]) == ["1"]
    result = indexer.rollback(store)
    assert (result.generation, result.replaced, result.carried) == ("g000001", "g000002", 3)
    assert store.current_name() == "g000001"
    assert ids_in(store) == {"2", "3", "4"}  # the older build, plus every change made since g000002
    with store.open_current().searcher() as searcher:
        assert searcher.document(id="3")["title"] == "园区规划"
    assert engine.search(SearchRequest(q="园区规划")).total == 1  # a running engine moves to it
    engine.close()


def test_a_journaled_write_whose_commit_failed_is_not_carried_over(store):
    indexer.rebuild(store, [article("1"), article("5")])

    class WritesDuringTheBuild(indexer.Progress):
        def update(self, item):
            super().update(item)
            if self.articles == 1:
                # Journaled, then the commit failed (full disk, kill -9 between the two): the
                # live generation still has the old 1 and 5, and no 2.
                journal_append(store, {"1": article("1", title="新标题"), "2": article("2")})
                journal_append(store, {"5": None})
                indexer.update(store, [article("8")])  # journaled and committed

    touched = journal_since(store)
    assert set(touched) == set()
    indexer.rebuild(store, [article("1"), article("7")], progress=WritesDuringTheBuild())
    assert ids_in(store) == {"1", "7", "8"}
    with store.open_current().searcher() as searcher:
        assert searcher.document(id="1")["title"] == "智慧城市"  # the file's version, not the failed write


def test_reindex_rebuilds_the_live_articles_and_carries_over_writes_made_meanwhile(store):
    indexer.rebuild(store, [article("1"), article("2")])
    indexer.update(store, [article("api", body="接口写入的文章")])  # not in any source file

    class WriteWhileReindexing(indexer.Progress):
        def update(self, item):
            super().update(item)
            if self.articles == 1:
                indexer.update(store, [article("during")])
                indexer.delete(store, ["2"])

    result = indexer.reindex(store, progress=WriteWhileReindexing())
    assert result.committed and store.current_name() == result.generation == "g000002"
    assert ids_in(store) == {"1", "api", "during"}
    assert total(store, "接口写入") == 1


def test_rebuild_refuses_to_drop_live_articles_unless_told(store):
    indexer.rebuild(store, [article("1"), article("2")])
    indexer.update(store, [article("api")])
    with pytest.raises(indexer.WouldDropArticles) as caught:
        indexer.rebuild(store, [article("1")], drop_missing=False)
    assert caught.value.missing == ["2", "api"] and "reindex" in caught.value.message
    assert store.current_name() == "g000001" and ids_in(store) == {"1", "2", "api"}
    assert not [p for p in store.generations_dir.iterdir() if p.name != "g000001"]
    result = indexer.rebuild(store, [article("1")], drop_missing=True)
    assert result.dropped == 2 and ids_in(store) == {"1"}


# --------------------------------------------------------------------------- journal truncation and pruning


def journal_ids(store) -> set[str]:
    return set(journal_since(store))


def test_a_publish_empties_the_journal_unless_another_build_still_needs_it(store):
    indexer.rebuild(store, [article("1")])
    indexer.update(store, [article("before")])
    assert journal_ids(store) == {"before"}

    class RebuiltMeanwhile(indexer.Progress):
        def update(self, item):
            super().update(item)
            if self.articles == 1:
                indexer.update(store, [article("during")])
                # A second rebuild publishes while this one builds: the journal stays for this one.
                second = indexer.rebuild(store, [article("1"), article("before"), article("during")])
                assert second.generation == "g000003" and journal_ids(store) == {"before", "during"}
                indexer.update(store, [article("after")])

    result = indexer.rebuild(store, [article("1"), article("before")], progress=RebuiltMeanwhile())
    # Published last (its number was taken first): carries what was written since it began.
    assert result.generation == "g000002" and store.current_name() == "g000002"
    assert ids_in(store) == {"1", "before", "during", "after"}
    assert not (store.root / JOURNAL_FILE).exists()  # nobody building: emptied


def test_a_rollback_empties_the_journal_after_carrying_it_over(store):
    indexer.rebuild(store, [article("1")])
    indexer.rebuild(store, [article("1"), article("2")])
    indexer.update(store, [article("3")])
    assert journal_ids(store) == {"3"}
    assert indexer.rollback(store).carried == 1
    assert not (store.root / JOURNAL_FILE).exists() and ids_in(store) == {"1", "3"}


def cut_journal_line(store) -> None:
    with open(store.root / JOURNAL_FILE, "ab") as handle:
        handle.write(b'{"ts": 1, "gen": "g000001", "id": "cut')  # the append a crash or a full disk stopped


def test_a_journal_line_cut_short_by_a_crash_is_skipped_and_the_rest_read(store):
    indexer.rebuild(store, [article("1")])
    indexer.update(store, [article("2")])
    cut_journal_line(store)
    indexer.update(store, [article("3")])
    indexer.update(store, [article("4")])
    assert {"2", "4"} <= journal_ids(store) and "cut" not in journal_ids(store)
    indexer.rebuild(store, [article("1")])
    assert not (store.root / JOURNAL_FILE).exists()


def test_the_write_journaled_right_after_a_cut_line_is_carried_over(store):
    indexer.rebuild(store, [article("1")])
    cut_journal_line(store)

    class WriteDuringTheBuild(indexer.Progress):
        def update(self, item):
            super().update(item)
            if self.articles == 1:
                indexer.update(store, [article("3")])  # acknowledged while the rebuild runs

    indexer.rebuild(store, [article("1")], progress=WriteDuringTheBuild())
    assert ids_in(store) == {"1", "3"}


def test_prune_keeps_the_newest_and_never_the_live_one_after_a_rollback(store):
    for i in range(3):
        indexer.rebuild(store, [article(str(i))], keep=5)
    indexer.rollback(store)
    assert store.current_name() == "g000002"
    assert store.prune(1) == ["g000001"]  # g000002 is live, g000003 the newest: both stay
    assert store.generation_names() == ["g000002", "g000003"] and ids_in(store) == {"1"}


def test_building_folders_of_dead_builders_go_and_of_live_ones_stay(store):
    indexer.rebuild(store, [article("1")])
    dead = store.generations_dir / f"{BUILDING_PREFIX}g000050"
    alive = store.generations_dir / f"{BUILDING_PREFIX}g000051"
    for path, pid in ((dead, 2 ** 22 + 1), (alive, os.getpid())):  # above pid_max: no such process
        path.mkdir()
        (path / BUILDER_PID_FILE).write_text(str(pid), encoding="utf-8")
    assert store.remove_abandoned_builds() == [dead.name]
    assert alive.is_dir() and store.generation_names() == ["g000001"]  # never taken for a generation
    indexer.update(store, [article("2")])
    indexer.rebuild(store, [article("1"), article("2")])
    assert (store.root / JOURNAL_FILE).exists()  # a live builder may still need it
    assert store.current_name() == "g000052"  # numbers taken by building folders are skipped


def test_opening_the_index_while_commits_replace_its_table_of_contents(tmp_path, jieba_cache):
    # Each commit deletes the table of contents before it; opening lists the newest and then
    # reads it, so without a retry an open racing a commit failed (a write answered
    # "nothing written", a snapshot refresh failed) about once a second under steady writes.
    racing = IndexStore(tmp_path / "racing")
    indexer.rebuild(racing, [article("0")])
    stop = threading.Event()

    def commit_in_a_loop() -> None:
        while not stop.is_set():
            indexer.open_writer(racing.current_path()).commit()

    committer = threading.Thread(target=commit_in_a_loop)
    committer.start()
    opened = 0
    try:
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            racing.open_current()
            opened += 1
    finally:
        stop.set()
        committer.join()
    assert opened > 100
