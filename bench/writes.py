"""Write throughput under a concurrent search load, and acknowledgement-to-visibility time.

Run from the project root: ``.venv/bin/python -m bench.writes [--seconds S] [--writers N]``.

* **Ours**: the real server (``search-service serve`` under waitress, loopback only) with
  N client threads each sending single-article ``PUT /api/documents/<id>`` in a loop while
  4 threads search. Right after each acknowledgement the writer searches for the article's
  unique title word: the time until it is found is the visibility delay (0 when the
  acknowledgement already implied visibility, which is the design).
* **Baseline**, measured in the same run on a copy of the same index: the naive way, one
  Whoosh writer opened, ``update_document`` and ``commit`` per article, one after another.

``--merges`` measures, instead, acknowledgements while segments are merged:

* **Ours**: the real server; 1 client POSTs batches of 10 real articles (the corpus after the
  starting index, bodies cut to their first 400 characters so that indexing does not hide the
  merges) as fast as they are acknowledged, so segments pile up and the background
  merger runs; 2 clients PUT single articles and time each acknowledgement. A sampler reads
  ``search_service_merge_running`` from ``/metrics`` every 200 ms, so each acknowledgement is
  classed as "while a merge ran" or not.
* **Baseline**, same run, a copy of the same index, in process: the same batches committed the
  way the writer did before, ``commit(merge=True)`` once 12 segments piled up (Whoosh merges
  inside the commit, holding the acknowledgement).

Bounded in time and requests; every request goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from bench.common import (
    CACHE_DIR,
    OUT_DIR,
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

TOKEN = "bench-writes-token"
SEARCH_QUERIES = ["经济发展", "习近平", "乡村振兴", "科技创新", "一带一路", "人工智能", "疫情防控", "高质量发展"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _build_index(index_dir, articles: int) -> None:
    from search_service.engine import indexer
    from search_service.engine.store import IndexStore
    from search_service.ingest import Ingest
    from search_service.text import analysis

    analysis.initialize(CACHE_DIR)
    source = require_corpora() / "xwlb_cctv.jsonl.gz"
    ingest = Ingest(log_problems=False)
    stream = (a for i, a in zip(range(articles), ingest.read([source])))
    indexer.rebuild(IndexStore(index_dir), stream, procs=os.cpu_count() or 1)


def _article(i: int) -> dict:
    # A unique, searchable title word per article: "写入基准" + a Latin tag.
    return {"title": f"写入基准 wbench{i}x", "body": f"第{i}篇写入基准文章，园区规划与智慧城市建设。" * 10,
            "category": "高新院新闻", "date": "2026-01-01"}


class _Client:
    def __init__(self, url: str) -> None:
        self.url = url

    def put(self, doc_id: str, article: dict) -> int:
        request = urllib.request.Request(
            f"{self.url}/api/documents/{doc_id}", method="PUT",
            data=json.dumps(article, ensure_ascii=False).encode(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                response.read()
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def post(self, articles: list[dict]) -> int:
        request = urllib.request.Request(
            f"{self.url}/api/documents", method="POST",
            data=json.dumps(articles, ensure_ascii=False).encode(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                response.read()
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def merge_state(self) -> tuple[int, int, int]:
        """(merge running, merges done, merge failures) from /metrics."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=60) as response:
            values = {}
            for line in response.read().decode().splitlines():
                name, _, value = line.partition(" ")
                values[name] = value
        return (int(float(values.get("search_service_merge_running", 0))),
                int(float(values.get("search_service_merges_total", 0))),
                int(float(values.get("search_service_merge_failures_total", 0))))

    def total(self, q: str) -> tuple[int, int]:
        url = f"{self.url}/api/search?" + urllib.parse.urlencode({"q": q})
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                return response.status, json.load(response)["total"]
        except urllib.error.HTTPError as error:
            return error.code, 0


#: Worker processes of the measured server (``serve --workers``); its default, one per core.
SERVER_WORKERS = os.cpu_count() or 1


