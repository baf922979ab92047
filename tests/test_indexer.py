"""Index generations: atomic publish, failed builds, add/replace/delete, rollback, strict mode."""

from __future__ import annotations

import pytest

from search_service import indexer
from search_service.article import Article
from search_service.errors import IndexUnavailable
from search_service.query import SearchRequest
from search_service.searcher import EngineOptions, SearchEngine


def article(doc_id: str, title: str = "智慧城市", body: str = "高新区智慧城市建设") -> Article:
    return Article(doc_id, title, body, "智慧城市案例")


@pytest.fixture()
def store(tmp_path, jieba_cache) -> indexer.IndexStore:
    return indexer.IndexStore(tmp_path / "index")


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
    previous = store.rollback()
    assert store.current_name() == previous and total(store) == 2
    with pytest.raises(IndexUnavailable, match="roll back"):
        store.rollback()


def test_parallel_rebuild_gives_the_same_index(store):
    docs = [article(str(i), body=f"第{i}号 高新区智慧城市") for i in range(60)]
    indexer.rebuild(store, docs, procs=2)
    assert total(store) == 60
