"""Search speed against the strongest baselines, at ~4k articles and at all 42,180 (issue 24).

Run from the project root::

    .venv/bin/python -m bench.speed                 # both sizes; writes the Search section of docs/BENCHMARKS.md
    .venv/bin/python -m bench.speed --sizes 4k      # one size (the section then holds that size only)
    .venv/bin/python -m bench.speed --quick         # smoke test, about a minute; docs untouched
    .venv/bin/python -m bench.speed --build-only    # build (or check) the cached indexes, measure nothing

``python -m bench.search`` runs this too.

Engines, each built from the same articles (a fixed sample: ``4k`` = the articles whose
CRC32 of the id falls in 10% of the range, from every corpus file; ``42k`` = all of them) and
answering the same queries (``bench/queries.txt``) with the same page: total, category and
year counts, 10 hits with highlighted title and snippet:

* **tantivy** and **tuned Whoosh** (:mod:`bench.reference`), in process;
* **ours in process**: ``SearchRequest.from_params`` + ``SearchEngine.search`` with the result
  cache off (``cache_entries=0``), on the index as ``search-service index --rebuild`` built it
  (one segment: the build ends with a merge of its workers' segments) and on a copy merged again
  by ``search-service optimize`` (its general merge: every posting re-encoded); and the two side by
  side in one process, each query on both in turn, for the fresh-versus-merged goal (the same
  minutes of a noisy machine for both);
* **ours over HTTP**: ``search-service serve`` with its default settings (one worker process
  per core, 8 threads each, result cache, rate limit, analytics, access log) as a child
  process on a free loopback port. Its engine time is ``took_ms`` of the JSON; the HTTP layer
  is wall time minus ``took_ms``. Then ``/api/suggest`` over every prefix of every query as
  typed (each typing session from one connection, as a reader's browser sends it; and, on a
  second server, with every keystroke on the next connection), and the repeated-query path (the
  same queries again: cached).

Every in-process engine runs in a fresh process of its own (so its memory is its own):
open the index (ours: ``SearchEngine.warm()``, what ``serve`` does before it is ready), one
warm-up query (the same for all, not in the query list), then ``--rounds`` passes over the
distinct queries. Pass 1 is the headline: each query once, result cache cold. The HTTP
session gets the same warm-up query and the same number of passes (passes 2.. are then the
repeated, cached path). Before each engine runs, its index files are read once, so every
engine finds its index in the page cache.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import inspect
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

from . import common, reference, search

SECTION = "search"
WORK_DIR = common.OUT_DIR / "speed"
SIZES = {"4k": common.Sample(fraction=0.1), "42k": common.Sample()}
QUICK_SAMPLE = common.Sample(limit=100)
QUICK_QUERY_STRIDE = 3
#: The one warm-up query every engine gets before its timed passes (not in bench/queries.txt).
WARMUP_QUERY = "国家 发展"
#: Keep-alive connections of the HTTP client, each from its own loopback address (127.0.1.x):
#: requests go round-robin, so no address passes the default per-client rate limit (60 per 3 s).
CONNECTIONS = 64
#: The reader's browser: /api/search and /api/suggest take the path readers take (analytics recorded).
BROWSER_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.0.0 Safari/537.36")
ENGINES = ("tantivy", "whoosh", "ours", "ours-merged")
LABELS = {
    "tantivy": "tantivy, in process",
    "whoosh": "tuned Whoosh, in process",
    "ours": "ours in process, fresh build",
    "ours-merged": "ours in process, `optimize`d copy",
}
#: The issue's goals (quiet 2-core machine).
TARGETS = {"http_p50_ms_42k": 5.0, "http_p95_ms_42k": 25.0, "suggest_p95_ms_42k": 5.0, "http_layer_p50_ms": 1.0,
           "vs_whoosh": 3.0, "vs_tantivy_p50": 2.0, "repeated_p50_ms": 1.0, "fresh_vs_merged": 1.10,
           "anon_mb_per_worker_42k": 500.0, "index_mb_42k": 1128.0}


# --------------------------------------------------------------------------- indexes


def _source_fingerprint(*objects, extra: str = "") -> str:
    text = "".join(inspect.getsource(o) for o in objects) + extra
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def fingerprints() -> dict[str, str]:
    """Of the code (and library versions) that define each engine's index."""
    versions = " ".join(common._version(d) for d in ("Whoosh-Reloaded", "jieba", "tantivy"))
    ours = search.ours_fingerprint() + _source_fingerprint(build_ours, write_articles)
    return {
        "ours": ours,
        "ours-merged": ours,
        "whoosh": _source_fingerprint(reference.whoosh_schema, reference.build_whoosh, reference.day_number,
                                      extra=versions),
        "tantivy": _source_fingerprint(reference.analyze, reference.display_text, reference.tantivy_fields,
                                       reference.tantivy_schema, reference._register, reference.build_tantivy,
                                       reference.day_number, extra=versions),
    }


def _cli() -> str:
    return str(Path(sys.executable).with_name("search-service"))


