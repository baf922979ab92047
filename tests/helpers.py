"""What many test modules share that is not a fixture: paths, settings, index builds, servers, CLI runs.

Fixtures live in ``conftest.py`` (pytest finds them there); plain functions and classes live
here and are imported (``from .helpers import ...``), so a test module says where each comes from.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from search_service.article import Article
from search_service.config import Settings, default_settings
from search_service.engine import indexer
from search_service.engine.backend.index import codec, index_schema
from search_service.engine.documents import field_values
from search_service.engine.schema import ID
from search_service.engine.store import IndexStore
from search_service.ingest import Ingest
from search_service.web.server import run_until

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
FIXTURES = Path(__file__).parent / "fixtures"
SHARED = Path(os.environ.get("BENCH_SHARED_DIR") or REPO.parent / "shared")  # BENCH_SHARED_DIR: from a git worktree
# The bearer token of the servers the CLI starts in subprocess tests (see cli_env).
TOKEN = "fault-token"


# --------------------------------------------------------------------------- settings and indexes


def corpus_records(shared_dir: Path, per_file: int):
    """The first ``per_file`` records (dicts) of every corpus file of ``../shared``, file by file."""
    for path in sorted((shared_dir / "corpora").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in itertools.islice(handle, per_file):
                yield json.loads(line)


def make_settings(index_dir: Path, cache_dir: Path, **changes) -> Settings:
    """Default settings pointed at a test index (no config file, no environment).

    No rate limits unless a test passes them: the suite sends far more requests from one
    address than any visitor would.
    """
    for name in ("rate_limit", "export_rate_limit", "article_rate_limit"):
        changes.setdefault(name, "")
    return default_settings(cwd=REPO).replace(index_dir=str(index_dir), cache_dir=str(cache_dir),
                                              reload_interval=0.0, **changes)


def build_index(index_dir: Path, paths: list[Path], **ingest_options) -> indexer.BuildResult:
    """Rebuild ``index_dir`` from files, failing the test on any ingest problem."""
    ingest = Ingest(**ingest_options)
    result = indexer.rebuild(IndexStore(index_dir), ingest.read(paths), procs=1)
    assert ingest.report.ok, [str(p) for p in ingest.report.problems]
    return result


def ram_index(*commits: list[Article], deleted: tuple[str, ...] = ()):
    """A Whoosh index in memory with the service's schema: one segment per list of ``commits``,
    then ``deleted`` ids deleted in a last commit (no merges, so deletions stay as deletions)."""
    from whoosh.filedb.filestore import FileStorage, RamStorage

    class PrivateTempRamStorage(RamStorage):
        # Whoosh puts a RAM index's temporary column files in <tmp>/MAIN.tmp, shared by every
        # process, under names from the global `random`, which Hypothesis seeds: two test
        # workers then wrote and deleted each other's files.
        def temp_storage(self, name=None):
            return FileStorage(tempfile.mkdtemp(prefix="ram-index-")).create()

    ix = PrivateTempRamStorage().create_index(index_schema())
    for articles in commits:
        writer = ix.writer(codec=codec())
        for article in articles:
            writer.add_document(**field_values(article))
        writer.commit(merge=False)
    if deleted:
        writer = ix.writer(codec=codec())
        for doc_id in deleted:
            assert writer.delete_by_term(ID, doc_id), doc_id
        writer.commit(merge=False)
    return ix


def to_whoosh(query):
    """The Whoosh query equivalent to an engine query (``engine.query``): for oracle tests that
    compare the engine's evaluation and scoring with stock Whoosh."""
    from whoosh import query as wq

    from search_service.engine import query as q

    if isinstance(query, q.Term):
        return wq.Term(query.field, query.text, boost=query.boost)
    if isinstance(query, q.Prefix):
        return wq.Prefix(query.field, query.text, boost=query.boost)
    if isinstance(query, q.Phrase):
        return wq.Phrase(query.field, list(query.words), boost=query.boost)
    if isinstance(query, q.And):
        return wq.And([to_whoosh(child) for child in query.children])
    if isinstance(query, q.Or):
        return wq.Or([to_whoosh(child) for child in query.children])
    if isinstance(query, q.AndNot):
        return wq.AndNot(to_whoosh(query.positive), to_whoosh(query.negative))
    if isinstance(query, q.Not):
        return wq.Not(to_whoosh(query.child))
    if isinstance(query, q.Every):
        return wq.Every()
    return wq.NullQuery


