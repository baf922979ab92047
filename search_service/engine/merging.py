"""Segment merges off the write path, and the cleanup of what failed writes and merges leave.

Every commit of the write path adds a small segment and merges nothing (a Whoosh
merge inside a commit held the acknowledgement for up to 40 s). Segments are
merged here instead, without holding Whoosh's write lock while the merged
segment is written:

1. read the live commit's table of contents and choose segments to merge (a
   logarithmic policy: ``MERGE_FACTOR`` segments of about the same size, or all
   of them for ``optimize``);
2. write the merged segment into a staging folder inside the generation
   (``.merge-<random>/``: Whoosh's own file cleanup skips dot-names, so commits
   made meanwhile leave it alone) -- this is the long part, and writes commit
   meanwhile;
3. take the write lock for a moment: re-read the newest commit, carry the
   deletions committed meanwhile into the merged segment (a replaced article
   deletes its old copy), move the files in, write the next table of contents,
   release. Segments added meanwhile stay as they are.

A merge that fails (full disk, killed process) leaves the live commit untouched;
its staging folder is removed by the merge itself or, if it was killed, by
:func:`clean_stale_files` at the next start. One merge runs at a time per
generation (an flock), across processes.

:class:`BackgroundMerger` runs merges for a server in a child process it keeps
between merges (a merge is CPU-bound Python: in a thread it would take the GIL from
searches; a new process per merge spent more CPU starting than merging), reports
failures in the log and in its counters for ``/metrics``, retries with a
back-off, and stops the child on shutdown. ``search-service optimize`` runs one
merge of everything in the foreground.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import json
import logging
import math
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..locks import file_lock
from .backend import segments as backend_segments
from .backend.index import IndexLocked, SegmentInfo, latest_segments

log = logging.getLogger(__name__)

MERGE_LOCK_FILE = ".merge.lock"
STAGING_PREFIX = ".merge-"
#: Merge this many segments of one size class (sizes within a factor MERGE_FACTOR).
MERGE_FACTOR = 6
#: Segments of this size class and above (MERGE_FACTOR ** 4 = 1,296 documents or more) are
#: merged only by ``search-service optimize``. The write path's small segments still merge
#: up to it; what it spares is the large ones (a build's one segment, thousands of articles
#: of writes merged together): merging those in the background would keep a core busy for
#: minutes, to save searches only a little (measured in BENCHMARKS.md#serving).
MAX_AUTO_MERGE_LEVEL = 4
#: How long the swap may wait for Whoosh's write lock (held only during commits).
SWAP_LOCK_TIMEOUT = 30.0


@dataclasses.dataclass
class MergeResult:
    """What one merge did."""

    generation: str
    merged_segments: int
    documents: int
    seconds: float
    commit: int

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


class MergeAbandoned(Exception):
    """The segments chosen were merged or removed by someone else meanwhile; nothing was changed."""


# --------------------------------------------------------------------------- locks


def merge_lock(generation_path: Path | str, *, blocking: bool) -> contextlib.AbstractContextManager[bool]:
    """One merge (or reindex read) at a time per generation; yields False when busy and not blocking."""
    return file_lock(Path(generation_path) / MERGE_LOCK_FILE, blocking=blocking)


# --------------------------------------------------------------------------- policy


def choose_segments(segments: list[SegmentInfo], everything: bool = False) -> list[SegmentInfo]:
    """The segments to merge next, in index order (empty: nothing worth merging).

    Size classes are powers of ``MERGE_FACTOR`` of a segment's document count; the
    smallest class below :data:`MAX_AUTO_MERGE_LEVEL` holding ``MERGE_FACTOR`` or more
    segments is merged (so a document is rewritten about log(N) times over its life,
    not once per commit).
    ``everything`` merges all segments (and drops deleted documents) when there is
    more than one, or one with deletions.
    """
    if everything:
        if len(segments) > 1 or (segments and segments[0].has_deletions):
            return list(segments)
        return []
    classes: dict[int, list] = {}
    for segment in segments:
        size = max(1, segment.doc_count)
        classes.setdefault(int(math.log(size, MERGE_FACTOR)), []).append(segment)
    for level in sorted(classes):
        if level >= MAX_AUTO_MERGE_LEVEL:
            break
        if len(classes[level]) >= MERGE_FACTOR:
            chosen = {id(s) for s in classes[level]}
            return [s for s in segments if id(s) in chosen]
    return []


def needs_merge(generation_path: Path | str, segments: list[SegmentInfo] | None = None) -> bool:
    """True when the newest commit of a generation (its ``segments``, read when not given) has
    segments the policy would merge."""
    if segments is None:
        try:
            segments = latest_segments(generation_path)
        except (OSError, ValueError, EOFError):
            return False
    return bool(choose_segments(segments))


# --------------------------------------------------------------------------- one merge


def merge(generation_path: Path | str, *, everything: bool = False, staging_name: str | None = None,
          memory_mb: int = 128, lock_timeout: float = SWAP_LOCK_TIMEOUT) -> MergeResult | None:
    """Merge segments of one generation (see the module docstring); None when there was nothing to do.

    Raises OSError (disk full, ...) after removing its staging folder; the live
    commit is then exactly as before.
    """
    path = Path(generation_path)
    started = time.monotonic()
    with merge_lock(path, blocking=everything) as locked:
        if not locked:
            return None  # another merge of this generation is running
        chosen = choose_segments(latest_segments(path), everything)
        if not chosen:
            return None
        staging = path / (staging_name or f"{STAGING_PREFIX}{secrets.token_hex(6)}")
        staging.mkdir()
        try:
            documents, commit = backend_segments.merge([segment.id for segment in chosen], path, staging,
                                                       lock_timeout)
        except backend_segments.ChosenSegmentsGone as exc:
            raise MergeAbandoned(str(exc)) from None
        except IndexLocked:
            raise MergeAbandoned(f"the write lock stayed busy for {lock_timeout:.0f} s") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return MergeResult(path.name, len(chosen), documents, round(time.monotonic() - started, 3), commit)


# --------------------------------------------------------------------------- cleanup

def clean_live_generation(store) -> None:
    """:func:`clean_stale_files` on the live generation of ``store``, if any; a failure is logged.

    What the server runs at start and the writer after a failed commit: leftovers of a
    killed or failed write or merge go without anybody cleaning the folder by hand.
    """
    live = store.current_path()
    if live is None or not live.is_dir():
        return
    try:
        clean_stale_files(live)
    except OSError as exc:
        log.warning("could not clean %s: %s", live, exc)


def clean_stale_files(generation_path: Path | str) -> list[str]:
    """Remove what failed or killed writes and merges left in a generation folder; returns the names.

    Staging folders of merges are removed when no merge holds the merge lock; temporary
    folders and files of the segment writers, half-written tables of contents and segment
    files no commit refers to are removed when no writer holds the write lock (a writer's
    files in progress are never touched). Safe to call at any time; does nothing it
    cannot do safely.
    """
    path = Path(generation_path)
    removed: list[str] = []
    if not path.is_dir():
        return removed
    with merge_lock(path, blocking=False) as locked:
        if locked:
            for staging in path.glob(f"{STAGING_PREFIX}*"):
                shutil.rmtree(staging, ignore_errors=True)
                removed.append(staging.name)
    removed += backend_segments.remove_unlisted_files(path)
    if removed:
        log.warning("removed files left by a failed or interrupted write or merge in %s: %s",
                    path, ", ".join(sorted(removed)))
    return removed


# --------------------------------------------------------------------------- the server's merger


class _MergeProcess:
    """A long-lived child process that runs merges one at a time, sent as JSON lines.

    Starting Python and importing the indexing code costs a second of CPU, five to
    twenty times what merging a few small segments does; under steady writes a child
    per merge kept a core busy importing. This child is started once, at one niceness,
    and exits when its standard input closes (the server stopped or died) or after
    ``MERGE_PROCESS_IDLE_SECONDS`` without work (its memory goes back to the system).
    """

    def __init__(self, niceness: int, memory_mb: int) -> None:
        self.niceness = niceness
        self.last_used = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "search_service.engine.merging", "--serve", "--niceness", str(niceness),
             "--memory-mb", str(memory_mb)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def fresh(self) -> bool:
        """Alive and not about to exit for idleness (a job sent now will be taken)."""
        return self.alive and time.monotonic() - self.last_used < MERGE_PROCESS_IDLE_SECONDS / 2

    def run(self, path: Path, staging: str) -> dict:
        """Merge ``path``; the child's answer (``report``, ``abandoned`` or ``error``), or ``exit`` if it died."""
        assert self.process.stdin is not None and self.process.stdout is not None
        job = {"generation": str(path), "staging": staging}
        try:
            self.process.stdin.write((json.dumps(job) + "\n").encode())
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        except OSError:  # the child died before reading the job
            line = b""
        self.last_used = time.monotonic()
        if not line:
            return {"exit": self.process.wait()}
        return json.loads(line)

    def stop(self, signum: int = signal.SIGTERM) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signum)

    def close(self) -> None:
        """Let an idle child go (it exits when its input closes)."""
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        if self.alive:
            self.stop(signal.SIGKILL)
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