def cli_env(index_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of our CLI: the project's settings, the data folder in the bench work dir.

    Only where things live is changed: the data folder, and jieba's dictionary cache (which would
    otherwise go into the project's own ``index/``).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEARCH_SERVICE_")}
    env.update(SEARCH_SERVICE_INDEX_DIR=str(index_dir), SEARCH_SERVICE_CACHE_DIR=str(common.CACHE_DIR), **extra)
    return env


def write_articles(path: Path, articles: list) -> None:
    """The sample as JSON Lines (gzip), for ``search-service index --rebuild``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=1) as out:
        for article in articles:
            out.write(json.dumps(article.to_json(), ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def build_ours(index_dir: Path, articles_file: Path) -> None:
    """``search-service index --rebuild FILE`` into a new data folder (all cores: the default)."""
    shutil.rmtree(index_dir, ignore_errors=True)
    index_dir.mkdir(parents=True)
    done = subprocess.run([_cli(), "index", "--rebuild", str(articles_file)], cwd=common.REPO,
                          env=cli_env(index_dir), capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"bench.speed: `search-service index --rebuild` failed ({done.returncode}):\n"
                 f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def merge_ours(source: Path, merged: Path) -> None:
    """A copy of our data folder with every segment merged into one (``search-service optimize``)."""
    shutil.rmtree(merged, ignore_errors=True)
    shutil.copytree(source, merged, symlinks=True)
    done = subprocess.run([_cli(), "optimize"], cwd=common.REPO, env=cli_env(merged), capture_output=True,
                          text=True)
    if done.returncode != 0:
        sys.exit(f"bench.speed: `search-service optimize` failed ({done.returncode}):\n{done.stderr[-2000:]}")


def index_path(engine: str, root: Path) -> Path:
    return root / engine


def index_megabytes(engine: str, path: Path) -> float:
    """Size on disk of what the engine searches (ours: the live generation)."""
    if engine.startswith("ours"):
        from search_service.engine.store import IndexStore

        current = IndexStore(path).current_path()
        return common.dir_megabytes(current) if current else float("nan")
    return common.dir_megabytes(path)


def prepare(sample: common.Sample, engines: list[str], rebuild: bool, procs: int) -> dict[str, dict]:
    """Each engine's index for ``sample``: cached under bench/out/speed/<sample>/ (by fingerprint) or built now."""
    root = WORK_DIR / sample.key()
    prints = fingerprints()
    metas: dict[str, dict | None] = {}
    for engine in engines:
        meta = None if rebuild else search._cached(root / f"{engine}.json", prints[engine])
        if engine == "ours-merged" and meta is not None and "ours" in metas and metas["ours"] is not None:
            meta = meta if meta.get("source_built_at") == metas["ours"]["built_at"] else None
        if engine == "ours-merged" and metas.get("ours") is None:
            meta = None  # ours is rebuilt: its merged copy too
        metas[engine] = meta
    missing = [e for e in engines if metas[e] is None]
    if missing:
        print(f"bench.speed: {sample.describe()}: building {', '.join(missing)} …", file=sys.stderr, flush=True)
        corpus = common.load_articles(sample)
        articles_file = root / "articles.jsonl.gz"
        if "ours" in missing:
            write_articles(articles_file, corpus.articles)
        for engine in missing:
            path = index_path(engine, root)
            print(f"bench.speed: building {engine} ({corpus.count:,} articles) …", file=sys.stderr, flush=True)
            started = time.perf_counter()
            if engine == "ours":
                build_ours(path, articles_file)
            elif engine == "ours-merged":
                merge_ours(index_path("ours", root), path)
            elif engine == "whoosh":
                reference.initialize(common.CACHE_DIR)
                reference.build_whoosh(path, corpus.articles, procs=procs)
            elif engine == "tantivy":
                reference.initialize(common.CACHE_DIR)
                reference.build_tantivy(path, corpus.articles, procs=procs)
            meta = {"fingerprint": prints[engine], "articles": corpus.count, "megabytes": corpus.megabytes,
                    "build_seconds": time.perf_counter() - started, "built_at": common.now_utc(),
                    "per_file": corpus.per_file, "rejected": corpus.rejected, "build_procs": procs}
            if engine == "ours-merged":
                meta["source_built_at"] = metas["ours"]["built_at"]
            (root / f"{engine}.json").write_text(json.dumps(meta), encoding="utf-8")
            metas[engine] = dict(meta, fresh=True)
            print(f"bench.speed: {engine} built in {meta['build_seconds']:.0f} s", file=sys.stderr, flush=True)
        del corpus
    result = {}
    for engine in engines:
        meta = dict(metas[engine])
        meta["path"] = str(index_path(engine, root))
        meta["index_mb"] = index_megabytes(engine, index_path(engine, root))
        meta["reused"] = not meta.pop("fresh", False)
        result[engine] = meta
    return result


def read_files(path: Path) -> None:
    """Read every file under ``path`` once, so the engine finds it in the page cache."""
    for file in Path(path).rglob("*"):
        if file.is_file():
            with open(file, "rb") as handle:
                while handle.read(1 << 22):
                    pass


# --------------------------------------------------------------------------- memory


def process_status(pid: int | str = "self") -> dict[str, float]:
    """VmRSS, VmHWM (peak), RssAnon, RssFile and Pss (proportional: pages shared with other
    processes counted in part) of one process, in MB."""
    wanted = {"VmRSS": "rss_mb", "VmHWM": "peak_rss_mb", "RssAnon": "anon_mb", "RssFile": "file_mb",
              "Pss": "pss_mb"}
    out = {}
    for name in ("status", "smaps_rollup"):
        try:
            for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in wanted and value.split():
                    out[wanted[key]] = int(value.split()[0]) / 1024
        except (OSError, ValueError):
            pass
    return out


def tree_pids(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        one = todo.pop()
        pids.append(one)
        try:
            for task in Path(f"/proc/{one}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return pids


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by ``pid`` and every process under it."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for one in tree_pids(pid):
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def tree_status(pid: int) -> list[dict]:
    """:func:`process_status` of ``pid`` and every process under it, with pid and command."""
    rows = []
    for one in tree_pids(pid):
        status = process_status(one)
        if not status:
            continue
        try:
            cmd = Path(f"/proc/{one}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            cmd = "?"
        rows.append(dict(status, pid=one, root=one == pid, cmd=cmd[:120]))
    return rows


# --------------------------------------------------------------------------- queries


def distinct_queries(path: Path, stride: int = 1) -> list[search.BenchQuery]:
    """The queries of the file, each (text + filters) once, in file order."""
    seen, queries = set(), []
    for query in search.load_queries(path)[::stride]:
        if query.url() not in seen:
            seen.add(query.url())
            queries.append(query)
    return queries


# --------------------------------------------------------------------------- in-process engines


def worker(engine: str, index_dir: Path, queries_file: Path, stride: int, rounds: int, out: Path) -> None:
    """One in-process engine in this (fresh) process: open, warm up once, ``rounds`` passes; JSON to ``out``."""
    queries = distinct_queries(queries_file, stride)
    started = time.perf_counter()
    if engine in ("tantivy", "whoosh"):
        reference.initialize(common.CACHE_DIR)
        ref = reference.TantivyEngine(index_dir) if engine == "tantivy" else reference.TunedWhoosh(index_dir)
        segments = ref.segments()

        def run(params: dict) -> tuple[int, dict, int]:
            page = ref.search(params)
            return page["total"], dict(page["facets"]["category"]), len(page["hits"])
        warm_seconds = 0.0
    else:
        from search_service.engine import request as requests
        from search_service.engine import searcher

        common.initialize_analysis()
        ours = searcher.SearchEngine(index_dir, searcher.EngineOptions(cache_entries=0))
        warm_seconds = ours.warm()
        segments = len(ours.snapshot().commit.segments)

        def run(params: dict) -> tuple[int, dict, int]:
            results = ours.search(requests.SearchRequest.from_params(requests.get_list_from_mapping(params)))
            return results.total, {v.value: v.count for v in results.facets.get("category", [])}, len(results.hits)
    open_seconds = time.perf_counter() - started
    tick = time.perf_counter()
    run({"q": WARMUP_QUERY})
    warmup_ms = (time.perf_counter() - tick) * 1000
    passes: list[list[float]] = []
    answers = []
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    for number in range(rounds):
        times = []
        for query in queries:
            tick = time.perf_counter()
            total, categories, hits = run(query.params)
            times.append((time.perf_counter() - tick) * 1000)
            if number == 0:
                answers.append({"total": total, "categories": categories, "hits": hits})
        passes.append(times)
    cpu, wall = time.process_time() - cpu_started, time.perf_counter() - wall_started
    data = {"engine": engine, "open_seconds": open_seconds, "warm_seconds": warm_seconds, "warmup_ms": warmup_ms,
            "cpu_seconds": cpu, "wall_seconds": wall,
            "segments": segments, "passes": passes, "answers": answers, "memory": process_status(),
            "queries": [q.label() for q in queries]}
    out.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def pair_worker(fresh_dir: Path, merged_dir: Path, queries_file: Path, stride: int, rounds: int, out: Path) -> None:
    """Ours on the fresh build and on its `optimize`d copy in this one process, each query on both
    in turn (which goes first alternating), ``rounds`` passes; JSON to ``out``.

    The two are the same engine on two indexes, compared with each other only: measured side by
    side, a slower minute of the machine lands on both instead of on whichever ran in it (run one
    after the other, the two identical single-segment indexes differed by up to 14% at p95).
    """
    from search_service.engine import request as requests
    from search_service.engine import searcher

    queries = distinct_queries(queries_file, stride)
    common.initialize_analysis()
    engines = {side: searcher.SearchEngine(path, searcher.EngineOptions(cache_entries=0))
               for side, path in (("fresh", fresh_dir), ("merged", merged_dir))}
    for engine in engines.values():
        engine.warm()
    parsed = [requests.SearchRequest.from_params(requests.get_list_from_mapping(q.params)) for q in queries]
    for engine in engines.values():
        engine.search(requests.SearchRequest.from_params(requests.get_list_from_mapping({"q": WARMUP_QUERY})))
    passes: dict[str, list[list[float]]] = {side: [] for side in engines}
    for number in range(rounds):
        times: dict[str, list[float]] = {side: [] for side in engines}
        for position, request in enumerate(parsed):
            order = ("fresh", "merged") if (position + number) % 2 == 0 else ("merged", "fresh")
            for side in order:
                tick = time.perf_counter()
                engines[side].search(request)
                times[side].append((time.perf_counter() - tick) * 1000)
        for side in engines:
            passes[side].append(times[side])
    data = {"passes": passes,
            "segments": {side: len(engine.snapshot().commit.segments) for side, engine in engines.items()}}
    out.write_text(json.dumps(data), encoding="utf-8")


def run_pair_worker(fresh_dir: Path, merged_dir: Path, args: argparse.Namespace, stride: int) -> dict:
    """:func:`pair_worker` in a fresh child process; its JSON."""
    out = WORK_DIR / "worker-ours-pair.json"
    out.unlink(missing_ok=True)
    read_files(fresh_dir)
    read_files(merged_dir)
    print("bench.speed: ours in process, fresh build and `optimize`d copy side by side …", file=sys.stderr, flush=True)
    done = subprocess.run([sys.executable, "-m", "bench.speed", "--pair-worker", str(fresh_dir), str(merged_dir),
                           str(out), "--queries", str(args.queries), "--stride", str(stride),
                           "--rounds", str(args.rounds)], cwd=common.REPO, env=cli_env(fresh_dir))
    if done.returncode != 0 or not out.exists():
        sys.exit(f"bench.speed: the side-by-side worker failed (exit {done.returncode})")
    return json.loads(out.read_text(encoding="utf-8"))


def run_worker(engine: str, index_dir: Path, args: argparse.Namespace, stride: int) -> dict:
    """:func:`worker` in a fresh child process; its JSON, with the load average before and after."""
    out = WORK_DIR / f"worker-{engine}.json"
    out.unlink(missing_ok=True)
    read_files(index_dir)
    load_before = os.getloadavg()
    print(f"bench.speed: {LABELS[engine]} …", file=sys.stderr, flush=True)
    done = subprocess.run([sys.executable, "-m", "bench.speed", "--worker", engine, str(index_dir), str(out),
                           "--queries", str(args.queries), "--stride", str(stride), "--rounds", str(args.rounds)],
                          cwd=common.REPO, env=cli_env(index_dir))
    if done.returncode != 0 or not out.exists():
        sys.exit(f"bench.speed: the {engine} worker failed (exit {done.returncode})")
    data = json.loads(out.read_text(encoding="utf-8"))
    data["load_before"], data["load_after"] = list(load_before), list(os.getloadavg())
    return data


# --------------------------------------------------------------------------- ours over HTTP


class Serve(search.Server):
    """``search-service serve`` with the project's default settings on a free loopback port."""

    def __init__(self, index_dir: Path) -> None:
        self.port = search._free_port()
        self.workers = _default_workers()
        WORK_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = WORK_DIR / f"serve-{self.port}.log"
        self._log = open(self.log_path, "wb")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [_cli(), "serve"], cwd=common.REPO, stdout=self._log, stderr=subprocess.STDOUT,
            env=cli_env(index_dir, SEARCH_SERVICE_HOST="127.0.0.1", SEARCH_SERVICE_PORT=str(self.port)))

    def wait_all_ready(self, timeout: float = 600.0) -> float:
        """Until /healthz says 200 and every worker logged that it serves; seconds from the start."""
        self.wait_ready(timeout)
        deadline = time.monotonic() + timeout
        while self.workers > 1 and time.monotonic() < deadline:
            self._log.flush()
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
            if text.count(" serving on http") - text.count(" workers of ") >= self.workers:
                break
            time.sleep(0.1)
        return time.perf_counter() - self.started


def _default_workers() -> int:
    """Processes ``serve`` runs with its default ``workers = 0``: one per usable core."""
    from types import SimpleNamespace

    from search_service.web.server import worker_count

    return worker_count(SimpleNamespace(workers=0))


class Clients:
    """Keep-alive connections, each from its own loopback address, used round-robin."""

    def __init__(self, port: int, count: int = CONNECTIONS) -> None:
        self.port = port
        self.addresses = [f"127.0.{1 + i // 250}.{1 + i % 250}" for i in range(count)]
        self.conns = [self._connect(a) for a in self.addresses]
        self.next = 0
        self.errors: list[str] = []

    def _connect(self, address: str) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300, source_address=(address, 0))
        conn.connect()
        return conn

    def get(self, path: str, slot: int | None = None) -> tuple[float, int, bytes]:
        """(wall ms, status, body) of one GET on the next connection (or on ``slot``); status 0 on a
        connection error. The slot used is in :attr:`last_slot`."""
        if slot is None:
            slot = self.next % len(self.conns)
            self.next += 1
        self.last_slot = slot
        conn = self.conns[slot]
        started = time.perf_counter()
        try:
            conn.request("GET", path, headers={"User-Agent": BROWSER_UA, "Accept": "application/json"})
            response = conn.getresponse()
            body = response.read()
            elapsed = (time.perf_counter() - started) * 1000
            if response.status != 200:
                self.errors.append(f"HTTP {response.status} for {path[:120]}")
            return elapsed, response.status, body
        except (OSError, http.client.HTTPException) as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
            conn.close()
            self.conns[slot] = self._connect(self.addresses[slot])
            return (time.perf_counter() - started) * 1000, 0, b""

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


def suggest_paths(queries: list[search.BenchQuery]) -> list[tuple[int, str]]:
    """(typing session, ``/api/suggest`` path) for every prefix of every query's text as typed, one
    typing session per query."""
    paths = []
    for number, query in enumerate(queries):
        for end in range(1, len(query.q) + 1):
            prefix = query.q[:end]
            if prefix.strip():
                paths.append((number, "/api/suggest?" + urllib.parse.urlencode({"q": prefix, "sid": f"bench{number}"})))
    return paths


def suggest_pass(clients: Clients, queries: list[search.BenchQuery], spread: bool) -> list[dict]:
    """``/api/suggest`` over :func:`suggest_paths`. A reader's keystrokes come from one browser, over
    its one keep-alive connection (one worker of ``serve``): each typing session on a connection
    of its own. ``spread``: each keystroke on the next connection instead, so one reader's
    keystrokes reach every worker in turn (no reader does that; shown for comparison)."""
    rows = []
    for session, path in suggest_paths(queries):
        wall, status, _body = clients.get(path, None if spread else session % len(clients.conns))
        prefix = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)["q"][0]
        rows.append({"wall_ms": wall, "status": status, "chars": len(prefix)})
    return rows


def measure_suggest_spread(index_dir: Path, queries: list[search.BenchQuery]) -> list[dict]:
    """:func:`suggest_pass` with keystrokes spread over the connections, on a server of its own that
    first answers the same first search pass as the main session (the same state of its caches)."""
    print("bench.speed: /api/suggest with keystrokes spread over the workers …", file=sys.stderr, flush=True)
    server = Serve(index_dir)
    clients = None
    try:
        server.wait_all_ready()
        clients = Clients(server.port)
        clients.get(search.BenchQuery(0, WARMUP_QUERY).url())
        clients.get("/api/suggest?" + urllib.parse.urlencode({"q": WARMUP_QUERY[:1]}))
        for query in queries:
            clients.get(query.url())
        return suggest_pass(clients, queries, spread=True)
    finally:
        if clients is not None:
            clients.close()
        server.stop()


def measure_http(index_dir: Path, queries: list[search.BenchQuery], rounds: int) -> dict:
    """One server session: warm-up, ``rounds`` passes over /api/search (pass 1 cold, then cached), then suggest."""
    read_files(index_dir)
    load_before = os.getloadavg()
    print("bench.speed: ours over HTTP (serve defaults) …", file=sys.stderr, flush=True)
    server = Serve(index_dir)
    peak = common.PeakMemory(server.process.pid, interval=0.25)
    clients = None
    try:
        ready_seconds = server.wait_all_ready()
        ready_memory = tree_status(server.process.pid)
        peak.start()
        clients = Clients(server.port)
        warm = clients.get(search.BenchQuery(0, WARMUP_QUERY).url())
        clients.get("/api/suggest?" + urllib.parse.urlencode({"q": WARMUP_QUERY[:1]}))
        passes = []
        slots: list[int] = []
        cpu = []
        for number in range(rounds):
            cpu.append(tree_cpu_seconds(server.process.pid))
            rows = []
            for i, query in enumerate(queries):
                # Again: on the connection that asked first (the same worker process, whose cache has it).
                wall, status, body = clients.get(query.url(), slots[i] if number else None)
                if not number:
                    slots.append(clients.last_slot)
                row = {"wall_ms": wall, "status": status}
                if status == 200:
                    data = json.loads(body)
                    row.update(took_ms=data["took_ms"], cached=data["cached"], total=data["total"],
                               categories={f["value"]: f["count"] for f in data["facets"].get("category", [])})
                rows.append(row)
            passes.append(rows)
        cpu.append(tree_cpu_seconds(server.process.pid))
        suggest = suggest_pass(clients, queries, spread=False)
        cpu.append(tree_cpu_seconds(server.process.pid))
        memory = tree_status(server.process.pid)
        peak_memory = peak.finish()
    finally:
        peak.stop.set()
        if clients is not None:
            clients.close()
        server.stop()
    # CPU seconds of the server's processes during pass 1, the repeated passes, and the suggest pass.
    cpu_spent = {"first": cpu[1] - cpu[0], "repeated": cpu[-2] - cpu[1], "suggest": cpu[-1] - cpu[-2]}
    return {"ready_seconds": ready_seconds, "workers": server.workers, "warmup_ms": warm[0], "cpu_seconds": cpu_spent,
            "warmup_status": warm[1], "passes": passes, "suggest": suggest, "errors": clients.errors[:20],
            "error_count": len(clients.errors), "ready_memory": ready_memory, "memory": memory,
            "peak_memory": peak_memory, "load_before": list(load_before), "load_after": list(os.getloadavg()),
            "log": str(server.log_path)}


# --------------------------------------------------------------------------- one size


def measure_size(name: str, sample: common.Sample, args: argparse.Namespace) -> dict:
    engines = [e for e in ENGINES if e in args.engines]
    needs_ours = args.http or "ours-merged" in engines
    build = [e for e in ENGINES if e in engines or (e == "ours" and needs_ours)]
    indexes = prepare(sample, build, args.rebuild, args.build_procs)
    if args.build_only:
        return {"size": name, "indexes": indexes}
    stride = QUICK_QUERY_STRIDE if args.quick else 1
    queries = distinct_queries(args.queries, stride)
    runs = {engine: run_worker(engine, Path(indexes[engine]["path"]), args, stride) for engine in engines}
    pair = (run_pair_worker(Path(indexes["ours"]["path"]), Path(indexes["ours-merged"]["path"]), args, stride)
            if "ours" in engines and "ours-merged" in engines else None)
    http_run = measure_http(Path(indexes["ours"]["path"]), queries, args.rounds) if args.http else None
    if http_run is not None:
        http_run["suggest_spread"] = measure_suggest_spread(Path(indexes["ours"]["path"]), queries)
    return {"size": name, "sample": sample.describe(), "indexes": indexes, "runs": runs, "pair": pair, "http": http_run,
            "queries": [q.label() for q in queries], "query_mix": search.query_mix(queries)}


# --------------------------------------------------------------------------- statistics


def pstats(values: list[float]) -> dict:
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "n": 0}
    points = common.percentiles(values, (50, 95))
    return {"p50": points[50], "p95": points[95], "n": len(values), "mean": sum(values) / len(values),
            "max": max(values)}


