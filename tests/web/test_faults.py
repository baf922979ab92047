"""Faults survived for real: subprocess servers and CLI builds killed with SIGKILL, writes under load."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from ..helpers import TOKEN, cli, cli_env, free_port, run_cli, write_corpus
from ..http_json import get_json, send_json

pytestmark = pytest.mark.processes  # servers, CLI runs or merge processes


class Server:
    """``search-service serve`` in a subprocess on a free loopback port."""

    def __init__(self, env: dict, preexec_fn=None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # stderr to a file, never an undrained pipe: a full pipe would block the server's logging.
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "search_service.cli", "serve", "--port", str(self.port), "--threads", "8"],
            env=env, stdout=subprocess.DEVNULL, stderr=self.log, preexec_fn=preexec_fn)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1)
                return
            except urllib.error.HTTPError:
                return  # answering (503 without an index is fine)
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.log.seek(0)
                    raise RuntimeError(self.log.read().decode(errors="replace")) from None
                time.sleep(0.1)

    def get(self, path: str, **params) -> tuple[int, dict]:
        return get_json(self.url, path, params, timeout=10)  # a new connection each time

    def send(self, method: str, path: str, payload) -> tuple[int, dict]:
        return send_json(self.url, method, path, payload, token=TOKEN, timeout=30)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture()
def env(tmp_path, jieba_cache) -> dict:
    return cli_env(tmp_path / "index", jieba_cache)


def test_searches_never_fail_during_writes_and_a_rebuild(tmp_path, env):
    first = write_corpus(tmp_path / "a.jsonl", 300)
    run_cli(env, "index", "--rebuild", str(first))
    server = Server(env)
    errors: list[str] = []
    stop = threading.Event()
    searches = [0]

    def search_loop():
        while not stop.is_set():
            try:
                status, body = server.get("/api/search", q="智慧城市")
            except OSError as exc:
                errors.append(repr(exc))
                continue
            searches[0] += 1
            if status != 200:
                errors.append(f"{status} {body}")

    def post_batch(batch: int) -> None:
        docs = [{"id": f"w{batch}-{i}", "title": "园区规划", "body": "智慧城市与园区规划"} for i in range(20)]
        status, body = server.send("POST", "/api/documents", docs)
        assert status == 200, body

    threads = [threading.Thread(target=search_loop) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        for batch in range(3):  # before the rebuild: replaced by it, as a rebuild from files means
            post_batch(batch)
        second = write_corpus(tmp_path / "b.jsonl", 2000, prefix="new")
        rebuild = cli(env, "index", "--rebuild", "--drop-missing", str(second))
        generations = tmp_path / "index" / "generations"
        deadline = time.monotonic() + 60
        while not any(p.name.startswith(".building-") for p in generations.iterdir()):
            assert time.monotonic() < deadline and rebuild.poll() is None
            time.sleep(0.05)
        during = 0
        while rebuild.poll() is None and during < 5:  # while it builds: replayed into it
            post_batch(100 + during)
            during += 1
        _, stderr = rebuild.communicate(timeout=300)
        assert rebuild.returncode == 0, stderr.decode()
        expected = 2000 + 20 * during
        deadline = time.monotonic() + 10
        while server.get("/api/search", q="智慧城市")[1]["total"] != expected:
            assert time.monotonic() < deadline, "the server did not move to the new generation"
            time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        server.stop()
    assert during > 0 and errors == [] and searches[0] > 20


def test_kill_9_of_the_server_mid_batch_loses_no_acknowledged_write(tmp_path, env):
    run_cli(env, "index", "--rebuild", str(write_corpus(tmp_path / "a.jsonl", 50)))
    server = Server(env)
    acknowledged: list[list[str]] = []
    attempted: list[list[str]] = []
    stop = threading.Event()

    def writer(worker: int):
        batch = 0
        while not stop.is_set():
            ids = [f"k{worker}-{batch}-{i}" for i in range(10)]
            attempted.append(ids)
            try:
                status, _ = server.send("POST", "/api/documents",
                                        [{"id": i, "title": "批次", "body": "杀进程测试" * 50} for i in ids])
            except (OSError, http.client.HTTPException):  # killed mid-answer: the body is cut short
                return
            if status == 200:
                acknowledged.append(ids)
            batch += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 5:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    server.kill()
    stop.set()
    for thread in threads:
        thread.join()
    server.stop()

    server = Server(env)
    try:
        assert server.get("/healthz")[0] == 200
        for ids in acknowledged:
            for doc_id in ids:
                assert server.get(f"/api/documents/{doc_id}")[0] == 200, doc_id
        for ids in attempted:  # a batch is all there or not at all
            present = {server.get(f"/api/documents/{doc_id}")[0] for doc_id in ids}
            assert len(present) == 1, ids
    finally:
        server.stop()


def test_kill_9_of_a_rebuild_keeps_the_old_generation(tmp_path, env):
    run_cli(env, "index", "--rebuild", str(write_corpus(tmp_path / "a.jsonl", 30)))
    live = (tmp_path / "index" / "CURRENT").read_text().strip()
    big = write_corpus(tmp_path / "big.jsonl", 4000, prefix="big")
    # --drop-missing: the 30 live articles are not in the new files (refused before building otherwise).
    build = cli(env, "index", "--rebuild", "--drop-missing", str(big), start_new_session=True)
    building = tmp_path / "index" / "generations"
    deadline = time.monotonic() + 30
    while not any(p.name.startswith(".building-") for p in building.iterdir()):
        assert build.poll() is None, build.communicate()  # the build must still be running
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.0)
    os.killpg(build.pid, signal.SIGKILL)  # the CLI and its worker processes
    build.communicate(timeout=10)
    assert (tmp_path / "index" / "CURRENT").read_text().strip() == live
    server = Server(env)
    try:
        assert server.get("/api/search", q="智慧城市")[1]["total"] == 30
    finally:
        server.stop()
    small = write_corpus(tmp_path / "c.jsonl", 40, prefix="c")
    run_cli(env, "index", "--rebuild", "--drop-missing", str(small))
    names = [p.name for p in building.iterdir()]
    assert not [n for n in names if n.startswith(".building-")]  # the abandoned build was removed


def test_a_failing_write_keeps_the_previous_state(tmp_path, env):
    run_cli(env, "index", "--rebuild", str(write_corpus(tmp_path / "a.jsonl", 20)))
    # Run the server with a file-size limit: the next segment it writes cannot be written,
    # as on a full disk. (Permissions cannot simulate this: the tests may run as root.)
    import resource

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))

    server = Server(env, preexec_fn=limit_file_size)
    try:
        # ~360 KB of stored text: over the file-size limit once written, yet small enough
        # (< 512 KB) that waitress keeps the request body in memory instead of a temp file.
        # Incompressible text (Whoosh compresses stored fields): pseudo-random ideographs.
        import random

        rng = random.Random(7)
        docs = [{"id": f"big{i}", "title": "大批量",
                 "body": "".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(4000))} for i in range(30)]
        status, body = server.send("POST", "/api/documents", docs)
        assert status == 503 and body["error"]["code"] == "write_failed"
        assert "previous state is still served" in body["error"]["message"]
        assert server.get("/api/search", q="智慧城市")[1]["total"] == 20
        assert server.get("/api/documents/big0")[0] == 404
        small = server.send("PUT", "/api/documents/tiny", {"title": "小文章", "body": "智慧城市"})
        assert small[0] == 200  # the writer survived and writes again
    finally:
        server.stop()


def test_sigterm_finishes_and_stops_cleanly(tmp_path, env):
    run_cli(env, "index", "--rebuild", str(write_corpus(tmp_path / "a.jsonl", 10)))
    server = Server(env)
    status, _ = server.send("PUT", "/api/documents/late", {"title": "最后一篇", "body": "智慧城市"})
    assert status == 200
    server.process.terminate()
    assert server.process.wait(30) == 0
    server.stop()
    server = Server(env)
    try:
        assert server.get("/api/documents/late")[0] == 200
    finally:
        server.stop()


def file_size_limit(limit: int):
    """A preexec_fn: every file the process writes is cut at ``limit`` bytes, as on a full disk."""
    import resource

    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def metric(server: Server, name: str) -> float:
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_a_journal_that_cannot_be_written_means_nothing_was_written(tmp_path, env):
    run_cli(env, "index", "--rebuild", str(write_corpus(tmp_path / "a.jsonl", 20)))
    journal = tmp_path / "index" / "journal.jsonl"
    limit = 256 * 1024
    journal.write_bytes(b"\n" * limit)  # at the file-size limit: the next append fails (EFBIG)
    server = Server(env, preexec_fn=file_size_limit(limit))
    try:
        status, body = server.send("PUT", "/api/documents/j1", {"title": "日志", "body": "智慧城市 日志写不进"})
        assert status == 503 and body["error"]["code"] == "write_failed"
        assert "journal" in body["error"]["message"] and "nothing" in body["error"]["message"]
        assert server.get("/api/documents/j1")[0] == 404  # the answer was the truth
        assert server.get("/api/search", q="智慧城市")[1]["total"] == 20
        journal.write_bytes(b"")  # space is back
        status, body = server.send("PUT", "/api/documents/j1", {"title": "日志", "body": "智慧城市 日志写不进"})
        assert status == 200 and body["status"] == "committed"
        assert server.get("/api/documents/j1")[0] == 200
    finally:
        server.stop()


def test_a_commit_that_fails_after_its_table_of_contents_is_acknowledged_as_committed(tmp_path, env):
    run_cli(env, "index", "--rebuild", str(write_corpus(tmp_path / "a.jsonl", 20)))
    server = Server(env)
    try:
        live = tmp_path / "index" / "generations" / (tmp_path / "index" / "CURRENT").read_text().strip()
        # Whoosh removes its temporary folder (MAIN.tmp) after writing the table of contents;
        # a folder inside it makes that fail: the commit is on disk, then Whoosh raises.
        (live / "MAIN.tmp" / "blocker").mkdir(parents=True)
        for attempt in range(2):  # the second proves the write lock was released
            status, body = server.send("PUT", f"/api/documents/t{attempt}", {"title": "目录", "body": "智慧城市"})
            assert status == 200 and body["status"] == "committed", body
            assert server.get(f"/api/documents/t{attempt}")[0] == 200
    finally:
        server.stop()
    server = Server(env)  # the leftover is removed at start, with no manual cleanup
    try:
        assert not (live / "MAIN.tmp").exists()
        assert server.get("/api/search", q="智慧城市")[1]["total"] == 22
    finally:
        server.stop()


def _sent_write(port: int, path: str, payload) -> http.client.HTTPConnection:
    """A connection that has sent a PUT of ``payload`` to ``path`` whole, its answer not yet read."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("PUT", path, body=json.dumps(payload, ensure_ascii=False).encode(),
                       headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    return connection


