"""Search analytics: what readers search, what finds nothing, and what they click.

Plain domain code (no Flask): the SQLite schema, a recorder that writes off the
request path, retention, and the aggregation queries the staff page shows.

* :class:`AnalyticsDB` owns one SQLite file: schema, inserts, pruning, reports.
* :class:`AnalyticsRecorder` is what request handlers call. ``record_*`` only put
  an event on a bounded queue (never waiting: when the queue is full the event is
  dropped and :attr:`AnalyticsRecorder.dropped` counts it); one background thread
  turns events into rows and inserts them in batches.
* :class:`NullRecorder` has the same methods and does nothing (``analytics = false``).

Nothing personal is stored: no IP address, no user agent, no cookie, no session
id. A row holds the normalized query, its filters, the result count, the relaxed
mode, the time taken, a timestamp and the channel (``page``, ``widget``, ``api``, or
``script`` for token-carrying API calls and headless browsers, which no report counts).

A query is *unfound* when its answer had no exact match: nothing at all, or only the
any-word or pinyin fallback (partial matches fill every page, so "zero results" alone
would miss almost every failed search). A search that was empty only because of its
filters (the query alone finds articles) is ``filtered_out``: counted apart, not as unfound.

As-you-type queries (the widget's suggest calls) are folded into one query per
typing session before anything is written (the open sessions wait in the database, so the
worker processes of ``serve --workers N`` fold them together); see
:meth:`AnalyticsRecorder.record_suggest` and docs/ANALYTICS.md for the rules.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TypeVar

from .errors import InvalidParameter
from .locks import file_lock
from .sqlite_files import abandon, inode, is_busy, is_sound, set_aside
from .text.analysis import normalize, query_words

log = logging.getLogger(__name__)
T = TypeVar("T")

CHANNELS = ("page", "widget", "api", "script")
#: Searches by people: ``script`` (API calls with a token, headless browsers) is shown on its own
#: and counted in no report.
READER_CHANNELS = ("page", "widget", "api")
#: Fallbacks that answer a query without an exact match: such a query was not found.
UNFOUND_RELAXED = ("any_word", "pinyin")
#: Channels whose searches can be followed by a tracked click (the API's cannot).
CLICK_CHANNELS = ("page", "widget")
#: Seconds within which a suggest query replaces the previous one of the same typing session.
SESSION_WINDOW = 10.0
#: Seconds a results page may come before a keystroke it closes (request times of two threads or workers).
CLOCK_SKEW = 1.0
SCHEMA_VERSION = 1
DEFAULT_QUEUE_MAX = 10_000
MAX_QUERY_CHARS = 512
MAX_DOC_ID_CHARS = 512

_OPERATOR = re.compile(r"(?<![^\s(（])(OR|AND|NOT)(?![^\s)）])")


# --------------------------------------------------------------------------- normalization


def normalize_query(text: str) -> str:
    """The grouping form of a query: width, case and script folded, whitespace collapsed.

    ``習近平`` and ``习近平  `` are the same query. The query operators ``OR``, ``AND``
    and ``NOT`` keep their capitals (``normalize`` would lower-case them and change
    what the query means).
    """
    if not text:
        return ""
    folded = normalize(text)
    if folded != text:
        # normalize keeps the length, so the operators are where they were.
        chars = list(folded)
        for match in _OPERATOR.finditer(text):
            chars[match.start():match.end()] = match.group()
        folded = "".join(chars)
    return " ".join(folded.split())[:MAX_QUERY_CHARS]


def day_of(ts: float) -> str:
    """The local calendar day (YYYY-MM-DD) of a Unix time."""
    return time.strftime("%Y-%m-%d", time.localtime(ts))


def filters_json(filters: Mapping[str, object] | None) -> str:
    """Filters as compact JSON with empty values left out; ``""`` when there are none."""
    if not filters:
        return ""
    kept = {key: value for key, value in sorted(filters.items()) if value not in (None, "", (), [])}
    if not kept:
        return ""
    return json.dumps(kept, ensure_ascii=False, separators=(",", ":"), default=list)


# --------------------------------------------------------------------------- events


@dataclasses.dataclass(frozen=True)
class SearchEvent:
    """One search, as stored in the ``searches`` table.

    ``refine``: a repeat of the reader's previous query (another page, another sort
    or filter); stored, but not counted as a search of its own in the reports.
    ``filtered_out``: no results, but only because of the filters (the query alone finds some).
    """

    query: str
    channel: str
    results: int
    took_ms: float = 0.0
    relaxed: str | None = None
    filters: str = ""
    page: int = 1
    refine: bool = False
    ts: float = dataclasses.field(default_factory=time.time)
    filtered_out: bool = False
    #: The query searched instead, normalized, when the typed one was corrected (智惠城市 → 智慧城市); else None.
    searched: str | None = None

    def row(self) -> tuple:
        return (self.ts, day_of(self.ts), self.channel, self.query, self.filters, int(self.results),
                self.relaxed, float(self.took_ms), int(self.page), int(bool(self.refine)),
                int(bool(self.filtered_out) and int(self.results) == 0), self.searched)


@dataclasses.dataclass(frozen=True)
class ClickEvent:
    """One click on a result; ``first``: the first click after that search."""

    query: str
    doc_id: str
    rank: int
    channel: str
    first: bool = True
    ts: float = dataclasses.field(default_factory=time.time)

    def row(self) -> tuple:
        return (self.ts, day_of(self.ts), self.channel, self.query, self.doc_id, int(self.rank),
                int(bool(self.first)))


@dataclasses.dataclass(frozen=True)
class _Suggest:
    query: str
    sid: str | None
    suggestions: int
    took_ms: float
    ts: float


@dataclasses.dataclass(frozen=True)
class _SearchFromSession:
    """A search that may close a typing session (the results page after typing in the widget)."""

    event: SearchEvent
    sid: str | None


@dataclasses.dataclass(frozen=True)
class _Flush:
    done: threading.Event


_STOP = object()


# --------------------------------------------------------------------------- reports: plain data


@dataclasses.dataclass(frozen=True)
class Period:
    """An inclusive range of local days."""

    start: dt.date
    end: dt.date

    MAX_DAYS = 3660

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @classmethod
    def last(cls, days: int, today: dt.date | None = None) -> Period:
        """The ``days`` days that end today."""
        today = today or dt.date.today()
        return cls(today - dt.timedelta(days=days - 1), today)

    @classmethod
    def parse(cls, start: str | None, end: str | None, *, default_days: int = 30,
              today: dt.date | None = None) -> Period:
        """``from``/``to`` parameters (YYYY-MM-DD, either may be empty) as a period.

        Empty ``to`` is today; empty ``from`` is ``default_days`` days before ``to``.
        """
        today = today or dt.date.today()
        end_day = _parse_day(end, "to") or today
        start_day = _parse_day(start, "from") or end_day - dt.timedelta(days=default_days - 1)
        if start_day > end_day:
            raise InvalidParameter(f"from ({start_day}) is after to ({end_day}); swap them.", param="from")
        if (end_day - start_day).days + 1 > cls.MAX_DAYS:
            raise InvalidParameter(f"the period is longer than {cls.MAX_DAYS} days; shorten it.", param="from")
        return cls(start_day, end_day)

    def bounds(self) -> tuple[str, str]:
        return self.start.isoformat(), self.end.isoformat()

    def each_day(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=n) for n in range(self.days)]


def _parse_day(raw: str | None, name: str) -> dt.date | None:
    text = (raw or "").strip()
    if not text:
        return None
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidParameter(f"{name} must be a date written YYYY-MM-DD, e.g. 2025-09-11; got {text!r}.",
                               param=name) from None


@dataclasses.dataclass(frozen=True)
class Summary:
    """The period's totals. Rates are None when there is nothing to divide by."""

    searches: int = 0            # new searches (refinements and later pages not counted)
    queries: int = 0             # distinct normalized queries
    zero_results: int = 0        # searches that found nothing (not counting filtered_out)
    relaxed: int = 0             # searches answered only by a relaxed (partial) match
    trackable: int = 0           # searches with results on a channel whose clicks are tracked
    clicks: int = 0              # every recorded click
    clicked_searches: int = 0    # first clicks: searches followed by at least one click
    avg_rank: float | None = None
    avg_took_ms: float | None = None
    by_channel: tuple[tuple[str, int], ...] = ()
    unfound: int = 0             # no exact match: nothing, or only the any-word/pinyin fallback
    filtered_out: int = 0        # empty only because of the filters (the query alone finds some)

    @property
    def zero_rate(self) -> float | None:
        return self.zero_results / self.searches if self.searches else None

    @property
    def unfound_rate(self) -> float | None:
        return self.unfound / self.searches if self.searches else None

    @property
    def ctr(self) -> float | None:
        """Click-through rate: searches with results followed by a click / such searches."""
        return min(1.0, self.clicked_searches / self.trackable) if self.trackable else None