def warm_per_query(passes: list[list[float]]) -> list[float]:
    """Per query, the median of passes 2.. (empty with one pass)."""
    if len(passes) < 2:
        return []
    return [common.median(values) for values in zip(*passes[1:])]


def summarize(size: dict) -> dict:
    """The figures of one size that the tables show."""
    out: dict = {"engines": {}}
    for engine, run in size["runs"].items():
        first = run["passes"][0]
        out["engines"][engine] = {"first": pstats(first), "warm": pstats(warm_per_query(run["passes"])),
                                  "cpu_per_wall": run["cpu_seconds"] / run["wall_seconds"],
                                  "memory": run["memory"], "segments": run["segments"],
                                  "index_mb": size["indexes"][engine]["index_mb"], "first_ms": first}
    pair = size.get("pair")
    if pair:
        out["pair"] = {side: pstats(passes[0]) for side, passes in pair["passes"].items()}
        out["pair_segments"] = pair["segments"]
    http_run = size.get("http")
    if http_run:
        first = http_run["passes"][0]
        ok = [r for r in first if r["status"] == 200]
        repeated = [[r["wall_ms"] for r in p] for p in http_run["passes"][1:]]
        repeated_ok = all(r.get("cached") for p in http_run["passes"][1:] for r in p if r["status"] == 200)
        workers = [m for m in http_run["memory"] if "serve" in m["cmd"] and not m["root"]]
        out["http"] = {
            "wall": pstats([r["wall_ms"] for r in ok]), "took": pstats([r["took_ms"] for r in ok]),
            "layer": pstats([r["wall_ms"] - r["took_ms"] for r in ok]),
            "cold_misses": sum(1 for r in ok if r["cached"]),
            "repeated": pstats([common.median(v) for v in zip(*repeated)] if repeated else []),
            "repeated_all_cached": repeated_ok,
            "suggest": pstats([r["wall_ms"] for r in http_run["suggest"] if r["status"] == 200]),
            "suggest_spread": pstats([r["wall_ms"] for r in http_run.get("suggest_spread", []) if r["status"] == 200]),
            "suggest_by_chars": {
                label: pstats([r["wall_ms"] for r in http_run["suggest"] if r["status"] == 200 and low <= r["chars"] <= high])
                for label, low, high in (("1", 1, 1), ("2", 2, 2), ("3", 3, 3), ("4 or more", 4, 10_000))},
            "errors": http_run["error_count"],
            "rss_now_mb": sum(m.get("rss_mb", 0) for m in http_run["memory"]),
            "anon_now_mb": sum(m.get("anon_mb", 0) for m in http_run["memory"]),
            "rss_peak_mb": http_run["peak_memory"]["anon_mb"] + http_run["peak_memory"]["file_mb"],
            "anon_peak_mb": http_run["peak_memory"]["anon_mb"],
            "processes": len(http_run["memory"]),
            "worker_anon_mb": max((m.get("anon_mb", 0) for m in workers), default=float("nan")),
            "worker_peak_rss_mb": max((m.get("peak_rss_mb", 0) for m in workers), default=float("nan")),
            "first_ms": [r["wall_ms"] for r in first],
            "took_ms": [r.get("took_ms", float("nan")) for r in first],
            "pss_now_mb": sum(m.get("pss_mb", 0) for m in http_run["memory"]),
            "cpu_ms_per_search": http_run["cpu_seconds"]["first"] * 1000 / max(1, len(first)),
            "cpu_ms_per_repeat": http_run["cpu_seconds"]["repeated"] * 1000
            / max(1, sum(len(p) for p in http_run["passes"][1:])),
            "cpu_ms_per_suggest": http_run["cpu_seconds"]["suggest"] * 1000 / max(1, len(http_run["suggest"])),
        }
    # Do the two references find the same articles? (They should: same analyzer, same query tree.)
    runs = size["runs"]
    if "tantivy" in runs and "whoosh" in runs:
        pairs = list(zip(runs["tantivy"]["answers"], runs["whoosh"]["answers"]))
        out["references_agree"] = sum(1 for a, b in pairs if a["total"] == b["total"]
                                      and {k: v for k, v in a["categories"].items() if v}
                                      == {k: v for k, v in b["categories"].items() if v})
        out["references_compared"] = len(pairs)
    out["zero_hits"] = {engine: sum(1 for a in run["answers"] if a["total"] == 0) for engine, run in runs.items()}
    if http_run:
        out["zero_hits"]["http"] = sum(1 for r in http_run["passes"][0] if r.get("total") == 0)
    return out