def _answer(connection: http.client.HTTPConnection) -> tuple[int, dict]:
    """(status, JSON body) of the answer to what ``connection`` sent."""
    try:
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def _in_threads(calls) -> tuple[list, list[threading.Thread]]:
    results: list = []

    def run(call):
        try:
            results.append(call())
        except Exception as exc:  # noqa: BLE001 - the test reports it
            results.append(repr(exc))

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    return results, threads


def test_sigterm_answers_searches_in_flight_and_queued_writes(tmp_path, env):
    from search_service.engine.store import IndexStore, publish_lock

    run_cli(env, "index", "--rebuild", str(write_corpus(tmp_path / "a.jsonl", 200)))
    server = Server(env)  # 8 threads
    store = IndexStore(tmp_path / "index")
    try:
        # Holding the publish lock stalls the server's writer inside its commit: the writes
        # pile up in its queue, holding all 8 request threads, and the searches sent after
        # them wait in waitress' task queue, which waitress' own stop would cancel.
        with publish_lock(store, shared=False):
            writes, write_threads = _in_threads(
                [lambda i=i: server.send("PUT", f"/api/documents/q{i}", {"title": "排队", "body": "智慧城市 排队"})
                 for i in range(8)])
            time.sleep(1.0)
            searches, search_threads = _in_threads(
                [lambda i=i: server.get("/api/search", q=f"智慧城市 {i}") for i in range(12)])
            time.sleep(1.0)
            server.process.terminate()
            time.sleep(1.0)
            with pytest.raises(OSError):  # no new connections once the signal arrived
                urllib.request.urlopen(server.url + "/healthz", timeout=2)
        for thread in write_threads + search_threads:
            thread.join(60)
        assert server.process.wait(60) == 0
    finally:
        server.stop()
    assert [r[0] for r in writes] == [200] * 8, writes
    assert [r[0] for r in searches] == [200] * 12, searches
    server = Server(env)
    try:
        assert server.get("/api/search", q="排队")[1]["total"] == 8
    finally:
        server.stop()


