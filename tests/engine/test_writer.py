"""The writer thread below the web layer: the queue, batches, answers, stop, the journal, and the write lock."""

from __future__ import annotations

import threading
import time

import pytest

from search_service.article import Article
from search_service.cli import main
from search_service.engine import indexer, merging
from search_service.engine.request import SearchRequest
from search_service.engine.searcher import EngineOptions, SearchEngine
from search_service.engine.store import IndexStore, article_digest, committed_changes, journal_since, publish_lock
from search_service.engine.writer import IndexWriterThread
from search_service.errors import SearchError, WriteFailed

from ..helpers import cli_env


@pytest.fixture()
def store(tmp_path, jieba_cache) -> IndexStore:
    store = IndexStore(tmp_path / "index")
    indexer.rebuild(store, [Article("seed", "种子文章", "园区规划")])
    return store


@pytest.fixture()
def writer(store):
    engine = SearchEngine(store.root, EngineOptions(reload_interval=0))
    writer = IndexWriterThread(store, engine, commit_delay=0).start()
    yield writer
    writer.close()
    engine.close()


def test_the_journal_takes_any_string_the_index_takes(store, writer):
    # A lone surrogate (validation rejects it at the API; here it is built below that layer)
    # made the old journal fail *after* the commit, and the client was told nothing was written.
    odd = Article("odd", "智慧城市", "智慧城市建设", url="https://example.org/x\ud83d")
    result = writer.submit(upserts=[odd])
    assert result.visible and result.to_json()["status"] == "committed"
    touched = journal_since(store)
    assert touched == {"odd": {article_digest(odd)}}
    # What the journal recorded is what the index holds: a rollback or rebuild carries it over.
    assert committed_changes(store.open_current(), touched) == {"odd": odd}


def test_a_write_that_fails_before_its_commit_journals_nothing_it_did_not_commit(store, writer):
    with pytest.raises(WriteFailed):
        # A category the index's column cannot encode fails while the document is added.
        writer.submit(upserts=[Article("bad", "标题", "正文", category="分类\ud800")])
    assert "bad" not in journal_since(store)
    with store.open_current().searcher() as searcher:
        assert searcher.document(id="bad") is None
    assert writer.submit(upserts=[Article("good", "标题", "正文")]).visible  # the writer goes on


def test_the_first_write_of_a_server_without_an_index_creates_one(tmp_path, jieba_cache):
    store = IndexStore(tmp_path / "empty")
    engine = SearchEngine(store.root, EngineOptions(reload_interval=0))
    writer = IndexWriterThread(store, engine, commit_delay=0).start()
    try:
        result = writer.submit(upserts=[Article("first", "第一篇", "正文")])
        assert result.generation == "g000001" and store.current_name() == "g000001"
    finally:
        writer.close()
        engine.close()


# --------------------------------------------------------------------------- the thread: queue, batches, answers, stop


