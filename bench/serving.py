"""Serving benchmark: memory, throughput with worker processes, the first pass, and how cost grows.

Run from the project root::

    .venv/bin/python -m bench.serving                 # whole corpora (indexes cached in bench/out/)
    .venv/bin/python -m bench.serving --quick         # smoke test on a small sample; docs untouched

Sections written into ``docs/BENCHMARKS.md`` (``bench:serving-memory``, ``-workers``,
``-first-pass``, ``-scaling``; a run rewrites only the parts it measured):

* **Memory**: ``search-service serve`` (the real server, a child process) after the same
  warm-up and 8-client workload, with 1 and 8 threads (one process), then 1 and 2 worker
  processes of 8 threads; anonymous (``RssAnon``, private heap) and file-backed
  (``RssFile``, the mapped index in the page cache, shared) memory from
  ``/proc/PID/status``, summed over the supervisor and its workers.
* **Throughput**: uncached searches per second over HTTP (result cache off), 8 keep-alive
  clients, ``workers=2`` against ``workers=1`` in the same run.
* **First pass**: a fresh server, as soon as ``/healthz`` says ok, one client sends each
  query once (cache off); against the naive baseline's first pass in process on a freshly
  opened index (``bench.baseline``), as in the issue.
* **Scaling**: our engine in a fresh process with one thread (``SearchEngine.warm`` first,
  as the server does) on samples of about 5k, 10k, 20k and all 42k articles: index size,
  first search, first-pass p50/p95 and memory. ``docs/SCALING.md`` projects it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from . import common, search

SECTIONS = ("serving-memory", "serving-workers", "serving-first-pass", "serving-scaling")
WORK_DIR = common.OUT_DIR / "search"
SCALING_FRACTIONS = (0.12, 0.24, 0.48, 1.0)
QUICK_FRACTIONS = (0.01, 0.02)
TARGETS = {"workers_speedup": 1.6, "first_pass_p50_speedup": 6.0, "first_pass_p95_speedup": 4.0}


# --------------------------------------------------------------------------- indexes


def ours_index(sample: common.Sample, procs: int) -> tuple[Path, dict]:
    """Our data folder for ``sample``: cached under bench/out/search/<sample>/ours, or built now."""
    root = WORK_DIR / sample.key()
    meta = search._cached(root / "ours.json", search.ours_fingerprint())
    if meta is None:
        corpus = common.load_articles(sample)
        meta = search._build_ours(root / "ours", corpus, procs, root / "ours.json")
    return root / "ours", meta


# --------------------------------------------------------------------------- memory of a process tree


process_memory = common.tree_memory


class Server(search.Server):
    """``search-service serve`` with explicit threads and workers."""

    def __init__(self, index_dir: Path, threads: int, workers: int, env: dict[str, str] | None = None) -> None:
        super().__init__(index_dir, {"SEARCH_SERVICE_THREADS": str(threads), "SEARCH_SERVICE_WORKERS": str(workers),
                                     **(env or {})})
        self.threads, self.workers = threads, workers

    def wait_all_workers(self, timeout: float = 300.0) -> None:
        """/healthz answers as soon as one worker is up: wait until every worker logged it serves."""
        self.wait_ready(timeout)
        deadline = time.monotonic() + timeout
        while self.workers > 1 and time.monotonic() < deadline:
            self._log.flush()
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
            if text.count(" serving on http") - text.count(f"with {self.workers} workers") >= self.workers:
                return
            time.sleep(0.25)


# --------------------------------------------------------------------------- measurements


def measure_memory(index_dir: Path, queries: list, seconds: float) -> list[dict]:
    """Memory after the same warm-up and load, for (threads, workers) = (1,1), (8,1), (8,2)."""
    rows = []
    for threads, workers in ((1, 1), (8, 1), (8, 2)):
        label = f"{workers} worker{'s' if workers > 1 else ''} × {threads} thread{'s' if threads > 1 else ''}"
        print(f"bench.serving: memory, {label} …", file=sys.stderr, flush=True)
        server = Server(index_dir, threads, workers, {"SEARCH_SERVICE_CACHE_ENTRIES": "0"})
        try:
            server.wait_all_workers()
            ready = process_memory(server.process.pid)
            load = search.load_test(server.port, queries, 8, seconds, 100_000)
            after = process_memory(server.process.pid)
            rows.append({"label": label, "threads": threads, "workers": workers, "ready": ready, "after": after,
                         "requests": load["ok"], "errors": load["errors"]})
        finally:
            server.stop()
    return rows


def measure_throughput(index_dir: Path, queries: list, seconds: float, clients: int) -> list[dict]:
    """Uncached searches/s over HTTP with ``clients`` clients, workers=1 then workers=2 (cache off)."""
    runs = []
    for workers in (1, 2):
        print(f"bench.serving: throughput, workers={workers} …", file=sys.stderr, flush=True)
        server = Server(index_dir, 8, workers, {"SEARCH_SERVICE_CACHE_ENTRIES": "0"})
        try:
            server.wait_all_workers()
            search.load_test(server.port, queries, clients, seconds=60, max_requests=len(queries))  # warm
            result = search.load_test(server.port, queries, clients, seconds, 1_000_000)
            result["memory"] = process_memory(server.process.pid)
            result["workers"] = workers
        finally:
            server.stop()
        runs.append(result)
    return runs


def _get(port: int, path: str, conn: http.client.HTTPConnection | None = None) -> tuple[float, int]:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    started = time.perf_counter()
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    elapsed = (time.perf_counter() - started) * 1000
    if own:
        conn.close()
    return elapsed, response.status


def measure_first_pass(index_dir: Path, queries: list) -> dict:
    """A fresh one-process server: each query once, in order, as soon as /healthz says ok (cache off)."""
    print("bench.serving: first pass over HTTP …", file=sys.stderr, flush=True)
    server = Server(index_dir, 8, 1, {"SEARCH_SERVICE_CACHE_ENTRIES": "0"})
    try:
        started = time.perf_counter()
        server.wait_ready(300)
        ready_seconds = time.perf_counter() - started
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        latencies, statuses = [], []
        for query in queries:
            elapsed, status = _get(server.port, query.url(), conn)
            latencies.append(elapsed)
            statuses.append(status)
        conn.close()
        memory = process_memory(server.process.pid)
    finally:
        server.stop()
    stats = common.percentiles(latencies, (50, 95))
    return {"ready_seconds": ready_seconds, "first_ms": latencies[0], "p50_ms": stats[50], "p95_ms": stats[95],
            "errors": sum(1 for s in statuses if s != 200), "memory": memory, "latencies": latencies}


def spread(queries: list, count: int | None) -> list[int]:
    """Indexes of ``count`` queries evenly spread over ``queries`` (all of them when None or more)."""
    if count is None or count >= len(queries):
        return list(range(len(queries)))
    return [i * len(queries) // count for i in range(count)]


def baseline_first_pass(baseline_dir: Path, indexes: list[int]) -> dict:
    """The naive baseline's first pass over the queries at ``indexes``, in a fresh process
    (its index opened, jieba loaded, nothing else)."""
    print("bench.serving: baseline first pass (fresh process) …", file=sys.stderr, flush=True)
    code = (
        "import json, sys, time\n"
        "from bench import baseline, common, search\n"
        "baseline.initialize(common.CACHE_DIR)\n"
        f"s = baseline.BaselineSearcher({str(baseline_dir)!r})\n"
        f"queries = [search.load_queries()[i] for i in {indexes!r}]\n"
        "out = []\n"
        "for q in queries:\n"
        "    t = time.perf_counter(); s.search(q.params); out.append((time.perf_counter() - t) * 1000)\n"
        "status = open('/proc/self/status').read()\n"
        "json.dump({'latencies': out, 'status': status}, sys.stdout)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=common.REPO, capture_output=True, text=True, check=True)
    data = json.loads(done.stdout)
    fields = dict(line.split(":", 1) for line in data["status"].splitlines() if ":" in line)
    stats = common.percentiles(data["latencies"], (50, 95))
    return {"first_ms": data["latencies"][0], "p50_ms": stats[50], "p95_ms": stats[95],
            "memory": {"anon_mb": int(fields["RssAnon"].split()[0]) / 1024,
                       "file_mb": int(fields["RssFile"].split()[0]) / 1024},
            "latencies": data["latencies"]}


_SCALING_CHILD = """
import json, sys, time
t0 = time.perf_counter()
from bench import common, search
from search_service.engine import request as query, searcher
common.initialize_analysis()
engine = searcher.SearchEngine(sys.argv[1], searcher.EngineOptions(cache_entries=0))
warm = engine.warm()
ready = time.perf_counter() - t0
request = lambda params: query.SearchRequest.from_params(query.get_list_from_mapping(params))
out = []
for q in search.load_queries():
    t = time.perf_counter(); engine.search(request(q.params)); out.append((time.perf_counter() - t) * 1000)