def _random_body(rng, chars: int) -> str:
    # Incompressible text: pseudo-random ideographs (each a new bigram, so segments grow fast).
    return "".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(chars))


def test_merges_run_in_the_background_and_a_failed_merge_cleans_up_and_recovers(tmp_path, env):
    import random

    from search_service.engine import merging

    run_cli(env, "index", "--rebuild", str(write_corpus(tmp_path / "a.jsonl", 5)))
    live = tmp_path / "index" / "generations" / "g000001"
    rng = random.Random(11)
    # Each single-article commit writes a ~0.2 MB segment; a merge of seven writes a posting
    # file of ~0.5 MB, over the limit: the merge fails as on a full disk, the writes do not.
    server = Server(env, preexec_fn=file_size_limit(384 * 1024))
    try:
        for i in range(merging.MERGE_FACTOR + 1):
            status, body = server.send("PUT", f"/api/documents/m{i}", {"title": "合并", "body": _random_body(rng, 500)})
            assert status == 200, body
        deadline = time.monotonic() + 120
        while metric(server, "search_service_merge_failures_total") < 1:
            assert time.monotonic() < deadline, "the merge did not fail"
            time.sleep(0.2)
        assert metric(server, "search_service_merge_failing") == 1
        assert not list(live.glob(".merge-*")) and not list(live.glob("*.tmp"))
        status, _ = server.send("PUT", "/api/documents/after", {"title": "之后", "body": "智慧城市 失败之后"})
        assert status == 200  # writes are unaffected by the failed merge
    finally:
        server.stop()
    segments_before = len(merging.choose_segments(_segments(live)))
    assert segments_before >= merging.MERGE_FACTOR
    server = Server(env)  # space is back: the next write starts a merge, which succeeds
    try:
        assert server.send("PUT", "/api/documents/again", {"title": "再次", "body": "智慧城市"})[0] == 200
        deadline = time.monotonic() + 120
        while metric(server, "search_service_merges_total") < 1:
            assert time.monotonic() < deadline, "the merge did not succeed"
            time.sleep(0.2)
        assert metric(server, "search_service_merge_failing") == 0
        assert server.get("/api/search", q="合并")[1]["total"] == merging.MERGE_FACTOR + 1
        assert server.get("/api/documents/after")[0] == 200
    finally:
        server.stop()
    assert merging.choose_segments(_segments(live)) == []
    assert not list(live.glob(".merge-*")) and not list(live.glob("*.tmp"))


