"""Typing sessions: one reader's keystrokes in the widget folded into the one search they make;
and the slips readers make beyond the corrections: did-you-means offered, slips fixed by hand.

Within a session (the widget's ``sid``), a suggest query replaces the previous one when either
is a prefix of the other and it came within ``window`` seconds; a results page opened after
typing replaces the session's last query. The open sessions live in the analytics file
(``typing_sessions``, ``typing_closers``), not in a process: the workers of ``serve`` see one
reader's keystrokes and results page arrive at different processes. See docs/ANALYTICS.md.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable

from ..text.analysis import has_cjk
from ..text.pinyin import pinyin_key
from .events import CLOCK_SKEW, SearchEvent, _SearchFromSession, _Suggest, day_of


class TypingSessions:
    """Folds suggest queries and results pages into the open sessions of one analytics file."""

    def __init__(self, window: float, max_sessions: int, clock: Callable[[], float]) -> None:
        self.window = window
        self.max_sessions = max_sessions
        self.clock = clock

    def fold(self, conn: sqlite3.Connection, events: list, everything: bool) -> tuple[list[_Suggest], float | None]:
        """Apply ``events`` (suggest queries with a sid, results pages) and take the sessions that
        are over (all of them when ``everything``): returns them, oldest first, and the time of
        the oldest session still open. One ``BEGIN IMMEDIATE`` transaction, so two workers never
        fold (or finish) the same session at once."""
        taken: list[_Suggest] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for event in events:
                if isinstance(event, _Suggest):
                    self._suggest(conn, event, taken)
                elif isinstance(event, _SearchFromSession):
                    self._close_session_for(conn, event.event, event.sid)
            self._expire_sessions(conn, everything, taken)
            oldest = conn.execute("SELECT MIN(ts) FROM typing_sessions").fetchone()[0]
            conn.execute("COMMIT")
        except BaseException:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise
        return taken, oldest

    def _suggest(self, conn: sqlite3.Connection, event: _Suggest, finished: list[_Suggest]) -> None:
        if self._closed_already(conn, event):
            return
        row = conn.execute("SELECT query, suggestions, took_ms, ts FROM typing_sessions WHERE sid = ?",
                           (event.sid,)).fetchone()
        newest = event
        if row is not None:
            previous = _Suggest(row[0], event.sid, row[1], row[2], row[3])
            older, newest = (previous, event) if previous.ts <= event.ts else (event, previous)
            if not (newest.ts - older.ts <= self.window
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
            (event.ts - CLOCK_SKEW, event.ts + self.window)).fetchall()
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
                (search.ts - self.window, search.ts + CLOCK_SKEW)) if search.query.startswith(query)]
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
            finished.extend(self._take(conn, "ts < ? ORDER BY ts", (now - self.window,)))
        conn.execute("DELETE FROM typing_closers WHERE ts < ?", (now - 2 * self.window,))

    @staticmethod
    def _take(conn: sqlite3.Connection, where: str, params: tuple) -> list[_Suggest]:
        """Delete the open sessions ``where`` says and return them (inside the caller's transaction)."""
        rows = conn.execute(f"SELECT sid, query, suggestions, took_ms, ts FROM typing_sessions WHERE {where}",
                            params).fetchall()
        conn.executemany("DELETE FROM typing_sessions WHERE sid = ?", [(row[0],) for row in rows])
        return [_Suggest(query, sid, suggestions, took_ms, ts) for sid, query, suggestions, took_ms, ts in rows]


# --------------------------------------------------------------------------- slips: offered and refined


#: What the staff see of readers' slips besides the corrections (``searches.searched``): the
#: did-you-mean offered with results as typed, and slips a reader corrected by hand.
SLIP_KINDS = ("offered", "refined")

SLIPS_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS slips (
    id        INTEGER PRIMARY KEY,
    ts        REAL    NOT NULL,
    day       TEXT    NOT NULL,            -- local day, YYYY-MM-DD
    channel   TEXT    NOT NULL,            -- page | widget | api
    query     TEXT    NOT NULL,            -- as typed, normalized like searches.query
    meant     TEXT    NOT NULL,            -- offered: the did-you-mean shown; refined: the reader's next query
    kind      TEXT    NOT NULL             -- offered | refined
)""",
    "CREATE INDEX IF NOT EXISTS slips_day ON slips (day, kind)",
    "CREATE INDEX IF NOT EXISTS slips_ts ON slips (ts)",
)


@dataclasses.dataclass(frozen=True)
class SlipEvent:
    """One slip: a search answered as typed with a did-you-mean (``offered``), or a search a reader
    replaced at once by a same-sound one (``refined``: 一代一路, then 一带一路)."""

    query: str
    meant: str
    kind: str
    channel: str
    ts: float

    def row(self) -> tuple:
        return (self.ts, day_of(self.ts), self.channel, self.query, self.meant, self.kind)


def is_refined_slip(previous: str, query: str) -> bool:
    """Whether ``query`` rewrites ``previous`` (both normalized) with other characters of the same
    sound: the reader fixing an input method's slip the search took at face value (一代一路 →
    一带一路, 消费这 → 消费者). Not a refinement of another kind (more words, other words)."""
    if not previous or previous == query or len(previous) != len(query):
        return False
    if not has_cjk(previous) or not has_cjk(query):
        return False
    changed = sum(a != b for a, b in zip(previous, query))
    if changed > max(1, len(query) // 2):
        return False
    return pinyin_key(previous) == pinyin_key(query) != ""


def write_slips(conn: sqlite3.Connection, slips: list[SlipEvent]) -> None:
    """Insert slips (the table made first: it came after the file's first schema), one transaction."""
    if not slips:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in SLIPS_SCHEMA:
            conn.execute(statement)
        conn.executemany("INSERT INTO slips (ts, day, channel, query, meant, kind) VALUES (?, ?, ?, ?, ?, ?)",
                         [slip.row() for slip in slips])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def prune_slips(conn: sqlite3.Connection, cutoff: float) -> int:
    """Delete slips older than ``cutoff`` (Unix time); how many went."""
    try:
        return conn.execute("DELETE FROM slips WHERE ts < ?", (cutoff,)).rowcount
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return 0
        raise


def slip_counts(conn: sqlite3.Connection, start: str, end: str, kind: str,
                limit: int | None = 50) -> list[tuple[str, str, int]]:
    """(typed, meant, times) of one kind of slip over the days ``start``..``end`` (YYYY-MM-DD),
    commonest first: what the staff page lists as 「提示了“您是不是要找”」 and 「读者自己改正的错字」.
    Scripts' searches are not counted."""
    if kind not in SLIP_KINDS:
        raise ValueError(f"unknown slip kind {kind!r}; one of {', '.join(SLIP_KINDS)}")
    sql = ("SELECT query, meant, COUNT(*) FROM slips WHERE kind = ? AND channel != 'script' "
           "AND day BETWEEN ? AND ? GROUP BY query, meant ORDER BY COUNT(*) DESC, MAX(ts) DESC, query")
    params: tuple = (kind, start, end)
    if limit is not None:
        sql += " LIMIT ?"
        params += (limit,)
    try:
        return [(q, meant, n) for q, meant, n in conn.execute(sql, params).fetchall()]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
