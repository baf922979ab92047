"""The one writer of a running server: queued changes, group commits, visible on return.

Whoosh allows one writer per index. Every write request is put on a bounded
queue and waits; a single thread takes what is queued (gathering for at most
``commit_delay`` seconds), applies it in one Whoosh commit, refreshes the
search engine so the change is visible, and only then wakes the requests. A
request therefore returns after its change is committed *and* searchable.

Within a batch the last change to an id wins. The batch is journaled (fsync'd)
before it is committed, so the journal never lacks a committed change (see
``store``). The answer tells what happened: a failure before the commit (lock
held by another process, full disk, unwritable journal) fails every request of
the batch with "nothing was written" and leaves the previous commit serving; once
the commit is on disk, the requests are told it committed, even if something
after it failed (then with ``visible: false`` and a warning when the searchable
snapshot could not be refreshed).

Commits never merge segments: that would hold the acknowledgement for as long as
the merge takes. A :class:`merging.BackgroundMerger` merges them in a child
process instead, poked after each commit.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Iterable

from ..article import Article
from ..errors import IndexUnavailable, QueueFull, SearchError, WriteFailed
from .backend.readers import ReaderPool
from .indexer import apply_changes, open_writer, rebuild
from .merging import BackgroundMerger, clean_live_generation
from .searcher import SearchEngine
from .store import IndexStore, JournalError, journal_append, publish_lock

log = logging.getLogger(__name__)

# When a batch is open, wait this long for another request before committing:
# concurrent writers get grouped, a lone writer is not kept waiting.
_QUIET_GAP = 0.02


@dataclasses.dataclass
class WriteResult:
    """What a write request learns once its change is committed and visible."""

    upserted: list[str]
    deleted: list[str]
    missing: list[str]
    generation: str
    commit: int
    batch_size: int
    waited_ms: float
    visible: bool = True
    warning: str | None = None

    def to_json(self) -> dict:
        body = {
            "status": "committed",
            "visible": self.visible,
            "upserted": self.upserted,
            "deleted": self.deleted,
            "not_found": self.missing,
            "generation": self.generation,
            "commit": self.commit,
            "batch_size": self.batch_size,
            "took_ms": round(self.waited_ms, 1),
        }
        if self.warning:
            body["warning"] = self.warning
        return body


@dataclasses.dataclass
class _Change:
    upserts: list[Article]
    deletes: list[str]
    queued_at: float
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    result: WriteResult | None = None
    error: SearchError | None = None


_STOP = object()


class IndexWriterThread:
    """Owns the index's write lock for a server process; see the module docstring."""

    def __init__(self, store: IndexStore, engine: SearchEngine, *, commit_delay: float = 1.0,
                 max_pending: int = 64, lock_timeout: float = 10.0, memory_mb: int = 128,
                 merger: BackgroundMerger | None = None) -> None:
        self.store = store
        self.engine = engine
        self.commit_delay = commit_delay
        self.lock_timeout = lock_timeout
        self.memory_mb = memory_mb
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self._thread = threading.Thread(target=self._run, name="index-writer", daemon=True)
        self._accepting = True
        self.commits = 0
        self.merger = merger if merger is not None else BackgroundMerger(store, memory_mb=memory_mb)
        # The writer's own segment readers, kept between commits (segments never change): an
        # id's documents are looked up in the commit each write starts from, not through the
        # search side.
        self._readers = ReaderPool()
        self._last_segments: list | None = None  # the segments of this writer's last commit

    # -- requests -------------------------------------------------------------------------

    def start(self) -> IndexWriterThread:
        # Files a killed or failed write or merge left behind (a full disk, kill -9) go now.
        clean_live_generation(self.store)
        self._thread.start()
        self.merger.poke()
        return self

    @property
    def depth(self) -> int:
        """Requests waiting for the writer."""
        return self._queue.qsize()

    def submit(self, upserts: Iterable[Article] = (), deletes: Iterable[str] = (),
               timeout: float = 120.0) -> WriteResult:
        """Queue a change and block until it is committed and visible (or failed)."""
        if not self._accepting:
            raise QueueFull("The server is shutting down and takes no more writes; retry on the new process.")
        change = _Change(list(upserts), list(deletes), time.monotonic())
        try:
            self._queue.put_nowait(change)
        except queue.Full:
            raise QueueFull(
                f"{self._queue.maxsize} write requests are already waiting; retry in a few seconds "
                "(setting write_queue_max)."
            ) from None
        if not change.done.wait(timeout):
            raise WriteFailed(f"The write was not committed within {timeout:.0f} s; it may still be applied.")
        if change.error is not None:
            raise change.error
        assert change.result is not None
        return change.result

    def close(self, timeout: float = 30.0) -> None:
        """Stop taking writes, commit and answer what is queued, stop the thread and any merge."""
        self._accepting = False
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)
        self.merger.close()

    # -- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            stop = self._gather(batch)
            self._commit(batch)
            if stop:
                return

    def _gather(self, batch: list[_Change]) -> bool:
        deadline = time.monotonic() + self.commit_delay
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                item = self._queue.get(timeout=min(_QUIET_GAP, remaining))
            except queue.Empty:
                return False
            if item is _STOP:
                return True
            batch.append(item)

    def _commit(self, batch: list[_Change]) -> None:
        # Last change per id wins (apply_changes deletes, then adds).
        final: dict[str, Article | None] = {}
        for change in batch:
            for article in change.upserts:
                final[article.id] = article
            for doc_id in change.deletes:
                final[doc_id] = None
        try:
            existed, generation, commit = self._write(final)
        except SearchError as exc:
            self._fail(batch, exc)
            return
        except OSError as exc:
            log.error("commit failed, nothing written: %s", exc)
            self._fail(batch, WriteFailed(
                f"Could not write the index ({exc.strerror or exc}); nothing of this request was written "
                "and the previous state is still served. Check free disk space and the permissions of "
                f"{self.store.root}."))
            return
        except Exception as exc:  # noqa: BLE001 - the thread must survive any fault
            log.exception("commit failed, nothing written")
            self._fail(batch, WriteFailed(f"The commit failed ({type(exc).__name__}); nothing was written."))
            return
        # Committed: from here on, whatever happens, the answer is "committed".
        self.commits += 1
        visible, warning = True, None
        try:
            snap = self.engine.refresh()
            if snap.generation == generation:
                commit = snap.toc_generation
        except Exception as exc:  # noqa: BLE001 - the commit is durable; say so
            log.exception("commit %d of %s is durable but the search snapshot could not be refreshed", commit,
                          generation)
            visible = False
            warning = (f"Committed, but not yet searchable here: refreshing the search snapshot failed "
                       f"({type(exc).__name__}); it is retried within reload_interval. Do not resend.")
        try:
            self.merger.poke(self._last_segments)
        except Exception:  # noqa: BLE001 - a merge is an optimization; never fail a write over it
            log.exception("could not start a background merge")
        now = time.monotonic()
        for change in batch:
            upserted = [a.id for a in change.upserts]
            deleted = [i for i in change.deletes if existed.get(i)]
            missing = [i for i in change.deletes if not existed.get(i)]
            change.result = WriteResult(upserted, deleted, missing, generation, commit, len(batch),
                                        (now - change.queued_at) * 1000, visible, warning)
            change.done.set()

    def _write(self, final: dict[str, Article | None]) -> tuple[dict[str, bool], str, int]:
        """Journal, then commit ``final``; returns (ids that existed, generation, commit number).

        Raises only when nothing was committed (the write lock and temporary files
        are released first); a commit that raised after its table of contents was
        written counts as committed.
        """
        if self.store.current_name() is None:
            # The first write of a new server creates an empty generation to write into
            # (before the shared lock: publishing it takes the lock exclusively).
            rebuild(self.store, [])
        self._last_segments = None
        with publish_lock(self.store, shared=True):
            generation = self.store.current_name()
            path = self.store.current_path()
            if generation is None or path is None:  # the lock keeps it from changing now
                raise IndexUnavailable(f"No index in {self.store.root}")
            # The live commit, read once and pinned for the whole write.
            writer = open_writer(path, timeout=self.lock_timeout, memory_mb=self.memory_mb, pool=self._readers)
            try:
                existed = apply_changes(writer, final.items())
                journal_append(self.store, final, generation)
            except BaseException as exc:
                _abandon(writer)
                self._clean_after_failure()
                if isinstance(exc, JournalError):
                    raise WriteFailed(f"Could not write the journal ({exc.strerror}); nothing of this request "
                                      "was written and the previous state is still served. Check free disk "
                                      f"space and the permissions of {self.store.root}.") from exc
                raise
            commit = writer.generation
            try:
                self._last_segments = writer.commit()
            except BaseException:
                _abandon(writer)
                if not writer.committed():
                    self._clean_after_failure()
                    raise
                log.exception("commit %d of %s failed after its table of contents was written: it is "
                              "committed and acknowledged as such", commit, generation)
        return existed, generation, commit

    def _clean_after_failure(self) -> None:
        clean_live_generation(self.store)

    @staticmethod
    def _fail(batch: list[_Change], error: SearchError) -> None:
        for change in batch:
            change.error = error
            change.done.set()


def _abandon(writer) -> None:
    """Give up a writer whatever state it is in: its write lock and unfinished files are released."""
    writer.cancel()
