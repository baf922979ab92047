"""Search benchmark: page-1 latency of our engine against the naive baseline, in process and over HTTP.

Run from the project root::

    .venv/bin/python -m bench.search                       # whole corpora (indexes cached in bench/out/)
    .venv/bin/python -m bench.search --index-dir index     # search an existing data folder as "ours"
    .venv/bin/python -m bench.search --quick               # smoke test, about a minute; docs untouched

Every query of ``bench/queries.txt`` is one full page-1 request: total, category and year
facets, ten hits with highlighted snippets.

* cold pass, both: each engine just opened, every query once (also both sides' warm-up);
* ours, uncached: ``SearchEngine.search`` with the result cache cleared before each request
  (its decoded-postings cache warm, as in a running server);
* ours, cached: the same requests again, answered from the cache;
* baseline: :class:`bench.baseline.BaselineSearcher` (``groupedby`` facets, Whoosh's highlighter);
* HTTP: ``search-service serve`` under waitress, 8 concurrent keep-alive clients on loopback,
  with the result cache off and then with the default settings (cache on).

After the cold pass, queries run in warm rounds; ours and the baseline alternate query by
query so both see the same machine noise. A query's latency is the median of its rounds;
percentiles are taken over queries.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import http.client
import inspect
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

from . import baseline, common

SECTION = "search"
QUERIES_FILE = Path(__file__).with_name("queries.txt")
WORK_DIR = common.OUT_DIR / "search"
QUICK_LIMIT = 300
QUICK_QUERY_STRIDE = 3  # --quick times every third query
TARGETS = {"median_ms": 15.0, "p95_ms": 60.0, "speedup": 6.0}
#: Package files (glob patterns) whose changes make a cached index of ours stale.
OURS_FORMAT_FILES = ("schema.py", "analysis.py", "segmenter.py", "pinyin.py", "cleaning.py", "store.py", "segments.py", "data/*")


# --------------------------------------------------------------------------- queries


@dataclasses.dataclass(frozen=True)
class BenchQuery:
    """One line of the queries file: the query text and its filters, as API parameters."""

    line: int
    q: str
    categories: tuple[str, ...] = ()
    date_from: str | None = None
    date_to: str | None = None

    @property
    def params(self) -> dict:
        """Parameters for ``SearchRequest.from_params`` and the baseline."""
        params: dict = {"q": self.q}
        if self.categories:
            params["category"] = list(self.categories)
        if self.date_from:
            params["date_from"] = self.date_from
        if self.date_to:
            params["date_to"] = self.date_to
        return params

    def url(self) -> str:
        """The ``/api/search`` path with this query's parameters."""
        pairs = [("q", self.q)] + [("category", c) for c in self.categories]
        pairs += [(k, v) for k, v in (("date_from", self.date_from), ("date_to", self.date_to)) if v]
        return "/api/search?" + urllib.parse.urlencode(pairs)

    def label(self) -> str:
        filters = [f"category={c}" for c in self.categories]
        filters += [f"{k}={v}" for k, v in (("date_from", self.date_from), ("date_to", self.date_to)) if v]
        return self.q + (f" [{', '.join(filters)}]" if filters else "")

    @property
    def filtered(self) -> bool:
        return bool(self.categories or self.date_from or self.date_to)


def load_queries(path: Path = QUERIES_FILE) -> list[BenchQuery]:
    """Parse the queries file (``q<TAB>key=value…``); exits naming the line of a malformed entry."""
    queries = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        q, *filters = raw.split("\t")
        fields: dict = {"categories": []}
        for item in filters:
            key, sep, value = item.partition("=")
            if not sep or key not in ("category", "date_from", "date_to") or not value:
                sys.exit(f"{path}:{number}: bad filter {item!r}; use category=NAME, date_from=YYYY-MM-DD "
                         "or date_to=YYYY-MM-DD, separated by tabs")
            if key == "category":
                fields["categories"].append(value)
            else:
                fields[key] = value
        queries.append(BenchQuery(number, q.strip(), tuple(fields.pop("categories")), **fields))
    return queries