class BackgroundMerger:
    """Runs merges of the live generation in a child process, one at a time, off the write path.

    :meth:`poke` (called by the writer after each commit) starts a merge when the
    policy wants one and none is running; a failed merge is logged, counted and
    retried after a back-off that doubles (up to ``max_backoff``), so writes are
    never blocked by it and a merge succeeds again as soon as the disk has room.
    The child is kept between merges (see :class:`_MergeProcess`).
    """

    def __init__(self, store, *, memory_mb: int = 128, min_backoff: float = 5.0, max_backoff: float = 300.0) -> None:
        self.store = store
        self.memory_mb = memory_mb
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.merges = 0
        self.failures = 0
        self.last_error = ""
        self.last_result: dict | None = None
        self._backoff = 0.0
        self._retry_at = 0.0
        self._lock = threading.Lock()
        self._process: _MergeProcess | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def failing(self) -> bool:
        """True when the last merge attempt failed."""
        return self._backoff > 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def poke(self, segments: list[SegmentInfo] | None = None) -> bool:
        """Start a merge of the live generation if one is due; True when one was started.

        ``segments``: those of the live generation's newest commit when the caller knows
        them (the writer, after its commit), so they are not read again.
        """
        with self._lock:
            if self._closed or self.running or time.monotonic() < self._retry_at:
                return False
            path = self.store.current_path()
            if path is None or not needs_merge(path, segments):
                return False
            with merge_lock(path, blocking=False) as free:
                if not free:
                    return False  # a reindex or another process's merge holds the generation
            self._thread = threading.Thread(target=self._run, args=(path, merge_niceness(path, segments)),
                                            name="index-merger", daemon=True)
            self._thread.start()
            return True

    def _merge_process(self, niceness: int) -> _MergeProcess | None:
        """The child to run the next merge at ``niceness``: the kept one, or a new one."""
        with self._lock:
            if self._closed:
                return None
            process = self._process
            if process is not None and process.fresh and process.niceness == niceness:
                return process
            self._process = None
        if process is not None:
            process.close()  # idle, about to time out, or at the other niceness
        with self._lock:
            if self._closed:
                return None
            self._process = _MergeProcess(niceness, self.memory_mb)
            return self._process

    def _run(self, path: Path, niceness: int) -> None:
        staging = f"{STAGING_PREFIX}{secrets.token_hex(6)}"
        started = time.monotonic()
        try:
            process = self._merge_process(niceness)
            if process is None:
                return
            answer = process.run(path, staging)
        except OSError as exc:
            answer = {"error": f"could not start the merge process: {exc}"}
        except ValueError as exc:  # not a JSON answer: count it as a failed merge, retried later
            answer = {"error": f"the merge process answered something unreadable ({exc})"}
        if "report" in answer or "abandoned" in answer:
            if answer.get("report") is not None:
                self.merges += 1
            self._backoff = 0.0
            self.last_result = answer.get("report")
            if self.last_result:
                log.info("merged %s segments (%s documents) of %s in %.1f s (at niceness %s)",
                         self.last_result["merged_segments"], self.last_result["documents"],
                         self.last_result["generation"], time.monotonic() - started,
                         self.last_result.get("niceness"))
            elif answer.get("abandoned"):
                log.info("merge of %s abandoned: %s", path.name, answer["abandoned"])
            return
        shutil.rmtree(path / staging, ignore_errors=True)  # a killed child could not clean up
        code = answer.get("exit")
        if self._closed and code is not None and (code < 0 or code == 128 + signal.SIGTERM):
            log.info("merge of %s stopped at shutdown; the live commit is unchanged", path.name)
            return
        message = answer.get("error") or f"the merge process exited with status {code}"
        self.failures += 1
        self.last_error = message
        self._backoff = min(self.max_backoff, max(self.min_backoff, self._backoff * 2))
        self._retry_at = time.monotonic() + self._backoff
        log.error("merge of %s failed (%s); writes are unaffected, the live commit is unchanged; "
                  "retrying in %.0f s or later", path.name, message, self._backoff)

    def close(self, timeout: float = 10.0) -> None:
        """Stop a running merge (its staging files are removed) and the merge process; take no more."""
        with self._lock:
            self._closed = True
            process, self._process = self._process, None
        if process is not None and process.alive:
            process.stop()  # SIGTERM: a merge in progress removes its staging folder and exits
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive() and process is not None:
                process.stop(signal.SIGKILL)
                self._thread.join(timeout)
        if process is not None:
            process.close()


