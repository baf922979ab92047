"""Idle, slow and too many connections against a real ``search-service serve`` (a subprocess).

Without the guard (``web/connections.py``), 250 connections that send nothing filled waitress'
100 slots and a search waited for its 120 s idle timeout; a client trickling its headers kept
its slot for ever; and with the descriptors exhausted the accept loop spun at full CPU writing
a traceback per turn.
"""

from __future__ import annotations

import contextlib
import http.client
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import pytest

from ..helpers import cli_env, free_port, run_cli, write_corpus

pytestmark = pytest.mark.processes  # servers, CLI runs or merge processes


class Serving:
    """``search-service serve --workers 1`` on a free port, its log in a file."""

    def __init__(self, env: dict, preexec_fn=None) -> None:
        self.port = free_port()
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "search_service.cli", "serve", "--port", str(self.port), "--workers", "1",
             "--threads", "4"], env=dict(env, SEARCH_SERVICE_LOG_LEVEL="INFO"), stdout=subprocess.DEVNULL,
            stderr=self.log, preexec_fn=preexec_fn)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.search(timeout=2)
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.process.kill()
                    raise RuntimeError(self.stop()) from None
                time.sleep(0.1)

    def search(self, timeout: float = 10) -> float:
        """Seconds a search took on a new connection (raises on no answer within ``timeout``)."""
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", "/api/search?q=" + urllib.parse.quote("智慧城市"))
            response = conn.getresponse()
            response.read()
            assert response.status == 200, response.status
        finally:
            conn.close()
        return time.monotonic() - started

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.process.pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks of 1/100 s

    def log_text(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", errors="replace")

    def stop(self) -> str:
        """Stop the server; its log."""
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        text = self.log_text()
        self.log.close()
        return text


@pytest.fixture()
def env(tmp_path, jieba_cache) -> dict:
    env = cli_env(tmp_path / "index", jieba_cache)
    run_cli(env, "index", "--rebuild", str(write_corpus(tmp_path / "a.jsonl", 5)))
    return env


def _idle_connections(port: int, count: int) -> list[socket.socket]:
    opened = []
    for _ in range(count):
        opened.append(socket.create_connection(("127.0.0.1", port), timeout=5))
    return opened


def test_idle_connections_beyond_the_limit_do_not_block_searches(env):
    server = Serving(dict(env, SEARCH_SERVICE_CONNECTION_LIMIT="50"))
    idle: list[socket.socket] = []
    try:
        idle = _idle_connections(server.port, 250)  # five times the limit, sending nothing
        time.sleep(1.5)  # older than the one second an idle connection is kept under pressure
        took = [server.search(timeout=15) for _ in range(5)]
        assert max(took) < 5, took  # without the guard: no answer until the 120 s idle timeout
    finally:
        for sock in idle:
            sock.close()
        log = server.stop()
    assert "Traceback" not in log


def test_headers_trickled_a_byte_a_second_are_cut_off_at_the_header_deadline(env):
    server = Serving(dict(env, SEARCH_SERVICE_HEADER_TIMEOUT="2", SEARCH_SERVICE_IDLE_TIMEOUT="30"))
    stop = threading.Event()
    cut_after: list[float] = []

    def slowloris() -> None:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        started = time.monotonic()
        try:
            sock.sendall(b"GET /api/search?q=x HTTP/1.1\r\nHost: a\r\n")
            while not stop.is_set():
                sock.sendall(b"X")  # one header byte a second: never idle, never complete
                time.sleep(1)
        except OSError:
            cut_after.append(time.monotonic() - started)
        finally:
            sock.close()

    thread = threading.Thread(target=slowloris)
    thread.start()
    try:
        thread.join(15)
        assert cut_after and cut_after[0] < 8, cut_after  # without the deadline: never cut
        assert server.search() < 5
    finally:
        stop.set()
        thread.join()
        server.stop()


def test_running_out_of_descriptors_backs_off_instead_of_spinning(env):
    def few_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (96, 96))

    server = Serving(env, preexec_fn=few_descriptors)
    idle: list[socket.socket] = []
    try:
        cpu_before = server.cpu_seconds()
        lines_before = server.log_text().count("\n")
        idle = _idle_connections(server.port, 200)  # more than the process may open
        time.sleep(4)
        cpu = server.cpu_seconds() - cpu_before
        lines = server.log_text().count("\n") - lines_before
        # Without the back-off: ~97% of a core and ~7,000 log lines a second.
        assert cpu < 2.0, f"{cpu:.2f} CPU seconds in 4 s"
        assert lines < 20, server.log_text()[-2000:]
        assert "cannot accept connections" in server.log_text()
        with contextlib.suppress(OSError):
            for sock in idle[:150]:
                sock.close()
        assert server.search(timeout=15) < 10
    finally:
        for sock in idle:
            sock.close()
        log = server.stop()
    assert "Traceback" not in log
