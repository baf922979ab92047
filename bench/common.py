"""What both benchmarks share: where things are, the corpus sample, statistics, machine info
and the generated sections of ``docs/BENCHMARKS.md``.

Nothing here measures anything; the benchmark modules do.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import platform
import resource
import shlex
import sys
import threading
import time
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# ../shared beside the checkout; BENCH_SHARED_DIR points elsewhere (e.g. from a git worktree).
SHARED = Path(os.environ.get("BENCH_SHARED_DIR") or Path(__file__).resolve().parents[1].parent / "shared")
CORPORA_DIR = SHARED / "corpora"
OUT_DIR = REPO / "bench" / "out"
BENCHMARKS_MD = REPO / "docs" / "BENCHMARKS.md"
#: jieba's dictionary cache for benchmark processes (never the shared /tmp/jieba.cache).
CACHE_DIR = OUT_DIR / "jieba-cache"

PERCENTILES = (50, 90, 95, 99)


# --------------------------------------------------------------------------- corpus


def require_corpora() -> Path:
    """The corpora folder, or exit with a message saying what is missing."""
    if not CORPORA_DIR.is_dir() or not any(CORPORA_DIR.glob("*.jsonl*")):
        sys.exit(
            f"bench: no corpora at {CORPORA_DIR}.\n"
            "The benchmarks read the shared data folder that sits next to the project "
            "(../shared/corpora/*.jsonl.gz); check it out or mount it there and run again."
        )
    return CORPORA_DIR


def _stem(path: Path) -> str:
    return path.name.removesuffix(".gz").removesuffix(".jsonl")


def corpus_files(names: Sequence[str] = ()) -> list[Path]:
    """The corpus files (every ``*.jsonl.gz`` plus ``achie_pages_excerpts.jsonl``), or the named ones.

    ``names`` are file stems such as ``xwlb_cctv``; an unknown name exits with the list of known ones.
    """
    folder = require_corpora()
    files = sorted(folder.glob("*.jsonl.gz"))
    excerpts = folder / "achie_pages_excerpts.jsonl"
    if excerpts.exists():
        files.append(excerpts)
    if not names:
        return files
    by_stem = {_stem(f): f for f in files}
    unknown = [n for n in names if n not in by_stem]
    if unknown:
        sys.exit(f"bench: unknown corpus {', '.join(unknown)}; known: {', '.join(by_stem)}")
    return [by_stem[n] for n in names]


@dataclasses.dataclass(frozen=True)
class Sample:
    """A deterministic subset of the corpora; every engine of a run indexes exactly this.

    ``fraction`` keeps the articles whose CRC32 of the id falls in that fraction (stable
    across runs and machines, spread over every file and year); ``limit`` then keeps at
    most that many articles per file, in file order.
    """

    corpora: tuple[str, ...] = ()
    fraction: float = 1.0
    limit: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            sys.exit(f"bench: --sample must be in (0, 1]; got {self.fraction}")
        if self.limit is not None and self.limit < 1:
            sys.exit(f"bench: --limit must be at least 1; got {self.limit}")

    def keeps(self, article_id: str) -> bool:
        """True when the article with this id belongs to the sample (before ``limit``)."""
        if self.fraction >= 1:
            return True
        return zlib.crc32(article_id.encode("utf-8")) % 1_000_000 < self.fraction * 1_000_000

    def describe(self) -> str:
        """Human-readable, e.g. ``all corpora, 25% sample, at most 500 per file``."""
        parts = [", ".join(self.corpora) if self.corpora else "all corpora"]
        if self.fraction < 1:
            parts.append(f"{self.fraction:.0%} sample (CRC32 of id)")
        if self.limit:
            parts.append(f"at most {self.limit} per file")
        return ", ".join(parts)

    def key(self) -> str:
        """A short folder-name-safe key (for cached indexes)."""
        corpora = "+".join(self.corpora) if self.corpora else "all"
        limit = f"-l{self.limit}" if self.limit else ""
        return f"{corpora}-s{self.fraction:g}{limit}"

    def cli_args(self) -> list[str]:
        """Command-line arguments that reproduce this sample (see :func:`add_sample_arguments`)."""
        args = ["--sample", f"{self.fraction:g}"]
        if self.limit:
            args += ["--limit", str(self.limit)]
        if self.corpora:
            args += ["--corpora", *self.corpora]
        return args


def add_sample_arguments(parser, *, fraction: float, limit: int | None = None) -> None:
    """Add ``--corpora``, ``--sample`` and ``--limit`` (with these defaults) to an argparse parser."""
    parser.add_argument("--corpora", nargs="+", default=[], metavar="NAME",
                        help="corpus file stems to read, e.g. xwlb_cctv tw_laws_mojlaw (default: all)")
    parser.add_argument("--sample", type=float, default=fraction, metavar="FRACTION",
                        help=f"fraction of articles to keep, chosen by a hash of the id (default {fraction:g})")
    parser.add_argument("--limit", type=int, default=limit, metavar="N",
                        help="at most N articles per corpus file, after --sample (default: no limit)")


def sample_from_args(args) -> Sample:
    """The :class:`Sample` given by the arguments of :func:`add_sample_arguments`."""
    return Sample(tuple(args.corpora), args.sample, args.limit)


@dataclasses.dataclass
class LoadedCorpus:
    """The articles of a sample, with what reading them cost."""

    articles: list
    megabytes: float
    seconds: float
    rejected: int
    per_file: dict[str, int]

    @property
    def count(self) -> int:
        return len(self.articles)


def article_megabytes(article) -> float:
    """UTF-8 size of title + body in MB (the unit of every MB/s figure)."""
    return (len(article.title.encode("utf-8")) + len(article.body.encode("utf-8"))) / 1e6


def load_articles(sample: Sample) -> LoadedCorpus:
    """Read the sample through our own ingest (cleaned, validated :class:`Article` records).

    Both engines then index these same objects, so ingest cost is measured once,
    separately, and never counted in an engine's indexing time.
    """
    from search_service import ingest as ingest_module

    # Rejected records are counted in the report below; one warning line each would drown the output.
    logging.getLogger("search_service.ingest").setLevel(logging.ERROR)
    started = time.perf_counter()
    articles = []
    per_file: dict[str, int] = {}
    rejected = 0
    seen: set[str] = set()
    for path in corpus_files(sample.corpora):
        ingest = ingest_module.Ingest()
        kept = 0
        for article in ingest.read([path]):
            if article.id in seen or not sample.keeps(article.id):
                continue
            seen.add(article.id)
            articles.append(article)
            kept += 1
            if sample.limit and kept >= sample.limit:
                break
        rejected += ingest.report.rejected
        per_file[path.name] = kept
    seconds = time.perf_counter() - started
    if not articles:
        sys.exit(f"bench: the sample ({sample.describe()}) holds no article; use a larger --sample/--limit")
    megabytes = sum(article_megabytes(a) for a in articles)
    return LoadedCorpus(articles, megabytes, seconds, rejected, per_file)


def initialize_analysis() -> None:
    """Load our segmenter once (dictionary cached under bench/out)."""
    from search_service.text import analysis

    analysis.initialize(CACHE_DIR)


# --------------------------------------------------------------------------- measuring


def percentiles(values: Iterable[float], points: Sequence[float] = PERCENTILES) -> dict[int | float, float]:
    """Percentiles by linear interpolation between closest ranks (numpy's default method)."""
    data = sorted(values)
    if not data:
        return {p: float("nan") for p in points}
    result = {}
    for p in points:
        rank = (len(data) - 1) * p / 100
        low = int(rank)
        high = min(low + 1, len(data) - 1)
        result[p] = data[low] + (data[high] - data[low]) * (rank - low)
    return result


def median(values: Iterable[float]) -> float:
    """The 50th percentile."""
    return percentiles(values, (50,))[50]


def peak_rss_mb() -> dict[str, float]:
    """Peak resident memory so far, in MB: this process, and the largest waited-for child."""
    # Linux reports ru_maxrss in KiB.
    return {
        "self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def current_rss_mb() -> float:
    """Resident memory of this process now, in MB (from /proc; 0 where unavailable)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def dir_megabytes(path: Path) -> float:
    """Total size of the files under ``path``, in MB."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 1e6


# --------------------------------------------------------------------------- machine


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or the platform's idea of it)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "?"


def machine_info() -> dict:
    """What the figures depend on: CPUs, memory, load, Python and library versions."""
    try:
        mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal:"))
        mem_gb = round(mem_kb / 2**20, 1)
    except (OSError, StopIteration, ValueError):
        mem_gb = None
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gb": mem_gb,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {name: _version(name) for name in ("Whoosh-Reloaded", "jieba", "OpenCC", "numpy",
                                                       "Flask", "waitress")},
    }


