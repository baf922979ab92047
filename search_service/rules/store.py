"""The rules file: one SQLite database beside the index (``rules.sqlite3`` in ``index_dir``) holding
every staff rule, the history of every change, dictionary-word evidence and the desk's jobs.

It lives outside ``generations/``, so rebuilds, ``reindex`` and ``rollback`` never touch it, and
rules name articles by id (never by document number), so they survive every rebuild. Every
process opens it (WAL: readers never wait for a writer). Each change is one ``BEGIN IMMEDIATE``
transaction that writes the new values, one history row and a new ``version``: a server
process compares ``PRAGMA data_version`` per request (see :mod:`.source`) and reloads when the
version moved, so a change made through one worker is in effect on the next request to any.

Staff state is one table, ``rules(area, key, value)``, with JSON values (see :mod:`.model`):

========== ============================== =============================================
area       key                            value
========== ============================== =============================================
curation   the normalized query           ``{"pin": [...], "hide": [...]}``
synonym    a short random id              a synonym group
hot        ``settings`` / ``pins`` /      hot settings / pinned entries / ``true``
           ``block:<normalized query>``
word       the word                       ``{"status": "accepted" | "rejected" | "proposed"}``
========== ============================== =============================================

A history row lists its changes as ``[{"area", "key", "before", "after"}]`` (``null`` = absent);
undoing it writes every ``before`` back, as a new history row, when each key still holds its
``after`` (otherwise a later change came first and must be undone before it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter, NotFound, SearchError
from ..locks import file_lock
from . import model

RULES_FILE = "rules.sqlite3"
#: Seconds without news after which a running job is taken for dead (jobs report every second or so).
JOB_STALE_SECONDS = 120.0
SCHEMA_VERSION = 1
AREAS = ("curation", "synonym", "hot", "word")
#: How many keys of an area may exist at once: the constant of rules.model that bounds it, and what it counts
#: (hot blocks are bounded apart, by their key prefix).
AREA_LIMITS = {
    "curation": ("MAX_CURATIONS", "queries with a curation"),
    "synonym": ("MAX_SYNONYM_GROUPS", "synonym groups"),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('version', '0');
INSERT OR IGNORE INTO meta (key, value) VALUES ('dictionary', '[]');
CREATE TABLE IF NOT EXISTS rules (
    area    TEXT NOT NULL,               -- curation | synonym | hot | word
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,               -- JSON (see rules.model)
    updated REAL NOT NULL,               -- Unix time of the last change
    actor   TEXT NOT NULL DEFAULT '',    -- who made it (see web/desk.py: actor)
    PRIMARY KEY (area, key)
);
CREATE TABLE IF NOT EXISTS history (
    id        INTEGER PRIMARY KEY,
    ts        REAL    NOT NULL,
    actor     TEXT    NOT NULL,
    summary   TEXT    NOT NULL,          -- one line for people (Chinese)
    changes   TEXT    NOT NULL,          -- JSON [{"area", "key", "before", "after"}]
    undo_of   INTEGER,                   -- the entry this one undid
    undone_by INTEGER                    -- the entry that undid this one
);
CREATE TABLE IF NOT EXISTS word_evidence (
    word     TEXT PRIMARY KEY,
    sources  TEXT NOT NULL,              -- JSON list: analytics | corpus
    searches INTEGER NOT NULL DEFAULT 0, -- unfound or refined reader searches of it
    corpus   INTEGER NOT NULL DEFAULT 0, -- occurrences in the articles mined
    contexts TEXT NOT NULL DEFAULT '[]', -- JSON list of plain-text excerpts
    split    TEXT NOT NULL DEFAULT '[]', -- JSON list: how jieba cuts it today
    updated  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id       INTEGER PRIMARY KEY,
    kind     TEXT NOT NULL,              -- reindex | mine
    state    TEXT NOT NULL,              -- running | done | failed
    pid      INTEGER,
    actor    TEXT NOT NULL DEFAULT '',
    started  REAL NOT NULL,
    updated  REAL NOT NULL,
    finished REAL,
    done     INTEGER NOT NULL DEFAULT 0,
    total    INTEGER,
    message  TEXT NOT NULL DEFAULT ''
);
"""