def query_mix(queries: list[BenchQuery]) -> str:
    """How many queries are filtered, in Traditional script, or mix Latin letters/digits."""
    from search_service.text.analysis import normalize

    traditional = sum(1 for q in queries if normalize(q.q) != q.q.lower())
    latin = sum(1 for q in queries if re.search(r"[A-Za-z0-9]", q.q))
    filtered = sum(1 for q in queries if q.filtered)
    words = [len(q.q.split()) for q in queries]
    return (f"{len(queries)} queries from `bench/queries.txt` ({min(words)}–{max(words)} words; "
            f"{filtered} with category/date filters, {traditional} with Traditional characters, "
            f"{latin} with Latin letters or digits)")


# --------------------------------------------------------------------------- indexes


def _fingerprint(paths) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


def baseline_fingerprint() -> str:
    """Of the code that defines the baseline's index (not of its search code)."""
    source = "".join(inspect.getsource(f) for f in (baseline.schema, baseline.document, baseline.build))
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def ours_fingerprint() -> str:
    import search_service

    package = Path(search_service.__file__).parent
    return _fingerprint(sorted(path for pattern in OURS_FORMAT_FILES for path in package.glob(pattern)
                               if path.is_file()))


@dataclasses.dataclass
class IndexInfo:
    """Where an index is and what went into it."""

    path: Path
    articles: int
    megabytes: float
    index_mb: float
    build_seconds: float | None
    built_at: str
    reused: bool


def _cached(meta_path: Path, fingerprint: str) -> dict | None:
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if meta.get("fingerprint") == fingerprint else None


def prepare_indexes(sample: common.Sample, rebuild: bool, procs: int, ours_dir: Path | None,
                    baseline_dir: Path | None) -> tuple[IndexInfo, IndexInfo]:
    """Our data folder and the baseline index: given, cached under bench/out/search/, or built now."""
    root = WORK_DIR / sample.key()
    ours_path = ours_dir or root / "ours"
    base_path = baseline_dir or root / "baseline"
    ours_meta = None if rebuild or ours_dir else _cached(root / "ours.json", ours_fingerprint())
    if ours_dir is None and ours_meta is None and (root / "ours.json").exists() and not rebuild:
        print("bench.search: the cached index of ours predates a change to "
              f"{', '.join(OURS_FORMAT_FILES)}; rebuilding it", file=sys.stderr)
    base_meta = None if rebuild or baseline_dir else _cached(root / "baseline.json", baseline_fingerprint())
    corpus = None
    if (ours_dir is None and ours_meta is None) or (baseline_dir is None and base_meta is None):
        print(f"bench.search: loading {sample.describe()} to build the indexes …", file=sys.stderr, flush=True)
        corpus = common.load_articles(sample)
    if ours_dir is None and ours_meta is None:
        ours_meta = _build_ours(ours_path, corpus, procs, root / "ours.json")
    if baseline_dir is None and base_meta is None:
        base_meta = _build_baseline(base_path, corpus, procs, root / "baseline.json")
    return (_info_ours(ours_path, ours_meta), _info_baseline(base_path, base_meta))


def _build_ours(path: Path, corpus: common.LoadedCorpus, procs: int, meta_path: Path) -> dict:
    from search_service.engine import indexer
    from search_service.engine.store import IndexStore

    fingerprint = ours_fingerprint()  # of the code that builds it, should it change meanwhile
    shutil.rmtree(path, ignore_errors=True)
    common.initialize_analysis()
    print(f"bench.search: building our index ({corpus.count} articles, procs={procs}) …", file=sys.stderr,
          flush=True)
    result = indexer.rebuild(IndexStore(path), corpus.articles, procs=procs, keep=1)
    return _save_meta(meta_path, fingerprint, corpus, result.seconds)


