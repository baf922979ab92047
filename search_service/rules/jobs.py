"""The desk's long jobs, each in a process of its own so that searches are served throughout:
``reindex`` (rebuild the live articles with the accepted dictionary words, then put those words in
effect) and ``mine`` (propose dictionary words from the live articles).

:func:`start` records the job in the rules file (one job at a time, see
:meth:`RulesDB.start_job`) and starts ``python -m search_service.rules.jobs KIND --job ID ...`` in a
new session (it outlives the request and the worker that started it); the child reports its
progress in the job's row about once a second, which every worker's desk page shows.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import SearchError
from .store import Job, RulesDB, rules_path

log = logging.getLogger(__name__)

KINDS = ("reindex", "mine")
#: Articles the miner reads (as ``search-service words --limit``).
MINE_ARTICLES = 5000
LOG_FILE = "rules-jobs.log"
#: Seconds between two signs of life of a running job (see store.JOB_STALE_SECONDS).
HEARTBEAT_SECONDS = 5.0


def start(settings, kind: str, actor: str) -> Job:
    """Start job ``kind`` for the data folder of ``settings``; the job's row (``JobRunning`` if another runs)."""
    if kind not in KINDS:
        raise ValueError(f"unknown job {kind!r}")
    db = RulesDB(rules_path(settings.index_dir, getattr(settings, "rules_db", "")))
    job = db.start_job(kind, actor)
    command = [sys.executable, "-m", "search_service.rules.jobs", kind, "--job", str(job.id),
               "--index-dir", str(settings.index_dir), "--rules-db", str(db.path),
               "--cache-dir", str(settings.cache_dir), "--workers", str(settings.index_workers or os.cpu_count() or 1),
               "--memory-mb", str(settings.index_memory_mb), "--keep", str(settings.keep_generations)]
    if settings.user_dict:
        command += ["--user-dict", str(settings.user_dict)]
    log_path = Path(settings.index_dir) / LOG_FILE
    try:
        with open(log_path, "ab") as log_file:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                                       start_new_session=True, cwd=str(Path(__file__).resolve().parents[2]))
    except OSError as exc:
        db.update_job(job.id, state="failed", message=f"无法启动任务进程：{exc}")
        raise SearchError(f"The {kind} job could not be started ({exc}).") from None
    db.update_job(job.id, pid=process.pid)
    # Reap the child when it ends (no zombie left in a long-running worker).
    threading.Thread(target=process.wait, name=f"rules-job-{job.id}", daemon=True).start()
    return db.job(job.id) or job


class _Reporter:
    """Progress of a job into its row, at most every ``every`` seconds."""

    def __init__(self, db: RulesDB, job_id: int, every: float = 0.5) -> None:
        self.db, self.job_id, self.every = db, job_id, every
        self.done = 0
        self._last = 0.0

    def step(self, done: int, total: int | None = None, message: str | None = None, force: bool = False) -> None:
        self.done = done
        now = time.monotonic()
        if force or now - self._last >= self.every:
            self._last = now
            self.db.update_job(self.job_id, done=done, total=total, message=message)


def run_reindex(args: argparse.Namespace, db: RulesDB, reporter: _Reporter) -> str:
    from ..engine import indexer
    from ..engine.store import IndexStore
    from .words import prepare_segmenter

    words = prepare_segmenter(args.index_dir, build=True, rules_db=str(db.path))
    store = IndexStore(args.index_dir)
    total = len(store.live_ids())
    reporter.step(0, total, f"正在重建索引（{len(words)} 个自定义词）", force=True)

    class Progress(indexer.Progress):
        def update(self, article) -> None:  # noqa: ANN001 - indexer.Progress's signature
            self.articles += 1
            reporter.step(self.articles, total)

    result = indexer.reindex(store, procs=args.workers, memory_mb=args.memory_mb, keep=args.keep,
                             progress=Progress(stream=io.StringIO()))
    db.set_dictionary(words)
    reporter.step(result.indexed, total, force=True)
    return (f"已重建 {result.indexed} 篇文章（第 {result.generation} 代，用时 {result.seconds:.1f} 秒）；"
            f"{len(words)} 个自定义词已生效")


def run_mine(args: argparse.Namespace, db: RulesDB, reporter: _Reporter) -> str:
    from ..engine.store import IndexStore
    from .words import corpus_proposals

    texts: list[str] = []
    for article in IndexStore(args.index_dir).stored_articles():
        texts.append(f"{article.title}\n{article.body}")
        reporter.step(len(texts), None, "正在读取文章")
        if len(texts) >= MINE_ARTICLES:
            break
    reporter.step(len(texts), len(texts), "正在挖掘候选词", force=True)
    rows = corpus_proposals(texts)
    db.put_evidence(rows)
    return f"从 {len(texts)} 篇文章中找到 {len(rows)} 个候选词"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search_service.rules.jobs")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--job", type=int, required=True)
    parser.add_argument("--index-dir", required=True)
    parser.add_argument("--rules-db", required=True)
    parser.add_argument("--cache-dir", required=True)
    parser.add_argument("--user-dict", default="")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--memory-mb", type=int, default=256)
    parser.add_argument("--keep", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s rules-job: %(message)s",
                        stream=sys.stderr)
    from ..text import analysis

    db = RulesDB(args.rules_db)
    db.update_job(args.job, pid=os.getpid())
    reporter = _Reporter(db, args.job)
    stop = threading.Event()

    def heartbeat() -> None:  # a reindex waits for a merge, then publishes: still alive meanwhile
        while not stop.wait(HEARTBEAT_SECONDS):
            db.update_job(args.job)

    threading.Thread(target=heartbeat, name="heartbeat", daemon=True).start()
    try:
        analysis.initialize(args.cache_dir, args.user_dict or None)
        message = (run_reindex if args.kind == "reindex" else run_mine)(args, db, reporter)
    except SearchError as exc:
        db.update_job(args.job, state="failed", message=exc.message)
        log.error("job %d (%s) failed: %s", args.job, args.kind, exc.message)
        return 1
    except Exception as exc:  # noqa: BLE001 - reported in the job's row for staff, and logged
        db.update_job(args.job, state="failed", message=f"{type(exc).__name__}: {exc}")
        log.exception("job %d (%s) failed", args.job, args.kind)
        return 1
    finally:
        stop.set()
    db.update_job(args.job, state="done", message=message, done=reporter.done)
    log.info("job %d (%s): %s", args.job, args.kind, message)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