def rules_path(index_dir: str | Path, rules_db: str = "") -> Path:
    """``rules_db`` when set, else ``rules.sqlite3`` in the index folder."""
    return Path(rules_db) if rules_db else Path(index_dir) / RULES_FILE


class RulesUnavailable(SearchError):
    """The rules file cannot be read or written (its folder, a damaged file)."""

    status = 503
    code = "rules_unavailable"


class JobRunning(SearchError):
    """A desk job (reindex, mining) while another one runs."""

    status = 409
    code = "job_running"


class UndoConflict(SearchError):
    """An undo whose keys were changed again since: the later change must be undone first."""

    status = 409
    code = "undo_conflict"


@dataclasses.dataclass(frozen=True)
class Change:
    area: str
    key: str
    before: Any
    after: Any

    def to_json(self) -> dict:
        return {"area": self.area, "key": self.key, "before": self.before, "after": self.after}


@dataclasses.dataclass(frozen=True)
class HistoryEntry:
    id: int
    ts: float
    actor: str
    summary: str
    changes: tuple[Change, ...]
    undo_of: int | None
    undone_by: int | None

    @property
    def undoable(self) -> bool:
        return bool(self.changes) and self.undone_by is None

    def to_json(self) -> dict:
        return {"id": self.id, "time": _iso(self.ts), "actor": self.actor, "summary": self.summary,
                "changes": [c.to_json() for c in self.changes], "undo_of": self.undo_of,
                "undone_by": self.undone_by}


@dataclasses.dataclass(frozen=True)
class Item:
    """One stored rule with when and by whom it was last changed."""

    area: str
    key: str
    value: Any
    updated: float
    actor: str


@dataclasses.dataclass(frozen=True)
class Job:
    id: int
    kind: str
    state: str
    pid: int | None
    actor: str
    started: float
    updated: float
    finished: float | None
    done: int
    total: int | None
    message: str

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def percent(self) -> int | None:
        if not self.total:
            return None
        return max(0, min(100, int(self.done * 100 / self.total)))

    def to_json(self) -> dict:
        return {"id": self.id, "kind": self.kind, "state": self.state, "actor": self.actor,
                "started": _iso(self.started), "finished": _iso(self.finished) if self.finished else None,
                "done": self.done, "total": self.total, "percent": self.percent, "message": self.message}


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=False)