# --------------------------------------------------------------------------- report


def _ms(value: float) -> str:
    if value != value:
        return "–"
    return f"{value:,.2f}" if value < 10 else f"{value:,.1f}"


def _ratio(a: float, b: float) -> float:
    return a / b if b and b == b and a == a else float("nan")


def _x(value: float) -> str:
    return "–" if value != value else f"{value:.2f}×"


def render_size(size: dict, summary: dict, args: argparse.Namespace) -> str:
    name, indexes = size["size"], size["indexes"]
    engines, http_s = summary["engines"], summary.get("http")
    articles = next(iter(indexes.values()))["articles"]
    megabytes = next(iter(indexes.values()))["megabytes"]
    rows = []
    for engine, figures in engines.items():
        mem = figures["memory"]
        run = size["runs"][engine]
        rows.append([LABELS[engine], "1 (1 thread)", _ms(figures["first"]["p50"]), _ms(figures["first"]["p95"]),
                     _ms(figures["warm"]["p50"]), _ms(figures["warm"]["p95"]),
                     common.fmt(mem.get("peak_rss_mb"), 0), common.fmt(mem.get("rss_mb"), 0),
                     common.fmt(mem.get("anon_mb"), 0), common.fmt(figures["index_mb"], 0), str(figures["segments"]),
                     " / ".join(f"{x:.1f}" for x in run["load_before"][:1] + run["load_after"][:1])])
    if http_s:
        http_run = size["http"]
        procs = f"{http_s['processes']} ({http_run['workers']} workers × 8 threads + supervisor)"
        load = " / ".join(f"{x:.1f}" for x in http_run["load_before"][:1] + http_run["load_after"][:1])
        mem_cells = [common.fmt(http_s["rss_peak_mb"], 0), common.fmt(http_s["rss_now_mb"], 0),
                     common.fmt(http_s["anon_now_mb"], 0), common.fmt(indexes["ours"]["index_mb"], 0),
                     str(engines.get("ours", {}).get("segments", "–"))]
        rows.append(["**ours over HTTP, `serve` defaults: wall time**", procs, f"**{_ms(http_s['wall']['p50'])}**",
                     f"**{_ms(http_s['wall']['p95'])}**", "–", "–", *mem_cells, load])
        rows.append(["… of which the engine (`took_ms`)", "", _ms(http_s["took"]["p50"]), _ms(http_s["took"]["p95"]),
                     "–", "–", "", "", "", "", "", ""])
        rows.append(["… of which the HTTP layer (wall − `took_ms`)", "", _ms(http_s["layer"]["p50"]),
                     _ms(http_s["layer"]["p95"]), "–", "–", "", "", "", "", "", ""])
        rows.append([f"ours over HTTP, the same queries again (cached{'' if http_s['repeated_all_cached'] else ': NOT all'})",
                     "", "–", "–", _ms(http_s["repeated"]["p50"]), _ms(http_s["repeated"]["p95"]),
                     "", "", "", "", "", ""])
        rows.append([f"`/api/suggest`, every prefix as typed, each reader on one connection ({http_s['suggest']['n']:,} "
                     "requests)", "", _ms(http_s["suggest"]["p50"]), _ms(http_s["suggest"]["p95"]), "–", "–",
                     "", "", "", "", "", ""])
        if http_s["suggest_spread"]["n"]:
            rows.append([f"`/api/suggest`, the same with each keystroke on the next connection (a server of its own; "
                         f"{http_s['suggest_spread']['n']:,} requests)", "", _ms(http_s["suggest_spread"]["p50"]),
                         _ms(http_s["suggest_spread"]["p95"]), "–", "–", "", "", "", "", "", ""])
    table = common.markdown_table(
        ["engine (page 1: total, category + year counts, 10 highlighted hits)", "processes",
         "first pass p50 ms", "p95 ms", (f"passes 2–{args.rounds}" if args.rounds > 2 else "pass 2") + " p50 ms", "p95 ms", "peak RSS MB", "RSS now MB",
         "anon MB now", "index MB", "segments", "load avg before / after"],
        rows, align="llrrrrrrrrrl")

    ratio_rows = []
    base = {"tuned Whoosh": engines.get("whoosh"), "tantivy": engines.get("tantivy")}
    ours_rows = []
    if http_s:
        ours_rows.append(("ours over HTTP", http_s["wall"]))
    if "ours" in engines:
        ours_rows.append(("ours in process (fresh build)", engines["ours"]["first"]))
    for label, ours in ours_rows:
        for ref, figures in base.items():
            if figures:
                ratio_rows.append([f"{label} / {ref}", _x(_ratio(ours["p50"], figures["first"]["p50"])),
                                   _x(_ratio(ours["p95"], figures["first"]["p95"]))])
    if "ours" in engines and "ours-merged" in engines:
        ratio_rows.append(["ours in process: fresh build / `optimize`d copy",
                           _x(_ratio(engines["ours"]["first"]["p50"], engines["ours-merged"]["first"]["p50"])),
                           _x(_ratio(engines["ours"]["first"]["p95"], engines["ours-merged"]["first"]["p95"]))])
    if "pair" in summary:
        fresh, merged = summary["pair"]["fresh"], summary["pair"]["merged"]
        ratio_rows.append(["ours in process, side by side in one process (each query on both in turn): fresh build "
                           f"({fresh['p50']:.2f} / {fresh['p95']:.2f} ms) / `optimize`d copy ({merged['p50']:.2f} / "
                           f"{merged['p95']:.2f} ms)", _x(_ratio(fresh["p50"], merged["p50"])),
                           _x(_ratio(fresh["p95"], merged["p95"]))])
    ratios = common.markdown_table(["first pass, latency ratio (< 1: ours faster)", "p50", "p95"], ratio_rows)

    builds = []
    for engine, meta in indexes.items():
        how = "reused" if meta["reused"] else "built in this run"
        builds.append(f"{engine} {how} (built {meta['built_at']}, {meta['build_seconds']:.0f} s with "
                      f"{meta.get('build_procs', '?')} processes)")
    notes = [
        f"### {name}: {articles:,} articles, {megabytes:.1f} MB of text ({size['sample']})",
        "",
        f"- Indexes (cached under `bench/out/speed/`): {'; '.join(builds)}.",
        f"- {size['query_mix']}, each once per pass; {args.rounds} passes for every engine after its one warm-up "
        f"query (`{WARMUP_QUERY}`). Queries with no hit: "
        + ", ".join(f"{k} {v}" for k, v in summary["zero_hits"].items()) + ".",
    ]
    if "references_agree" in summary:
        notes.append(f"- tantivy and tuned Whoosh found the same total and category counts for "
                     f"{summary['references_agree']} of {summary['references_compared']} queries (same analyzer, "
                     "same query tree). Ours finds more for many queries: Traditional/Simplified folding, synonyms, "
                     "substring (bigram) matches.")
    if http_s:
        http_run = size["http"]
        notes.append(f"- Server: ready (every worker warmed) {http_run['ready_seconds']:.1f} s after start; anonymous "
                     f"memory of the largest worker {common.fmt(http_s['worker_anon_mb'], 0)} MB now, its peak RSS "
                     f"{common.fmt(http_s['worker_peak_rss_mb'], 0)} MB; the server's RSS is summed over its "
                     f"processes, so pages they share (jieba's dictionary, loaded before the fork; the mapped index) "
                     f"count once per process: proportional (PSS) total now {common.fmt(http_s['pss_now_mb'], 0)} MB. "
                     f"Server CPU (all its processes) per request: {http_s['cpu_ms_per_search']:.1f} ms per first-pass "
                     f"search, {http_s['cpu_ms_per_repeat']:.1f} ms per repeated (cached) search, "
                     f"{http_s['cpu_ms_per_suggest']:.1f} ms per suggest. Errors (non-200 answers): "
                     f"{http_s['errors']}; first-pass answers that came from the cache: {http_s['cold_misses']}.")
    notes.append("- CPU time / wall time of each in-process engine over its passes (1.0 = one core busy): "
                 + ", ".join(f"{engine} {figures['cpu_per_wall']:.2f}" for engine, figures in engines.items())
                 + ".")
    parts = notes + ["", table, "", ratios, ""]
    if http_s:
        by_chars = http_s["suggest_by_chars"]
        parts += [common.markdown_table(
            ["`/api/suggest` by characters typed", *by_chars],
            [["requests", *(f"{v['n']:,}" for v in by_chars.values())],
             ["p50 ms", *(_ms(v["p50"]) for v in by_chars.values())],
             ["p95 ms", *(_ms(v["p95"]) for v in by_chars.values())],
             ["max ms", *(_ms(v.get("max", float("nan"))) for v in by_chars.values())]]), ""]
    return "\n".join(parts)