def from_whoosh(query):
    """The engine query equivalent to a Whoosh query (the inverse of :func:`to_whoosh`)."""
    from whoosh import query as wq

    from search_service.engine import query as q

    if isinstance(query, wq.Term):
        return q.Term(query.fieldname, query.text, query.boost)
    if isinstance(query, wq.Prefix):
        return q.Prefix(query.fieldname, query.text, query.boost)
    if isinstance(query, wq.Phrase):
        return q.Phrase(query.fieldname, tuple(query.words), query.boost)
    if isinstance(query, wq.AndNot):
        return q.AndNot(from_whoosh(query.a), from_whoosh(query.b))
    if isinstance(query, wq.And):
        return q.And(tuple(from_whoosh(child) for child in query.subqueries))
    if isinstance(query, wq.Or):
        return q.Or(tuple(from_whoosh(child) for child in query.subqueries))
    if isinstance(query, wq.Not):
        return q.Not(from_whoosh(query.query))
    if isinstance(query, wq.Every):
        return q.EVERY
    return q.NOTHING


def write_corpus(path: Path, count: int, prefix: str = "doc", word: str = "智慧城市") -> Path:
    """A JSON Lines file of ``count`` synthetic articles."""
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(count):
            body = f"第{i}篇。{word}建设推动高新区产业园区发展，专精特新企业集聚。" * 20
            handle.write(json.dumps({"id": f"{prefix}{i}", "title": f"{word}第{i}号", "body": body,
                                     "category": "智慧城市案例", "date": "2024-05-01"}, ensure_ascii=False) + "\n")
    return path


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """waitress serving an app on a free loopback port, in a background thread."""

    def __init__(self, app) -> None:
        from waitress.server import create_server

        self.port = free_port()
        self.server = create_server(app, host="127.0.0.1", port=self.port, threads=8)
        self.url = f"http://127.0.0.1:{self.port}"
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=run_until, args=(self.server, self.stopping), daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1).read()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        # The loop stops first and the sockets close after: closing them under a running select()
        # makes it raise EBADF in the server's thread.
        self.stopping.set()
        self.server.trigger.pull_trigger()  # wake the loop now rather than at its next timeout
        self.thread.join(timeout=5)
        self.server.close()


# --------------------------------------------------------------------------- the CLI in a subprocess


def cli_env(index_dir: Path, cache_dir: Path) -> dict:
    """The environment of a CLI subprocess: this data folder, no settings inherited from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEARCH_SERVICE_")}
    env.update(SEARCH_SERVICE_INDEX_DIR=str(index_dir), SEARCH_SERVICE_CACHE_DIR=str(cache_dir),
               SEARCH_SERVICE_API_TOKENS=TOKEN, SEARCH_SERVICE_RELOAD_INTERVAL="0.2",
               SEARCH_SERVICE_COMMIT_DELAY="0.05", SEARCH_SERVICE_LOG_LEVEL="WARNING",
               SEARCH_SERVICE_RATE_LIMIT="",  # the tests hammer from one address on purpose
               SEARCH_SERVICE_EXPORT_RATE_LIMIT="", SEARCH_SERVICE_ARTICLE_RATE_LIMIT="",
               SEARCH_SERVICE_WORKERS="1")  # one process: its faults (test_serving has the workers')
    return env


def cli(env: dict, *args: str, **kwargs) -> subprocess.Popen:
    """Start the CLI in the background (stdout discarded, stderr kept for messages)."""
    return subprocess.Popen([sys.executable, "-m", "search_service.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)


def run_cli(env: dict, *args: str) -> int:
    """Run the CLI to completion; fail the test with its stderr when it fails."""
    done = subprocess.run([sys.executable, "-m", "search_service.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.returncode