def _start_server(index_dir, threads: int = 16, log_name: str = "writes-server.log"):
    """``search-service serve`` on a free loopback port; returns (process, client, log file)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEARCH_SERVICE_")}
    env.update(SEARCH_SERVICE_INDEX_DIR=str(index_dir), SEARCH_SERVICE_CACHE_DIR=str(CACHE_DIR),
               SEARCH_SERVICE_API_TOKENS=TOKEN, SEARCH_SERVICE_LOG_LEVEL="WARNING",
               SEARCH_SERVICE_RATE_LIMIT="")  # the benchmark is one client hammering on purpose
    # stderr to a file, never an undrained pipe: a full pipe would block the server's logging.
    log_path = OUT_DIR / log_name
    log_file = open(log_path, "wb")
    server = subprocess.Popen([sys.executable, "-m", "search_service.cli", "serve", "--port", str(port),
                               "--threads", str(threads), "--workers", str(SERVER_WORKERS)], env=env, stdout=subprocess.DEVNULL, stderr=log_file)
    client = _Client(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 60
    while True:
        try:
            client.total("x")
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(log_path.read_text(encoding="utf-8", errors="replace")) from None
            time.sleep(0.2)
    return server, client, log_file


def measure_ours(index_dir, seconds: float, writers: int, searchers: int = 4) -> dict:
    server, client, log_file = _start_server(index_dir)
    memory = PeakMemory(server.pid)
    memory.start()

    ack_ms: list[float] = []
    visible_ms: list[float] = []
    search_ms: list[float] = []
    errors = {"write": 0, "search": 0, "not_visible": 0}
    stop = threading.Event()
    lock = threading.Lock()
    counter = iter(range(10**9))
    first_try = [0]

    def write_loop() -> None:
        while not stop.is_set():
            with lock:
                i = next(counter)
            started = time.perf_counter()
            status = client.put(f"wbench-{i}", _article(i))
            acked = time.perf_counter()
            if status != 200:
                with lock:
                    errors["write"] += 1
                continue
            # Visible yet? Search for the unique word until found (bounded).
            found_at, tries = None, 0
            while found_at is None and tries < 50:
                tries += 1
                status, total = client.total(f"wbench{i}x")
                if status == 200 and total >= 1:
                    found_at = time.perf_counter()
                else:
                    time.sleep(0.05)
            with lock:
                ack_ms.append((acked - started) * 1000)
                if found_at is None:
                    errors["not_visible"] += 1
                else:
                    # Includes the one search request's own time; first_try counts
                    # acknowledgements whose article the very next search found.
                    visible_ms.append((found_at - acked) * 1000)
                    first_try[0] += tries == 1

    def search_loop(offset: int) -> None:
        n = offset
        while not stop.is_set():
            q = SEARCH_QUERIES[n % len(SEARCH_QUERIES)] + (" " + str(n % 7) if n % 3 else "")
            n += 1
            started = time.perf_counter()
            status, _ = client.total(q)
            with lock:
                search_ms.append((time.perf_counter() - started) * 1000)
                if status != 200:
                    errors["search"] += 1

    threads = [threading.Thread(target=write_loop) for _ in range(writers)]
    threads += [threading.Thread(target=search_loop, args=(k,)) for k in range(searchers)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    peak_memory = memory.finish()
    server.terminate()
    server.wait(30)
    log_file.close()
    return {
        "peak_memory": peak_memory,
        "acks": len(ack_ms), "acks_per_s": len(ack_ms) / elapsed, "ack_ms": percentiles(ack_ms),
        "visible_ms": percentiles(visible_ms) if visible_ms else {}, "found_first_try": first_try[0],
        "searches": len(search_ms),
        "searches_per_s": len(search_ms) / elapsed,
        "search_ms": percentiles(search_ms) if search_ms else {}, "errors": errors,
        "seconds": elapsed,
    }


def measure_baseline(index_dir, seconds: float) -> dict:
    """One Whoosh commit per article, sequentially, no search load (the naive writer)."""
    from search_service.engine.documents import field_values
    from search_service.engine.store import IndexStore
    from search_service.ingest import Ingest

    store = IndexStore(index_dir)
    ix = store.open_current()
    ingest = Ingest(log_problems=False)
    latencies = []
    began = time.perf_counter()
    i = 0
    while time.perf_counter() - began < seconds:
        article = ingest.validate_records([{"id": f"base-{i}", **_article(i)}])[0]
        started = time.perf_counter()
        writer = ix.writer()
        writer.update_document(**field_values(article))
        writer.commit()
        latencies.append((time.perf_counter() - started) * 1000)
        i += 1
    elapsed = time.perf_counter() - began
    # Peak RSS of this whole process (it built the starting index before): an upper bound for the writer's.
    return {"acks": len(latencies), "acks_per_s": len(latencies) / elapsed, "ack_ms": percentiles(latencies),
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


BATCH = 10
MERGE_AT_SEGMENTS_BEFORE = 12  # the writer's former rule: merge inside the commit from 12 segments on


BODY_CHARS = 400


def _later_articles(skip: int, count: int) -> list[dict]:
    """Real articles after the starting index's, as write-API records (bodies cut to BODY_CHARS)."""
    from search_service.ingest import Ingest

    source = require_corpora() / "xwlb_cctv.jsonl.gz"
    out = []
    for i, article in enumerate(Ingest(log_problems=False).read([source])):
        if i < skip:
            continue
        if len(out) >= count:
            break
        record = article.to_json()
        record["id"] = f"merge-{i}"
        record["body"] = record["body"][:BODY_CHARS]
        out.append(record)
    return out


