"""Merges off the write path: the policy, a merge racing real commits, a merge on a full disk, cleanup."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time

import pytest

from search_service.article import Article
from search_service.engine import indexer, merging
from search_service.engine.backend import segments as backend_segments
from search_service.engine.backend.index import SegmentInfo, latest_segments
from search_service.engine.request import SearchRequest
from search_service.engine.searcher import EngineOptions, SearchEngine
from search_service.engine.store import IndexStore

pytestmark = pytest.mark.processes  # servers, CLI runs or merge processes


def article(doc_id: str, body: str = "高新区智慧城市建设") -> Article:
    return Article(doc_id, f"智慧城市{doc_id}", body, "智慧城市案例")


@pytest.fixture()
def store(tmp_path, jieba_cache) -> IndexStore:
    store = IndexStore(tmp_path / "index")
    indexer.rebuild(store, [article(f"base{i}") for i in range(20)])
    for i in range(merging.MERGE_FACTOR):  # one small segment per commit
        indexer.update(store, [article(f"small{i}")])
    return store


def segments(store) -> list:
    return latest_segments(store.current_path())


def listing(path) -> list[str]:
    """The folder's files, but the merge lock file (it stays, as lock files do)."""
    return sorted(n for n in os.listdir(path) if n != merging.MERGE_LOCK_FILE)


def total(store, q="智慧城市") -> int:
    engine = SearchEngine(store.root, EngineOptions(reload_interval=0, cache_entries=0))
    try:
        return engine.search(SearchRequest(q=q)).total
    finally:
        engine.close()


def test_commits_no_longer_merge_and_the_policy_picks_same_sized_segments(store):
    before = segments(store)
    assert len(before) == 1 + merging.MERGE_FACTOR  # update() committed without merging
    chosen = merging.choose_segments(before)
    assert len(chosen) == merging.MERGE_FACTOR and all(s.doc_count == 1 for s in chosen)
    assert merging.needs_merge(store.current_path())
    assert merging.choose_segments(before[:3]) == []
    assert len(merging.choose_segments(before[:2], everything=True)) == 2


def test_merge_keeps_every_document_and_the_deletions_committed_while_it_ran(store):
    path = store.current_path()
    before = segments(store)
    chosen = merging.choose_segments(before)
    staging = path / ".merge-test"
    staging.mkdir()
    prepared = backend_segments.prepare_merge([s.id for s in chosen], path, staging)
    # While the merged segment sits in staging, real commits replace one merged article,
    # delete another and add a new one (the server keeps writing during a merge).
    indexer.update(store, [article("small0", body="园区规划")])
    indexer.update(store, [article("late")])
    assert indexer.delete(store, ["small1"]) == ["small1"]
    assert staging.is_dir()  # the cleanup of those commits left the staging folder alone
    commit = prepared.swap(5)
    after = segments(store)
    assert commit == IndexStore(store.root).open_current().latest_generation()
    assert len(after) == len(before) - len(chosen) + 1 + 2  # merged + the two new commits
    assert total(store) == 20 + merging.MERGE_FACTOR - 1 + 1  # small1 gone, late added
    assert total(store, "园区规划") == 1  # small0 replaced: its old copy (merged) is deleted
    assert total(store, "高新区") == 20 + merging.MERGE_FACTOR - 2 + 1
    assert store.stored_article("small1") is None and store.stored_article("late") is not None
    assert store.stored_article("small0").body == "园区规划"


