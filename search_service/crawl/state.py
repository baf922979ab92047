"""What the crawler remembers between runs, in SQLite beside the index.

One row per URL fetched: the validators for a conditional request (ETag,
Last-Modified), the hash of what was indexed from it, the article it gave, its
links (so a ``304 Not Modified`` list page still leads to its articles), the
last status and when it was last seen. Rows about articles are written only
after the index has committed those articles, so a crawl killed half-way never
leaves the state claiming more than the index holds; until then they wait in
:class:`StagedRows` (on disk too: a rebuild's rows wait for the whole crawl).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["CrawlState", "PageRecord", "StagedRows"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pages (
    url           TEXT PRIMARY KEY,   -- normalized URL that was requested
    kind          TEXT NOT NULL,      -- article | page | redirect | gone | bad | failed
    status        INTEGER NOT NULL,   -- last HTTP status; 0 = no answer (timeout, refused)
    article_id    TEXT,               -- canonical URL of the article this page gave
    etag          TEXT,
    last_modified TEXT,
    content_hash  TEXT,               -- sha256 of the indexed fields (articles) or of the bytes (pages)
    links         TEXT,               -- JSON list of the site's links found in the page
    redirect_to   TEXT,
    problem       TEXT,
    last_seen     TEXT,               -- last time the URL answered (UTC, ISO 8601)
    last_fetched  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pages_article ON pages(article_id);
"""
_COLUMNS = ("url, kind, status, article_id, etag, last_modified, content_hash, links, redirect_to, problem, "
            "last_seen, last_fetched")


@dataclasses.dataclass(slots=True)
class PageRecord:
    """One row of the crawl state."""

    url: str
    kind: str
    status: int
    article_id: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    content_hash: str | None = None
    links: list[str] = dataclasses.field(default_factory=list)
    redirect_to: str | None = None
    problem: str | None = None
    last_seen: str | None = None
    last_fetched: str = ""


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _to_row(r: PageRecord) -> tuple:
    return (r.url, r.kind, r.status, r.article_id, r.etag, r.last_modified, r.content_hash,
            json.dumps(r.links, ensure_ascii=False) if r.links else None, r.redirect_to, r.problem,
            r.last_seen, r.last_fetched or now_iso())


def _from_row(row: tuple) -> PageRecord:
    fields = list(row)
    fields[7] = json.loads(fields[7] or "[]")  # links, stored as JSON
    return PageRecord(*fields)


class CrawlState:
    """The crawl state file; one process at a time writes it (the crawl holds the index's writer)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    def get(self, url: str) -> PageRecord | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM pages WHERE url = ?", (url,)).fetchone()
        return None if row is None else _from_row(row)

    def known_urls(self, kinds: Iterable[str]) -> Iterator[str]:
        """URLs last seen as one of ``kinds``, oldest first (re-checked after the new ones), read lazily."""
        kinds = list(kinds)
        marks = ",".join("?" * len(kinds))
        rows = self._db.execute(
            f"SELECT url FROM pages WHERE kind IN ({marks}) ORDER BY last_fetched, url", kinds
        )
        return (row[0] for row in rows)

    def urls_of_article(self, article_id: str) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT url FROM pages WHERE article_id = ?", (article_id,))]

    def article_ids(self) -> set[str]:
        rows = self._db.execute("SELECT DISTINCT article_id FROM pages WHERE article_id IS NOT NULL")
        return {row[0] for row in rows}

    def put(self, records: Iterable[PageRecord]) -> None:
        """Write ``records`` (insert or replace by URL) in one transaction."""
        with self._db:
            self._db.executemany(f"INSERT OR REPLACE INTO pages ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                                 (_to_row(r) for r in records))


class StagedRows:
    """State rows waiting for the index to commit what they describe, in a private temporary SQLite file.

    An incremental crawl moves them into the state after each commit; a rebuild
    only after it published, at the very end, and a list of every page's row
    (with its links) grew with the site. Deleted when closed or when the process
    dies: rows never moved were never true.
    """

    def __init__(self) -> None:
        self._db = sqlite3.connect("", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.executescript(_SCHEMA)
        self._count = 0

    def close(self) -> None:
        self._db.close()

    def add(self, record: PageRecord) -> None:
        """Stage ``record`` (replacing one staged for the same URL)."""
        self._db.execute(f"INSERT OR REPLACE INTO pages ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                         _to_row(record))
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def move_to(self, state: CrawlState) -> None:
        """Write every staged row into ``state`` (one transaction there), then forget them here."""
        if not self._count:
            return
        state.put(_from_row(row) for row in self._db.execute(f"SELECT {_COLUMNS} FROM pages"))
        self.clear()

    def clear(self) -> None:
        self._db.execute("DELETE FROM pages")
        self._count = 0
