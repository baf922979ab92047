"""Index build benchmark: a full rebuild, ours against the naive baseline, on the same articles.

Run from the project root::

    .venv/bin/python -m bench.indexing                 # default sample, ~10 minutes on 2 cores
    .venv/bin/python -m bench.indexing --sample 1      # every article (~42,000; takes far longer)
    .venv/bin/python -m bench.indexing --quick         # smoke test, about a minute; docs untouched

Each engine runs in a fresh child process (``--worker``) that loads the sample itself, so the
peak-memory figures of one engine do not include another's, and nothing warmed by one run
helps the next. Timed: from the first ``add_document`` to the end of the commit. Reading and
cleaning the corpus (our ingest) is done before the clock starts and reported separately.

Engines:

* ``ours:N``: ``search_service.engine.indexer.rebuild`` with ``procs=N`` (``os.cpu_count()`` and 1);
* ``baseline``: :mod:`bench.baseline` (Whoosh + ``jieba.analyse.ChineseAnalyzer``, one process,
  default writer).

Then a cProfile of ``ours:1`` on a smaller sample, summarised per pipeline stage by
:mod:`bench.profile_buckets`.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import common, profile_buckets

SECTION = "indexing"
DEFAULT_SAMPLE = 0.2
DEFAULT_PROFILE_SAMPLE = 0.03
QUICK_LIMIT = 60
QUICK_PROFILE_LIMIT = 25
WORK_DIR = common.OUT_DIR / "indexing"


# --------------------------------------------------------------------------- worker (child process)


def _cpu_seconds() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def _build(engine: str, index_dir: Path, articles: list) -> dict:
    """Index ``articles`` with one engine; returns wall and CPU seconds (this process and its
    children, analyzer start-up excluded), index size and segment count."""
    if engine.startswith("cli:"):
        outcome = _build_cli(int(engine.split(":")[1]), index_dir, articles)
        index_path = Path(outcome.pop("index_path"))
        count = outcome.pop("indexed")
        seconds, cpu = outcome["seconds"], outcome["cpu_seconds"]
    elif engine == "baseline":
        from . import baseline

        baseline.initialize(common.CACHE_DIR)
        cpu_before, started = _cpu_seconds(), time.perf_counter()
        count = baseline.build(index_dir, articles)
        seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_before
        index_path = index_dir
    else:
        from search_service.engine import indexer
        from search_service.engine.store import IndexStore

        procs = int(engine.split(":")[1])
        common.initialize_analysis()
        store = IndexStore(index_dir)
        cpu_before, started = _cpu_seconds(), time.perf_counter()
        result = indexer.rebuild(store, articles, procs=procs, memory_mb=256, keep=1)
        seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_before
        count = result.indexed
        index_path = store.current_path()
    from search_service.engine.backend.index import latest_segments

    segments = len(latest_segments(index_path))
    result = {"seconds": seconds, "cpu_seconds": cpu, "indexed": count,
              "index_mb": common.dir_megabytes(index_path), "segments": segments}
    if engine.startswith("cli:"):
        result["peak_tree_rss_mb"] = outcome["peak_tree_rss_mb"]
    return result


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB (Linux /proc)."""
    total_kb = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/status", encoding="ascii") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total_kb += int(line.split()[1])
                        break
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as handle:
                    pending += [int(child) for child in handle.read().split()]
        except (OSError, ValueError):
            continue
    return total_kb / 1024


