"""Search benchmark: ``python -m bench.search`` runs :mod:`bench.speed` (issue 24), and this module
keeps what the other benchmarks share: the queries file, our cached benchmark index, the naive
baseline's index, and ``search-service serve`` as a child process.

Run from the project root::

    .venv/bin/python -m bench.search                # = python -m bench.speed (both sizes)
    .venv/bin/python -m bench.search --quick        # smoke test, about a minute; docs untouched

It measured ours against ``bench/baseline.py`` before: Whoosh with a re-analyzing highlighter,
which re-runs jieba over every hit's body, so its ratios measured that baseline's mistake. The
references are now tantivy and Whoosh tuned as its documentation says (``bench/reference.py``).
"""

from __future__ import annotations

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

QUERIES_FILE = Path(__file__).with_name("queries.txt")
WORK_DIR = common.OUT_DIR / "search"
#: Package files (glob patterns) whose changes make a cached index of ours stale: what decides the
#: bytes written. The backend's read side (commit.py, postings.py: how a search reads a segment)
#: is left out, so that changing how an index is read does not rebuild it.
OURS_FORMAT_FILES = ("engine/schema.py", "engine/documents.py", "engine/backend/segments.py", "engine/backend/index.py",
                     "engine/backend/analyzers.py", "engine/backend/readers.py", "text/*.py", "engine/store.py",
                     "text/data/*", "engine/backend/lists.py")


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


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.speed`` with the same arguments (see there)."""
    from . import speed

    return speed.main(argv)


if __name__ == "__main__":
    sys.exit(main())