def _segments(path: Path) -> list:
    from search_service.engine.backend.index import latest_segments

    return latest_segments(path)


def test_sigterm_during_a_merge_answers_the_writes_in_flight(tmp_path, env):
    import random

    from search_service.engine import merging

    run_cli(env, "index", "--rebuild", str(write_corpus(tmp_path / "a.jsonl", 5)))
    live = tmp_path / "index" / "generations" / "g000001"
    rng = random.Random(5)
    server = Server(env)
    try:
        # The rebuild's segment and MERGE_FACTOR - 1 one-article segments: the last PUT starts the
        # merge (one more PUT, slow to segment on a loaded machine, let the merge end before the
        # writes below were sent). 30,000 new bigrams per article: a merge of seconds.
        for i in range(merging.MERGE_FACTOR - 1):
            assert server.send("PUT", f"/api/documents/s{i}", {"title": "合并", "body": _random_body(rng, 30000)})[0] == 200
        deadline = time.monotonic() + 60
        # The merge's staging folder, not /metrics: the merge_running gauge is per process, and
        # with a worker per core the scrape may reach the worker that is not merging.
        while not list(live.glob(merging.STAGING_PREFIX + "*")):  # the merge has started
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # The four writes are sent whole before the signal (whether the server has accepted their
        # connections yet or they still wait in its backlog), and read after it.
        sent = [_sent_write(server.port, f"/api/documents/w{i}", {"title": "停机写入", "body": "智慧城市 停机写入"})
                for i in range(4)]
        assert list(live.glob(merging.STAGING_PREFIX + "*"))  # the writes were sent during it
        server.process.terminate()
        writes, threads = _in_threads([lambda connection=connection: _answer(connection) for connection in sent])
        for thread in threads:
            thread.join(60)
        assert server.process.wait(30) == 0
    finally:
        server.stop()
    assert [r[0] for r in writes] == [200] * 4, writes
    assert not list(live.glob(".merge-*"))  # the stopped merge left nothing
    server = Server(env)
    try:
        assert server.get("/api/search", q="停机写入")[1]["total"] == 4
        assert server.get("/api/search", q="合并")[1]["total"] == merging.MERGE_FACTOR - 1
    finally:
        server.stop()


def test_a_stop_answers_the_connections_waiting_in_the_backlog(app):
    # Clients whose connections the kernel completed, requests sent, before the server took them
    # (its loop never ran here): a stop takes them from the listener's backlog and answers them,
    # instead of closing the listener on them (a reset for each).
    from waitress import wasyncore
    from waitress.server import create_server

    from search_service.web.connections import ConnectionLimits, guard, server_options
    from search_service.web.server import drain

    limits = ConnectionLimits()
    port = free_port()
    server = guard(create_server(app, host="127.0.0.1", port=port, threads=2, **server_options(limits)), limits)
    try:
        sent = []
        for q in ("园区", "智慧城市", "规划"):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", "/api/search?" + urllib.parse.urlencode({"q": q}))
            sent.append(connection)
        answers, threads = _in_threads([lambda connection=connection: _answer(connection) for connection in sent])
        assert drain(server, 10)
        for thread in threads:
            thread.join(30)
        assert sorted(status for status, _ in answers) == [200, 200, 200], answers
        assert all(body["total"] > 0 for _, body in answers)
    finally:
        server.task_dispatcher.shutdown(timeout=5)
        wasyncore.close_all(server._map)
