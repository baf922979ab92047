"""What folding typing sessions costs a suggest request, and whether each session counts once.

Run from the project root (prints a table; writes nothing into docs/)::

    .venv/bin/python -m bench.suggest_sessions                    # workers 1 and 2, this checkout
    PYTHONPATH=/path/to/other/checkout .venv/bin/python -m bench.suggest_sessions   # another version

A real ``search-service serve`` (child process) on the bundled ``samples/``, result cache on,
analytics on. ``--clients`` threads each type ``--sessions`` words letter by letter as the
widget does (one ``/api/suggest`` per prefix, a new random ``sid`` per word, keep-alive
connections, or with ``--fresh`` a new connection per request, so that one session's
keystrokes reach different workers), after a warm-up of 50 requests that is not measured. Reported: suggest latency
over HTTP (median, p95), requests per second, and the resident memory (``VmRSS`` and
``RssAnon``, summed over the supervisor and its workers) after the run. Then the server is
stopped with SIGTERM (open sessions are written) and the widget searches stored are
counted: one per session is right.
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
WORDS = ("智慧城市建设", "产业园区规划", "高新技术企业", "数字经济发展", "专精特新企业", "科技成果转化")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _memory(pid: int) -> tuple[int, int]:
    """(VmRSS, RssAnon) in kB of ``pid`` and its children."""
    pids = [pid] + [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    rss = anon = 0
    for each in pids:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{each}/status").read_text().splitlines()
                      if ":" in line)
        rss += int(fields["VmRSS"].split()[0])
        anon += int(fields["RssAnon"].split()[0])
    return rss, anon


def run(workers: int, clients: int, sessions: int, work: Path, fresh: bool = False) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEARCH_SERVICE_")}
    index_dir, db_path = work / f"index{workers}", work / f"analytics{workers}.sqlite3"
    env.update(SEARCH_SERVICE_INDEX_DIR=str(index_dir), SEARCH_SERVICE_CACHE_DIR=str(work / "cache"),
               SEARCH_SERVICE_ANALYTICS_DB=str(db_path), SEARCH_SERVICE_RATE_LIMIT="",
               SEARCH_SERVICE_LOG_LEVEL="WARNING")
    subprocess.run([sys.executable, "-m", "search_service.cli", "index", "--rebuild", str(ROOT / "samples")],
                   env=env, check=True, capture_output=True)
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "search_service.cli", "serve", "--port", str(port),
                               "--workers", str(workers), "--threads", "4"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        time.sleep(1.0)  # every worker ready (each warms before it accepts)

        def typing(count: int, timings: list[float] | None) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for n in range(count):
                sid, word = secrets.token_hex(8), WORDS[n % len(WORDS)]
                for end in range(1, len(word) + 1):
                    if fresh:  # as from several browsers' connections: keystrokes reach any worker
                        conn.close()
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    started = time.perf_counter()
                    conn.request("GET", "/api/suggest?" + urlencode({"q": word[:end], "sid": sid}),
                                 headers={"User-Agent": "Mozilla/5.0 (bench) Firefox/128.0"})
                    response = conn.getresponse()
                    response.read()
                    if response.status != 200:
                        raise RuntimeError(f"suggest answered {response.status}")
                    if timings is not None:
                        timings.append(time.perf_counter() - started)
            conn.close()

        typing(50 // len(WORDS[0]) + 1, None)  # warm-up (its sessions are counted below too)
        warm_sessions = 50 // len(WORDS[0]) + 1
        timings: list[list[float]] = [[] for _ in range(clients)]
        threads = [threading.Thread(target=typing, args=(sessions, timings[i])) for i in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        rss, anon = _memory(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(120)
    every = sorted(t for each in timings for t in each)
    db = sqlite3.connect(db_path)
    stored = db.execute("SELECT COUNT(*) FROM searches WHERE channel = 'widget'").fetchone()[0]
    db.close()
    return {"workers": workers, "requests": len(every), "p50_ms": statistics.median(every) * 1000,
            "p95_ms": every[int(len(every) * 0.95)] * 1000, "per_s": len(every) / elapsed,
            "rss_mb": rss / 1024, "anon_mb": anon / 1024, "sessions": clients * sessions + warm_sessions,
            "stored": stored}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--sessions", type=int, default=60, help="words typed by each client")
    parser.add_argument("--fresh", action="store_true", help="a new connection for every request")
    args = parser.parse_args(argv)
    import search_service

    print(f"search_service from {Path(search_service.__file__).parent}; "
          f"{'a new connection per request' if args.fresh else 'keep-alive connections'}")
    print("| workers | suggest requests | p50 ms | p95 ms | req/s | RSS MB | anon MB | sessions | widget searches stored |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="suggest-bench-") as tmp:
        for workers in args.workers:
            r = run(workers, args.clients, args.sessions, Path(tmp), args.fresh)
            print(f"| {r['workers']} | {r['requests']} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['per_s']:.0f} | "
                  f"{r['rss_mb']:.0f} | {r['anon_mb']:.0f} | {r['sessions']} | {r['stored']} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