# --------------------------------------------------------------------------- child process entry


#: How much a background merge child lowers its CPU priority (``nice``; 19 is the lowest).
MERGE_NICENESS = 10
#: From this many segments on, merges run at normal priority: writes are outrunning a niced
#: merger, and every segment costs each search a little and each process ~10 open files.
MERGE_BACKLOG_SEGMENTS = 4 * MERGE_FACTOR


def merge_niceness(generation_path: Path | str, segments: list[SegmentInfo] | None = None) -> int:
    """The niceness for the next background merge of a generation: MERGE_NICENESS unless behind."""
    try:
        count = len(segments if segments is not None else latest_segments(generation_path))
    except (OSError, ValueError, EOFError):
        count = 0
    return 0 if count >= MERGE_BACKLOG_SEGMENTS else MERGE_NICENESS


#: A kept merge process exits after this long without a merge (see _MergeProcess).
MERGE_PROCESS_IDLE_SECONDS = 60.0


def _merge_answer(generation: str, staging: str, *, everything: bool = False, memory_mb: int = 128) -> dict:
    """One merge, as the child reports it: ``{"report": ...}``, ``{"abandoned": why}`` or ``{"error": why}``."""
    try:
        result = merge(generation, everything=everything, staging_name=staging, memory_mb=memory_mb)
    except MergeAbandoned as exc:
        return {"abandoned": str(exc)}
    except OSError as exc:
        reason = errno.errorcode.get(exc.errno, "") if exc.errno else ""
        return {"error": f"merge failed: {reason} {exc.strerror or exc}".replace("  ", " ")}
    report = result.to_json() if result else None
    if report is not None:
        report["niceness"] = os.nice(0)
    return {"report": report}