status = open('/proc/self/status').read()
json.dump({'latencies': out, 'status': status, 'warm_seconds': warm, 'ready_seconds': ready}, sys.stdout)
"""


def measure_scaling(samples: list[tuple[common.Sample, Path, dict]]) -> list[dict]:
    """Per sample: a fresh process, warm-up, then each query once with one thread (cache off)."""
    rows = []
    for sample, path, meta in samples:
        print(f"bench.serving: scaling, {meta['articles']} articles …", file=sys.stderr, flush=True)
        done = subprocess.run([sys.executable, "-c", _SCALING_CHILD, str(path)], cwd=common.REPO,
                              capture_output=True, text=True, check=True)
        data = json.loads(done.stdout)
        fields = dict(line.split(":", 1) for line in data["status"].splitlines() if ":" in line)
        stats = common.percentiles(data["latencies"], (50, 95))
        current = path / "generations" / (path / "CURRENT").read_text().strip()
        rows.append({"fraction": sample.fraction, "articles": meta["articles"], "text_mb": meta["megabytes"],
                     "index_mb": common.dir_megabytes(current), "first_ms": data["latencies"][0],
                     "p50_ms": stats[50], "p95_ms": stats[95], "ready_seconds": data["ready_seconds"],
                     "anon_mb": int(fields["RssAnon"].split()[0]) / 1024,
                     "file_mb": int(fields["RssFile"].split()[0]) / 1024})
    return rows


# --------------------------------------------------------------------------- report


def render(result: dict, command: str, machine: dict) -> dict[str, str]:
    """The markdown of each measured part, keyed by its section name in docs/BENCHMARKS.md."""
    fmt = common.fmt
    head = [common.provenance(command, result["date"], machine, result["corpus"]), ""]
    index_mb = result["index_mb"]
    head += [f"Index on disk: {fmt(index_mb, 0)} MB ({result['articles']:,} articles, non-compound segments "
             "read through mmap). Every server is a child process `search-service serve` on loopback with "
             "the result cache off (`SEARCH_SERVICE_CACHE_ENTRIES=0`) and the rate limit off; the page "
             "cache already holds the index (built or read minutes before: warm disk) for every row and "
             "for the baseline alike.", ""]
    sections = {}
    mem = result.get("memory")
    if mem:
        lines = list(head)
        lines += ["Anonymous (`RssAnon`: heap, private to a process) and file-backed (`RssFile`: the mapped "
                  "index in the page cache, shared by threads and processes) memory, summed over the "
                  f"supervisor and its workers, when `/healthz` first says ok (warmed) and after "
                  f"{result['memory_seconds']:.0f} s of 8 clients searching (uncached).", ""]
        rows = [[m["label"], m["after"]["processes"], fmt(m["ready"]["anon_mb"], 0), fmt(m["ready"]["file_mb"], 0),
                 fmt(m["after"]["anon_mb"], 0), fmt(m["after"]["file_mb"], 0), f"{m['requests']:,}", m["errors"]]
                for m in mem]
        lines.append(common.markdown_table(
            ["server", "processes", "anon MB ready", "file MB ready", "anon MB after load", "file MB after load",
             "requests", "errors"], rows))
        one = next(m for m in mem if m["threads"] == 1)["after"]["anon_mb"]
        eight = next(m for m in mem if m["threads"] == 8 and m["workers"] == 1)["after"]["anon_mb"]
        lines += ["", f"Eight warm threads against one: {eight - one:+,.0f} MB anonymous (goal ≤ +80 MB); "
                  f"{eight:,.0f} MB against the index's {index_mb:,.0f} MB on disk + 300 "
                  f"(goal ≤ {index_mb + 300:,.0f} MB). Before this change each thread's first search "
                  "copied the compound segments into its heap (issue 12: +1.87 GB anonymous per thread at "
                  "42,180 articles)."]
        sections["serving-memory"] = "\n".join(lines)
    runs = result.get("throughput")
    if runs:
        one, two = runs
        ratio = two["requests_per_second"] / one["requests_per_second"] if one["requests_per_second"] else float("nan")
        lines = list(head)
        lines += [f"Uncached searches per second, 8 keep-alive clients; each run {result['throughput_seconds']:.0f} s "
                  f"after one warm pass over the {result['queries']} queries; 8 threads per worker.", ""]
        rows = [[f"workers={r['workers']}", fmt(r["requests_per_second"], 1), fmt(r["p50_ms"]), fmt(r["p99_ms"]),
                 f"{r['ok']:,}", r["errors"], fmt(r["memory"]["anon_mb"], 0), fmt(r["memory"]["file_mb"], 0)]
                for r in runs]
        lines.append(common.markdown_table(
            ["server", "searches/s", "p50 ms", "p99 ms", "requests", "errors", "anon MB", "file MB"], rows))
        lines += ["", f"workers=2 / workers=1: **{ratio:.2f}×** (goal ≥ {TARGETS['workers_speedup']}× on 2 cores). "
                  "The load generator (8 client threads, this benchmark's own process) runs on the same "
                  f"{machine['nproc']} cores as the servers (load average at start "
                  f"{' / '.join(str(x) for x in machine['loadavg_at_start'])})."]
        sections["serving-workers"] = "\n".join(lines)
    first, base = result.get("first_pass"), result.get("baseline_first_pass")
    if first and base:
        p50 = base["p50_ms"] / first["p50_ms"]
        p95 = base["p95_ms"] / first["p95_ms"]
        lines = list(head)
        count = result.get("first_pass_queries", result["queries"])
        which = (f"each of the {count} queries of bench/queries.txt" if count == result["queries"] else
                 f"each of {count} of the {result['queries']} queries of bench/queries.txt (evenly spread, "
                 "the same on both sides)")
        lines += ["Ours: a fresh one-process server (8 threads); timing starts when `/healthz` first answers "
                  f"200, then one keep-alive client sends {which} once. Whoosh, re-analyzing highlighter: a fresh process, its "
                  "index opened and jieba loaded, then the same queries once each in process (no HTTP).", ""]
        rows = [["ours over HTTP", fmt(first["first_ms"]), fmt(first["p50_ms"]), fmt(first["p95_ms"]),
                 fmt(first["memory"]["anon_mb"], 0), fmt(first["memory"]["file_mb"], 0)],
                ["Whoosh, re-analyzing highlighter (`bench/baseline.py`), in process", fmt(base["first_ms"]), fmt(base["p50_ms"]), fmt(base["p95_ms"]),
                 fmt(base["memory"]["anon_mb"], 0), fmt(base["memory"]["file_mb"], 0)]]
        lines.append(common.markdown_table(["", "first query ms", "p50 ms", "p95 ms", "anon MB", "file MB"], rows))
        lines += ["", f"Whoosh, re-analyzing highlighter / ours: {p50:.1f}× at the median (goal ≥ "
                  f"{TARGETS['first_pass_p50_speedup']}×), {p95:.1f}× at p95 (goal ≥ "
                  f"{TARGETS['first_pass_p95_speedup']}×): a ratio against a highlighter that re-runs jieba over every "
                  "hit, no measure of speed (the Search section measures ours against tantivy and tuned Whoosh). "
                  "Our server took "
                  f"{first['ready_seconds']:.1f} s from start to ready (dictionary, index and searchers warmed)."]
        sections["serving-first-pass"] = "\n".join(lines)
    scaling = result.get("scaling")
    if scaling:
        lines = [common.provenance(command, result["date"], machine, "samples of all corpora (CRC32 of id)"), ""]
        lines += ["Our engine in a fresh process, one thread, result cache off: `SearchEngine.warm()` (what "
                  "the server does before ready), then each query once. First search = the first query "
                  "after warm-up. See docs/SCALING.md for the projection.", ""]
        rows = [[f"{r['articles']:,}", fmt(r["text_mb"], 0), fmt(r["index_mb"], 0), fmt(r["ready_seconds"], 1),
                 fmt(r["first_ms"]), fmt(r["p50_ms"]), fmt(r["p95_ms"]), fmt(r["anon_mb"], 0), fmt(r["file_mb"], 0)]
                for r in scaling]
        lines.append(common.markdown_table(
            ["articles", "text MB", "index MB", "start to ready s", "first search ms", "p50 ms", "p95 ms",
             "anon MB", "file MB"], rows))
        if result.get("plot"):
            lines += ["", f"![latency and memory against articles]({result['plot']})"]
        sections["serving-scaling"] = "\n".join(lines)
    return sections


PROJECT_TO = (100_000, 300_000, 1_000_000)
MIN_SIZES_TO_PROJECT = 3
#: (key, label, digits, model): sizes grow as a fixed part plus a part per article (linear);
#: latencies as a power of the article count (fitted in log-log space).
PROJECTED = (("index_mb", "index MB", 0, "linear"), ("anon_mb", "anon MB", 0, "linear"),
             ("ready_seconds", "start to ready s", 1, "linear"), ("p50_ms", "p50 ms", 1, "power"),
             ("p95_ms", "p95 ms", 1, "power"), ("first_ms", "first search ms", 1, "power"))


def fit_linear(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least squares of y = a + b x; returns (a, b)."""
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    var = sum((x - mean_x) ** 2 for x in xs)
    b = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / var if var else 0.0
    return mean_y - b * mean_x, b