class RulesDB:
    """The rules file. Connections are opened per call (thread- and process-safe)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # -- the file -------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.path.is_file()

    def connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA synchronous = FULL")  # staff changes: few, and each one matters
        except sqlite3.Error as exc:
            raise RulesUnavailable(f"The rules file {self.path} cannot be opened ({exc}); searches are served "
                                   "without staff rules changes until it can.") from None
        return conn

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        conn = self.connect()
        try:
            yield conn
        except sqlite3.Error as exc:
            raise RulesUnavailable(f"The rules file {self.path} cannot be used ({exc}).") from None
        finally:
            conn.close()

    def create(self) -> RulesDB:
        """Create the folder, file and tables (idempotent; processes take turns with a lock)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with file_lock(self.path.with_name(self.path.name + ".lock")), self.connection() as conn:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.executescript(_SCHEMA)
                if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except OSError as exc:
            raise RulesUnavailable(f"The rules file {self.path} cannot be created ({exc}).") from None
        return self

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction that bumps ``version`` when it commits a change."""
        if not self.exists():
            self.create()
        with self.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            before = conn.total_changes
            try:
                yield conn
                if conn.total_changes != before:  # nothing written: readers need not look again
                    conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'version'")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    # -- reading --------------------------------------------------------------------------

    def version(self) -> int:
        if not self.exists():
            return 0
        with self.connection() as conn:
            return _version(conn)

    def items(self, area: str, conn: sqlite3.Connection | None = None) -> list[Item]:
        """Every rule of ``area``, oldest first."""
        if conn is None:
            if not self.exists():
                return []
            with self.connection() as own:
                return self.items(area, own)
        rows = conn.execute("SELECT area, key, value, updated, actor FROM rules WHERE area = ? ORDER BY rowid",
                            (area,)).fetchall()
        return [Item(a, k, json.loads(v), u, actor) for a, k, v, u, actor in rows]

    def get(self, area: str, key: str, conn: sqlite3.Connection | None = None) -> Any:
        """The value of one rule, or None."""
        item = self.item(area, key, conn)
        return None if item is None else item.value

    def item(self, area: str, key: str, conn: sqlite3.Connection | None = None) -> Item | None:
        if conn is None:
            if not self.exists():
                return None
            with self.connection() as own:
                return self.item(area, key, own)
        row = conn.execute("SELECT area, key, value, updated, actor FROM rules WHERE area = ? AND key = ?",
                           (area, key)).fetchone()
        return None if row is None else Item(row[0], row[1], json.loads(row[2]), row[3], row[4])

    def dictionary(self, conn: sqlite3.Connection | None = None) -> list[str]:
        """The words the live index was built with (set by the desk's reindex; see :mod:`.words`)."""
        if conn is None:
            if not self.exists():
                return []
            with self.connection() as own:
                return self.dictionary(own)
        row = conn.execute("SELECT value FROM meta WHERE key = 'dictionary'").fetchone()
        return list(json.loads(row[0])) if row else []

    def set_dictionary(self, words: Sequence[str]) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE meta SET value = ? WHERE key = 'dictionary'", (dumps(sorted(set(words))),))

    # -- changing -------------------------------------------------------------------------

    def change(self, actor: str, summary: str, changes: Sequence[tuple[str, str, Any]],
               conn: sqlite3.Connection | None = None) -> HistoryEntry | None:
        """Set each ``(area, key, value)`` (None removes it) and record one history entry.

        Values are written as given (validate them with :mod:`.model` first). Changes that
        change nothing are left out; when none is left nothing is written and None returned.
        """
        if conn is None:
            with self.transaction() as own:
                return self.change(actor, summary, changes, own)
        done: list[Change] = []
        for area, key, value in changes:
            if area not in AREAS:
                raise ValueError(f"unknown rules area {area!r}")
            before = self.get(area, key, conn)
            if before == value:
                continue
            _put(conn, area, key, value, actor)
            done.append(Change(area, key, before, value))
        if not done:
            return None
        _check_limits(conn, {c.area for c in done})
        return _record(conn, actor, summary, done)

    def undo(self, entry_id: int, actor: str) -> HistoryEntry:
        """Write back what entry ``entry_id`` replaced, as a new entry (:class:`UndoConflict` when a key
        changed again since, naming the change to undo first)."""
        with self.transaction() as conn:
            entry = self._entry(conn, entry_id)
            if entry is None:
                raise NotFound(f"No change number {entry_id} in the history.")
            if not entry.changes:
                raise InvalidParameter(f"Change {entry_id} ({entry.summary}) changed no rule; there is nothing "
                                       "to undo.", param="id")
            if entry.undone_by is not None:
                raise UndoConflict(f"Change {entry_id} was already undone by change {entry.undone_by}.")
            for change in entry.changes:
                if self.get(change.area, change.key, conn) != change.after:
                    later = _last_change_of(conn, change.area, change.key, entry_id)
                    which = f"change {later.id} ({later.summary})" if later else "a later change"
                    raise UndoConflict(f"Change {entry_id} cannot be undone: {which} changed the same rule "
                                       "since; undo that one first.")
            for change in entry.changes:
                _put(conn, change.area, change.key, change.before, actor)
            _check_limits(conn, {c.area for c in entry.changes})
            undo = _record(conn, actor, f"撤销 #{entry_id}：{entry.summary}",
                           [Change(c.area, c.key, c.after, c.before) for c in entry.changes], undo_of=entry_id)
            conn.execute("UPDATE history SET undone_by = ? WHERE id = ?", (undo.id, entry_id))
            return undo

    def note(self, actor: str, summary: str) -> HistoryEntry:
        """Record an event that changed no rule (a reindex started, proposals refreshed)."""
        with self.transaction() as conn:
            return _record(conn, actor, summary, [])

    def history(self, limit: int = 100, offset: int = 0) -> list[HistoryEntry]:
        if not self.exists():
            return []
        with self.connection() as conn:
            rows = conn.execute("SELECT id, ts, actor, summary, changes, undo_of, undone_by FROM history "
                                "ORDER BY id DESC LIMIT ? OFFSET ?", (limit, offset)).fetchall()
        return [_entry_of(row) for row in rows]

    def history_count(self) -> int:
        if not self.exists():
            return 0
        with self.connection() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM history").fetchone()[0])

    def entry(self, entry_id: int) -> HistoryEntry | None:
        if not self.exists():
            return None
        with self.connection() as conn:
            return self._entry(conn, entry_id)

    @staticmethod
    def _entry(conn: sqlite3.Connection, entry_id: int) -> HistoryEntry | None:
        row = conn.execute("SELECT id, ts, actor, summary, changes, undo_of, undone_by FROM history WHERE id = ?",
                           (entry_id,)).fetchone()
        return None if row is None else _entry_of(row)

    # -- word evidence ----------------------------------------------------------------------

    def put_evidence(self, rows: Sequence[dict]) -> None:
        """Add or refresh proposals' evidence (``word``, ``source``, ``searches``/``corpus``, ``contexts``,
        ``split``); a source's counts replace its earlier counts, other sources' are kept."""
        if not rows:
            return
        now = time.time()
        with self.transaction() as conn:
            for row in rows:
                old = conn.execute("SELECT sources, searches, corpus, contexts FROM word_evidence WHERE word = ?",
                                   (row["word"],)).fetchone()
                sources = set(json.loads(old[0])) if old else set()
                sources.add(row["source"])
                searches = row.get("searches", old[1] if old else 0)
                corpus = row.get("corpus", old[2] if old else 0)
                contexts = list(dict.fromkeys(list(row.get("contexts", [])) + (json.loads(old[3]) if old else [])))
                conn.execute(
                    "INSERT OR REPLACE INTO word_evidence (word, sources, searches, corpus, contexts, split, updated) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (row["word"], dumps(sorted(sources)), int(searches), int(corpus), dumps(contexts[:5]),
                     dumps(list(row.get("split", []))), now))

    def evidence(self) -> dict[str, dict]:
        if not self.exists():
            return {}
        with self.connection() as conn:
            rows = conn.execute("SELECT word, sources, searches, corpus, contexts, split, updated "
                                "FROM word_evidence").fetchall()
        return {w: {"word": w, "sources": json.loads(s), "searches": n, "corpus": c, "contexts": json.loads(x),
                    "split": json.loads(sp), "updated": u} for w, s, n, c, x, sp, u in rows}

    # -- jobs ---------------------------------------------------------------------------------

    def start_job(self, kind: str, actor: str, pid: int | None = None, total: int | None = None) -> Job:
        """Record a new running job; :class:`JobRunning` while another job is running (one at a time: a
        reindex and a mining run both read the whole index). A job silent for :data:`JOB_STALE_SECONDS`
        is taken for dead (its process was killed) and marked failed."""
        now = time.time()
        with self.transaction() as conn:
            for row in conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state = 'running'").fetchall():
                other = Job(*row)
                if now - other.updated < JOB_STALE_SECONDS:
                    raise JobRunning(f"Job {other.id} ({other.kind}, started by {other.actor or 'someone'}) is "
                                     "still running; wait for it to finish.")
                conn.execute("UPDATE jobs SET state = 'failed', finished = ?, message = ? WHERE id = ?",
                             (now, "中断：任务进程已不在运行", other.id))
            cursor = conn.execute("INSERT INTO jobs (kind, state, pid, actor, started, updated, total) "
                                  "VALUES (?, 'running', ?, ?, ?, ?, ?)", (kind, pid, actor, now, now, total))
            job_id = int(cursor.lastrowid or 0)
        job = self.job(job_id)
        assert job is not None
        return job

    def update_job(self, job_id: int, *, state: str | None = None, done: int | None = None,
                   total: int | None = None, message: str | None = None, pid: int | None = None) -> None:
        now = time.time()
        fields: dict[str, Any] = {"updated": now}
        if state is not None:
            fields["state"] = state
            if state != "running":
                fields["finished"] = now
        for name, value in (("done", done), ("total", total), ("message", message), ("pid", pid)):
            if value is not None:
                fields[name] = value
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self.connection() as conn:
            conn.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*fields.values(), job_id))

    def job(self, job_id: int) -> Job | None:
        if not self.exists():
            return None
        with self.connection() as conn:
            row = conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else Job(*row)

    def latest_job(self, kind: str) -> Job | None:
        if not self.exists():
            return None
        with self.connection() as conn:
            row = conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE kind = ? ORDER BY id DESC LIMIT 1",
                               (kind,)).fetchone()
        return None if row is None else Job(*row)