@dataclasses.dataclass(frozen=True)
class QueryRow:
    """One query's numbers in the period."""

    query: str
    searches: int
    zero_results: int = 0
    relaxed: int = 0
    trackable: int = 0
    clicks: int = 0
    clicked_searches: int = 0
    avg_rank: float | None = None
    avg_results: float | None = None
    last_seen: str = ""          # YYYY-MM-DD of the latest search
    unfound: int = 0             # searches without an exact match (see the module docstring)

    @property
    def ctr(self) -> float | None:
        return min(1.0, self.clicked_searches / self.trackable) if self.trackable else None


@dataclasses.dataclass(frozen=True)
class DayRow:
    day: str
    searches: int = 0
    zero_results: int = 0
    clicks: int = 0


@dataclasses.dataclass(frozen=True)
class Report:
    period: Period
    summary: Summary
    top: list[QueryRow]
    zero: list[QueryRow]
    noclick: list[QueryRow]
    daily: list[DayRow]
    filtered_out: list[QueryRow] = dataclasses.field(default_factory=list)
    #: (typed, searched instead, searches) of corrected queries, commonest first (see :meth:`AnalyticsDB.corrections`).
    corrections: list[tuple[str, str, int]] = dataclasses.field(default_factory=list)


def dictionary_hint(query: str) -> dict:
    """What the segmenter makes of a query, and a user-dictionary line that keeps it whole.

    ``{"words": [...], "entry": "数字孪生 1000 n" or ""}``: an entry is proposed for a
    query that is one run of Chinese text (no spaces or operators) that jieba splits
    into several words -- the usual reason a new term finds nothing by words.
    """
    words = query_words(query)
    entry = ""
    text = query.strip()
    if (2 <= len(text) <= 16 and " " not in text and len(words) > 1
            and re.fullmatch(r"[\u3400-\u9fff\uf900-\ufaffA-Za-z0-9]+", text) and re.search(r"[\u3400-\u9fff]", text)):
        entry = f"{text} 1000 n"
    return {"words": words, "entry": entry}


