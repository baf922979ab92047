"""Recording searches and clicks off the request path: a bounded queue and one writer thread.

``record_*`` only put an event on the queue (never waiting: when it is full the event is
dropped and counted); the writer thread folds typing sessions (:mod:`.sessions`), turns
events into rows and inserts them in batches, repairing a damaged file on the way (see
:meth:`AnalyticsRecorder._attempt`). :class:`NullRecorder` has the same methods and records
nothing (``analytics = false``, or a file that cannot be used at start).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from ..sqlite_files import abandon, inode, is_busy
from .events import (
    _STOP,
    CHANNELS,
    CLICK_CHANNELS,
    DEFAULT_QUEUE_MAX,
    MAX_DOC_ID_CHARS,
    SESSION_WINDOW,
    ClickEvent,
    SearchEvent,
    _Flush,
    _SearchFromSession,
    _Suggest,
    filters_json,
    normalize_query,
)
from .sessions import SlipEvent, TypingSessions, is_refined_slip, prune_slips, write_slips
from .store import AnalyticsDB

log = logging.getLogger(__name__)
T = TypeVar("T")

#: ``resolver(query) -> (total, relaxed)``: what a full search of a typed query finds.
Resolver = Callable[[str], tuple[int, "str | None"]]


class AnalyticsRecorder:
    """Queue + one writer thread. ``record_*`` never block and never raise on bad luck.

    Open typing sessions are kept in the database (``typing_sessions``), not in memory, so
    that the worker processes of ``serve --workers N`` fold one reader's keystrokes and
    results page into one search whichever worker each request reached (see
    :meth:`_fold_sessions`); a session open when a worker is killed is finished by the next one.

    ``resolver``, when given, is called on the writer thread for each finished typing
    session, so a widget query is stored with what a full search finds (suggestions
    only look at titles) -- not on the request path.
    """

    enabled = True

    def __init__(self, db: AnalyticsDB, *, retention_days: int = 180, queue_max: int = DEFAULT_QUEUE_MAX,
                 batch_max: int = 500, session_window: float = SESSION_WINDOW, resolver: Resolver | None = None,
                 prune_interval: float = 86400.0, clock: Callable[[], float] = time.time,
                 max_sessions: int = 10_000, linger: float = 0.2) -> None:
        self.db = db
        self.retention_days = retention_days
        self.batch_max = batch_max
        self.linger = linger
        self.session_window = session_window
        self.resolver = resolver
        self.prune_interval = prune_interval
        self.clock = clock
        self.max_sessions = max_sessions
        self._sessions = TypingSessions(session_window, max_sessions, clock)
        self.dropped = 0          # events lost because the queue was full (a counter for /metrics)
        self.failed = 0           # events lost because the database write failed
        self.written = 0          # rows written (searches + clicks)
        self._counter_lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue(maxsize=queue_max)
        # Ends the writer's linger early: a flush, a stop, or a queue half full (or a batch's worth).
        self._wake = threading.Event()
        self._wake_at = max(1, min(batch_max, queue_max // 2))
        self._next_expiry = 0.0  # when the oldest open typing session (of any worker) is over
        self._searches: list[SearchEvent] = []
        self._clicks: list[ClickEvent] = []
        self._slips: list[SlipEvent] = []
        self._next_prune = 0.0
        self._conn: sqlite3.Connection | None = None
        self._conn_inode: int | None = None  # the file the connection is open on
        self._thread = threading.Thread(target=self._run, name="analytics-writer", daemon=True)
        self._closed = False
        #: Why events are not being written right now (None while they are): /healthz shows it.
        self.problem: str | None = None

    def start(self) -> AnalyticsRecorder:
        """Create the tables (a damaged file is set aside first; raises on an unusable path)
        and start the writer thread."""
        try:
            self.db.create()
        except sqlite3.DatabaseError as exc:
            if is_busy(exc):
                raise
            self.db.replace_if_damaged(None)
        self._thread.start()
        return self

    def counters(self) -> dict[str, int]:
        """Monotonic counters, named for a metrics endpoint."""
        return {"analytics_events_dropped_total": self.dropped, "analytics_events_failed_total": self.failed,
                "analytics_rows_written_total": self.written, "analytics_queue_size": self._queue.qsize()}

    # -- request side: enqueue only ---------------------------------------------------------

    def _offer(self, item) -> None:
        if self._closed:
            if self.problem is not None:  # the writer stopped on a fault: the event is lost, and counted
                with self._counter_lock:
                    self.failed += 1
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            with self._counter_lock:
                self.dropped += 1
        if len(self._queue.queue) >= self._wake_at:  # a burst: write now (len without the lock: a hint)
            self._wake.set()

    def record_search(self, query: str, *, channel: str, results: int, took_ms: float = 0.0,
                      relaxed: str | None = None, filters: Mapping[str, object] | None = None, page: int = 1,
                      refine: bool = False, sid: str | None = None, ts: float | None = None,
                      filtered_out: bool = False, searched: str | None = None, suggested: str | None = None,
                      previous: str | None = None) -> None:
        """Log one search. On the ``page`` and ``widget`` channels it also closes the typing
        session it came from (``sid``; without one, the latest session whose text it starts with).
        ``searched``: the correction searched instead of ``query``, when there was one;
        ``suggested``: the did-you-mean the answer offered (「您是不是要找」), kept as an ``offered``
        slip; ``previous``: the query of the results page this search was made from, so that a
        same-sound rewrite of it (一代一路, then 一带一路) is kept as a ``refined`` slip."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}")
        normalized = normalize_query(query)
        if not normalized:
            return
        when = self.clock() if ts is None else ts
        event = SearchEvent(normalized, channel, int(results), float(took_ms), relaxed or None,
                            filters_json(filters), int(page), bool(refine), when,
                            bool(filtered_out), normalize_query(searched) or None if searched else None)
        self._offer(_SearchFromSession(event, sid) if channel in CLICK_CHANNELS else event)
        if refine:
            return  # another page or order of a search already logged
        meant = normalize_query(suggested) if suggested else ""
        if meant and meant != normalized:
            self._offer(SlipEvent(normalized, meant, "offered", channel, when))
        before = normalize_query(previous) if previous else ""
        if before and before != normalized:
            # Decided on the writer thread: reading pinyin is no work for a request.
            self._offer(_MaybeRefined(SlipEvent(before, normalized, "refined", channel, when)))

    def record_suggest(self, query: str, *, sid: str | None, suggestions: int, took_ms: float = 0.0,
                       ts: float | None = None) -> None:
        """Log one as-you-type query of the widget (channel ``widget``).

        Within one typing session (same ``sid``), a query replaces the previous one when
        either is a prefix of the other and it came within ``session_window`` seconds:
        only the text the reader settled on is kept. Without a ``sid`` each call is a search.
        """
        normalized = normalize_query(query)
        if not normalized:
            return
        self._offer(_Suggest(normalized, sid or None, int(suggestions), float(took_ms),
                             self.clock() if ts is None else ts))

    def record_click(self, query: str, doc_id: str, rank: int, *, channel: str, first: bool = True,
                     ts: float | None = None) -> None:
        """Log one click on a result (``rank`` counts from 1 in the list clicked in)."""
        if channel not in CLICK_CHANNELS:
            raise ValueError(f"unknown click channel {channel!r}")
        normalized = normalize_query(query)
        if not normalized or not doc_id:
            return
        self._offer(ClickEvent(normalized, str(doc_id)[:MAX_DOC_ID_CHARS], int(rank), channel, bool(first),
                               self.clock() if ts is None else ts))

    def flush(self, timeout: float = 10.0) -> bool:
        """Write everything queued and every open typing session now (tests, shutdown)."""
        if not self._thread.is_alive():
            return False
        done = threading.Event()
        try:
            self._queue.put(_Flush(done), timeout=timeout)
        except queue.Full:
            return False
        self._wake.set()
        return done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is pending and stop the writer thread."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            try:
                self._queue.put(_STOP, timeout=timeout)
            except queue.Full:
                log.warning("analytics queue full at shutdown; pending events are lost")
                return
            self._wake.set()
            self._thread.join(timeout)

    # -- writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._prune_if_due()
            while True:
                items = self._next_batch()
                stop = any(item is _STOP for item in items)
                flushes = [item for item in items if isinstance(item, _Flush)]
                events = [item for item in items if item is not None and item is not _STOP
                          and not isinstance(item, _Flush)]
                finished = self._fold_sessions(events, everything=stop or bool(flushes))
                for event in events:
                    if isinstance(event, _SearchFromSession):
                        self._searches.append(event.event)
                    elif isinstance(event, SearchEvent):
                        self._searches.append(event)
                    elif isinstance(event, ClickEvent):
                        self._clicks.append(event)
                    elif isinstance(event, SlipEvent):
                        self._slips.append(event)
                    elif isinstance(event, _MaybeRefined) and is_refined_slip(event.slip.query, event.slip.meant):
                        self._slips.append(event.slip)
                for session in finished:
                    self._finish(session)
                self._write()
                self._prune_if_due()
                for flush in flushes:
                    flush.done.set()
                if stop:
                    return
        except Exception as exc:  # never take the service down; say so once, and count what is lost
            log.exception("analytics writer stopped")
            self.problem = f"the analytics writer stopped ({type(exc).__name__}: {exc}); restart the service"
            self._closed = True
        finally:
            self._disconnect()

    # -- the connection, and a damaged file ----------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        """The writer's connection, opened again when another worker replaced the file."""
        if self._conn is not None and inode(self.db.path) != self._conn_inode:
            self._disconnect()
        if self._conn is None:
            # Under the lock that setting a damaged file aside takes: connecting in the middle
            # of its renames would pair the new file with the old one's WAL.
            db = self.db
            with db.lock():
                conn = db.connect()
                try:
                    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the WAL now
                except BaseException:
                    conn.close()
                    raise
                self._conn, self._conn_inode = conn, inode(db.path)
        return self._conn

    def _disconnect(self) -> None:
        if self._conn is not None:
            if inode(self.db.path) == self._conn_inode:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
            else:  # the file was set aside: closing would delete the new file's WAL
                abandon(self._conn)
        self._conn = None

    def _attempt(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(connection)``; when the file is damaged, set it aside, start a new one and
        run ``work`` once more. Notes :attr:`problem` (once) when that fails too."""
        try:
            result = work(self._connection())
        except (sqlite3.Error, OSError) as exc:
            if is_busy(exc):
                self._note_problem(exc)
                raise sqlite3.OperationalError(str(exc)) from exc
            seen = self._conn_inode if self._conn is not None else None
            if self._conn is not None:
                abandon(self._conn)  # open on the damaged file, which is about to be set aside
                self._conn = None
            try:
                self.db.replace_if_damaged(seen)
                result = work(self._connection())
            except (sqlite3.Error, OSError) as again:
                self._note_problem(again)
                raise sqlite3.OperationalError(str(again)) from again
        if self.problem is not None:
            log.warning("analytics: writing to %s works again", self.db.path)
            self.problem = None
        return result

    def _note_problem(self, exc: BaseException) -> None:
        if self.problem is None:
            log.warning("analytics: cannot write to %s (%s); events are counted as failed until it works",
                        self.db.path, " ".join(str(exc).split())[:200])
        self.problem = f"cannot write to {self.db.path.name}: {type(exc).__name__}: {exc}"

    def _next_batch(self) -> list:
        """The next item, then what else arrives within :attr:`linger` seconds (up to ``batch_max``;
        a flush or stop ends the wait). Why linger: under sequential traffic each search would
        otherwise be its own transaction, and the writer's work would run between every two requests
        (measured ~0.15 ms a search); one transaction per ``linger`` costs the requests nothing."""
        first = self._next_item()
        items = [first]
        if first is None or first is _STOP or isinstance(first, _Flush):
            return items
        # The linger is spent waiting on _wake, not on the queue: a request's put then wakes no
        # thread (a wake took the GIL from the request for the writer's turn: 6% of a search's
        # HTTP layer). A flush or stop sets _wake; a queue half full ends the wait too (see _offer).
        if self._wake.wait(self.linger):
            self._wake.clear()
        while len(items) < self.batch_max:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            items.append(item)
            if item is _STOP or isinstance(item, _Flush):
                break
        return items

    def _next_item(self):
        timeout = min(60.0, max(0.05, self._next_expiry - self.clock() + 0.01))
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    # -- typing sessions: in the database, so that every worker process folds the same ones ----------

    def _fold_sessions(self, events: list, everything: bool) -> list[_Suggest]:
        """Apply the batch's suggest queries and results pages to the open typing sessions, and
        take the sessions that are over; returns them (oldest first) to be written.

        The sessions live in the database (``typing_sessions``), not in this process: with
        several workers, one reader's keystrokes and results page reach different processes.
        One ``BEGIN IMMEDIATE`` transaction per batch, so two workers never fold (or finish)
        the same session at once; a session finished here is deleted in the same transaction.
        """
        finished: list[_Suggest] = []
        session_events = [event for event in events if isinstance(event, _SearchFromSession)
                          or (isinstance(event, _Suggest) and event.sid is not None)]
        for event in events:
            if isinstance(event, _Suggest) and event.sid is None:
                finished.append(event)  # no session: every call is a search
        if not session_events and not everything and self.clock() < self._next_expiry:
            return finished
        try:
            taken, oldest = self._attempt(lambda conn: self._sessions.fold(conn, session_events, everything))
        except sqlite3.Error as exc:
            lost = sum(isinstance(event, _Suggest) for event in session_events)
            self.failed += lost
            self._next_expiry = self.clock() + 1.0  # try the open sessions again soon
            log.debug("analytics: %d typing-session events not folded in %s: %s", lost, self.db.path, exc)
            return finished
        # With none open, look again within a minute: another worker may have died with sessions open.
        self._next_expiry = self.clock() + 60.0 if oldest is None else oldest + self.session_window
        return finished + taken

    def _finish(self, event: _Suggest) -> None:
        results, relaxed = event.suggestions, None
        if self.resolver is not None:
            try:
                results, relaxed = self.resolver(event.query)
            except Exception as exc:  # no index, index swapped: keep the suggestion count
                log.debug("analytics: cannot count results of %r: %s", event.query, exc)
        self._searches.append(SearchEvent(event.query, "widget", results, event.took_ms, relaxed, "", 1, False,
                                          event.ts))

    def _write(self) -> None:
        if not self._searches and not self._clicks and not self._slips:
            return
        searches, clicks, slips = self._searches, self._clicks, self._slips
        self._searches, self._clicks, self._slips = [], [], []
        try:
            self._attempt(lambda conn: self.db.insert(searches, clicks, conn=conn))
            self.written += len(searches) + len(clicks)
        except sqlite3.Error as exc:  # said once by _attempt; counted for /metrics
            self.failed += len(searches) + len(clicks)
            log.debug("analytics: %d events not written to %s: %s", len(searches) + len(clicks),
                      self.db.path, exc)
        try:
            self._attempt(lambda conn: write_slips(conn, slips))
            self.written += len(slips)
        except sqlite3.Error as exc:
            self.failed += len(slips)
            log.debug("analytics: %d slips not written to %s: %s", len(slips), self.db.path, exc)

    def _prune_if_due(self) -> None:
        now = self.clock()
        if now < self._next_prune:
            return
        self._next_prune = now + self.prune_interval
        try:
            removed = self._attempt(lambda conn: self.db.prune(self.retention_days, now, conn=conn)
                                    + prune_slips(conn, now - self.retention_days * 86400))
            if removed:
                log.info("analytics: pruned %d rows older than %d days", removed, self.retention_days)
        except sqlite3.Error as exc:
            log.warning("analytics: pruning %s failed: %s", self.db.path, exc)


@dataclasses.dataclass(frozen=True)
class _MaybeRefined:
    """A search made from the results page of another query: a ``refined`` slip when it rewrites
    that query with same-sound characters (see :func:`sessions.is_refined_slip`)."""

    slip: SlipEvent


class NullRecorder:
    """The recorder when analytics is off: same methods, nothing recorded.

    Off by the setting (``analytics = false``), it counts nothing. Off because the file could
    not be used at start (``problem`` says why), it counts every event it loses as failed, so
    the loss reaches ``search_service_analytics_events_failed_total`` (the metric to alert on)
    and ``/healthz``.
    """

    dropped = written = 0
    clock = staticmethod(time.time)  # as the recorder's: callers stamp the events they hand over

    def __init__(self, db: AnalyticsDB | None = None, problem: str | None = None) -> None:
        self.db = db
        self.problem = problem
        self.failed = 0
        #: Whether requests should offer events at all (only to count them, when broken).
        self.enabled = problem is not None
        self._lock = threading.Lock()

    def counters(self) -> dict[str, int]:
        return {"analytics_events_dropped_total": 0, "analytics_events_failed_total": self.failed,
                "analytics_rows_written_total": 0, "analytics_queue_size": 0}

    def _lose(self) -> None:
        if self.problem is not None:
            with self._lock:
                self.failed += 1

    def record_search(self, *args, **kwargs) -> None:
        self._lose()

    def record_suggest(self, *args, **kwargs) -> None:
        self._lose()

    def record_click(self, *args, **kwargs) -> None:
        self._lose()

    def flush(self, timeout: float = 10.0) -> bool:
        return True

    def close(self, timeout: float = 10.0) -> None:
        pass


def open_recorder(path: str | Path, *, enabled: bool = True, retention_days: int = 180,
                  resolver: Resolver | None = None, **options) -> AnalyticsRecorder | NullRecorder:
    """A started recorder on ``path``; a :class:`NullRecorder` when disabled or when the file
    cannot be created (analytics must never stop the search service from starting)."""
    db = AnalyticsDB(path)
    if not enabled:
        return NullRecorder(db)
    try:
        return AnalyticsRecorder(db, retention_days=retention_days, resolver=resolver, **options).start()
    except (OSError, sqlite3.Error) as exc:
        log.warning("analytics disabled: cannot use %s: %s", path, exc)
        return NullRecorder(db, problem=f"analytics is off: {db.path.name} cannot be used ({exc}); "
                                        "fix the file or folder and restart")
