"""Synonym groups applied at query time, reloaded when their file changes.

A group is a set of equivalent terms (``高新区 = 高新技术产业开发区``). When a query
word or a whole query term equals a member of a group, the query asks for that
member OR any other member; the response lists the expansions it made. Terms are
normalized like the index (width, case, script), so a Traditional entry and a
Simplified query meet. A member written with spaces (``碳达峰 碳中和``) means all of
its words.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re
import threading
import time
from pathlib import Path

from .analysis import normalize

log = logging.getLogger(__name__)

BUILTIN_SYNONYMS = Path(__file__).parent / "data" / "synonyms.txt"
_SEPARATOR = re.compile(r"\s*[=,，、]\s*")


@dataclasses.dataclass(frozen=True)
class SynonymTable:
    """Normalized term -> the other members of its group."""

    groups: tuple[tuple[str, ...], ...] = ()
    # Set by __post_init__ from ``lookup``; not an __init__ argument, nor compared or shown.
    _lookup: dict[str, tuple[str, ...]] = dataclasses.field(init=False, repr=False, compare=False)

    @property
    def lookup(self) -> dict[str, tuple[str, ...]]:
        table: dict[str, tuple[str, ...]] = {}
        for group in self.groups:
            for term in group:
                others = tuple(t for t in group if t != term)
                table[term] = tuple(dict.fromkeys(table.get(term, ()) + others))
        return table

    def alternatives(self, term: str) -> tuple[str, ...]:
        """The other members of ``term``'s group(s), normalized; empty when none."""
        return self._lookup.get(_key(term), ())

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lookup", self.lookup)


@functools.lru_cache(maxsize=8192)
def _key(term: str) -> str:
    # Remembered: every search looks up each of its words (OpenCC's conversion is the cost).
    return " ".join(normalize(term).split())


def parse_synonyms(text: str, source: str = "synonyms") -> SynonymTable:
    """Parse the file format (see ``data/synonyms.txt``); bad lines are logged with file:line."""
    groups = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        terms = tuple(dict.fromkeys(_key(t) for t in _SEPARATOR.split(line) if t.strip()))
        if len(terms) < 2:
            log.warning("%s:%d: a synonym group needs at least two terms separated by '='; ignored: %r",
                        source, number, raw)
            continue
        groups.append(terms)
    return SynonymTable(tuple(groups))


class SynonymSource:
    """The built-in list plus an optional file of the operator's; re-read when the file changes."""

    def __init__(self, path: str | Path | None = None, check_interval: float = 2.0) -> None:
        self.path = Path(path) if path else None
        self.check_interval = check_interval
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._checked = 0.0
        self._table = SynonymTable()
        self.table()

    def _signature(self) -> tuple:
        stamps = []
        for path in (BUILTIN_SYNONYMS, self.path):
            try:
                stat = os.stat(path) if path else None
                stamps.append((stat.st_mtime_ns, stat.st_size) if stat else None)
            except OSError:
                stamps.append(None)
        return tuple(stamps)

    def table(self) -> SynonymTable:
        """The current table; the files are checked at most every ``check_interval`` seconds."""
        now = time.monotonic()
        if now - self._checked < self.check_interval and self._stamp is not None:
            return self._table
        with self._lock:
            self._checked = now
            signature = self._signature()
            if signature != self._stamp:
                text = BUILTIN_SYNONYMS.read_text(encoding="utf-8") if BUILTIN_SYNONYMS.exists() else ""
                table = parse_synonyms(text, str(BUILTIN_SYNONYMS))
                if self.path is not None:
                    try:
                        extra = parse_synonyms(self.path.read_text(encoding="utf-8"), str(self.path))
                    except OSError as exc:
                        log.error("cannot read synonyms file %s: %s; using the built-in list", self.path, exc)
                    else:
                        table = SynonymTable(table.groups + extra.groups)
                self._table = table
                self._stamp = signature
                log.info("synonyms loaded: %d groups", len(table.groups))
            return self._table
