"""The analytics file: one SQLite database of searches and clicks (schema, inserts, pruning,
reading), created, connected to and replaced when damaged under one lock between processes."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

from ..locks import file_lock
from ..sqlite_files import inode, is_sound, set_aside
from .events import SCHEMA_VERSION, ClickEvent, SearchEvent
from .reports import ReportQueries

log = logging.getLogger(__name__)

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


class AnalyticsDB(ReportQueries):
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


class _closing:
    """``with`` for a sqlite3 connection that closes it (sqlite3's own ``with`` only commits)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *exc) -> None:
        self.conn.close()


def database_path(index_dir: str | Path, analytics_db: str = "") -> Path:
    """``analytics_db``, or ``analytics.sqlite3`` in the index folder when it is empty."""
    return Path(analytics_db) if analytics_db else Path(index_dir) / "analytics.sqlite3"