def wait_until(condition, what: str, timeout: float = 10.0) -> None:
    """Poll ``condition`` (a cheap check) until it holds; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def in_thread(call) -> tuple[dict, threading.Thread]:
    """Run ``call`` in a thread; the dict gets its ``result`` or ``error``."""
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = call()
        except Exception as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return outcome, thread


def queue_in_order(writer, changes: list[dict]) -> list[tuple[dict, threading.Thread]]:
    """Submit each change from its own thread, each queued before the next is sent."""
    waiting = []
    for i, change in enumerate(changes, start=1):
        waiting.append(in_thread(lambda change=change: writer.submit(**change)))
        wait_until(lambda i=i: writer.depth == i, f"change {i} to be queued")
    return waiting


def answers(waiting) -> list:
    for _, thread in waiting:
        thread.join(30)
    assert all("result" in outcome for outcome, _ in waiting), [o.get("error") for o, _ in waiting]
    return [outcome["result"] for outcome, _ in waiting]


@pytest.fixture()
def engine(store):
    # Never reloads by itself: what a search sees after a write is what the writer refreshed.
    engine = SearchEngine(store.root, EngineOptions(reload_interval=3600, cache_entries=0))
    yield engine
    engine.close()


def ids_in(store) -> list[str]:
    return sorted(a.id for a in store.stored_articles())


def test_an_acknowledged_write_is_searchable_on_return(store, engine):
    writer = IndexWriterThread(store, engine, commit_delay=0).start()
    try:
        assert engine.search(SearchRequest(q="智慧城市")).total == 0
        result = writer.submit(upserts=[Article("new", "智慧城市", "智慧城市建设")])
        assert (result.upserted, result.visible, result.batch_size) == (["new"], True, 1)
        assert result.commit == engine.snapshot().toc_generation and result.generation == store.current_name()
        assert [h.id for h in engine.search(SearchRequest(q="智慧城市")).hits] == ["new"]
    finally:
        writer.close()


def test_what_is_queued_is_committed_in_one_batch_and_the_last_change_to_an_id_wins(store, engine):
    writer = IndexWriterThread(store, engine, commit_delay=5.0)  # not started: the changes queue up
    try:
        waiting = queue_in_order(writer, [
            {"upserts": [Article("x", "第一版", "园区规划")]},
            {"upserts": [Article("x", "第二版", "园区规划"), Article("y", "新文章", "园区规划")]},
            {"deletes": ["y", "nobody"]},
            {"deletes": ["seed"]},
        ])
        writer.start()
        results = answers(waiting)
    finally:
        writer.close()
    assert {r.commit for r in results} == {results[0].commit} and [r.batch_size for r in results] == [4] * 4
    assert ids_in(store) == ["x"]  # y added then deleted in the same batch; seed deleted
    with store.open_current().searcher() as searcher:
        assert searcher.document(id="x")["title"] == "第二版"
    # Each request is told what happened to its own ids (as they were before the batch).
    assert (results[2].deleted, results[2].missing) == ([], ["y", "nobody"])
    assert results[3].deleted == ["seed"]
    assert journal_since(store).keys() == {"x", "y", "nobody", "seed"}


def test_a_full_queue_is_refused_at_once_and_the_queued_writes_still_land(store, engine):
    writer = IndexWriterThread(store, engine, commit_delay=0, max_pending=2)
    try:
        waiting = queue_in_order(writer, [{"upserts": [Article("a", "甲", "正文")]},
                                          {"upserts": [Article("b", "乙", "正文")]}])
        with pytest.raises(SearchError) as caught:
            writer.submit(upserts=[Article("c", "丙", "正文")])
        assert (caught.value.code, caught.value.status) == ("write_queue_full", 503)
        assert "write_queue_max" in caught.value.message
        writer.start()
        answers(waiting)
    finally:
        writer.close()
    assert ids_in(store) == ["a", "b", "seed"]


def test_close_answers_every_queued_write_then_refuses_more(store, engine):
    writer = IndexWriterThread(store, engine, commit_delay=0).start()
    with publish_lock(store, shared=False):  # the writer's first commit waits for this
        first = in_thread(lambda: writer.submit(upserts=[Article("one", "一", "正文")]))
        wait_until(lambda: writer.depth == 0, "the writer to take the first change")
        second = in_thread(lambda: writer.submit(deletes=["seed"]))
        wait_until(lambda: writer.depth == 1, "the second change to be queued")
        closing = in_thread(writer.close)
        wait_until(lambda: not writer._accepting, "close() to stop taking writes")
        with pytest.raises(SearchError) as caught:
            writer.submit(upserts=[Article("late", "晚", "正文")])
        assert caught.value.code == "write_queue_full" and "shutting down" in caught.value.message
    results = answers([first, second])
    closing[1].join(30)
    assert "error" not in closing[0] and not writer._thread.is_alive()
    assert results[1].deleted == ["seed"] and ids_in(store) == ["one"]


def test_the_docnum_shortcut_deletes_the_right_documents_after_a_merge(store, engine):
    # The writer deletes replaced articles by the document numbers of the engine's snapshot. A merge
    # renumbers documents; a lookup on the snapshot before it would delete the wrong articles.
    writer = IndexWriterThread(store, engine, commit_delay=0).start()
    try:
        for i in range(4):  # a segment per commit; fewer than merging.MERGE_FACTOR, so no background merge
            writer.submit(upserts=[Article(f"s{i}", f"第{i}篇", "智慧城市建设")])
        assert writer.submit(deletes=["s0"]).deleted == ["s0"]
        assert engine.search(SearchRequest(q="智慧城市")).total == 3  # the engine holds the commit before the merge
        # The merge drops the deleted s0: every later article moves down one document number.
        result = merging.merge(store.current_path(), everything=True)
        assert result is not None and result.merged_segments == 5
        answer = writer.submit(upserts=[Article("s2", "第2篇改", "智慧城市升级")], deletes=["s3", "seed"])
    finally:
        writer.close()
    assert answer.deleted == ["s3", "seed"] and answer.missing == []
    expected = ["s1", "s2"]
    assert ids_in(store) == expected  # no other article lost, no duplicate of s2
    with store.open_current().searcher() as searcher:
        assert searcher.document(id="s2")["title"] == "第2篇改"
    assert engine.search(SearchRequest(q="智慧城市")).total == len(expected)


def test_a_cli_run_holding_the_write_lock_makes_server_writes_busy_not_lost(store, engine):
    writer = IndexWriterThread(store, engine, commit_delay=0, lock_timeout=0.3).start()
    try:
        cli_writer = store.open_current().writer()  # what `search-service index FILE` holds while it reads
        try:
            with pytest.raises(SearchError) as caught:
                writer.submit(upserts=[Article("api", "接口", "正文")])
            assert (caught.value.code, caught.value.status) == ("index_busy", 503)
            assert "retry" in caught.value.message
        finally:
            cli_writer.cancel()
        assert "api" not in journal_since(store) and ids_in(store) == ["seed"]
        assert writer.submit(upserts=[Article("api", "接口", "正文")]).visible  # the lock is free again
    finally:
        writer.close()
    assert ids_in(store) == ["api", "seed"]


def test_the_cli_waits_for_a_running_servers_write_lock_then_says_busy(store, jieba_cache, tmp_path, monkeypatch,
                                                                      capsys):
    source = tmp_path / "more.jsonl"
    source.write_text('{"id": "cli", "title": "命令行", "body": "正文"}\n', encoding="utf-8")
    for name, value in cli_env(store.root, jieba_cache).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SEARCH_SERVICE_LOCK_TIMEOUT", "0.5")
    monkeypatch.chdir(tmp_path)  # no config.toml
    # The server's writer in the middle of a commit (Whoosh's lock is a file lock: another
    # process or another open of it in this one, the CLI meets the same lock).
    server_writer = store.open_current().writer()
    try:
        for args in (["index", str(source)], ["delete", "seed"]):
            assert main(args) == 2, args  # an error, not rejected input (1)
            err = capsys.readouterr().err
            assert "Another process is writing to the index" in err and "Traceback" not in err
    finally:
        server_writer.cancel()
    assert ids_in(store) == ["seed"] and "cli" not in journal_since(store)
    assert main(["index", str(source)]) == 0
    assert ids_in(store) == ["cli", "seed"]