_JOB_COLUMNS = "id, kind, state, pid, actor, started, updated, finished, done, total, message"


def _version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
    return int(row[0]) if row else 0


def _put(conn: sqlite3.Connection, area: str, key: str, value: Any, actor: str) -> None:
    if value is None:
        conn.execute("DELETE FROM rules WHERE area = ? AND key = ?", (area, key))
    else:
        conn.execute("INSERT INTO rules (area, key, value, updated, actor) VALUES (?, ?, ?, ?, ?) "
                     "ON CONFLICT (area, key) DO UPDATE SET value = excluded.value, updated = excluded.updated, "
                     "actor = excluded.actor", (area, key, dumps(value), time.time(), actor))


def _check_limits(conn: sqlite3.Connection, areas: set[str]) -> None:
    for area in areas:
        if area in AREA_LIMITS:
            constant, what = AREA_LIMITS[area]
            limit = getattr(model, constant)
            count = conn.execute("SELECT COUNT(*) FROM rules WHERE area = ?", (area,)).fetchone()[0]
            if count > limit:
                raise InvalidParameter(f"That would make {count} {what}; the limit is {limit} "
                                       f"(rules.model.{constant}). Remove some first.", param=area)
    if "hot" in areas:
        blocks = conn.execute("SELECT COUNT(*) FROM rules WHERE area = 'hot' AND key LIKE 'block:%'").fetchone()[0]
        if blocks > model.MAX_HOT_BLOCKS:
            raise InvalidParameter(f"That would make {blocks} blocked hot entries; the limit is "
                                   f"{model.MAX_HOT_BLOCKS} (rules.model.MAX_HOT_BLOCKS).", param="block")


