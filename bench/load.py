"""Load test: the real server under 32 concurrent visitors while a rebuild is published and
single-article writes arrive.

Run from the project root: ``.venv/bin/python -m bench.load [--seconds 60] [--clients 32]``
(needs Locust: ``.venv/bin/pip install -e '.[bench]'``). Everything goes to 127.0.0.1.

* **Server**: ``search-service serve`` in a subprocess on a free loopback port, production
  defaults (8 threads, access log on, the default rate limit ``60 per 3 seconds``), its stderr
  to a file. The index is the first ``--articles`` (5,000) articles of
  ``../shared/corpora/xwlb_cctv.jsonl.gz``, built once with ``indexer.rebuild`` and copied
  for each run.
* **Clients**: Locust, headless, in its own process: ``--clients`` visitors with no think time
  on a realistic mix (API searches with the queries and filters of ``bench/queries.txt``,
  results pages, page 2, as-you-type suggestions on growing prefixes, article pages), plus one
  writer (single-article ``PUT /api/documents/<id>`` with a bearer token, 2 a second) and one
  abusive script (10 connections from one address, up to 100 requests a second).
* **Clients are distinct**: the server trusts 127.0.0.1 as its reverse proxy
  (``trusted_proxies``) and every request carries a visitor's ``X-Forwarded-For``, as the
  website's proxy would. Each of the 32 streams is a succession of people, not one person:
  every action (a search, a page, a typed prefix, an article) comes from the next of
  :data:`VISITOR_ADDRESSES` addresses in turn. One address per stream would make a person
  who never pauses, and once the server answers in under 50 ms such a "person" passes the
  default limit of 20 requests a second and is rightly refused. So the default limit applies
  per visitor, as in production, and no visitor comes near it; the abusive script shares one
  address and its 429s are the only deliberate ones (counted apart). Writes with a valid
  token are not rate-limited.
* **Rebuild**: ``--rebuild-after`` seconds into the run, ``search-service index --rebuild``
  (one worker process) builds a new generation from the first ``--rebuild-articles`` articles
  and publishes it while the load goes on. A full 5,000-article rebuild takes about 110 s on
  this shared 2-CPU machine even without load, longer than the window, so the rebuilt
  generation is smaller; latencies are reported before and after the publish separately.

Reports requests/s, p50/p90/p99 per kind of request, errors (anything but the expected status,
connection errors included; must be 0) and 429s, into the ``load`` section of
``docs/BENCHMARKS.md``; raw numbers in ``bench/out/load.json``. ``--quick`` is a 15-second
smoke run on a small index that leaves the docs alone.

* **Baseline, same run**: the code whose load figures the serving work is judged against
  (``--baseline-rev``, default :data:`BASELINE_REV`, the commit that first measured 94
  requests/s, p50 309 ms, p99 716 ms on another machine) is checked out in a git worktree
  under ``bench/out/load/`` and its own ``bench.load`` is run right after ours, with the same
  settings, on this machine. ``--baseline-rev none`` skips it.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlencode

from bench.common import (
    CACHE_DIR,
    OUT_DIR,
    REPO,
    PeakMemory,
    command_line,
    fmt,
    machine_info,
    markdown_table,
    now_utc,
    percentiles,
    provenance,
    require_corpora,
    save_raw,
    update_section,
)

WORK_DIR = OUT_DIR / "load"
QUERIES_FILE = REPO / "bench" / "queries.txt"
TOKEN = "bench-load-token"
ROLE_ENV = "BENCH_LOAD_ROLE"  # set in the Locust process: this file is then its locustfile
CONFIG_ENV = "BENCH_LOAD_CONFIG"
VISITOR_KINDS = ("api search", "results page", "results page 2", "suggest", "article page")
ABUSER_ADDRESS = "203.0.113.66"
ABUSER_CONNECTIONS = 10  # x up to 10 requests/s each = 100/s from one address, over the default 20/s
VISITOR_ADDRESSES = 3_200  # 100 per stream of the default 32: each address a few requests a minute
#: The load test's first figures (2026-11-26): one server process, per-thread readers, merges in commits.
BASELINE_REV = "1525480"


# --------------------------------------------------------------------------- the Locust side

if os.environ.get(ROLE_ENV) == "locust":  # pragma: no cover - runs inside Locust
    from locust import FastHttpUser, constant, constant_throughput, events, task

    _CONFIG = json.loads(Path(os.environ[CONFIG_ENV]).read_text(encoding="utf-8"))
    _RECORDS: list[tuple[str, float, float, int, str]] = []  # (kind, start, ms, status, error)
    _addresses = itertools.cycle([f"198.51.{100 + i // 250}.{1 + i % 250}" for i in range(VISITOR_ADDRESSES)])
    _streams = itertools.count()
    _environment = None

    @events.init.add_listener
    def _keep_environment(environment, **_kwargs):
        global _environment
        _environment = environment

    @events.request.add_listener
    def _record(request_type, name, response_time, response_length, response=None, exception=None,
                start_time=None, **_kwargs):
        status = getattr(response, "status_code", 0) or 0
        _RECORDS.append((name, start_time or time.time(), response_time, status,
                         "" if exception is None else type(exception).__name__ + ": " + str(exception)[:200]))
        if len(_RECORDS) >= _CONFIG["max_requests"] and _environment is not None and _environment.runner:
            _environment.runner.quit()

    @events.quitting.add_listener
    def _dump(environment, **_kwargs):
        Path(_CONFIG["result_path"]).write_text(json.dumps(_RECORDS), encoding="utf-8")

    def _expect(response, *statuses: int) -> None:
        if response.status_code in statuses:
            response.success()
        else:
            response.failure(f"HTTP {response.status_code}")

    class Visitor(FastHttpUser):
        """One person on the website: searches, reads, types in the search box. No think time."""

        wait_time = constant(0)

        def on_start(self) -> None:
            self.random = random.Random(next(_streams))

        def _get(self, url: str, kind: str) -> None:
            headers = {"X-Forwarded-For": next(_addresses)}  # the next visitor (see the module docstring)
            with self.client.get(url, name=kind, headers=headers, catch_response=True) as response:
                _expect(response, 200)

        @task(5)
        def api_search(self) -> None:
            self._get("/api/search?" + self.random.choice(_CONFIG["queries"]), "api search")

        @task(2)
        def results_page(self) -> None:
            self._get("/search?" + self.random.choice(_CONFIG["queries"]), "results page")

        @task(1)
        def results_page_2(self) -> None:
            self._get("/search?" + self.random.choice(_CONFIG["queries"]) + "&page=2", "results page 2")

        @task(3)
        def suggest(self) -> None:
            text = self.random.choice(_CONFIG["typed"])
            typed = text[: self.random.randint(1, min(len(text), 8))]
            self._get("/api/suggest?" + urlencode({"q": typed}), "suggest")

        @task(1)
        def article(self) -> None:
            self._get("/doc/" + quote(self.random.choice(_CONFIG["doc_ids"]), safe=""), "article page")

    class Writer(FastHttpUser):
        """The site's publishing script: one article at a time, with the bearer token."""

        fixed_count = 1
        wait_time = constant_throughput(2)

        def on_start(self) -> None:
            self.numbers = itertools.count(1)

        @task
        def put(self) -> None:
            n = next(self.numbers)
            article = {"title": f"负载测试写入 第{n}篇", "body": f"园区规划与智慧城市建设，负载测试第{n}篇。" * 8,
                       "category": "高新院新闻", "date": "2026-01-01"}
            with self.client.request("PUT", f"/api/documents/load-write-{n}", name="write (PUT)",
                                     json=article, catch_response=True,
                                     headers={"Authorization": f"Bearer {_CONFIG['token']}"}) as response:
                _expect(response, 200)

    class Abuser(FastHttpUser):
        """A script hammering the search API from one address over many connections: its 429s are deliberate."""

        fixed_count = ABUSER_CONNECTIONS
        wait_time = constant_throughput(10)

        @task
        def hammer(self) -> None:
            with self.client.get("/api/search?q=%E5%9B%AD%E5%8C%BA", name="abuser", catch_response=True,
                                 headers={"X-Forwarded-For": ABUSER_ADDRESS}) as response:
                _expect(response, 200, 429)