def target_rows(sizes: dict[str, dict], summaries: dict[str, dict]) -> list[list[str]]:
    rows = []

    def add(goal: str, size: str, measured: str, ok: bool | None) -> None:
        rows.append([goal, size, measured, "–" if ok is None else ("pass" if ok else "**fail**")])

    for name, summary in summaries.items():
        http_s, engines = summary.get("http"), summary["engines"]
        if http_s:
            if name == "42k":
                add(f"p50 ≤ {TARGETS['http_p50_ms_42k']:g} ms over HTTP", name, f"{_ms(http_s['wall']['p50'])} ms",
                    http_s["wall"]["p50"] <= TARGETS["http_p50_ms_42k"])
                add(f"p95 ≤ {TARGETS['http_p95_ms_42k']:g} ms over HTTP", name, f"{_ms(http_s['wall']['p95'])} ms",
                    http_s["wall"]["p95"] <= TARGETS["http_p95_ms_42k"])
                add(f"`/api/suggest` p95 ≤ {TARGETS['suggest_p95_ms_42k']:g} ms", name,
                    f"{_ms(http_s['suggest']['p95'])} ms", http_s["suggest"]["p95"] <= TARGETS["suggest_p95_ms_42k"])
            add(f"HTTP layer ≤ {TARGETS['http_layer_p50_ms']:g} ms at the median", name,
                f"{_ms(http_s['layer']['p50'])} ms", http_s["layer"]["p50"] <= TARGETS["http_layer_p50_ms"])
            if "whoosh" in engines:
                for point in ("p50", "p95"):
                    speedup = _ratio(engines["whoosh"]["first"][point], http_s["wall"][point])
                    add(f"≥ {TARGETS['vs_whoosh']:g}× faster than tuned Whoosh at {point} (over HTTP)", name,
                        _x(speedup), speedup >= TARGETS["vs_whoosh"])
            if "tantivy" in engines:
                behind = _ratio(http_s["wall"]["p50"], engines["tantivy"]["first"]["p50"])
                add(f"within {TARGETS['vs_tantivy_p50']:g}× of tantivy at p50 (over HTTP)", name,
                    f"{_x(behind)} tantivy's time", behind <= TARGETS["vs_tantivy_p50"])
            if http_s["repeated"]["n"]:
                add(f"repeated query p50 ≤ {TARGETS['repeated_p50_ms']:g} ms over HTTP", name,
                    f"{_ms(http_s['repeated']['p50'])} ms", http_s["repeated"]["p50"] <= TARGETS["repeated_p50_ms"])
            if name == "42k":
                add(f"anonymous RSS per worker ≤ {TARGETS['anon_mb_per_worker_42k']:g} MB", name,
                    f"{common.fmt(http_s['worker_anon_mb'], 0)} MB",
                    http_s["worker_anon_mb"] <= TARGETS["anon_mb_per_worker_42k"])
        if "pair" in summary:
            # Side by side in one process (see pair_worker): the same minutes of the machine for both.
            fresh, merged = summary["pair"]["fresh"], summary["pair"]["merged"]
            worst = max(_ratio(fresh["p50"], merged["p50"]), _ratio(fresh["p95"], merged["p95"]))
            add(f"fresh build ({summary['pair_segments']['fresh']} segment(s)) as fast as `optimize`'s copy "
                f"({summary['pair_segments']['merged']}): p50 and p95 within {TARGETS['fresh_vs_merged']:.2f}× "
                "(in process, side by side)", name, f"{_x(worst)} at worst",
                worst <= TARGETS["fresh_vs_merged"])
        if name == "42k" and "ours" in engines:
            add(f"index ≤ {TARGETS['index_mb_42k']:,.0f} MB (its size before)", name,
                f"{engines['ours']['index_mb']:,.0f} MB", engines["ours"]["index_mb"] <= TARGETS["index_mb_42k"])
    for missing in [n for n in ("4k", "42k") if n not in summaries]:
        add("every goal", missing, "not measured in this run", None)
    return rows