def adopt_ours(built: Path, sample: common.Sample, corpus: common.LoadedCorpus, seconds: float) -> None:
    """Keep a data folder another benchmark just built from ``sample`` as our cached index for it.

    ``bench.indexing``'s CLI row builds exactly what :func:`_build_ours` would (the same code,
    the same articles), so the search and serving benchmarks reuse it instead of building
    the full corpus again (about 10 minutes on 2 cores).
    """
    fingerprint = ours_fingerprint()
    root = WORK_DIR / sample.key()
    root.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(root / "ours", ignore_errors=True)
    shutil.move(str(built), str(root / "ours"))
    _save_meta(root / "ours.json", fingerprint, corpus, seconds)


def _build_baseline(path: Path, corpus: common.LoadedCorpus, procs: int, meta_path: Path) -> dict:
    fingerprint = baseline_fingerprint()
    shutil.rmtree(path, ignore_errors=True)
    baseline.initialize(common.CACHE_DIR)
    print(f"bench.search: building the baseline index ({corpus.count} articles, procs={procs}, merged into "
          "one segment) …", file=sys.stderr, flush=True)
    started = time.perf_counter()
    baseline.build(path, corpus.articles, procs=procs)
    return _save_meta(meta_path, fingerprint, corpus, time.perf_counter() - started)


def _save_meta(meta_path: Path, fingerprint: str, corpus: common.LoadedCorpus, seconds: float) -> dict:
    meta = {"fingerprint": fingerprint, "articles": corpus.count, "megabytes": corpus.megabytes,
            "build_seconds": seconds, "built_at": common.now_utc(), "fresh": True}
    meta_path.parent.mkdir(parents=True, exist_ok=True)
    meta_path.write_text(json.dumps({k: v for k, v in meta.items() if k != "fresh"}), encoding="utf-8")
    return meta


def _info_ours(path: Path, meta: dict | None) -> IndexInfo:
    from search_service.engine.store import IndexStore

    store = IndexStore(path)
    current = store.current_path()
    if current is None:
        sys.exit(f"bench.search: {path} holds no published index generation (no CURRENT file); "
                 "build one with `search-service --index-dir DIR index --rebuild PATH`")
    if meta is None:  # a data folder given with --index-dir: describe it from its build info
        info = store.build_info()
        meta = {"articles": info.get("documents", 0), "megabytes": info.get("megabytes", 0.0),
                "build_seconds": info.get("seconds"), "built_at": info.get("built_at", "?")}
    return IndexInfo(path, meta["articles"], meta["megabytes"], common.dir_megabytes(current),
                     meta.get("build_seconds"), meta["built_at"], not meta.get("fresh"))


def _info_baseline(path: Path, meta: dict | None) -> IndexInfo:
    from whoosh import index as whoosh_index

    if not whoosh_index.exists_in(str(path)):
        sys.exit(f"bench.search: no Whoosh index in {path}")
    if meta is None:
        ix = whoosh_index.open_dir(str(path))
        meta = {"articles": ix.doc_count(), "megabytes": float("nan"), "built_at": "?"}
        ix.close()
    return IndexInfo(path, meta["articles"], meta["megabytes"], common.dir_megabytes(path),
                     meta.get("build_seconds"), meta["built_at"], not meta.get("fresh"))


# --------------------------------------------------------------------------- in-process latency


@dataclasses.dataclass
class QueryTiming:
    """Every timed run of one query, in milliseconds, and what it found."""

    query: BenchQuery
    ours: list[float] = dataclasses.field(default_factory=list)
    ours_cached: list[float] = dataclasses.field(default_factory=list)
    baseline: list[float] = dataclasses.field(default_factory=list)
    baseline_no_snippets: list[float] = dataclasses.field(default_factory=list)
    ours_cold: float = 0.0
    baseline_cold: float = 0.0
    ours_total: int = 0
    baseline_total: int = 0
    ours_relaxed: str | None = None


