"""The URLs one crawl has queued, each once, in the order found: on disk, not in Python memory.

A site can name millions of URLs (five sitemaps of 1.2 M URLs each, pages full of
links); a Python set of every URL queued, a deque of those to visit and a dict of
their referrers took 1.47 GB for them. Here they are rows of a private temporary
SQLite database: SQLite keeps a bounded page cache and spills the rest to a file
it deletes when the connection closes (or the process dies). Nothing in it needs
to survive the run: the next run starts its frontier afresh from the start URL,
the sitemaps and the crawl state.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

__all__ = ["Frontier"]

_SCHEMA = """
CREATE TABLE queue (
    seq      INTEGER PRIMARY KEY,   -- order found: visited breadth-first
    url      TEXT NOT NULL UNIQUE,  -- normalized URL; UNIQUE makes "queued once per run"
    referrer TEXT                   -- the page that linked to it first (for broken-link reports)
);
"""
# Pages of SQLite's cache (KiB when negative): what the frontier may hold in memory.
_CACHE_KIB = 4096


class Frontier:
    """Queue of URLs to visit; a URL queued once is never queued again this run."""

    def __init__(self) -> None:
        # "" = a private temporary database, deleted on close; autocommit, batches in explicit transactions.
        self._db = sqlite3.connect("", isolation_level=None)
        # Nothing here must survive a crash: no journal, no fsync.
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        self._db.executescript(_SCHEMA)
        self._last = 0  # seq of the last URL taken
        self._pending = 0

    def close(self) -> None:
        self._db.close()

    def add(self, urls: Iterable[str], referrer: str | None = None) -> int:
        """Queue those of ``urls`` never queued before this run; returns how many were new."""
        before = self._db.total_changes
        self._db.execute("BEGIN")
        try:
            self._db.executemany("INSERT OR IGNORE INTO queue (url, referrer) VALUES (?, ?)",
                                 ((url, referrer) for url in urls))
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        added = self._db.total_changes - before
        self._pending += added
        return added

    def pop(self) -> str | None:
        """The next URL to visit, in the order queued; None when none is left."""
        row = self._db.execute("SELECT seq, url FROM queue WHERE seq > ? ORDER BY seq LIMIT 1",
                               (self._last,)).fetchone()
        if row is None:
            return None
        self._last = row[0]
        self._pending -= 1
        return row[1]

    def referrer(self, url: str) -> str | None:
        """The page that linked to ``url`` first, if any (sitemaps and earlier runs name none)."""
        row = self._db.execute("SELECT referrer FROM queue WHERE url = ?", (url,)).fetchone()
        return row[0] if row else None

    def __len__(self) -> int:
        """URLs queued and not visited yet."""
        return self._pending