def slowest(size: dict, summary: dict, count: int = 6) -> str:
    http_s = summary.get("http")
    if not http_s:
        return ""
    order = sorted(range(len(size["queries"])), key=lambda i: http_s["first_ms"][i], reverse=True)[:count]
    engines = summary["engines"]
    rows = []
    for i in order:
        rows.append([f"`{size['queries'][i]}`", _ms(http_s["first_ms"][i]), _ms(http_s["took_ms"][i])]
                    + [_ms(engines[e]["first_ms"][i]) if e in engines else "–"
                       for e in ("ours", "whoosh", "tantivy")])
    return common.markdown_table(["slowest over HTTP (first pass)", "wall ms", "took_ms", "ours in process",
                                  "tuned Whoosh", "tantivy"], rows)


def git_state() -> str:
    """The commit measured, and any uncommitted change to the engine's package."""
    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=common.REPO, capture_output=True, text=True)
        return done.stdout

    head = git("rev-parse", "--short=10", "HEAD").strip()
    dirty = [line[3:] for line in git("status", "--porcelain", "--", "search_service").splitlines() if line.strip()]
    if not dirty:
        return f"`{head}` (no uncommitted change under `search_service/`)"
    return (f"`{head}` plus uncommitted changes in the working tree to {len(dirty)} file(s) under "
            f"`search_service/` ({', '.join(f'`{d}`' for d in dirty[:8])}{' …' if len(dirty) > 8 else ''})")