def _serve_merges(memory_mb: int, staging_of_job: list) -> int:
    """Run the merges sent on standard input, one JSON line each, answering each with one line."""
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], MERGE_PROCESS_IDLE_SECONDS)
        if not ready:
            return 0  # idle: the server starts a new process for the next merge
        line = sys.stdin.buffer.readline()
        if not line:
            return 0  # the server closed our input: it stopped (or died)
        job = json.loads(line)
        staging_of_job[0] = Path(job["generation"]) / job["staging"]
        try:
            answer = _merge_answer(job["generation"], job["staging"], memory_mb=memory_mb)
        except Exception as exc:  # noqa: BLE001 - report it and stay up for the next merge
            answer = {"error": f"merge failed: {type(exc).__name__}: {exc}"}
        staging_of_job[0] = None
        try:
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            # The server died while we merged (kill -9 of its worker): the merge is committed or
            # cleaned up either way, and nobody is left to tell. Exit quietly; stdout is pointed at
            # /dev/null so that flushing it at exit does not raise again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0


def _child_main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search_service.engine.merging",
                                     description="Merge segments of one index generation (used by the server).")
    parser.add_argument("generation", nargs="?", help="generation folder (not with --serve)")
    parser.add_argument("--serve", action="store_true",
                        help="run the merges sent on standard input, one JSON line each (what the server does)")
    parser.add_argument("--staging", help="name of the staging folder to use")
    parser.add_argument("--everything", action="store_true", help="merge all segments")
    parser.add_argument("--memory-mb", type=int, default=128)
    parser.add_argument("--niceness", type=int, default=MERGE_NICENESS,
                        help=f"lower the CPU priority by this much (default {MERGE_NICENESS}; 0 keeps it)")
    args = parser.parse_args(argv)
    if bool(args.serve) == bool(args.generation):
        parser.error("give a generation folder, or --serve")
    # The staging folder of the merge in progress, removed if the server stops us meanwhile.
    staging_of_job: list[Path | None] = [None]
    if args.generation:
        staging_of_job[0] = Path(args.generation) / (args.staging or f"{STAGING_PREFIX}{secrets.token_hex(6)}")

    def stop(signum, _frame):
        if staging_of_job[0] is not None:
            shutil.rmtree(staging_of_job[0], ignore_errors=True)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    # A background merge only has to finish eventually: searches and writes of the server
    # come first for the CPU (a merge had raised write acknowledgement p99 by ~40%), unless
    # the merger has fallen behind (see merge_niceness).
    if args.niceness > 0:
        with contextlib.suppress(OSError):
            os.nice(args.niceness)
    with contextlib.suppress(AttributeError, OSError):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file-size limit is an OSError, not a kill
    if args.serve:
        return _serve_merges(args.memory_mb, staging_of_job)
    assert staging_of_job[0] is not None
    answer = _merge_answer(args.generation, staging_of_job[0].name, everything=args.everything,
                           memory_mb=args.memory_mb)
    if "error" in answer:
        print(answer["error"], file=sys.stderr)
        return 1
    if "abandoned" in answer:
        print(f"merge abandoned: {answer['abandoned']}", file=sys.stderr)
    print(json.dumps(answer.get("report")))
    return 0


if __name__ == "__main__":  # pragma: no cover - run by BackgroundMerger
    sys.exit(_child_main())