class OursRunner:
    """Our engine in process, with a result cache that :meth:`run` clears or expects to hit."""

    def __init__(self, index_dir: Path) -> None:
        from search_service.engine import request as query
        from search_service.engine import searcher

        common.initialize_analysis()
        self._request = lambda params: query.SearchRequest.from_params(query.get_list_from_mapping(params))
        self.engine = searcher.SearchEngine(index_dir, searcher.EngineOptions(cache_entries=100_000))
        self.engine.snapshot()  # open the index and build the facet arrays before any timing

    def run(self, query: BenchQuery, mode: str = "uncached") -> tuple[float, object]:
        """Time one request (validation + search). ``mode``: ``uncached`` clears the cache first,
        ``fill`` leaves it alone, ``cached`` fails unless the answer comes from the cache."""
        if mode == "uncached":
            self.engine.cache.clear()
        started = time.perf_counter()
        results = self.engine.search(self._request(query.params))
        elapsed = (time.perf_counter() - started) * 1000
        if mode == "cached" and not results.cached:
            raise AssertionError(f"expected a cached result for {query.label()}")
        return elapsed, results


class BaselineRunner:
    """The baseline in process."""

    def __init__(self, index_dir: Path) -> None:
        baseline.initialize(common.CACHE_DIR)
        self.searcher = baseline.BaselineSearcher(index_dir)

    def run(self, query: BenchQuery, snippets: bool = True) -> tuple[float, dict]:
        started = time.perf_counter()
        results = self.searcher.search(query.params, snippets=snippets)
        return (time.perf_counter() - started) * 1000, results


def measure_in_process(queries: list[BenchQuery], ours: OursRunner, base: BaselineRunner,
                       rounds: int, baseline_rounds: int) -> list[QueryTiming]:
    """A cold pass, then ``rounds`` warm rounds of ours (uncached and cached) and ``baseline_rounds``
    of the baseline: both sides get the same treatment.

    Cold: each engine freshly opened (index open, dictionary loaded; ours' decoded-postings and
    result caches empty), every query once, ours and the baseline alternating query by query.
    That pass is also the warm-up of both. Warm: the same queries again; ours with its result
    cache cleared before each request (its decoded-postings cache stays warm, as in a running
    server), the baseline as it is (it has no cache of its own; both have the page cache).
    """
    timings = [QueryTiming(q) for q in queries]
    print(f"bench.search: cold pass ({len(queries)} queries, both engines) …", file=sys.stderr, flush=True)
    for timing in timings:
        timing.ours_cold = ours.run(timing.query)[0]
        timing.baseline_cold = base.run(timing.query)[0]
    total_rounds = max(rounds, baseline_rounds)
    for round_number in range(total_rounds):
        print(f"bench.search: round {round_number + 1}/{total_rounds} …", file=sys.stderr, flush=True)
        for timing in timings:
            if round_number < rounds:
                elapsed, results = ours.run(timing.query)
                timing.ours.append(elapsed)
                timing.ours_total, timing.ours_relaxed = results.total, results.relaxed
            if round_number < baseline_rounds:
                elapsed, found = base.run(timing.query)
                timing.baseline.append(elapsed)
                timing.baseline_total = found["total"]
                timing.baseline_no_snippets.append(base.run(timing.query, snippets=False)[0])
    for timing in timings:  # fill the cache (each uncached run above cleared it), then time hits
        ours.run(timing.query, mode="fill")
    for _ in range(rounds):
        for timing in timings:
            timing.ours_cached.append(ours.run(timing.query, mode="cached")[0])
    return timings


def latency_stats(per_query_ms: list[float]) -> dict:
    """Median, p90, p95, p99, mean and max of per-query latencies."""
    stats = {f"p{p}": v for p, v in common.percentiles(per_query_ms).items()}
    stats["mean"] = sum(per_query_ms) / len(per_query_ms)
    stats["max"] = max(per_query_ms)
    return stats