def render(sizes: dict[str, dict], args: argparse.Namespace, command: str, date: str, machine: dict,
           commit: str) -> tuple[str, dict]:
    summaries = {name: summarize(size) for name, size in sizes.items()}
    corpus = "; ".join(f"{name}: {size['sample']}" for name, size in sizes.items())
    versions = dict(machine["versions"], tantivy=common._version("tantivy"))
    machine = dict(machine, versions=versions)
    parts = [
        "## Search: page-1 latency against the strongest baselines",
        "",
        common.provenance(command, date, machine, corpus),
        f"- Code measured: {commit}",
        f"- Load average at the end: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}. The machine is shared "
        "(other people's test suites ran meanwhile): each row shows the 1-minute load average before and after "
        "it ran.",
        "- Engines: **tantivy** (Rust, `tantivy` on PyPI) and **tuned Whoosh** (Whoosh-Reloaded with `chars=True`, "
        "`terms=True`, `PinpointFragmenter`, one cached searcher, `groupedby` over column fields), both with "
        "jieba's `ChineseAnalyzer` tokens and AND semantics (`bench/reference.py`); ours in process "
        "(`SearchEngine.search`, result cache off) on the index `search-service index --rebuild` built and on a "
        "copy merged by `search-service optimize`; ours over HTTP through `search-service serve` with its default "
        "settings (one worker process per core, 8 threads each, result cache, rate limit, analytics, access log).",
        "- Fairness: the same distinct queries (`bench/queries.txt`), each engine in a fresh process of its own "
        "with its index files read into the page cache first, one warm-up query (the same for all; ours also "
        "runs `SearchEngine.warm()`, which `serve` runs before it is ready), then the same number of passes. "
        "**Pass 1 is the headline: first pass over distinct queries, result cache cold.** Later passes: the "
        "in-process engines again without a result cache (median per query); over HTTP the repeated query, which "
        "the default result cache answers. Below the result cache, ours keeps per segment what it decoded "
        "(postings, `docsets.PostingsCache`) and what phrase checks found (`docsets.PhraseCache`), as it does in "
        "service; a query of pass 1 finds there what the queries before it left (the references keep what their "
        "own readers cache). The `/api/suggest` pass follows the search passes on the same "
        "server; each typing session (one query's prefixes) comes over one connection, as from one reader's "
        "browser (a keep-alive connection stays with one worker process); the row below it sends each keystroke on "
        "the next connection instead, to a second server that first answered the same search pass. In-process "
        "engines answer on 1 thread of 1 process; the server runs "
        "one worker per core (2 here) and the client (this benchmark, 1 request at a time over 64 keep-alive "
        "connections from distinct loopback addresses, so the default per-client rate limit never answers 429, "
        "with a browser's User-Agent, so analytics records them as readers') shares the same 2 cores. "
        "Percentiles are over queries (linear interpolation).",
        "- Timed: for the references and ours in process, the whole request from parameters to the page (ours: "
        "`SearchRequest.from_params` + `SearchEngine.search`); over HTTP, from sending the request to the end "
        "of the JSON body at the client; the engine's share is the JSON's `took_ms`, the HTTP layer wall − "
        "`took_ms` (waitress, Flask, hooks, rate limit, analytics, JSON, and this client's own http.client). "
        "RSS: `VmHWM`/`VmRSS`/`RssAnon` of each engine's process after its passes; for the server summed over "
        "its processes (peak sampled every 0.25 s).",
        "",
    ]
    for name, size in sizes.items():
        parts.append(render_size(size, summaries[name], args))
        table = slowest(size, summaries[name])
        if table:
            parts += [table, ""]
    parts += ["### Goals (issue 24)", "",
              common.markdown_table(["goal", "size", "measured", ""], target_rows(sizes, summaries), align="llrl"),
              "", "`python -m bench.search` runs this benchmark too. The former search section compared ours with "
              "`bench/baseline.py` (Whoosh, re-analyzing highlighter: it re-runs jieba over every hit's body), which "
              "measured that baseline's mistake rather than our engine; it is no longer a reference here.", ""]
    return "\n".join(parts), summaries


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", choices=tuple(SIZES), default=list(SIZES),
                        help="corpus sizes to measure (default: 4k 42k)")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES),
                        help="in-process engines to measure (default: all)")
    parser.add_argument("--no-http", dest="http", action="store_false", help="skip ours over HTTP")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the queries for every engine (default 3)")
    parser.add_argument("--queries", type=Path, default=search.QUERIES_FILE, help="queries file")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached indexes")
    parser.add_argument("--build-procs", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="processes for building the reference indexes (ours: its default, all cores)")
    parser.add_argument("--build-only", action="store_true", help="build or check the indexes, measure nothing")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: at most {QUICK_SAMPLE.limit} articles per corpus file, every "
                        f"{QUICK_QUERY_STRIDE}rd query, 2 passes; docs/BENCHMARKS.md untouched")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds = min(args.rounds, 2)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def _worker_args(flag: str, leading: tuple[str, str], argv: list[str]) -> argparse.Namespace:
    """The arguments of a worker child (``--worker`` or ``--pair-worker``): two leading ones,
    where the JSON goes, and the query options."""
    parser = argparse.ArgumentParser(prog=f"python -m bench.speed {flag}")
    for name in leading:
        if name == "engine":
            parser.add_argument(name, choices=ENGINES)
        else:
            parser.add_argument(name, type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        w = _worker_args("--worker", ("engine", "index_dir"), argv[1:])
        worker(w.engine, w.index_dir, w.queries, w.stride, w.rounds, w.out)
        return 0
    if argv[:1] == ["--pair-worker"]:
        w = _worker_args("--pair-worker", ("fresh_dir", "merged_dir"), argv[1:])
        pair_worker(w.fresh_dir, w.merged_dir, w.queries, w.stride, w.rounds, w.out)
        return 0
    args = parse_args(argv)
    common.require_corpora()
    module = "bench.speed" if Path(sys.argv[0]).stem != "search" else "bench.search"
    command, date, machine = common.command_line(module), common.now_utc(), common.machine_info()
    commit = git_state()
    plan = {"quick": QUICK_SAMPLE} if args.quick else {name: SIZES[name] for name in args.sizes}
    sizes = {name: measure_size(name, sample, args) for name, sample in plan.items()}
    if args.build_only:
        for name, size in sizes.items():
            for engine, meta in size["indexes"].items():
                print(f"{name} {engine}: {meta['path']} ({meta['index_mb']:.0f} MB, built {meta['built_at']})")
        return 0
    markdown, summaries = render(sizes, args, command, date, machine, commit)
    raw = {"command": command, "date": date, "machine": machine, "commit": commit, "sizes": sizes,
           "summaries": summaries}
    raw_path = common.save_raw("speed-quick" if args.quick else "speed", raw)
    print(markdown)
    print(f"\nraw numbers: {raw_path.relative_to(common.REPO)}", file=sys.stderr)
    if not (args.quick or args.no_docs):
        common.update_section(SECTION, markdown)
        print(f"updated {common.BENCHMARKS_MD.relative_to(common.REPO)} (section {SECTION})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
