"""The rules in effect in one server process, checked on every request for about 3 µs.

:meth:`RulesSource.current` asks SQLite whether the rules file changed since this thread last
looked (``PRAGMA data_version`` on a connection kept per thread: it moves when any other
connection, of any process, committed) and the file is still the same one (an ``os.stat``); only
then it reads ``version``, and only when that moved it loads every rule again, once per process,
into an immutable :class:`RulesState`. So a change made through one worker is in effect on the
next request to any other, and a request of a query without a rule pays a dictionary lookup
(none at all while no curation exists).

The dictionary words the live index was built with (:mod:`.words`) are taught to this process's
segmenter when they change, so queries are cut as the index was; ``on_dictionary_change`` (the
engine's result cache ``clear``) runs then.

A rules file that cannot be read never fails a search: the last rules loaded stay in effect
and the problem is logged (once a minute at most).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..analytics.events import normalize_query
from ..freshness import looked, looked_again
from . import model
from .curations import Curation
from .store import RulesDB, rules_path

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class HotRules:
    """Staff settings of the hot-search list."""

    length: int = model.HOT_DEFAULTS["length"]
    days: int = model.HOT_DEFAULTS["days"]
    min_searches: int = model.HOT_DEFAULTS["min_searches"]
    pins: tuple[str, ...] = ()
    blocks: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True)
class RulesState:
    """Every rule at one ``version`` (immutable; shared by every thread)."""

    version: int = 0
    curations: Mapping[str, Curation] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    groups: tuple[dict, ...] = ()
    hot: HotRules = HotRules()
    dictionary: frozenset[str] = frozenset()

    def curation(self, text: str) -> Curation | None:
        """The curation of query ``text`` (normalized as analytics groups queries), or None."""
        if not self.curations or not text:
            return None
        return self.curations.get(normalize_query(text))


EMPTY = RulesState()


def load_state(conn: sqlite3.Connection) -> RulesState:
    """Every rule, read in one transaction."""
    conn.execute("BEGIN")
    try:
        version = int(conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0])
        rows = conn.execute("SELECT area, key, value FROM rules ORDER BY rowid").fetchall()
        dictionary = json.loads(conn.execute("SELECT value FROM meta WHERE key = 'dictionary'").fetchone()[0])
    finally:
        conn.execute("COMMIT")
    curations: dict[str, Curation] = {}
    groups: list[dict] = []
    hot: dict[str, Any] = {}
    blocks: set[str] = set()
    for area, key, raw in rows:
        value = json.loads(raw)
        if area == "curation":
            curations[key] = Curation.of(key, value)
        elif area == "synonym":
            groups.append(value)
        elif area == "hot":
            if key.startswith("block:"):
                blocks.add(key[len("block:"):])
            else:
                hot[key] = value
    settings = {**model.HOT_DEFAULTS, **hot.get("settings", {})}
    return RulesState(version, MappingProxyType(curations), tuple(groups),
                      HotRules(settings["length"], settings["days"], settings["min_searches"],
                               tuple(hot.get("pins", ())), frozenset(blocks)),
                      frozenset(dictionary))


class RulesSource:
    """The rules of one data folder, as this process applies them."""

    #: Seconds between two log lines about an unreadable rules file.
    LOG_EVERY = 60.0

    def __init__(self, path: str | Path, *, on_dictionary_change: Callable[[], None] | None = None,
                 sync_dictionary: bool = True) -> None:
        self.path = Path(path)
        self.db = RulesDB(self.path)
        self.on_dictionary_change = on_dictionary_change
        self.sync_dictionary = sync_dictionary
        self._state = EMPTY
        self._lock = threading.Lock()
        self._local = threading.local()
        self._logged = -1e9
        self._taught: frozenset[str] = frozenset()

    @classmethod
    def for_index(cls, index_dir: str | Path, **options) -> RulesSource:
        return cls(rules_path(index_dir), **options)

    def current(self) -> RulesState:
        """The rules in effect now (see the module docstring for what this costs; within
        ``freshness.one_look`` the first answer stands)."""
        return looked(self, self._look)

    def _look(self) -> RulesState:
        local = self._local
        try:
            stat = os.stat(self.path)
        except OSError:
            return self._state  # no rules file yet: nothing was ever changed
        conn = getattr(local, "conn", None)
        if conn is None or local.inode != stat.st_ino or local.pid != os.getpid():
            conn = self._reconnect(stat.st_ino)
            if conn is None:
                return self._state
        try:
            seen = conn.execute("PRAGMA data_version").fetchone()[0]
            if seen == local.seen:
                return self._state
            version = int(conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0])
            if version != self._state.version:
                self._reload(conn, version)
            local.seen = seen
        except (sqlite3.Error, TypeError, ValueError) as exc:
            self._problem(exc)
            local.conn = None
        return self._state

    def refresh(self) -> RulesState:
        """Load the rules now, whatever the version check says (tests, the desk after a change)."""
        self._local.conn = None
        with self._lock:
            self._state = dataclasses.replace(self._state, version=-1)
        return looked_again(self, self._look())

    def tag(self) -> str:
        """The version in effect, for answers' entity tags."""
        return str(self.current().version)

    def _reconnect(self, inode: int) -> sqlite3.Connection | None:
        local = self._local
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 5000")
        except sqlite3.Error as exc:
            self._problem(exc)
            return None
        local.conn, local.inode, local.pid, local.seen = conn, inode, os.getpid(), None
        return conn

    def _reload(self, conn: sqlite3.Connection, version: int) -> None:
        with self._lock:
            if self._state.version == version:
                return
            state = load_state(conn)
            self._state = state
            log.info("rules loaded: version %d, %d curations, %d synonym groups", state.version,
                     len(state.curations), len(state.groups))
            if self.sync_dictionary and state.dictionary != self._taught:
                self._teach(state.dictionary)

    def _teach(self, words: frozenset[str]) -> None:
        from .words import teach_segmenter

        changed = teach_segmenter(words)
        self._taught = words
        if changed and self.on_dictionary_change is not None:
            self.on_dictionary_change()

    def _problem(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._logged >= self.LOG_EVERY:
            self._logged = now
            log.error("rules: cannot read %s (%s); the rules loaded before stay in effect", self.path, exc)