# --------------------------------------------------------------------------- HTTP


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: Settings of every benchmarked server; everything else keeps its default (access log, analytics …).
SERVER_ENV = {
    "SEARCH_SERVICE_HOST": "127.0.0.1",
    "SEARCH_SERVICE_CACHE_DIR": str(common.CACHE_DIR),
    # The per-client rate limit would answer most of 8 loopback clients' requests with 429.
    "SEARCH_SERVICE_RATE_LIMIT": "",
    # Search analytics stay on (the default) but never write into a data folder given with --index-dir.
    "SEARCH_SERVICE_ANALYTICS_DB": str(WORK_DIR / "analytics.sqlite3"),
}


class Server:
    """``search-service serve`` as a child process on a free loopback port."""

    def __init__(self, index_dir: Path, env_overrides: dict[str, str]) -> None:
        self.port = _free_port()
        executable = Path(sys.executable).with_name("search-service")
        env = dict(os.environ, **SERVER_ENV, **env_overrides)
        self.log_path = WORK_DIR / f"server-{self.port}.log"
        WORK_DIR.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [str(executable), "--index-dir", str(index_dir), "serve", "--port", str(self.port)],
            cwd=common.REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Poll ``GET /healthz`` until 200; raises RuntimeError with the server's output when it dies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with status {self.process.returncode}: {self.output_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"/healthz did not answer 200 within {timeout:.0f} s: {self.output_tail()}")

    def output_tail(self, lines: int = 8) -> str:
        self._log.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "(no output)"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def load_test(port: int, queries: list[BenchQuery], clients: int, seconds: float, max_requests: int) -> dict:
    """``clients`` threads with keep-alive connections cycle through the queries until time or count runs out."""
    paths = itertools.cycle([q.url() for q in queries])
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    issued = 0
    start_gate = threading.Barrier(clients + 1)
    deadline = 0.0

    def next_path() -> str | None:
        nonlocal issued
        with lock:
            if issued >= max_requests or time.perf_counter() >= deadline:
                return None
            issued += 1
            return next(paths)

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        start_gate.wait()
        mine: list[float] = []
        while (path := next_path()) is not None:
            started = time.perf_counter()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    errors.append(f"HTTP {response.status} for {path}")
                    continue
                mine.append((time.perf_counter() - started) * 1000)
            except (OSError, http.client.HTTPException) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    deadline = started + seconds  # set before the gate lets the clients go
    start_gate.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    stats = common.percentiles(latencies, (50, 99)) if latencies else {50: float("nan"), 99: float("nan")}
    return {
        "clients": clients, "seconds": elapsed, "requests": len(latencies) + len(errors), "ok": len(latencies),
        "errors": len(errors), "error_examples": errors[:5], "requests_per_second": len(latencies) / elapsed,
        "p50_ms": stats[50], "p99_ms": stats[99],
    }


def measure_http(index_dir: Path, queries: list[BenchQuery], clients: int, seconds: float,
                 max_requests: int) -> list[dict]:
    """Load-test the server with its result cache off, then with the default settings."""
    runs = []
    for label, env in (("cache off (SEARCH_SERVICE_CACHE_ENTRIES=0)", {"SEARCH_SERVICE_CACHE_ENTRIES": "0"}),
                       ("default settings (result cache on)", {})):
        print(f"bench.search: HTTP, {label} …", file=sys.stderr, flush=True)
        server = Server(index_dir, env)
        try:
            server.wait_ready()
            # Warm-up: every thread's searcher, and (cache on) one pass so cached means cached.
            warm = load_test(server.port, queries, clients, seconds=60, max_requests=len(queries))
            result = load_test(server.port, queries, clients, seconds, max_requests)
            result.update(label=label, warmup_errors=warm["errors"])
        except RuntimeError as exc:
            result = {"label": label, "failed": str(exc)}
            print(f"bench.search: HTTP {label} failed: {exc}", file=sys.stderr)
        finally:
            server.stop()
        runs.append(result)
    return runs