def _record(conn: sqlite3.Connection, actor: str, summary: str, changes: Sequence[Change],
            undo_of: int | None = None) -> HistoryEntry:
    now = time.time()
    cursor = conn.execute("INSERT INTO history (ts, actor, summary, changes, undo_of) VALUES (?, ?, ?, ?, ?)",
                          (now, actor, summary, dumps([c.to_json() for c in changes]), undo_of))
    return HistoryEntry(int(cursor.lastrowid or 0), now, actor, summary, tuple(changes), undo_of, None)


def _last_change_of(conn: sqlite3.Connection, area: str, key: str, after: int) -> HistoryEntry | None:
    """The newest entry after ``after`` that changed ``(area, key)``."""
    rows = conn.execute("SELECT id, ts, actor, summary, changes, undo_of, undone_by FROM history WHERE id > ? "
                        "ORDER BY id DESC LIMIT 1000", (after,)).fetchall()
    for row in rows:
        entry = _entry_of(row)
        if any(c.area == area and c.key == key for c in entry.changes):
            return entry
    return None


def _entry_of(row: tuple) -> HistoryEntry:
    changes = tuple(Change(c["area"], c["key"], c["before"], c["after"]) for c in json.loads(row[4]))
    return HistoryEntry(row[0], row[1], row[2], row[3], changes, row[5], row[6])