def fit_power_law(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least squares of log y = log a + b log x; returns (a, b). Cost ~ a * articles^b."""
    import math

    points = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y > 0]
    n = len(points)
    mean_x = sum(p[0] for p in points) / n
    mean_y = sum(p[1] for p in points) / n
    var = sum((p[0] - mean_x) ** 2 for p in points)
    b = sum((p[0] - mean_x) * (p[1] - mean_y) for p in points) / var if var else 0.0
    return math.exp(mean_y - b * mean_x), b


def render_projection(scaling: list[dict], command: str, date: str) -> str:
    """Measured rows and fits over them, extrapolated (for docs/SCALING.md)."""
    fmt = common.fmt
    xs = [r["articles"] for r in scaling]
    fits = {key: (fit_linear if model == "linear" else fit_power_law)(xs, [r[key] for r in scaling])
            for key, _, _, model in PROJECTED}

    def predict(key: str, model: str, n: int) -> float:
        a, b = fits[key]
        return a + b * n if model == "linear" else a * n ** b

    headers = ["articles", "", *[label for _, label, _, _ in PROJECTED]]
    rows = [[f"{r['articles']:,}", "measured", *[fmt(r[key], d) for key, _, d, _ in PROJECTED]] for r in scaling]
    note = ""
    if len(set(xs)) >= MIN_SIZES_TO_PROJECT:
        rows += [[f"{n:,}", "projected", *[fmt(predict(key, model, n), d) for key, _, d, model in PROJECTED]]
                 for n in PROJECT_TO]
        models = [f"{fits[key][0]:.3g} + {fits[key][1] * 1000:.3g}/1k articles" if model == "linear"
                  else f"∝ n^{fits[key][1]:.2f}" for key, _, _, model in PROJECTED]
        rows.append(["fit", "", *models])
    else:
        note = (f"\n\nNo projection: a fit needs at least {MIN_SIZES_TO_PROJECT} corpus sizes and this run "
                f"measured {len(set(xs))}. Run `python -m bench.serving` with the default `--scaling` "
                "(about 5k, 10k, 20k and 42k articles) on a quiet machine.")
    return "\n".join([f"- Command: `{command}` ({date}); one process, one thread, result cache off, "
                      "first pass over bench/queries.txt after `SearchEngine.warm()`; the machine was shared "
                      "(noisy).", "",
                      common.markdown_table(headers, rows, "ll" + "r" * len(PROJECTED))]) + note


def update_scaling_doc(body: str, path: Path = common.REPO / "docs" / "SCALING.md") -> None:
    """Rewrite the generated part of docs/SCALING.md (the prose around it is kept)."""
    common.update_section("scaling", body, path)


def plot(scaling: list[dict], path: Path) -> bool:
    """A PNG of latency and memory against articles, when matplotlib is installed (else no plot)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    xs = [r["articles"] for r in scaling]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    for key, label in (("p50_ms", "p50"), ("p95_ms", "p95"), ("first_ms", "first search")):
        left.plot(xs, [r[key] for r in scaling], marker="o", label=label)
    left.set_xlabel("articles")
    left.set_ylabel("ms")
    left.legend()
    for key, label in (("index_mb", "index on disk"), ("anon_mb", "anonymous"), ("file_mb", "file-backed")):
        right.plot(xs, [r[key] for r in scaling], marker="o", label=label)
    right.set_xlabel("articles")
    right.set_ylabel("MB")
    right.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return True


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.serving", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=float, default=1.0, metavar="FRACTION",
                        help="sample of the corpora for memory, workers and first pass (default 1: all)")
    parser.add_argument("--scaling", type=float, nargs="*", default=list(SCALING_FRACTIONS), metavar="FRACTION",
                        help="samples for the scaling table (default %(default)s)")
    parser.add_argument("--scaling-built-only", action="store_true",
                        help="scaling: only the samples whose index is already built (cached)")
    parser.add_argument("--build-procs", type=int, default=os.cpu_count() or 1, metavar="N")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each load run (default 20)")
    parser.add_argument("--memory-seconds", type=float, default=10.0, help="load before measuring memory")
    parser.add_argument("--skip", nargs="*", default=[], choices=("memory", "workers", "first", "scaling"))
    parser.add_argument("--first-queries", type=int, metavar="N",
                        help="first pass: N of the queries, evenly spread, on both sides (default: all; the "
                             "baseline takes over 10 s a query at 42k articles)")
    parser.add_argument("--quick", action="store_true", help="small samples, short runs; docs untouched")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/BENCHMARKS.md")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    machine = common.machine_info()
    command = common.command_line("bench.serving")
    fractions = QUICK_FRACTIONS if args.quick else tuple(args.scaling)
    queries = search.load_queries()
    full = common.Sample((), QUICK_FRACTIONS[-1] if args.quick else args.sample)
    result = {"date": common.now_utc(), "corpus": full.describe(), "queries": len(queries),
              "throughput_seconds": 3.0 if args.quick else args.seconds,
              "memory_seconds": 2.0 if args.quick else args.memory_seconds}
    def publish() -> None:
        """Raw numbers and the sections measured so far (a run cut short keeps what it measured)."""
        common.save_raw("serving", result)
        sections = render(result, command, machine)
        if not args.quick and not args.no_docs:
            for name, body in sections.items():
                common.update_section(name, body)
            if result.get("scaling"):
                update_scaling_doc(render_projection(result["scaling"], command, result["date"]))
        return sections

    base_info = None
    if {"memory", "workers", "first"} - set(args.skip):
        if "first" in args.skip:  # the baseline index is only needed for the first pass
            index_dir, meta = ours_index(full, args.build_procs)
            ours_info = search._info_ours(index_dir, meta)
        else:
            ours_info, base_info = search.prepare_indexes(full, False, args.build_procs, None, None)
        index_dir = ours_info.path
        result.update(articles=ours_info.articles, index_mb=ours_info.index_mb)
        if "memory" not in args.skip:
            result["memory"] = measure_memory(index_dir, queries, result["memory_seconds"])
            publish()
        if "workers" not in args.skip:
            result["throughput"] = measure_throughput(index_dir, queries, result["throughput_seconds"], 8)
            publish()
    else:
        result.update(articles=0, index_mb=0.0)
    if "scaling" not in args.skip:
        samples = []
        for fraction in fractions:
            sample = common.Sample((), fraction)
            if args.scaling_built_only and search._cached(WORK_DIR / sample.key() / "ours.json",
                                                          search.ours_fingerprint()) is None:
                print(f"bench.serving: scaling: no built index for {sample.describe()}; left out",
                      file=sys.stderr)
                continue
            path, meta = ours_index(sample, args.build_procs)
            samples.append((sample, path, meta))
        if samples:
            result["scaling"] = measure_scaling(samples)
            if not args.quick and plot(result["scaling"], common.REPO / "docs" / "scaling.png"):
                result["plot"] = "scaling.png"
            publish()
    if base_info is not None:
        indexes = spread(queries, args.first_queries)
        result["first_pass_queries"] = len(indexes)
        result["first_pass"] = measure_first_pass(ours_info.path, [queries[i] for i in indexes])
        result["baseline_first_pass"] = baseline_first_pass(base_info.path, indexes)
    for name, body in publish().items():
        print(f"## {name}\n\n{body}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