# --------------------------------------------------------------------------- preparation


def load_queries(path: Path = QUERIES_FILE, categories: set[str] | None = None) -> list[str]:
    """``bench/queries.txt`` as URL query strings (q plus its TAB-separated filters).

    ``categories``: only the queries whose category filters all name one of these. A visitor picks
    a category the site shows; one the index does not know is a 400 (``web/params.checked_categories``),
    and the served index holds one corpus, not every corpus the file's filters come from.
    """
    queries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        q, *filters = line.split("\t")
        params = [("q", q.strip())] + [tuple(f.split("=", 1)) for f in filters if "=" in f]
        if categories is not None and any(k == "category" and v not in categories for k, v in params):
            continue
        queries.append(urlencode(params))
    return queries


def typed_texts(path: Path = QUERIES_FILE) -> list[str]:
    """What visitors type into the box: the query texts, spaces and operators dropped."""
    texts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            text = line.split("\t")[0].replace(" ", "")
            if text and not text.startswith("-"):
                texts.append(text)
    return texts


def read_articles(count: int) -> list:
    from search_service.ingest import Ingest

    source = require_corpora() / "xwlb_cctv.jsonl.gz"
    return list(itertools.islice(Ingest(log_problems=False).read([source]), count))


def base_index(articles: list, procs: int) -> Path:
    """The served index for this many articles, built once and kept under bench/out/load/."""
    from search_service.engine import indexer
    from search_service.engine.store import IndexStore
    from search_service.text import analysis

    path = WORK_DIR / f"base-xwlb-{len(articles)}"
    if (path / "CURRENT").exists():
        return path
    shutil.rmtree(path, ignore_errors=True)
    analysis.initialize(CACHE_DIR)
    print(f"bench.load: building the base index of {len(articles)} articles (once) ...", file=sys.stderr)
    started = time.perf_counter()
    indexer.rebuild(IndexStore(path), iter(articles), procs=procs)
    print(f"bench.load: built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path


def write_jsonl(path: Path, articles: list) -> None:
    with path.open("w", encoding="utf-8") as out:
        for article in articles:
            out.write(json.dumps(article.to_json(), ensure_ascii=False) + "\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


# --------------------------------------------------------------------------- the run


class Watcher(threading.Thread):
    """Polls /healthz (never rate-limited) to see when the server starts answering from a new generation."""

    def __init__(self, url: str, started: float) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.started = started
        self.changes: list[tuple[float, str, int]] = []
        self.failures = 0
        self.stop = threading.Event()

    def run(self) -> None:
        last = None
        while not self.stop.wait(0.25):
            try:
                health = get_json(self.url + "/healthz", timeout=10)
            except (OSError, ValueError):
                self.failures += 1
                continue
            if health["generation"] != last:
                last = health["generation"]
                self.changes.append((time.time() - self.started, last, health["documents"]))


def run(args: argparse.Namespace) -> dict:
    # Only looked for, never imported here: importing Locust monkey-patches this process with
    # gevent, which deadlocks the multiprocessing index build.
    if importlib.util.find_spec("locust") is None:
        sys.exit("bench.load: Locust is not installed; run `.venv/bin/pip install -e '.[bench]'` first.")
    articles = read_articles(args.articles)
    base = base_index(articles, args.procs)
    run_dir = WORK_DIR / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    index_dir = run_dir / "index"
    shutil.copytree(base, index_dir)
    rebuild_source = run_dir / "rebuild.jsonl"
    write_jsonl(rebuild_source, articles[: args.rebuild_articles])

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEARCH_SERVICE_")}
    env.update(SEARCH_SERVICE_INDEX_DIR=str(index_dir), SEARCH_SERVICE_CACHE_DIR=str(CACHE_DIR),
               SEARCH_SERVICE_API_TOKENS=TOKEN, SEARCH_SERVICE_TRUSTED_PROXIES="127.0.0.1",
               SEARCH_SERVICE_HOST="127.0.0.1", SEARCH_SERVICE_PORT=str(port),
               SEARCH_SERVICE_LOG_LEVEL="INFO", SEARCH_SERVICE_ANALYTICS_DB=str(run_dir / "analytics.sqlite3"))
    if args.rate_limit is not None:
        env["SEARCH_SERVICE_RATE_LIMIT"] = args.rate_limit
    server_log = (run_dir / "server.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "search_service.cli", "serve"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=server_log)
    locust_process = rebuild = None
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                sys.exit(f"bench.load: the server exited ({server.returncode}); see {run_dir / 'server.log'}")
            try:
                get_json(url + "/healthz")
                break
            except (OSError, ValueError):
                if time.monotonic() > deadline:
                    sys.exit(f"bench.load: the server did not come up; see {run_dir / 'server.log'}")
                time.sleep(0.25)
        stats_before = get_json(url + "/api/stats")
        memory = PeakMemory(server.pid)
        memory.start()
        sample_ids = [a.id for a in articles[: args.rebuild_articles]]  # in both generations
        # Category filters of categories both generations hold (the rebuild's articles are the first).
        queries = load_queries(categories={a.category for a in articles[: args.rebuild_articles]})
        config_path = run_dir / "locust-config.json"
        result_path = run_dir / "locust-records.json"
        config_path.write_text(json.dumps({
            "queries": queries, "typed": typed_texts(), "doc_ids": sample_ids[:500], "token": TOKEN,
            "max_requests": args.max_requests, "result_path": str(result_path),
        }, ensure_ascii=False), encoding="utf-8")
        users = args.clients + 1 + ABUSER_CONNECTIONS  # + the writer + the abusive script's connections
        locust_env = dict(os.environ, **{ROLE_ENV: "locust", CONFIG_ENV: str(config_path)})
        locust_log = (run_dir / "locust.log").open("wb")
        started = time.time()
        locust_process = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(Path(__file__).resolve()), "--headless",
             "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{args.seconds:g}s",
             "--host", url, "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "10",
             "--exit-code-on-error", "0"],
            cwd=REPO, env=locust_env, stdout=locust_log, stderr=subprocess.STDOUT)
        watcher = Watcher(url, started)
        watcher.start()
        rebuild_log = (run_dir / "rebuild.log").open("wb")
        rebuild_env = dict(env, SEARCH_SERVICE_INDEX_WORKERS="1")
        rebuild_started = rebuild_ended = None
        while locust_process.poll() is None:
            elapsed = time.time() - started
            if rebuild is None and elapsed >= args.rebuild_after:
                rebuild_started = elapsed
                rebuild = subprocess.Popen(
                    [sys.executable, "-m", "search_service.cli", "index", "--rebuild", "--drop-missing",
                     str(rebuild_source)],
                    cwd=REPO, env=rebuild_env, stdout=subprocess.DEVNULL, stderr=rebuild_log)
            if rebuild is not None and rebuild_ended is None and rebuild.poll() is not None:
                rebuild_ended = time.time() - started
            time.sleep(0.1)
        window = time.time() - started
        if rebuild is not None and rebuild.poll() is None:
            print("bench.load: the rebuild is still running after the window; waiting for it", file=sys.stderr)
            rebuild.wait(600)
            rebuild_ended = time.time() - started
        time.sleep(args.reload_grace)
        watcher.stop.set()
        watcher.join(15)
        metrics_text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
        stats_after = get_json(url + "/api/stats")
        peak_memory = memory.finish()
    finally:
        for process in (locust_process, rebuild):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(30)
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        server_log.close()

    records = json.loads(result_path.read_text(encoding="utf-8")) if result_path.exists() else []
    return summarize(args, records, window, started, watcher.changes, rebuild_started, rebuild_ended,
                     rebuild.returncode if rebuild is not None else None, stats_before, stats_after,
                     metrics_text, server.returncode, run_dir, peak_memory)


# --------------------------------------------------------------------------- figures


def _queries_used(data: dict) -> str:
    used, listed = data.get("queries") or (None, None)
    if used is None:
        return "all of them"
    return (f"the {used} of {listed} whose category filters name a category of this xwlb index; the others "
            "would be refused with 400, as an unknown category is")


def _metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def _latency(rows: list) -> dict:
    times = [row[2] for row in rows]
    points = percentiles(times, (50, 90, 99))
    return {"requests": len(rows), "p50_ms": points[50], "p90_ms": points[90], "p99_ms": points[99],
            "max_ms": max(times) if times else float("nan")}


def summarize(args, records, window, started, changes, rebuild_started, rebuild_ended, rebuild_status,
              stats_before, stats_after, metrics_text, server_status, run_dir, peak_memory) -> dict:
    visitors = [r for r in records if r[0] in VISITOR_KINDS]
    writes = [r for r in records if r[0] == "write (PUT)"]
    abuser = [r for r in records if r[0] == "abuser"]
    expected = {**{kind: (200,) for kind in VISITOR_KINDS}, "write (PUT)": (200,), "abuser": (200, 429)}
    errors = [r for r in records if r[4] or r[3] not in expected.get(r[0], (200,))]
    error_kinds: dict[str, int] = {}
    for r in errors:
        key = f"{r[0]}: {r[4] or f'HTTP {r[3]}'}"
        error_kinds[key] = error_kinds.get(key, 0) + 1
    publish_at = next((t for t, _, _ in changes[1:]), None)
    phases = {}
    if publish_at is not None:
        phases = {"before publish": _latency([r for r in visitors if r[1] - started < publish_at]),
                  "after publish": _latency([r for r in visitors if r[1] - started >= publish_at])}
    return {
        "command": command_line("bench.load"),
        "date": now_utc(),
        "machine": machine_info(),
        "settings": {"seconds": args.seconds, "clients": args.clients, "articles": args.articles,
                     "rebuild_articles": args.rebuild_articles, "rebuild_after": args.rebuild_after,
                     "rate_limit": args.rate_limit or "default (60 per 3 seconds)",
                     "max_requests": args.max_requests},
        "window_s": window,
        "queries": [len(json.loads((run_dir / "locust-config.json").read_text(encoding="utf-8"))["queries"]),
                    len(load_queries())],
        "server_workers": os.cpu_count() or 1,  # serve's default: one worker per core
        "visitor_requests": len(visitors),
        "visitor_rps": len(visitors) / window if window else 0.0,
        "all_requests": len(records),
        "visitors": _latency(visitors),
        "by_kind": {kind: _latency([r for r in visitors if r[0] == kind]) for kind in VISITOR_KINDS},
        "phases": phases,
        "writes": {**_latency(writes), "ok": sum(1 for r in writes if r[3] == 200)},
        "abuser": {"requests": len(abuser), "ok": sum(1 for r in abuser if r[3] == 200),
                   "rate_limited": sum(1 for r in abuser if r[3] == 429),
                   "p50_429_ms": percentiles([r[2] for r in abuser if r[3] == 429], (50,))[50]},
        "visitor_429": sum(1 for r in visitors if r[3] == 429),
        "errors": len(errors),
        "error_kinds": error_kinds,
        "rebuild": {"started_s": rebuild_started, "ended_s": rebuild_ended, "exit_status": rebuild_status,
                    "published_seen_at_s": publish_at, "generations": changes},
        "index_before": {k: stats_before[k] for k in ("documents", "generation", "commit")},
        "index_after": {k: stats_after[k] for k in ("documents", "generation", "commit")},
        "server": {"exit_status": server_status, "peak_memory": peak_memory,
                   "cache_hit_ratio": _metric(metrics_text, "search_service_result_cache_hit_ratio"),
                   "log": str(run_dir / "server.log")},
    }


def render(data: dict) -> str:
    s = data["settings"]
    rebuild = data["rebuild"]
    rows = [[kind, f"{v['requests']:,}", fmt(v["p50_ms"]), fmt(v["p90_ms"]), fmt(v["p99_ms"]), fmt(v["max_ms"], 0)]
            for kind, v in [("**all visitors**", data["visitors"]), *data["by_kind"].items(),
                            *data["phases"].items(), ("write (PUT, token)", data["writes"])]]
    publish = rebuild["published_seen_at_s"]
    lines = [
        "## Load: 32 visitors, a rebuild and writes against the real server",
        "",
        provenance(data["command"], data["date"], data["machine"],
                   f"first {s['articles']:,} articles of xwlb_cctv (served index); rebuild from the first "
                   f"{s['rebuild_articles']:,}"),
        f"- Load: Locust (headless, FastHttpUser, same machine, same 2 CPUs as the server) for "
        f"{data['window_s']:.0f} s: {s['clients']} streams of visitors without think time, each action "
        f"from the next of {VISITOR_ADDRESSES:,} visitor addresses (`X-Forwarded-For` through 127.0.0.1 as "
        "trusted proxy), on API searches "
        f"(`bench/queries.txt` with its filters: {_queries_used(data)}), results pages and page 2, suggestions on "
        "typed prefixes and "
        "article pages (weights 5:2:1:3:1); one writer (`PUT /api/documents/<id>` with the bearer token, 2/s); "
        f"one abusive script ({ABUSER_CONNECTIONS} connections from one address, up to "
        f"{ABUSER_CONNECTIONS * 10} requests/s).",
        f"- Server: `search-service serve` defaults ({data.get('server_workers', 1)} worker process(es) × 8 "
        f"threads, access log on, rate limit {s['rate_limit']}), reload_interval 2 s.",
        f"- Rebuild: `search-service index --rebuild` (1 worker) started at {fmt(rebuild['started_s'], 0)} s, "
        f"finished at {fmt(rebuild['ended_s'], 0)} s (exit {rebuild['exit_status']}); the server answered from "
        f"the new generation from {fmt(publish, 1)} s "
        f"({data['index_before']['documents']:,} → {data['index_after']['documents']:,} documents at the end, "
        "writes included). A full 5,000-article rebuild takes ~110 s here without load, longer than the window.",
        "",
        f"**{data['visitor_rps']:,.0f} requests/s** from the visitors ({data['visitor_requests']:,} in "
        f"{data['window_s']:.0f} s), p50 **{fmt(data['visitors']['p50_ms'])} ms**, p99 "
        f"**{fmt(data['visitors']['p99_ms'])} ms**; **{data['errors']} errors** (any status but the expected "
        f"one, or a connection error); {data['visitor_429']} visitor requests rate-limited; the abusive script "
        f"got {data['abuser']['rate_limited']:,} deliberate 429s and {data['abuser']['ok']:,} answers out of "
        f"{data['abuser']['requests']:,} (429 p50 {fmt(data['abuser']['p50_429_ms'])} ms); "
        f"{data['writes']['ok']} of {data['writes']['requests']} writes committed. Result-cache hit ratio "
        f"at the end: {fmt(data['server']['cache_hit_ratio'], 2)}. Server memory, peak over the run, summed over "
        f"its {data['server']['peak_memory']['processes']} processes (supervisor, workers, merge processes): "
        f"{fmt(data['server']['peak_memory']['anon_mb'], 0)} MB anonymous, "
        f"{fmt(data['server']['peak_memory']['file_mb'], 0)} MB file-backed (the mapped index, counted once per "
        "process).",
        "",
        markdown_table(["requests", "count", "p50 ms", "p90 ms", "p99 ms", "max ms"], rows),
    ]
    if data["error_kinds"]:
        lines += ["", "Errors: " + "; ".join(f"{k} × {v}" for k, v in data["error_kinds"].items())]
    return "\n".join(lines)


def run_baseline(args: argparse.Namespace) -> dict:
    """The same load test, with the same settings, by the code of ``args.baseline_rev`` (its own bench.load)."""
    tree = WORK_DIR / f"baseline-{args.baseline_rev}"
    if not (tree / "bench" / "load.py").is_file():
        shutil.rmtree(tree, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=REPO, check=True, capture_output=True)
        subprocess.run(["git", "worktree", "add", "--force", "--detach", str(tree), args.baseline_rev],
                       cwd=REPO, check=True, capture_output=True)
    # Its benchmarks look for the corpora next to their tree, as ours do next to ours.
    shared = tree.parent / "shared"
    if not shared.exists():
        shared.symlink_to(require_corpora().parent)
    command = [sys.executable, "-m", "bench.load", "--seconds", f"{args.seconds:g}", "--clients", str(args.clients),
               "--articles", str(args.articles), "--rebuild-articles", str(args.rebuild_articles),
               "--rebuild-after", f"{args.rebuild_after:g}", "--max-requests", str(args.max_requests)]
    if args.rate_limit is not None:
        command += ["--rate-limit", args.rate_limit]
    # `python -m` from the tree imports the tree's search_service, not the installed one.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEARCH_SERVICE_")}
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    raw = tree / "bench" / "out" / "load.json"
    if done.returncode not in (0, 1) or not raw.is_file():
        sys.exit(f"bench.load: the baseline run at {args.baseline_rev} failed:\n{done.stderr[-2000:]}")
    return json.loads(raw.read_text(encoding="utf-8"))


def render_comparison(ours: dict, baseline: dict, rev: str) -> str:
    """Ours against the baseline run: throughput and latency of the visitors, writes, errors."""

    def row(label: str, data: dict) -> list:
        memory = data["server"].get("peak_memory")  # the baseline's bench did not measure it
        return [label, f"{data['visitor_rps']:,.0f}", fmt(data["visitors"]["p50_ms"]), fmt(data["visitors"]["p90_ms"]),
                fmt(data["visitors"]["p99_ms"]), f"{data['writes']['ok']} of {data['writes']['requests']}",
                fmt(data["writes"]["p50_ms"]), str(data["errors"]),
                f"{fmt(memory['anon_mb'], 0)} / {fmt(memory['file_mb'], 0)}" if memory else "not measured"]

    ratio = ours["visitor_rps"] / baseline["visitor_rps"] if baseline["visitor_rps"] else float("nan")
    return "\n".join([
        f"### Against the baseline, same settings, same machine, run right after ours: the code of `{rev}`",
        "",
        markdown_table(["", "visitor requests/s", "p50 ms", "p90 ms", "p99 ms", "writes committed",
                        "write p50 ms", "errors", "server peak anon / file MB"],
                       [row("ours (this commit)", ours), row(f"baseline `{rev}` (2026-11-26)", baseline)]),
        "",
        f"Ours / baseline: **{ratio:.2f}×** the visitor requests per second, p50 "
        f"{baseline['visitors']['p50_ms'] / ours['visitors']['p50_ms']:.2f}× and p99 "
        f"{baseline['visitors']['p99_ms'] / ours['visitors']['p99_ms']:.2f}× lower. The baseline's own first figures "
        "(94 requests/s, p50 309 ms, p99 716 ms) were measured on another CPU; this row is its code on this one.",
    ])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="length of the load (default 60)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent visitors (default 32)")
    parser.add_argument("--articles", type=int, default=5000, help="articles in the served index (default 5000)")
    parser.add_argument("--rebuild-articles", type=int, default=1000,
                        help="articles in the generation rebuilt during the run (default 1000)")
    parser.add_argument("--rebuild-after", type=float, default=10, help="seconds into the run (default 10)")
    parser.add_argument("--max-requests", type=int, default=200_000, help="stop after this many (default 200000)")
    parser.add_argument("--rate-limit", default=None,
                        help="override the server's rate_limit (default: the service default)")
    parser.add_argument("--procs", type=int, default=2, help="processes for building the base index (default 2)")
    parser.add_argument("--reload-grace", type=float, default=3, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true",
                        help="15 s, 500 articles: a smoke test that leaves docs/BENCHMARKS.md alone")
    parser.add_argument("--baseline-rev", default=BASELINE_REV,
                        help=f"commit whose bench.load runs after ours as the baseline (default {BASELINE_REV}; "
                             "'none' skips it)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.articles, args.rebuild_articles, args.rebuild_after = 15, 500, 200, 3
    args.rebuild_articles = min(args.rebuild_articles, args.articles)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = run(args)
    body = render(data)
    if args.baseline_rev != "none" and not args.quick:
        data["baseline"] = run_baseline(args)
        body += "\n\n" + render_comparison(data, data["baseline"], args.baseline_rev)
    save_raw("load-quick" if args.quick else "load", data)
    print(body)
    if not args.quick:
        update_section("load", body)
    return 0 if data["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
