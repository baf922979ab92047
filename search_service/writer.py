"""The one writer of a running server: queued changes, group commits, visible on return.

Whoosh allows one writer per index. Every write request is put on a bounded
queue and waits; a single thread takes what is queued (gathering for at most
``commit_delay`` seconds), applies it in one Whoosh commit, refreshes the
search engine so the change is visible, and only then wakes the requests. A
request therefore returns after its change is committed *and* searchable.

Within a batch the last change to an id wins. A failed commit (lock held by
another process, full disk, unwritable folder) fails every request of the
batch with a clear message and leaves the previous commit serving.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Iterable

from whoosh.index import LockError

from .article import Article
from .errors import IndexBusy, SearchError
from .indexer import IndexStore, codec, journal_append, publish_lock, rebuild
from .schema import ID, to_document
from .searcher import SearchEngine

log = logging.getLogger(__name__)

# When a batch is open, wait this long for another request before committing:
# concurrent writers get grouped, a lone writer is not kept waiting.
_QUIET_GAP = 0.02
# Small segments accumulate from frequent commits; merge them once there are this many.
MERGE_AT_SEGMENTS = 12


class QueueFull(SearchError):
    """Too many write requests are waiting."""

    status = 503
    code = "write_queue_full"


class WriteFailed(SearchError):
    """The commit failed; nothing of the batch was written."""

    status = 503
    code = "write_failed"


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

    def to_json(self) -> dict:
        return {
            "status": "committed",
            "visible": True,
            "upserted": self.upserted,
            "deleted": self.deleted,
            "not_found": self.missing,
            "generation": self.generation,
            "commit": self.commit,
            "batch_size": self.batch_size,
            "took_ms": round(self.waited_ms, 1),
        }


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
                 max_pending: int = 64, lock_timeout: float = 10.0, memory_mb: int = 128) -> None:
        self.store = store
        self.engine = engine
        self.commit_delay = commit_delay
        self.lock_timeout = lock_timeout
        self.memory_mb = memory_mb
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self._thread = threading.Thread(target=self._run, name="index-writer", daemon=True)
        self._accepting = True
        self.commits = 0

    # -- requests -------------------------------------------------------------------------

    def start(self) -> IndexWriterThread:
        self._thread.start()
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
        """Stop taking writes, commit what is queued, and stop the thread."""
        self._accepting = False
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)

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
        # Last change per id wins; Whoosh's update would not see documents added
        # earlier in the same uncommitted writer, so delete-then-add explicitly.
        final: dict[str, Article | None] = {}
        for change in batch:
            for article in change.upserts:
                final[article.id] = article
            for doc_id in change.deletes:
                final[doc_id] = None
        try:
            with publish_lock(self.store, shared=True):
                existed = self._apply(final)
                journal_append(self.store, final)
            snap = self.engine.refresh()
        except SearchError as exc:
            self._fail(batch, exc)
            return
        except LockError:
            self._fail(batch, IndexBusy(
                f"Another process held the index write lock for over {self.lock_timeout:.0f} s "
                "(a CLI `index` run?); retry when it has finished."))
            return
        except OSError as exc:
            log.error("commit failed: %s", exc)
            self._fail(batch, WriteFailed(
                f"Could not write the index ({exc.strerror or exc}); nothing of this request was written "
                "and the previous state is still served. Check free disk space and the permissions of "
                f"{self.store.root}."))
            return
        except Exception as exc:  # noqa: BLE001 - the thread must survive any fault
            log.exception("commit failed")
            self._fail(batch, WriteFailed(f"The commit failed ({type(exc).__name__}); nothing was written."))
            return
        self.commits += 1
        now = time.monotonic()
        for change in batch:
            upserted = [a.id for a in change.upserts]
            deleted = [i for i in change.deletes if existed.get(i)]
            missing = [i for i in change.deletes if not existed.get(i)]
            change.result = WriteResult(upserted, deleted, missing, snap.generation, snap.toc_generation,
                                        len(batch), (now - change.queued_at) * 1000)
            change.done.set()

    def _apply(self, final: dict[str, Article | None]) -> dict[str, bool]:
        if self.store.current_name() is None:
            # The first write of a new server creates an empty generation to write into.
            rebuild(self.store, [])
        ix = self.store.open_current()
        writer = ix.writer(timeout=self.lock_timeout, limitmb=self.memory_mb, codec=codec(), compound=False)
        existed: dict[str, bool] = {}
        try:
            # With the write lock held nobody else commits, so the engine's refreshed
            # snapshot is exactly the commit this writer starts from: look the ids up
            # there. Whoosh's delete_by_term would open a whole new reader (~100 ms per
            # segment) for every commit.
            snap = self.engine.refresh()
            if snap.generation == self.store.current_name() and snap.toc_generation == ix.latest_generation():
                docnums = self.engine.docnums_for_ids(list(final))
            else:
                docnums = None
            for doc_id, article in final.items():
                if docnums is None:
                    existed[doc_id] = bool(writer.delete_by_term(ID, doc_id))
                else:
                    for docnum in docnums.get(doc_id, ()):
                        writer.delete_document(docnum)
                    existed[doc_id] = bool(docnums.get(doc_id))
                if article is not None:
                    writer.add_document(**to_document(article))
        except BaseException:
            writer.cancel()
            raise
        # Merging on every commit would delete the files of the segments it merges while
        # searchers of the previous snapshot may still open them; merge only when the
        # segments pile up.
        writer.commit(merge=len(ix._segments()) >= MERGE_AT_SEGMENTS)
        return existed

    @staticmethod
    def _fail(batch: list[_Change], error: SearchError) -> None:
        for change in batch:
            change.error = error
            change.done.set()