# --------------------------------------------------------------------------- report


def render(timings: list[QueryTiming], http_runs: list[dict] | None, ours: IndexInfo, base: IndexInfo,
           queries: list[BenchQuery], args: argparse.Namespace, source: str, machine: dict, command: str,
           date: str) -> tuple[str, dict]:
    """The markdown of the search section, and the summary numbers for the raw file."""
    ours_ms = [common.median(t.ours) for t in timings]
    cached_ms = [common.median(t.ours_cached) for t in timings]
    base_ms = [common.median(t.baseline) for t in timings]
    base_bare_ms = [common.median(t.baseline_no_snippets) for t in timings]
    summary = {"ours_uncached": latency_stats(ours_ms), "ours_cached": latency_stats(cached_ms),
               "baseline": latency_stats(base_ms), "baseline_no_snippets": latency_stats(base_bare_ms),
               "ours_cold": latency_stats([t.ours_cold for t in timings]),
               "baseline_cold": latency_stats([t.baseline_cold for t in timings])}
    summary["speedup_median_cold"] = summary["baseline_cold"]["p50"] / summary["ours_cold"]["p50"]
    speedup = summary["baseline"]["p50"] / summary["ours_uncached"]["p50"]
    summary["speedup_median"] = speedup
    per_query_ratio = common.median(b / o for b, o in zip(base_ms, ours_ms))
    summary["per_query_ratio_median"] = per_query_ratio

    def row(name: str, stats: dict) -> list[str]:
        return [name] + [common.fmt(stats[k], 1 if stats[k] >= 1 else 3)
                         for k in ("p50", "p90", "p95", "p99", "mean", "max")]

    latency = common.markdown_table(
        ["engine (in process, page 1: total + facets + 10 snippets)", "median ms", "p90", "p95", "p99", "mean",
         "max"],
        [row("cold pass: ours (engine just opened, every cache empty)", summary["ours_cold"]),
         row("cold pass: baseline (index just opened)", summary["baseline_cold"]),
         row("warm: ours, uncached (result cache cleared before each request)", summary["ours_uncached"]),
         row("ours, cached (same requests again)", summary["ours_cached"]),
         row("warm: baseline (Whoosh + ChineseAnalyzer, groupedby, highlighter)", summary["baseline"]),
         row("baseline without snippets (for reference: search + groupedby only)",
             summary["baseline_no_snippets"])],
    )
    bare_speedup = summary["baseline_no_snippets"]["p50"] / summary["ours_uncached"]["p50"]
    summary["speedup_median_vs_baseline_no_snippets"] = bare_speedup
    met = lambda ok: "yes" if ok else "**no**"  # noqa: E731
    uncached = summary["ours_uncached"]
    targets = common.markdown_table(
        ["target", "measured", "met"],
        [["ours uncached median ≤ 15 ms", f"{uncached['p50']:.1f} ms", met(uncached["p50"] <= TARGETS["median_ms"])],
         ["ours uncached p95 ≤ 60 ms", f"{uncached['p95']:.1f} ms", met(uncached["p95"] <= TARGETS["p95_ms"])],
         ["≥ 6× faster than the baseline (median / median)", f"{speedup:.1f}×", met(speedup >= TARGETS["speedup"])]],
        align="lrl",
    )
    slowest = sorted(timings, key=lambda t: common.median(t.ours), reverse=True)[:8]
    slow_table = common.markdown_table(
        ["slowest queries, ours uncached", "ours ms", "baseline ms", "ours total", "baseline total"],
        [[f"`{t.query.label()}`" + (f" (relaxed: {t.ours_relaxed})" if t.ours_relaxed else ""),
          common.fmt(common.median(t.ours)), common.fmt(common.median(t.baseline)),
          f"{t.ours_total:,}", f"{t.baseline_total:,}"] for t in slowest],
    )
    zero_ours = sum(1 for t in timings if t.ours_total == 0)
    zero_base = sum(1 for t in timings if t.baseline_total == 0)
    corpus = (f"{ours.articles:,} articles, {ours.megabytes:.1f} MB of text ({source}); "
              f"our index {ours.index_mb:.0f} MB on disk, baseline index {base.index_mb:.0f} MB")
    builds = []
    for name, info in (("ours", ours), ("baseline", base)):
        how = "reused from" if info.reused else "built in this run into"
        took = f", build {info.build_seconds:.0f} s" if info.build_seconds else ""
        builds.append(f"{name} {how} `{_display_path(info.path)}` (built {info.built_at}{took})")
    parts = [
        "## Search: page-1 latency",
        "",
        common.provenance(command, date, machine, corpus),
        f"- Indexes: {'; '.join(builds)}.",
        f"- Queries: {query_mix(queries)}. First a cold pass (each engine just opened: every query once, ours "
        "and the baseline alternating query by query), which is also both sides' warm-up; then "
        f"{args.rounds} warm round(s) of ours and {args.baseline_rounds} of the baseline, alternating query by "
        "query; a query's latency is the median of its rounds, percentiles are over queries. "
        "Timed: `SearchRequest.from_params` + `SearchEngine.search` for ours; parse + search + `len()` + "
        "facet groups + `hit.highlights` for the baseline.",
        f"- Queries with no hit: ours {zero_ours}, baseline {zero_base}"
        + (" (the baseline does not fold Traditional/Simplified: Traditional queries miss Simplified text "
           "and vice versa)." if zero_base > zero_ours else ".")
        + " Totals differ: ours also counts substring (bigram) matches and synonyms.",
        "",
        latency,
        "",
        f"Cold pass, baseline median / ours median: **{summary['speedup_median_cold']:.1f}×**. "
        f"Warm, baseline median / ours uncached median: **{speedup:.1f}×** (median of per-query ratios: "
        f"{per_query_ratio:.1f}×). Without its highlighter (which re-runs jieba over every hit's stored body) "
        f"the baseline's median is {summary['baseline_no_snippets']['p50']:,.1f} ms: ours with snippets is "
        + (f"{bare_speedup:.1f}× faster." if bare_speedup >= 1 else f"{1 / bare_speedup:.1f}× slower."),
        "",
        targets,
        "",
        slow_table,
        "",
    ]
    if http_runs is not None:
        parts += ["### Over HTTP (waitress, loopback)", "", http_table(http_runs, args), ""]
    return "\n".join(parts), summary