# --------------------------------------------------------------------------- the database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS searches (
    id        INTEGER PRIMARY KEY,
    ts        REAL    NOT NULL,            -- Unix time
    day       TEXT    NOT NULL,            -- local day, YYYY-MM-DD
    channel   TEXT    NOT NULL,            -- page | widget | api
    query     TEXT    NOT NULL,            -- normalized (width, case, script, spaces)
    filters   TEXT    NOT NULL DEFAULT '', -- JSON of the non-default filters, '' for none
    results   INTEGER NOT NULL,            -- total matches
    relaxed   TEXT,                        -- NULL | substring | any_word
    took_ms   REAL    NOT NULL,
    page      INTEGER NOT NULL DEFAULT 1,
    refine    INTEGER NOT NULL DEFAULT 0,  -- 1: another page/order/filter of the previous query
    filtered_out INTEGER NOT NULL DEFAULT 0, -- 1: empty only because of its filters
    searched  TEXT                         -- the correction searched instead of query (normalized), or NULL
);
CREATE INDEX IF NOT EXISTS searches_day ON searches (day, query);
CREATE INDEX IF NOT EXISTS searches_ts ON searches (ts);
CREATE TABLE IF NOT EXISTS clicks (
    id        INTEGER PRIMARY KEY,
    ts        REAL    NOT NULL,
    day       TEXT    NOT NULL,
    channel   TEXT    NOT NULL,            -- page | widget
    query     TEXT    NOT NULL,            -- normalized, like searches.query
    doc_id    TEXT    NOT NULL,
    rank      INTEGER NOT NULL,            -- 1-based position in the list clicked in
    first     INTEGER NOT NULL DEFAULT 1   -- 1: the first click after that search
);
CREATE INDEX IF NOT EXISTS clicks_day ON clicks (day, query);
CREATE INDEX IF NOT EXISTS clicks_ts ON clicks (ts);
-- Open typing sessions, shared by every worker process (see AnalyticsRecorder): the last
-- suggest query of each sid, until the window passes or a results page closes it.
CREATE TABLE IF NOT EXISTS typing_sessions (
    sid         TEXT PRIMARY KEY,
    query       TEXT NOT NULL,
    suggestions INTEGER NOT NULL,
    took_ms     REAL NOT NULL,
    ts          REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS typing_sessions_ts ON typing_sessions (ts);
-- Results pages (page, widget) of the last two windows: a keystroke of a session they closed
-- that another worker writes late is dropped instead of opening the session again.
CREATE TABLE IF NOT EXISTS typing_closers (
    id          INTEGER PRIMARY KEY,
    sid         TEXT,                      -- the sid the results page came with, or NULL (the form has none)
    closed_sid  TEXT,                      -- the session it closed, when it closed one
    query       TEXT NOT NULL,
    ts          REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS typing_closers_ts ON typing_closers (ts);
"""

_INSERT_SEARCH = ("INSERT INTO searches (ts, day, channel, query, filters, results, relaxed, took_ms, page, refine, "
                  "filtered_out, searched) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
#: Columns added after the first schema: (table, column, definition), added to older files in place.
_ADDED_COLUMNS = (
    ("searches", "filtered_out", "INTEGER NOT NULL DEFAULT 0"),
    ("searches", "searched", "TEXT"),
)
_INSERT_CLICK = "INSERT INTO clicks (ts, day, channel, query, doc_id, rank, first) VALUES (?, ?, ?, ?, ?, ?, ?)"

# A search counted in the reports: a reader's new search, not another page or filter of the
# previous one, and not a script's.
_COUNTED = "refine = 0 AND channel != 'script' AND day BETWEEN ? AND ?"
_ZERO = "(results = 0 AND filtered_out = 0)"
_UNFOUND = f"({_ZERO} OR (results > 0 AND relaxed IN ('any_word', 'pinyin')))"
_TRACKABLE = "channel IN ('page', 'widget') AND results > 0"

_QUERY_STATS = f"""
WITH s AS (
    SELECT query,
           COUNT(*)                                          AS searches,
           SUM({_ZERO})                                      AS zero_results,
           SUM(relaxed IS NOT NULL AND results > 0)          AS relaxed,
           SUM({_TRACKABLE})                                 AS trackable,
           AVG(results)                                      AS avg_results,
           MAX(ts)                                           AS last_ts,
           SUM({_UNFOUND})                                   AS unfound
    FROM searches WHERE {_COUNTED} GROUP BY query
), c AS (
    SELECT query, COUNT(*) AS clicks, SUM(first) AS clicked, AVG(rank) AS avg_rank
    FROM clicks WHERE day BETWEEN ? AND ? GROUP BY query
)
SELECT s.query, s.searches, s.zero_results, s.relaxed, s.trackable,
       COALESCE(c.clicks, 0) AS clicks, COALESCE(c.clicked, 0) AS clicked, c.avg_rank,
       s.avg_results, s.last_ts, s.unfound
FROM s LEFT JOIN c ON c.query = s.query
"""


class AnalyticsDB:
    """One SQLite file of search analytics. Connections are opened per call (thread-safe)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def exists(self) -> bool:
        return self.path.is_file()

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 10000")
        # With WAL, NORMAL syncs at checkpoints, not at every commit: the writer commits each batch
        # (typing sessions included); a power cut may lose the last ones, a killed process none.
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def create(self) -> None:
        """Create the folder, the file and the tables (idempotent); WAL so reads never block writes.

        Processes take turns (an ``flock`` of ``<file>.lock``): the workers of ``serve`` start
        together, and SQLite answers "database is locked" at once, without waiting, to a second
        connection switching a new file to WAL; that worker's analytics was then disabled.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock():
            self._create_tables()

    def lock(self) -> contextlib.AbstractContextManager[bool]:
        """The lock processes take turns on to create, replace or connect to the file."""
        return file_lock(self.path.with_name(self.path.name + ".lock"))

    def replace_if_damaged(self, seen_inode: int | None) -> Path | None:
        """Set the file aside and create a new one, when it is damaged; where it went (or None).

        ``seen_inode``: the file the caller found damaged (None: whatever is there now). Runs
        under the creation lock, so of several workers meeting the same damage one sets the
        file aside and the others find the new file (another inode) and only reconnect.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock():
            current = inode(self.path)
            moved = None
            if current is not None and seen_inode in (None, current) and not is_sound(self.path):
                moved = set_aside(self.path)
                log.warning("analytics: %s is damaged; moved it to %s (recover rows with `sqlite3 %s .recover`) "
                            "and started a new file", self.path, moved.name, moved.name)
            self._create_tables()
            return moved

    def _create_tables(self) -> None:
        with _closing(self.connect()) as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(_SCHEMA)
            for table, column, definition in _ADDED_COLUMNS:
                present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
                if column not in present:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif version > SCHEMA_VERSION:
                log.warning("%s has analytics schema %d, newer than this program's %d",
                            self.path, version, SCHEMA_VERSION)

    # -- writing --------------------------------------------------------------------------

    def insert(self, searches: Iterable[SearchEvent] = (), clicks: Iterable[ClickEvent] = (),
               conn: sqlite3.Connection | None = None) -> None:
        """Insert rows in one transaction (used by the recorder, and by tests for fixtures)."""
        search_rows = [event.row() for event in searches]
        click_rows = [event.row() for event in clicks]
        if not search_rows and not click_rows:
            return
        own = conn is None
        conn = conn or self.connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if search_rows:
                    conn.executemany(_INSERT_SEARCH, search_rows)
                if click_rows:
                    conn.executemany(_INSERT_CLICK, click_rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            if own:
                conn.close()

    def prune(self, retention_days: int, now: float | None = None, conn: sqlite3.Connection | None = None) -> int:
        """Delete rows older than ``retention_days``; returns how many went."""
        cutoff = (now if now is not None else time.time()) - retention_days * 86400
        with contextlib.nullcontext(conn) if conn is not None else _closing(self.connect()) as db:
            removed = db.execute("DELETE FROM searches WHERE ts < ?", (cutoff,)).rowcount
            removed += db.execute("DELETE FROM clicks WHERE ts < ?", (cutoff,)).rowcount
        return removed

    def counts(self) -> tuple[int, int]:
        """(search rows, click rows) in the file, all periods."""
        if not self.exists():
            return 0, 0
        with _closing(self.connect()) as conn:
            return (conn.execute("SELECT COUNT(*) FROM searches").fetchone()[0],
                    conn.execute("SELECT COUNT(*) FROM clicks").fetchone()[0])

    # -- reports ---------------------------------------------------------------------------

    def _read(self, sql: str, params: tuple) -> list[tuple]:
        if not self.exists():
            return []
        with _closing(self.connect()) as conn:
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []
                raise

    def summary(self, period: Period) -> Summary:
        start, end = period.bounds()
        rows = self._read(f"""
            SELECT COUNT(*), COUNT(DISTINCT query), COALESCE(SUM({_ZERO}), 0),
                   COALESCE(SUM(relaxed IS NOT NULL AND results > 0), 0), COALESCE(SUM({_TRACKABLE}), 0),
                   AVG(took_ms), COALESCE(SUM({_UNFOUND}), 0), COALESCE(SUM(results = 0 AND filtered_out = 1), 0)
            FROM searches WHERE {_COUNTED}""", (start, end))
        searches, queries, zero, relaxed, trackable, took, unfound, filtered_out = (
            rows[0] if rows else (0, 0, 0, 0, 0, None, 0, 0))
        clicks = self._read("SELECT COUNT(*), COALESCE(SUM(first), 0), AVG(rank) FROM clicks "
                            "WHERE day BETWEEN ? AND ?", (start, end))
        n_clicks, clicked, avg_rank = clicks[0] if clicks else (0, 0, None)
        # Every channel, scripts included, so staff see how much of the traffic is not readers.
        channels = dict(self._read("SELECT channel, COUNT(*) FROM searches WHERE refine = 0 AND day BETWEEN ? AND ? "
                                   "GROUP BY channel", (start, end)))
        return Summary(searches=searches, queries=queries, zero_results=zero, relaxed=relaxed, trackable=trackable,
                       clicks=n_clicks, clicked_searches=clicked, avg_rank=avg_rank, avg_took_ms=took,
                       by_channel=tuple((c, channels.get(c, 0)) for c in CHANNELS),
                       unfound=unfound, filtered_out=filtered_out)

    def _query_rows(self, period: Period, where: str, order: str, limit: int | None) -> list[QueryRow]:
        start, end = period.bounds()
        sql = f"SELECT * FROM ({_QUERY_STATS}) WHERE {where} ORDER BY {order}"
        params: tuple = (start, end, start, end)
        if limit is not None:
            sql += " LIMIT ?"
            params += (limit,)
        return [QueryRow(query=q, searches=n, zero_results=zero, relaxed=relaxed, trackable=trackable,
                         clicks=clicks, clicked_searches=clicked, avg_rank=avg_rank, avg_results=avg_results,
                         last_seen=day_of(last_ts), unfound=unfound)
                for q, n, zero, relaxed, trackable, clicks, clicked, avg_rank, avg_results, last_ts, unfound
                in self._read(sql, params)]

    def top_queries(self, period: Period, limit: int | None = 50) -> list[QueryRow]:
        """The most searched queries."""
        return self._query_rows(period, "1", "searches DESC, last_ts DESC, query", limit)

    def corrections(self, period: Period, limit: int | None = 50) -> list[tuple[str, str, int]]:
        """(typed, searched instead, searches) of corrected queries, commonest slips first."""
        start, end = period.bounds()
        sql = f"""SELECT query, searched, COUNT(*) FROM searches WHERE {_COUNTED} AND searched IS NOT NULL
                  GROUP BY query, searched ORDER BY COUNT(*) DESC, MAX(ts) DESC, query"""
        params: tuple = (start, end)
        if limit is not None:
            sql += " LIMIT ?"
            params += (limit,)
        return [(q, searched, n) for q, searched, n in self._read(sql, params)]

    def zero_result_queries(self, period: Period, limit: int | None = 50) -> list[QueryRow]:
        """Unfound queries, most frequent first: no exact match (nothing, or only the any-word or
        pinyin fallback). ``searches`` counts only those searches; ``zero_results`` the ones that
        found nothing at all, ``relaxed`` the ones answered by a fallback. Searches empty only
        because of their filters are not here (see :meth:`filtered_out_queries`)."""
        start, end = period.bounds()
        sql = f"""SELECT query, COUNT(*), MAX(ts), SUM({_ZERO}), SUM(results > 0) FROM searches
                  WHERE {_COUNTED} AND {_UNFOUND} GROUP BY query
                  ORDER BY COUNT(*) DESC, MAX(ts) DESC, query"""
        params: tuple = (start, end)
        if limit is not None:
            sql += " LIMIT ?"
            params += (limit,)
        return [QueryRow(query=q, searches=n, zero_results=zero, relaxed=fallback, last_seen=day_of(last_ts),
                         unfound=n)
                for q, n, last_ts, zero, fallback in self._read(sql, params)]

    def filtered_out_queries(self, period: Period, limit: int | None = 50) -> list[QueryRow]:
        """Queries whose searches were empty only because of their filters (``searches`` counts those)."""
        start, end = period.bounds()
        sql = f"""SELECT query, COUNT(*), MAX(ts) FROM searches
                  WHERE {_COUNTED} AND results = 0 AND filtered_out = 1 GROUP BY query
                  ORDER BY COUNT(*) DESC, MAX(ts) DESC, query"""
        params: tuple = (start, end)
        if limit is not None:
            sql += " LIMIT ?"
            params += (limit,)
        return [QueryRow(query=q, searches=n, last_seen=day_of(last_ts)) for q, n, last_ts in self._read(sql, params)]

    def no_click_queries(self, period: Period, limit: int | None = 50) -> list[QueryRow]:
        """Queries that found results on the page or the widget, yet nobody clicked one."""
        return self._query_rows(period, "trackable > 0 AND clicks = 0", "trackable DESC, last_ts DESC, query", limit)

    def daily(self, period: Period) -> list[DayRow]:
        """Every day of the period (zeros included): searches, empty searches, clicks."""
        start, end = period.bounds()
        searches = {day: (n, zero) for day, n, zero in self._read(
            f"SELECT day, COUNT(*), SUM({_ZERO}) FROM searches WHERE {_COUNTED} GROUP BY day", (start, end))}
        clicks = dict(self._read("SELECT day, COUNT(*) FROM clicks WHERE day BETWEEN ? AND ? GROUP BY day",
                                 (start, end)))
        out = []
        for day in period.each_day():
            key = day.isoformat()
            n, zero = searches.get(key, (0, 0))
            out.append(DayRow(key, n, zero, clicks.get(key, 0)))
        return out

    def report(self, period: Period, limit: int = 50) -> Report:
        """Everything the staff page shows for ``period``."""
        return Report(period, self.summary(period), self.top_queries(period, limit),
                      self.zero_result_queries(period, limit), self.no_click_queries(period, limit),
                      self.daily(period), self.filtered_out_queries(period, limit),
                      self.corrections(period, limit))


class _closing:
    """``with`` for a sqlite3 connection that closes it (sqlite3's own ``with`` only commits)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *exc) -> None:
        self.conn.close()


# --------------------------------------------------------------------------- the recorder

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
                 max_sessions: int = 10_000) -> None:
        self.db = db
        self.retention_days = retention_days
        self.batch_max = batch_max
        self.session_window = session_window
        self.resolver = resolver
        self.prune_interval = prune_interval
        self.clock = clock
        self.max_sessions = max_sessions
        self.dropped = 0          # events lost because the queue was full (a counter for /metrics)
        self.failed = 0           # events lost because the database write failed
        self.written = 0          # rows written (searches + clicks)
        self._counter_lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue(maxsize=queue_max)
        self._next_expiry = 0.0  # when the oldest open typing session (of any worker) is over
        self._searches: list[SearchEvent] = []
        self._clicks: list[ClickEvent] = []
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

    def record_search(self, query: str, *, channel: str, results: int, took_ms: float = 0.0,
                      relaxed: str | None = None, filters: Mapping[str, object] | None = None, page: int = 1,
                      refine: bool = False, sid: str | None = None, ts: float | None = None,
                      filtered_out: bool = False, searched: str | None = None) -> None:
        """Log one search. On the ``page`` and ``widget`` channels it also closes the typing
        session it came from (``sid``; without one, the latest session whose text it starts with).
        ``searched``: the correction searched instead of ``query``, when there was one."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}")
        normalized = normalize_query(query)
        if not normalized:
            return
        event = SearchEvent(normalized, channel, int(results), float(took_ms), relaxed or None,
                            filters_json(filters), int(page), bool(refine), self.clock() if ts is None else ts,
                            bool(filtered_out), normalize_query(searched) or None if searched else None)
        self._offer(_SearchFromSession(event, sid) if channel in CLICK_CHANNELS else event)

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
            self._thread.join(timeout)

    # -- writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._prune_if_due()
            while True:
                items = [self._next_item()]
                while len(items) < self.batch_max:
                    try:
                        items.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
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
        def fold(conn: sqlite3.Connection) -> tuple[list[_Suggest], float | None]:
            taken: list[_Suggest] = []
            conn.execute("BEGIN IMMEDIATE")
            try:
                for event in session_events:
                    if isinstance(event, _Suggest):
                        self._suggest(conn, event, taken)
                    else:
                        self._close_session_for(conn, event.event, event.sid)
                self._expire_sessions(conn, everything, taken)
                oldest = conn.execute("SELECT MIN(ts) FROM typing_sessions").fetchone()[0]
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            return taken, oldest

        try:
            taken, oldest = self._attempt(fold)
        except sqlite3.Error as exc:
            lost = sum(isinstance(event, _Suggest) for event in session_events)
            self.failed += lost
            self._next_expiry = self.clock() + 1.0  # try the open sessions again soon
            log.debug("analytics: %d typing-session events not folded in %s: %s", lost, self.db.path, exc)
            return finished
        # With none open, look again within a minute: another worker may have died with sessions open.
        self._next_expiry = self.clock() + 60.0 if oldest is None else oldest + self.session_window
        return finished + taken

    def _suggest(self, conn: sqlite3.Connection, event: _Suggest, finished: list[_Suggest]) -> None:
        if self._closed_already(conn, event):
            return
        row = conn.execute("SELECT query, suggestions, took_ms, ts FROM typing_sessions WHERE sid = ?",
                           (event.sid,)).fetchone()
        newest = event
        if row is not None:
            previous = _Suggest(row[0], event.sid, row[1], row[2], row[3])
            older, newest = (previous, event) if previous.ts <= event.ts else (event, previous)
            if not (newest.ts - older.ts <= self.session_window
                    and (newest.query.startswith(older.query) or older.query.startswith(newest.query))):
                finished.append(older)  # a new topic: the older text was a search of its own
            # else the newer text replaces the older (a keystroke another worker wrote late is older)
        conn.execute("INSERT OR REPLACE INTO typing_sessions (sid, query, suggestions, took_ms, ts) "
                     "VALUES (?, ?, ?, ?, ?)", (newest.sid, newest.query, newest.suggestions, newest.took_ms,
                                                newest.ts))
        if row is None:
            extra = conn.execute("SELECT COUNT(*) FROM typing_sessions").fetchone()[0] - self.max_sessions
            if extra > 0:
                finished.extend(self._take(conn, "1 ORDER BY ts LIMIT ?", (extra,)))

    def _closed_already(self, conn: sqlite3.Connection, event: _Suggest) -> bool:
        """Whether a results page already closed the session of this (late) keystroke.

        A keystroke is late when another worker writes it after the results page that ended
        its session: it must not open the session again (the search would count twice).
        """
        closers = conn.execute(
            "SELECT id, sid, closed_sid, query FROM typing_closers WHERE ts BETWEEN ? AND ? ORDER BY ts DESC",
            (event.ts - CLOCK_SKEW, event.ts + self.session_window)).fetchall()
        for _id, sid, closed_sid, _query in closers:
            if event.sid in (sid, closed_sid):
                return True
        for closer_id, sid, closed_sid, query in closers:
            if sid is None and closed_sid is None and query.startswith(event.query):
                conn.execute("UPDATE typing_closers SET closed_sid = ? WHERE id = ?", (event.sid, closer_id))
                return True
        return False

    def _close_session_for(self, conn: sqlite3.Connection, search: SearchEvent, sid: str | None) -> None:
        """A results page opened after typing replaces the typing session's last query."""
        closed = None
        if sid is not None:
            if conn.execute("DELETE FROM typing_sessions WHERE sid = ?", (sid,)).rowcount:
                closed = sid
        else:
            candidates = [(ts, key) for key, query, ts in conn.execute(
                "SELECT sid, query, ts FROM typing_sessions WHERE ts BETWEEN ? AND ?",
                (search.ts - self.session_window, search.ts + CLOCK_SKEW)) if search.query.startswith(query)]
            if candidates:
                closed = max(candidates)[1]
                conn.execute("DELETE FROM typing_sessions WHERE sid = ?", (closed,))
        conn.execute("INSERT INTO typing_closers (sid, closed_sid, query, ts) VALUES (?, ?, ?, ?)",
                     (sid, closed, search.query, search.ts))

    def _expire_sessions(self, conn: sqlite3.Connection, everything: bool, finished: list[_Suggest]) -> None:
        now = self.clock()
        if everything:
            finished.extend(self._take(conn, "1 ORDER BY ts", ()))
        else:
            finished.extend(self._take(conn, "ts < ? ORDER BY ts", (now - self.session_window,)))
        conn.execute("DELETE FROM typing_closers WHERE ts < ?", (now - 2 * self.session_window,))

    @staticmethod
    def _take(conn: sqlite3.Connection, where: str, params: tuple) -> list[_Suggest]:
        """Delete the open sessions ``where`` says and return them (inside the caller's transaction)."""
        rows = conn.execute(f"SELECT sid, query, suggestions, took_ms, ts FROM typing_sessions WHERE {where}",
                            params).fetchall()
        conn.executemany("DELETE FROM typing_sessions WHERE sid = ?", [(row[0],) for row in rows])
        return [_Suggest(query, sid, suggestions, took_ms, ts) for sid, query, suggestions, took_ms, ts in rows]

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
        if not self._searches and not self._clicks:
            return
        searches, clicks = self._searches, self._clicks
        self._searches, self._clicks = [], []
        try:
            self._attempt(lambda conn: self.db.insert(searches, clicks, conn=conn))
            self.written += len(searches) + len(clicks)
        except sqlite3.Error as exc:  # said once by _attempt; counted for /metrics
            self.failed += len(searches) + len(clicks)
            log.debug("analytics: %d events not written to %s: %s", len(searches) + len(clicks),
                      self.db.path, exc)

    def _prune_if_due(self) -> None:
        now = self.clock()
        if now < self._next_prune:
            return
        self._next_prune = now + self.prune_interval
        try:
            removed = self._attempt(lambda conn: self.db.prune(self.retention_days, now, conn=conn))
            if removed:
                log.info("analytics: pruned %d rows older than %d days", removed, self.retention_days)
        except sqlite3.Error as exc:
            log.warning("analytics: pruning %s failed: %s", self.db.path, exc)


class NullRecorder:
    """The recorder when analytics is off: same methods, nothing recorded.

    Off by the setting (``analytics = false``), it counts nothing. Off because the file could
    not be used at start (``problem`` says why), it counts every event it loses as failed, so
    the loss reaches ``search_service_analytics_events_failed_total`` (the metric to alert on)
    and ``/healthz``.
    """

    dropped = written = 0

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


def database_path(index_dir: str | Path, analytics_db: str = "") -> Path:
    """``analytics_db``, or ``analytics.sqlite3`` in the index folder when it is empty."""
    return Path(analytics_db) if analytics_db else Path(index_dir) / "analytics.sqlite3"


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