def _build_cli(procs: int, index_dir: Path, articles: list) -> dict:
    """``search-service index --rebuild`` as a whole process (interpreter start-up, dictionary
    load, reading and cleaning the JSON Lines included) on the sample written as JSON Lines."""
    source = WORK_DIR / "sample.jsonl"
    with open(source, "w", encoding="utf-8") as handle:
        for article in articles:
            handle.write(json.dumps(article.to_json(), ensure_ascii=False) + "\n")
    env = dict(os.environ, SEARCH_SERVICE_CACHE_DIR=str(common.CACHE_DIR))
    command = [sys.executable, "-m", "search_service.cli", "--index-dir", str(index_dir),
               "index", "--rebuild", str(source), "--workers", str(procs)]
    cpu_before, started = _cpu_seconds(), time.perf_counter()
    process = subprocess.Popen(command, cwd=common.REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    peak_tree = 0.0
    while process.poll() is None:
        peak_tree = max(peak_tree, _tree_rss_mb(process.pid))
        time.sleep(0.2)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_before
    errors = process.stderr.read()
    source.unlink()
    if process.returncode != 0:
        raise SystemExit(f"bench.indexing: the CLI failed ({process.returncode}):\n{errors}")
    from search_service.engine.store import IndexStore

    store = IndexStore(index_dir)
    return {"seconds": seconds, "cpu_seconds": cpu, "indexed": store.build_info()["documents"],
            "index_path": str(store.current_path()), "peak_tree_rss_mb": peak_tree}


def _profile(index_dir: Path, articles: list) -> dict:
    """cProfile ``ours:1`` over ``articles``; returns the bucket summary (and saves the .prof)."""
    from search_service.engine import indexer
    from search_service.engine.store import IndexStore

    common.initialize_analysis()
    store = IndexStore(index_dir)
    # CPU time, not wall time: on a shared machine other processes' load would otherwise be
    # charged to whichever function happened to be running.
    profiler = cProfile.Profile(time.process_time)
    started = time.perf_counter()
    profiler.enable()
    indexer.rebuild(store, articles, procs=1, memory_mb=256, keep=1)
    profiler.disable()
    seconds = time.perf_counter() - started
    prof_path = common.OUT_DIR / "indexing-profile.prof"
    profiler.dump_stats(str(prof_path))
    summary = profile_buckets.summarize(pstats.Stats(profiler))
    summary["wall_seconds_under_profiler"] = seconds
    summary["prof_file"] = str(prof_path.relative_to(common.REPO))
    return summary


def run_worker(engine: str, sample: common.Sample, result_path: Path) -> None:
    """Child-process entry: load the sample, build (or profile) one engine, write JSON to ``result_path``."""
    corpus = common.load_articles(sample)
    rss_loaded = common.current_rss_mb()
    index_dir = WORK_DIR / engine.replace(":", "-")
    shutil.rmtree(index_dir, ignore_errors=True)
    try:
        if engine == "profile":
            outcome = {"profile": _profile(index_dir, corpus.articles)}
        else:
            outcome = _build(engine, index_dir, corpus.articles)
            if engine.startswith("cli:"):
                # The same build the search benchmarks would make: keep it as their cached index.
                from . import search

                search.adopt_ours(index_dir, sample, corpus, outcome["seconds"])
    finally:
        shutil.rmtree(index_dir, ignore_errors=True)
    outcome.update(
        engine=engine,
        articles=corpus.count,
        megabytes=corpus.megabytes,
        ingest_seconds=corpus.seconds,
        rejected=corpus.rejected,
        per_file=corpus.per_file,
        rss_after_load_mb=rss_loaded,
        peak_rss_mb=common.peak_rss_mb(),
    )
    result_path.write_text(json.dumps(outcome, ensure_ascii=False), encoding="utf-8")


def spawn_worker(engine: str, sample: common.Sample) -> dict:
    """Run one engine in a fresh Python process and return what it measured."""
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    result_path = WORK_DIR / f"result-{engine.replace(':', '-')}.json"
    result_path.unlink(missing_ok=True)
    command = [sys.executable, "-m", "bench.indexing", "--worker", engine, *sample.cli_args()]
    print(f"bench.indexing: {engine} on {sample.describe()} …", file=sys.stderr, flush=True)
    subprocess.run(command, cwd=common.REPO, check=True)
    result = json.loads(result_path.read_text(encoding="utf-8"))
    result_path.unlink()
    if "seconds" in result:
        print(f"bench.indexing: {engine}: {result['articles']} articles, {result['megabytes']:.1f} MB "
              f"in {result['seconds']:.1f} s ({result['megabytes'] / result['seconds']:.2f} MB/s)",
              file=sys.stderr, flush=True)
    return result


# --------------------------------------------------------------------------- report


def _engine_label(engine: str) -> str:
    if engine == "baseline":
        return "baseline (Whoosh + ChineseAnalyzer, default writer)"
    if engine.startswith("cli:"):
        return f"ours, whole CLI process (`search-service index --rebuild --workers {engine[4:]}`)"
    procs = engine.split(":")[1]
    return f"ours (`indexer.rebuild`, procs={procs})"


def build_table(runs: list[dict]) -> str:
    """One row per engine: throughput, ratio to the baseline, CPU, memory, size."""
    base = next(r for r in runs if r["engine"] == "baseline")
    base_rate = base["megabytes"] / base["seconds"]
    rows = []
    for run in runs:
        rate = run["megabytes"] / run["seconds"]
        rows.append([
            _engine_label(run["engine"]),
            common.fmt(run["seconds"]),
            common.fmt(rate, 3),
            common.fmt(run["articles"] / run["seconds"], 1),
            f"{rate / base_rate:.2f}×",
            f"{run['cpu_seconds']:.0f} ({run['cpu_seconds'] / run['seconds']:.0%})",
            common.fmt(run["megabytes"] / run["cpu_seconds"], 3),
            common.fmt(run["peak_rss_mb"]["self"], 0),
            common.fmt(run["peak_rss_mb"]["children"] or None, 0),
            common.fmt(run.get("peak_tree_rss_mb"), 0),
            common.fmt(run["index_mb"]),
            f"{run['index_mb'] / run['megabytes']:.1f}×",
            run["segments"],
        ])
    return common.markdown_table(
        ["engine", "wall s", "MB/s", "articles/s", "vs baseline", "CPU s (util.)", "MB per CPU s", "peak RSS MB",
         "peak RSS child MB", "peak RSS all processes MB", "index MB", "index / text", "segments"],
        rows,
    )


def profile_section(profile: dict, profile_run: dict, runs: list[dict]) -> str:
    """The "where the time goes" table and the Amdahl arithmetic toward 3× the baseline."""
    total = profile["total"]
    buckets = profile["buckets"]
    rows = [[name, common.fmt(seconds, 2), f"{seconds / total:.1%}", f"{1 / max(1e-9, 1 - seconds / total):.2f}×"]
            for name, seconds in buckets.items()]
    table = common.markdown_table(["stage (own time, built-ins charged to their caller)", "s", "share",
                                   "speed-up if free"], rows)
    top = common.markdown_table(
        ["function (own time + built-ins it calls)", "stage", "s"],
        [[f"`{name}`", stage, common.fmt(seconds, 2)] for name, stage, seconds in profile["top"]],
        align="llr",
    )
    text_stages = sum(buckets[b] for b in (profile_buckets.NORMALIZE, profile_buckets.JIEBA,
                                           profile_buckets.WORD_TOKENS, profile_buckets.BIGRAMS,
                                           profile_buckets.PINYIN))
    whoosh = sum(buckets[b] for b in (profile_buckets.WHOOSH_PER_DOC, profile_buckets.WHOOSH_STORED,
                                      profile_buckets.WHOOSH_COMMIT))
    base = next(r for r in runs if r["engine"] == "baseline")
    base_rate = base["megabytes"] / base["seconds"]
    one = next((r for r in runs if r["engine"] == "ours:1"), None)
    many = max((r for r in runs if r["engine"].startswith("ours:")), key=lambda r: int(r["engine"][5:]))
    one = one or many
    one_rate = one["megabytes"] / one["seconds"]
    many_rate = many["megabytes"] / many["seconds"]
    procs = int(many["engine"][5:])
    needed_single = 3 * base_rate / one_rate
    needed_many = 3 * base_rate / many_rate
    lines = [
        f"cProfile (timer: process CPU time) of ours with procs=1 on {profile_run['articles']:,} articles "
        f"({profile_run['megabytes']:.1f} MB; {profile_run['profile']['wall_seconds_under_profiler']:.1f} s wall "
        f"under the profiler). Raw profile: `{profile['prof_file']}` (open with `python -m pstats`). The "
        "profiler's per-call overhead inflates code made of many small calls (jieba, per-posting Whoosh code) "
        "relative to C-heavy code (OpenCC, zlib, re): read the shares as a ranking, not as exact fractions.",
        "",
        table,
        "",
        f"Text pipeline (normalize + jieba + tokens + bigrams + pinyin): {text_stages / total:.0%}; "
        f"Whoosh (per-document + stored + commit): {whoosh / total:.0%}. "
        "\"Speed-up if free\" is Amdahl's bound: what removing that stage entirely would give.",
        "",
        f"Toward 3× the baseline ({3 * base_rate:.3f} MB/s): one process is at {one_rate:.3f} MB/s, so "
        f"single-process work per MB must shrink {needed_single:.2f}×; with procs={procs} "
        f"({many_rate:.3f} MB/s, parallel speed-up {many_rate / one_rate:.2f}× over procs=1) it must shrink "
        f"{needed_many:.2f}× (or the parallel speed-up must grow by that factor).",
        "",
        top,
    ]
    return "\n".join(lines)


def render(runs: list[dict], profile_run: dict | None, sample: common.Sample, machine: dict,
           command: str, date: str) -> str:
    """The markdown of the indexing section."""
    first = runs[0]
    per_file = ", ".join(f"{name} {count:,}" for name, count in first["per_file"].items())
    corpus = (f"{first['articles']:,} articles, {first['megabytes']:.1f} MB of text (UTF-8 title + body) "
              f"from ../shared/corpora: {sample.describe()} ({per_file}); "
              f"{first['rejected']} record(s) rejected by ingest")
    parts = [
        "## Indexing: full rebuild",
        "",
        common.provenance(command, date, machine, corpus),
        f"- Reading + cleaning the sample with our ingest took {first['ingest_seconds']:.1f} s (not counted "
        "for the in-process engines). Each engine runs in its own fresh process, one after the other. "
        "`ours:N` and the baseline index the same Article objects, timed from the first article to the end "
        "of the commit (dictionary already loaded). The CLI row times the whole `search-service index "
        "--rebuild` process on the same articles written as JSON Lines: interpreter start-up, jieba "
        "dictionary load, reading and cleaning, building and publishing. CPU s counts the process and its "
        "children (the build workers).",
        f"- Peak RSS (getrusage) includes the loaded sample for the in-process engines (about "
        f"{first['rss_after_load_mb']:.0f} MB right after loading); \"peak RSS child\" is the largest child "
        "process (build workers; pages shared with the parent counted in both). For the CLI row, \"all "
        "processes\" is the peak of the summed RSS of the CLI process and its workers (sampled every 0.2 s).",
        "",
        build_table(runs),
        "",
    ]
    if profile_run is not None:
        parts += ["### Where the time goes (ours, one process)", "",
                  profile_section(profile_run["profile"], profile_run, runs), ""]
    return "\n".join(parts)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.indexing", description=__doc__.split("\n\n")[0])
    common.add_sample_arguments(parser, fraction=DEFAULT_SAMPLE)
    parser.add_argument("--procs", type=int, default=os.cpu_count() or 1,
                        help="processes for our parallel build (default: os.cpu_count())")
    parser.add_argument("--profile-sample", type=float, default=DEFAULT_PROFILE_SAMPLE, metavar="FRACTION",
                        help=f"sample for the cProfile run (default {DEFAULT_PROFILE_SAMPLE:g}; 0 skips it)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: at most {QUICK_LIMIT} articles per file, docs/BENCHMARKS.md untouched")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/BENCHMARKS.md")
    parser.add_argument("--engines", nargs="+", metavar="ENGINE",
                        help="engines to run: cli:N (the whole CLI process), ours:N (indexer.rebuild in "
                             "process), baseline (default: cli:P ours:P ours:1 baseline, P = --procs)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sample = common.sample_from_args(args)
    if args.worker:
        run_worker(args.worker, sample, WORK_DIR / f"result-{args.worker.replace(':', '-')}.json")
        return 0
    common.require_corpora()
    command, date, machine = common.command_line("bench.indexing"), common.now_utc(), common.machine_info()
    if args.quick:
        sample = common.Sample(sample.corpora, sample.fraction, args.limit or QUICK_LIMIT)
        profile_sample = common.Sample(sample.corpora, 1.0, QUICK_PROFILE_LIMIT)
    else:
        profile_sample = common.Sample(sample.corpora, args.profile_sample, sample.limit) \
            if args.profile_sample > 0 else None

    engines = args.engines or ([f"cli:{args.procs}", f"ours:{args.procs}"] + (["ours:1"] if args.procs != 1 else [])
                               + ["baseline"])
    if "baseline" not in engines or not any(e.startswith(("ours:", "cli:")) for e in engines):
        sys.exit("bench.indexing: --engines needs baseline and at least one ours:N or cli:N")
    if profile_sample and not any(e.startswith("ours:") for e in engines):
        profile_sample = None  # the profile section compares with an ours:N run
    runs = [spawn_worker(engine, sample) for engine in engines]
    profile_run = spawn_worker("profile", profile_sample) if profile_sample else None

    raw = {"command": command, "date": date, "machine": machine, "sample": sample.describe(),
           "runs": runs, "profile": profile_run}
    raw_path = common.save_raw("indexing-quick" if args.quick else "indexing", raw)
    markdown = render(runs, profile_run, sample, machine, command, date)
    print(markdown)
    print(f"\nraw numbers: {raw_path.relative_to(common.REPO)}", file=sys.stderr)
    if not (args.quick or args.no_docs):
        common.update_section(SECTION, markdown)
        print(f"updated {common.BENCHMARKS_MD.relative_to(common.REPO)} (section {SECTION})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