def test_merge_runs_as_a_child_and_optimize_merges_everything(store):
    done = subprocess.run([sys.executable, "-m", "search_service.engine.merging", str(store.current_path())],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # It ran below the server's priority: searches and writes come first for the CPU.
    assert json.loads(done.stdout)["niceness"] == min(19, os.nice(0) + merging.MERGE_NICENESS)
    assert len(segments(store)) == 2 and total(store) == 20 + merging.MERGE_FACTOR
    result = merging.merge(store.current_path(), everything=True)
    assert result is not None and result.merged_segments == 2 and len(segments(store)) == 1
    assert total(store) == 20 + merging.MERGE_FACTOR
    assert merging.merge(store.current_path(), everything=True) is None  # nothing left to do


def test_a_merge_on_a_full_disk_leaves_nothing_behind_and_succeeds_when_space_is_back(store):
    path = store.current_path()
    before = listing(path)

    def full_disk():  # every file the merge writes is cut at 2 KB, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))

    done = subprocess.run([sys.executable, "-m", "search_service.engine.merging", str(path)], capture_output=True,
                          text=True, timeout=120, preexec_fn=full_disk)
    assert done.returncode == 1 and "merge failed" in done.stderr and "EFBIG" in done.stderr
    assert listing(path) == before  # no staging folder, no *.tmp, no partial segment
    assert total(store) == 20 + merging.MERGE_FACTOR
    indexer.update(store, [article("after")])  # writes still work
    assert merging.merge(path) is not None and total(store) == 21 + merging.MERGE_FACTOR


def test_stale_files_of_killed_writes_and_merges_are_cleaned(store):
    path = store.current_path()
    before = listing(path)
    (path / ".merge-dead").mkdir()
    (path / ".merge-dead" / "MAIN_x.seg").write_bytes(b"x")
    (path / "MAIN.tmp").mkdir()
    (path / "MAIN.tmp" / "abc.run").write_bytes(b"x")
    (path / "abcd.ctmp").write_bytes(b"x")
    (path / "_MAIN_99.toc.1700000000.5").write_bytes(b"x")
    (path / "MAIN_zzzzzzzz.trm").write_bytes(b"partial")
    removed = merging.clean_stale_files(path)
    assert sorted(removed) == sorted([".merge-dead", "MAIN.tmp", "abcd.ctmp", "_MAIN_99.toc.1700000000.5",
                                      "MAIN_zzzzzzzz.trm"])
    assert listing(path) == before
    assert total(store) == 20 + merging.MERGE_FACTOR


def test_cleanup_leaves_a_writer_in_progress_alone(store):
    ix = store.open_current()
    writer = ix.writer()
    try:
        (store.current_path() / "abcd.ctmp").write_bytes(b"x")
        assert merging.clean_stale_files(store.current_path()) == []  # write lock held: not touched
    finally:
        writer.cancel()
    removed = merging.clean_stale_files(store.current_path())
    # Whoosh's cancel() leaves the cancelled segment's empty files: they go too.
    assert "abcd.ctmp" in removed and all(n.startswith(writer.newsegment.segment_id()) for n in removed
                                          if n != "abcd.ctmp")
    assert total(store) == 20 + merging.MERGE_FACTOR


def test_a_full_builds_large_segments_are_left_to_optimize():
    """The policy merges the write path's small segments, never a build's large ones on its own."""

    def sized(docs: int, n: int) -> SegmentInfo:
        return SegmentInfo(f"s{n}-{docs}", docs, 0)

    large = merging.MERGE_FACTOR ** merging.MAX_AUTO_MERGE_LEVEL
    build = [sized(large + i, i) for i in range(19)]  # a 42,000-article build's segments, had it not merged them
    assert merging.choose_segments(build) == []
    assert len(merging.choose_segments(build, everything=True)) == 19
    small = [sized(3, i) for i in range(merging.MERGE_FACTOR)]
    assert merging.choose_segments(build + small) == small
    just_below = [sized(large - 1, i) for i in range(merging.MERGE_FACTOR)]
    assert merging.choose_segments(build + just_below) == just_below


def test_merges_run_at_normal_priority_once_writes_outrun_them(store):
    assert merging.merge_niceness(store.current_path()) == merging.MERGE_NICENESS
    while len(segments(store)) < merging.MERGE_BACKLOG_SEGMENTS:
        indexer.update(store, [article(f"more{len(segments(store))}")])
    assert merging.merge_niceness(store.current_path()) == 0
    done = subprocess.run([sys.executable, "-m", "search_service.engine.merging", str(store.current_path()),
                           "--niceness", "0"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["niceness"] == os.nice(0)


def _wait_for_merges(merger: merging.BackgroundMerger, count: int) -> None:
    deadline = time.monotonic() + 60
    while merger.merges < count or merger.running:
        assert time.monotonic() < deadline and not merger.failures, merger.last_error
        time.sleep(0.05)


def test_the_background_merger_keeps_one_merge_process_between_merges(store):
    merger = merging.BackgroundMerger(store)
    try:
        assert merger.poke()
        _wait_for_merges(merger, 1)
        process = merger._process
        assert process is not None and process.alive
        for i in range(merging.MERGE_FACTOR):  # another level-0 class to merge
            indexer.update(store, [article(f"again{i}")])
        assert merger.poke()
        _wait_for_merges(merger, 2)
        assert merger._process is process and process.alive  # the same child: no new interpreter
        process.stop(signal.SIGKILL)  # a child that died between merges is replaced, not a failure
        process.process.wait(10)
        for i in range(merging.MERGE_FACTOR):
            indexer.update(store, [article(f"third{i}")])
        assert merger.poke()
        _wait_for_merges(merger, 3)
        assert merger._process is not process and merger.failures == 0
        assert total(store) == 20 + 3 * merging.MERGE_FACTOR
    finally:
        merger.close()
    assert not process.alive and (merger._process is None)


def test_the_merge_process_exits_when_the_server_goes(store):
    child = subprocess.Popen([sys.executable, "-m", "search_service.engine.merging", "--serve"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
    assert child.stdin is not None and child.stdout is not None
    staging = ".merge-kept"
    child.stdin.write((json.dumps({"generation": str(store.current_path()), "staging": staging}) + "\n").encode())
    child.stdin.flush()
    answer = json.loads(child.stdout.readline())
    assert answer["report"]["merged_segments"] == merging.MERGE_FACTOR
    child.stdin.write(b'{"generation": "/nonexistent", "staging": ".merge-x"}\n')
    child.stdin.flush()
    assert "error" in json.loads(child.stdout.readline())  # reported, and the child stays up
    child.stdin.close()  # what a killed server leaves: its end of the pipe closed
    assert child.wait(30) == 0
    child.stdout.close()
    assert not (store.current_path() / staging).exists()


def test_a_merge_process_whose_server_died_mid_merge_exits_quietly(store):
    # kill -9 of a worker during a merge: the child finished the merge and printed a BrokenPipeError
    # traceback into the service's log when it answered.
    child = subprocess.Popen([sys.executable, "-m", "search_service.engine.merging", "--serve"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    child.stdin.write((json.dumps({"generation": str(store.current_path()), "staging": ".merge-orphan"})
                       + "\n").encode())
    child.stdin.flush()
    child.stdout.close()  # the server is gone before the answer: nobody reads it
    child.stdin.close()
    assert child.wait(60) == 0
    errors = child.stderr.read().decode()
    child.stderr.close()
    assert "Traceback" not in errors and "BrokenPipe" not in errors, errors
    assert total(store) == 20 + merging.MERGE_FACTOR  # the merge itself still counts