def now_utc() -> str:
    """The current time, ISO 8601 in UTC, to the second."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def command_line(module: str) -> str:
    """The command that reproduces this run, as typed from the project root."""
    return " ".join([".venv/bin/python -m", module, shlex.join(sys.argv[1:])]).strip()


def provenance(command: str, date: str, machine: dict, corpus: str) -> str:
    """The markdown lines every generated section starts with."""
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    return "\n".join([
        f"- Command: `{command}`",
        f"- Date: {date}",
        f"- Machine: {machine['nproc']} CPUs (nproc; {machine['usable_cpus']} usable), "
        f"{machine['cpu_model']}, {machine['memory_gb']} GB RAM, load average at start "
        f"{' / '.join(str(x) for x in machine['loadavg_at_start'])} (shared, noisy machine)",
        f"- Software: Python {machine['python']}; {versions}",
        f"- Corpus: {corpus}",
    ])


# --------------------------------------------------------------------------- output


def save_raw(name: str, data: dict) -> Path:
    """Write the raw numbers of a run to ``bench/out/<name>.json``; returns the path."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{name}.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def fmt(value: float | None, digits: int = 1) -> str:
    """A number for a table; ``–`` for missing."""
    if value is None or value != value:  # None or NaN
        return "–"
    return f"{value:,.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]],
                   align: str | None = None) -> str:
    """A GitHub-flavoured markdown table; ``align`` is one letter per column (l/r), default l then r."""
    align = align or "l" + "r" * (len(headers) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


INTRO = """# Benchmarks

Reproducible comparisons of our engine against a naive baseline measured **in the same run** on
the same articles: Whoosh with jieba's own `jieba.analyse.ChineseAnalyzer` on title and body,
default writer, `groupedby` facets and Whoosh's highlighter.

Run both with `make bench`, which runs `python -m bench.indexing` then `python -m bench.search`
(from the project root, in `.venv`). Each benchmark rewrites only its own section below, between
`<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->`; raw numbers go to `bench/out/`
(git-ignored). The data comes from `../shared/corpora` and is never copied into the repository;
without it the benchmarks exit with a message. The machine is shared and noisy: compare ratios
measured in one run rather than absolute figures across runs.

- `python -m bench.indexing [--sample F] [--limit N] [--corpora NAME ...] [--quick]`: full rebuild
  throughput (MB of text/s, articles/s), CPU, peak memory and index size, ours with all cores and
  with one process against the baseline, then a cProfile breakdown of our single-process indexing.
  The default is a 20% sample (about 8,500 articles, 41 MB; about 10 minutes on 2 cores);
  `--sample 1` indexes all ~42,000 articles three times, which takes well over half an hour.
- `python -m bench.search [--index-dir DIR] [--sample F] [--quick]`: page-1 latency (total +
  facets + snippets) for the queries in `bench/queries.txt`, ours uncached and cached against the
  baseline, then requests/s over HTTP with 8 concurrent clients. The default is the whole corpus.
  Both indexes are cached under `bench/out/search/` (ours is rebuilt when the files that define
  its format change; `--rebuild` forces it): the first run spends 20–40 minutes building them on
  2 cores, later runs about 10 minutes measuring.

`--quick` runs a small sample in about a minute as a smoke test and leaves this file alone.
"""


def update_section(name: str, body: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace the ``name`` section of the benchmarks file (appended when new); other text is kept."""
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else INTRO
    if start in text and end in text:
        head, rest = text.split(start, 1)
        tail = rest.split(end, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def tree_memory(pid: int) -> dict[str, float]:
    """RssAnon and RssFile (MB) summed over ``pid`` and every process under it.

    For a server: the supervisor, its workers and their merge processes. Anonymous memory
    is private to each process; file-backed is mostly the mapped index, shared (so the sum
    counts a shared page once per process mapping it).
    """
    pids, todo = [], [pid]
    while todo:
        one = todo.pop()
        pids.append(one)
        try:
            for task in Path(f"/proc/{one}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    total = {"anon_mb": 0.0, "file_mb": 0.0, "processes": 0}
    for one in pids:
        try:
            status = Path(f"/proc/{one}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        total["anon_mb"] += int(fields.get("RssAnon", "0 kB").split()[0]) / 1024
        total["file_mb"] += int(fields.get("RssFile", "0 kB").split()[0]) / 1024
        total["processes"] += 1
    return total


class PeakMemory(threading.Thread):
    """Samples :func:`tree_memory` of a process every ``interval`` seconds; keeps the peaks."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak = {"anon_mb": 0.0, "file_mb": 0.0, "processes": 0}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            now = tree_memory(self.pid)
            for key, value in now.items():
                self.peak[key] = max(self.peak[key], value)

    def finish(self) -> dict[str, float]:
        """Stop sampling; the peaks (anonymous and file-backed peaks may come from different moments)."""
        self.stop.set()
        self.join(5)
        return self.peak