def http_table(runs: list[dict], args: argparse.Namespace) -> str:
    """Requests/s and latency per server configuration."""
    rows = []
    for run in runs:
        if "failed" in run:
            rows.append([run["label"], "–", "–", "–", "–", "–", f"server failed: {run['failed'][:200]}"])
            continue
        note = f"e.g. {run['error_examples'][0]}" if run["errors"] else ""
        rows.append([run["label"], f"{run['requests']:,} in {run['seconds']:.1f} s",
                     common.fmt(run["requests_per_second"], 1), common.fmt(run["p50_ms"], 1),
                     common.fmt(run["p99_ms"], 1), str(run["errors"]), note])
    table = common.markdown_table(["server", "requests", "requests/s (200s)", "p50 ms", "p99 ms", "errors", "note"],
                                  rows, align="lrrrrrl")
    overrides = ", ".join(f"`{k}={_display_path(Path(v)) if os.path.isabs(v) else v}`" for k, v in SERVER_ENV.items())
    return "\n".join([
        f"`search-service serve` (waitress) as a child process on a free loopback port, with {overrides} "
        "and otherwise the project's settings (config.toml and defaults: 8 threads, access log, analytics).",
        f"{args.http_clients} client threads with keep-alive connections cycle through the queries "
        f"(`GET /api/search?…`; any answer but 200 counts as an error) for {args.http_seconds:.0f} s or "
        f"{args.http_max_requests:,} requests, after an untimed pass over every query. The clients share the "
        "server's 2 CPUs, so these are lower bounds for a server with the machine to itself.",
        "",
        table,
    ])