def _rss_mb(pid: int) -> float:
    try:
        for line in open(f"/proc/{pid}/status", encoding="ascii"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process under ``pid``: the server's workers and their merge processes."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat", encoding="ascii", errors="replace").read()
                parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    found, todo = [], list(parents.get(pid, []))
    while todo:
        child = todo.pop()
        todo.extend(parents.get(child, []))
        try:
            command = open(f"/proc/{child}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found.append((child, command))
    return found


def measure_merges_ours(index_dir, seconds: float, records: list[dict], batch_writers: int = 1,
                        single_writers: int = 2) -> dict:
    """Single-article acknowledgements while batches make the background merger run."""
    server, client, log_file = _start_server(index_dir)
    lock = threading.Lock()
    stop = threading.Event()
    batches = iter(range(0, len(records) - BATCH + 1, BATCH))
    singles = iter(range(10**9))
    single_acks: list[tuple[float, float]] = []  # (start, end) perf_counter
    batch_acks: list[tuple[float, float]] = []
    running_spans: list[tuple[float, float]] = []
    errors = {"single": 0, "batch": 0}
    rss = {"server": 0.0, "merge_child": 0.0}
    state = {"merges": 0, "failures": 0}

    def batch_loop() -> None:
        while not stop.is_set():
            with lock:
                start = next(batches, None)
            if start is None:
                return
            began = time.perf_counter()
            status = client.post(records[start:start + BATCH])
            with lock:
                if status == 200:
                    batch_acks.append((began, time.perf_counter()))
                else:
                    errors["batch"] += 1

    def single_loop() -> None:
        while not stop.is_set():
            with lock:
                i = next(singles)
            began = time.perf_counter()
            status = client.put(f"msingle-{i}", _article(i))
            with lock:
                if status == 200:
                    single_acks.append((began, time.perf_counter()))
                else:
                    errors["single"] += 1

    def sampler() -> None:
        since = None
        while not stop.is_set():
            now = time.perf_counter()
            try:
                running, merges, failures = client.merge_state()
            except OSError:
                running, merges, failures = 0, state["merges"], state["failures"]
            state.update(merges=merges, failures=failures)
            if running and since is None:
                since = now
            elif not running and since is not None:
                running_spans.append((since, now))
                since = None
            rss["server"] = max(rss["server"], _rss_mb(server.pid))
            for child, command in _descendants(server.pid):
                kind = "merge_child" if "search_service.engine.merging" in command else "server"
                rss[kind] = max(rss[kind], _rss_mb(child))
            time.sleep(0.2)
        if since is not None:
            running_spans.append((since, time.perf_counter()))

    threads = [threading.Thread(target=batch_loop) for _ in range(batch_writers)]
    threads += [threading.Thread(target=single_loop) for _ in range(single_writers)]
    threads.append(threading.Thread(target=sampler))
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    server.terminate()
    server.wait(60)
    log_file.close()

    def during_merge(span: tuple[float, float]) -> bool:
        return any(span[0] < end and span[1] > start for start, end in running_spans)

    def ms(spans):
        return [(end - start) * 1000 for start, end in spans]

    merging_singles = [s for s in single_acks if during_merge(s)]
    quiet_singles = [s for s in single_acks if not during_merge(s)]
    return {
        "singles_outside_merge": len(quiet_singles),
        "single_outside_merge_ms": percentiles(ms(quiet_singles)) if quiet_singles else {},
        "seconds": elapsed, "singles": len(single_acks), "single_ms": percentiles(ms(single_acks)),
        "singles_during_merge": len(merging_singles),
        "single_during_merge_ms": percentiles(ms(merging_singles)) if merging_singles else {},
        "batches": len(batch_acks), "batch_ms": percentiles(ms(batch_acks)) if batch_acks else {},
        "batch_max_ms": max(ms(batch_acks)) if batch_acks else None,
        "articles_per_s": (len(batch_acks) * BATCH + len(single_acks)) / elapsed,
        "merge_seconds": sum(end - start for start, end in running_spans), "merges": state["merges"],
        "merge_failures": state["failures"], "errors": errors, "rss_mb": rss,
    }


def measure_merges_baseline(index_dir, seconds: float, records: list[dict]) -> dict:
    """The same batches, in process, committed the former way (Whoosh merges inside the commit)."""
    from bench.common import current_rss_mb
    from search_service.engine.backend.index import codec, latest_segments
    from search_service.engine.documents import field_values
    from search_service.engine.store import IndexStore
    from search_service.ingest import Ingest

    ix = IndexStore(index_dir).open_current()
    ingest = Ingest(log_problems=False)
    latencies, merged = [], 0
    began = time.perf_counter()
    rss = current_rss_mb()
    for start in range(0, len(records) - BATCH + 1, BATCH):
        if time.perf_counter() - began >= seconds:
            break
        articles = ingest.validate_records(records[start:start + BATCH])
        started = time.perf_counter()
        writer = ix.writer(codec=codec())
        for article in articles:
            writer.update_document(**field_values(article))
        merge = len(latest_segments(ix.storage.folder)) >= MERGE_AT_SEGMENTS_BEFORE
        merged += merge
        writer.commit(merge=merge)
        latencies.append((time.perf_counter() - started) * 1000)
        rss = max(rss, current_rss_mb())
    elapsed = time.perf_counter() - began
    return {"seconds": elapsed, "batches": len(latencies), "batch_ms": percentiles(latencies),
            "max_ms": max(latencies), "merging_commits": merged,
            "articles_per_s": len(latencies) * BATCH / elapsed, "rss_mb": rss}


def main_merges(args) -> None:
    started = now_utc()
    machine = machine_info()
    root = OUT_DIR / "writes-merges"
    shutil.rmtree(root, ignore_errors=True)
    # Built in a child process, so that this process's memory is the baseline's own.
    subprocess.run([sys.executable, "-c", "import sys; from bench.writes import _build_index; "
                    "_build_index(sys.argv[1], int(sys.argv[2]))", str(root / "ours"), str(args.articles)],
                   check=True)
    shutil.copytree(root / "ours", root / "baseline")
    records = _later_articles(args.articles, 5000)
    baseline = measure_merges_baseline(root / "baseline", args.seconds, records)
    ours = measure_merges_ours(root / "ours", args.seconds, records)
    raw = {"date": started, "machine": machine, "args": vars(args), "command": command_line("bench.writes"),
           "ours": ours, "baseline": baseline}
    save_raw("writes-merges", raw)
    print(json.dumps(raw, ensure_ascii=False, indent=2, default=str))
    if not args.no_write_docs:
        render_merges(raw)


def render_merges(raw: dict) -> None:
    """Write the ``writes-merges`` section of docs/BENCHMARKS.md from a run's raw figures."""
    args = argparse.Namespace(**raw["args"])
    ours, baseline, started, machine = raw["ours"], raw["baseline"], raw["date"], raw["machine"]
    ours["single_during_merge_ms"] = {int(k): v for k, v in ours["single_during_merge_ms"].items()}
    ours["single_outside_merge_ms"] = {int(k): v for k, v in ours["single_outside_merge_ms"].items()}
    ours["batch_ms"] = {int(k): v for k, v in ours["batch_ms"].items()}
    baseline["batch_ms"] = {int(k): v for k, v in baseline["batch_ms"].items()}
    during, outside = ours["single_during_merge_ms"], ours["single_outside_merge_ms"]
    table = markdown_table(
        ["", "articles acknowledged/s", "batch ack p50 ms", "batch ack p99 ms", "batch ack max ms",
         "single ack p50 / p99 ms during a merge (n)", "single ack p50 / p99 ms otherwise (n)", "merges",
         "time merging s", "RSS MB", "errors"],
        [
            [f"ours: HTTP server ({SERVER_WORKERS} workers × 16 threads), 1 client posting batches of {BATCH} + "
             "2 putting single articles; merges in a background process", fmt(ours["articles_per_s"]), fmt(ours["batch_ms"].get(50)),
             fmt(ours["batch_ms"].get(99)), fmt(ours["batch_max_ms"]),
             f"{fmt(during.get(50))} / {fmt(during.get(99))} ({ours['singles_during_merge']})",
             f"{fmt(outside.get(50))} / {fmt(outside.get(99))} ({ours['singles_outside_merge']})",
             f"{ours['merges']} ({ours['merge_failures']} failed)", fmt(ours["merge_seconds"]),
             f"largest server process peak {fmt(ours['rss_mb']['server'], 0)}, merge process peak "
             f"{fmt(ours['rss_mb']['merge_child'], 0)}",
             ", ".join(f"{k} {v}" for k, v in ours["errors"].items())],
            [f"baseline: in process, the same batches of {BATCH}, one writer, Whoosh merging inside the commit "
             f"from {MERGE_AT_SEGMENTS_BEFORE} segments on (the former writer)", fmt(baseline["articles_per_s"]),
             fmt(baseline["batch_ms"][50]), fmt(baseline["batch_ms"][99]), fmt(baseline["max_ms"]), "–", "–",
             f"{baseline['merging_commits']} inside commits", "–",
             f"peak {fmt(baseline['rss_mb'], 0)} (the bench process, holding the batches)",
             "–"],
        ],
    )
    worst = max(ours["batch_ms"].get(99, float("inf")), during.get(99, float("inf")))
    goal = (f"The ~1 s p99 goal while merges run is met: {fmt(worst)} ms at worst (batches, or singles during a "
            "merge)." if worst <= 1000 else
            f"The ~1 s p99 goal while merges run is not met here: {fmt(worst)} ms at worst (batches, or singles "
            f"during a merge); on this machine, at this load, the baseline's median commit of {BATCH} short "
            f"articles took {fmt(baseline['batch_ms'][50])} ms.")
    body = "\n".join([
        "## Writes while segments merge",
        "",
        provenance(raw.get("command") or command_line("bench.writes"), started, machine,
                   f"first {args.articles} articles of xwlb_cctv as the starting index; the following "
                   f"articles, bodies cut to {BODY_CHARS} characters, as the batches"),
        "",
        table,
        "",
        f"Each side ran {args.seconds:.0f} s. Slowest batch acknowledgement: ours {fmt(ours['batch_max_ms'])} ms, "
        f"the baseline {fmt(baseline['max_ms'])} ms (its commits that merged; its median commit took "
        f"{fmt(baseline['batch_ms'][50])} ms), a ratio of {baseline['max_ms'] / ours['batch_max_ms']:.1f}×. "
        "Ours never merges inside a commit: a merge runs in a child process (its RSS shown) and swaps the "
        "segment list under the write lock for a moment; what a merge still costs an acknowledgement is "
        f"CPU shared with it (single-article p99 {fmt(during.get(99))} ms during a merge against "
        f"{fmt(outside.get(99))} ms otherwise). The baseline's figures are a floor for what the former "
        f"server did (no HTTP, nothing else running in it). {goal} \"During a merge\" counts acknowledgements "
        "whose request overlapped a time `/metrics` reported `search_service_merge_running 1` (sampled every "
        "200 ms). Both sides warm (index built just before, same page cache). Processes: the server "
        f"({SERVER_WORKERS} workers × 16 threads, default `commit_delay` 1 s: a commit gathers writes for up to "
        "1 s), the merge process each worker keeps, and this client; the "
        "baseline is this process alone. The machine is shared with other work (see the load average): "
        "absolute figures move with it, the comparison within one row (during a merge / otherwise) much "
        "less.",
    ])
    update_section("writes-merges", body)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.writes", description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=3000, help="articles in the starting index")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each measurement")
    parser.add_argument("--writers", type=int, default=8, help="concurrent writing clients")
    parser.add_argument("--no-write-docs", action="store_true", help="leave docs/BENCHMARKS.md alone")
    parser.add_argument("--merges", action="store_true",
                        help="measure acknowledgements while segments merge (its own section)")
    parser.add_argument("--render-merges", action="store_true",
                        help="rewrite the merges section from bench/out/writes-merges.json (no measuring)")
    args = parser.parse_args(argv)
    if args.render_merges:
        render_merges(json.loads((OUT_DIR / "writes-merges.json").read_text(encoding="utf-8")))
        return
    if args.merges:
        main_merges(args)
        return

    started = now_utc()
    machine = machine_info()
    root = OUT_DIR / "writes"
    shutil.rmtree(root, ignore_errors=True)
    _build_index(root / "ours", args.articles)
    shutil.copytree(root / "ours", root / "baseline")
    baseline = measure_baseline(root / "baseline", args.seconds)
    ours = measure_ours(root / "ours", args.seconds, args.writers)
    quiet = measure_ours(root / "ours", args.seconds, args.writers, searchers=0)
    raw = {"date": started, "machine": machine, "args": vars(args), "ours": ours, "ours_no_search": quiet,
           "baseline": baseline}
    save_raw("writes", raw)
    print(json.dumps(raw, ensure_ascii=False, indent=2, default=str))
    if args.no_write_docs:
        return
    ratio = ours["acks_per_s"] / baseline["acks_per_s"] if baseline["acks_per_s"] else float("nan")
    quiet_ratio = quiet["acks_per_s"] / baseline["acks_per_s"] if baseline["acks_per_s"] else float("nan")

    def row(label: str, run: dict) -> list:
        vis, search = run.get("visible_ms", {}), run.get("search_ms", {})
        return [label, fmt(run["acks_per_s"]), fmt(run["ack_ms"][50]), fmt(run["ack_ms"][99]),
                fmt(vis.get(50)), fmt(vis.get(99)), fmt(run.get("searches_per_s")) if search else "–",
                fmt(search.get(50)), fmt(search.get(99)),
                ", ".join(f"{k} {v}" for k, v in run.get("errors", {}).items()) or "–",
                f"{fmt(run['peak_memory']['anon_mb'], 0)} / {fmt(run['peak_memory']['file_mb'], 0)}"
                if "peak_memory" in run else f"peak RSS {fmt(run.get('rss_mb'), 0)} (the bench process)"]

    table = markdown_table(
        ["", "acknowledged updates/s", "ack p50 ms", "ack p99 ms", "ack→visible p50 ms", "ack→visible p99 ms",
         "searches/s", "search p50 ms", "search p99 ms", "errors", "peak anon / file MB"],
        [
            row(f"ours: HTTP server ({SERVER_WORKERS} workers × 16 threads), {args.writers} writers + 4 searching "
                "clients", ours),
            row(f"ours: HTTP server ({SERVER_WORKERS} workers × 16 threads), {args.writers} writers, no search load",
                quiet),
            row("baseline: in process, one Whoosh commit per article, no HTTP, no search load", baseline),
        ],
    )
    body = "\n".join([
        "## Writes: acknowledged updates under search load",
        "",
        provenance(raw.get("command") or command_line("bench.writes"), started, machine,
                   f"first {args.articles} articles of xwlb_cctv as the starting index"),
        "",
        table,
        "",
        f"Ours / baseline throughput: {ratio:.1f}× with the search load, {quiet_ratio:.1f}× without it. "
        "The baseline is the cheapest possible write (no HTTP, no validation, no snapshot refresh, and "
        "nothing else competing for the 2 cores); ours also answers searches at the rate shown, and "
        "refreshes the searchable snapshot before every acknowledgement. A write is acknowledged only "
        "after its commit is searchable, so the ack→visible delay is 0 by construction; the table "
        "measures it anyway by searching for each article's unique title word right after its "
        f"acknowledgement (the figure is that one search's round trip): {ours['found_first_try']} of "
        f"{ours['acks']} acknowledged articles were found by the very first search. Concurrent writes "
        "are grouped into one commit by the single writer thread (gathering for at most `commit_delay`).",
    ])
    update_section("writes", body)


if __name__ == "__main__":
    main()