def _display_path(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(common.REPO))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__.split("\n\n")[0])
    common.add_sample_arguments(parser, fraction=1.0)
    parser.add_argument("--index-dir", type=Path, metavar="DIR",
                        help="our data folder to search (default: built from the sample, cached in bench/out/search/)")
    parser.add_argument("--baseline-dir", type=Path, metavar="DIR",
                        help="an existing baseline index (default: built from the sample, cached)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached indexes even if they look current")
    parser.add_argument("--build-procs", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="processes for building the indexes (default: os.cpu_count())")
    parser.add_argument("--queries", type=Path, default=QUERIES_FILE, help="queries file (default bench/queries.txt)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds of ours per query (default 5)")
    parser.add_argument("--baseline-rounds", type=int, default=1,
                        help="timed rounds of the baseline after its warm-up pass (default 1: it is slow)")
    parser.add_argument("--http-clients", type=int, default=8, help="concurrent HTTP clients (default 8)")
    parser.add_argument("--http-seconds", type=float, default=20.0, help="duration of each HTTP run (default 20)")
    parser.add_argument("--http-max-requests", type=int, default=20_000, help="request cap per HTTP run")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP measurement")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: at most {QUICK_LIMIT} articles per corpus file, every "
                        f"{QUICK_QUERY_STRIDE}rd query, 1 round, 5 s of HTTP; docs/BENCHMARKS.md untouched")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.limit = args.limit or QUICK_LIMIT
        args.rounds, args.baseline_rounds, args.http_seconds = 1, 1, 5.0
    if args.rounds < 1 or args.baseline_rounds < 1:
        parser.error("--rounds and --baseline-rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command, date, machine = common.command_line("bench.search"), common.now_utc(), common.machine_info()
    sample = common.sample_from_args(args)
    source = sample.describe() if args.index_dir is None else f"data folder {args.index_dir}"
    if args.index_dir is None or args.baseline_dir is None:
        common.require_corpora()
    queries = load_queries(args.queries)
    if args.quick:
        queries = queries[::QUICK_QUERY_STRIDE]
    ours_info, base_info = prepare_indexes(sample, args.rebuild, args.build_procs, args.index_dir, args.baseline_dir)

    ours_runner = OursRunner(ours_info.path)
    base_runner = BaselineRunner(base_info.path)
    timings = measure_in_process(queries, ours_runner, base_runner, args.rounds, args.baseline_rounds)
    base_runner.searcher.close()

    http_runs = None if args.no_http else measure_http(ours_info.path, queries, args.http_clients,
                                                       args.http_seconds, args.http_max_requests)
    markdown, summary = render(timings, http_runs, ours_info, base_info, queries, args, source, machine,
                               command, date)
    raw = {
        "command": command, "date": date, "machine": machine, "corpus": source,
        "indexes": {"ours": dataclasses.asdict(ours_info), "baseline": dataclasses.asdict(base_info)},
        "summary": summary, "http": http_runs,
        "queries": [{"query": t.query.label(), "line": t.query.line, "ours_ms": t.ours,
                     "ours_cached_ms": t.ours_cached, "baseline_ms": t.baseline,
                     "baseline_no_snippets_ms": t.baseline_no_snippets, "ours_total": t.ours_total,
                     "baseline_total": t.baseline_total, "ours_relaxed": t.ours_relaxed} for t in timings],
    }
    raw_path = common.save_raw("search-quick" if args.quick else "search", raw)
    print(markdown)
    print(f"\nraw numbers: {raw_path.relative_to(common.REPO)}", file=sys.stderr)
    if not (args.quick or args.no_docs):
        common.update_section(SECTION, markdown)
        print(f"updated {common.BENCHMARKS_MD.relative_to(common.REPO)} (section {SECTION})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
