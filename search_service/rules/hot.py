"""Hot searches: what readers searched most in the last days and found, with staff pins and blocks.

Computed from the analytics file: new searches (``refine = 0``) of readers (channels ``page``,
``widget`` and ``api``; the ``script`` channel never counts) of the last ``days`` days that found an
exact match (not unfound: no zero result, no any-word or pinyin fallback; not emptied by filters),
grouped by normalized query, most searched first, kept when searched at least ``min_searches``
times (a single reader's odd query never shows on the site). Blocked entries are left out; pinned
entries come first, in the staff's order, whatever their counts; the list has ``length`` entries.

:class:`HotList` caches the list per process for :data:`CACHE_SECONDS` and recomputes it at once
when the rules change (a pin or block shows on the next request).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sqlite3
import threading
import time
from pathlib import Path

from ..analytics.events import READER_CHANNELS
from .source import HotRules

log = logging.getLogger(__name__)

#: Seconds a computed list is reused by one process (unless the rules change).
CACHE_SECONDS = 60.0
#: Queries longer than this are not shown as hot entries (a pasted sentence is nobody's "hot search").
MAX_SHOWN_CHARS = 30

_SQL = f"""
SELECT query, COUNT(*) AS searches
FROM searches
WHERE ts >= ? AND refine = 0 AND channel IN ({", ".join(f"'{c}'" for c in READER_CHANNELS)})
  AND results > 0 AND filtered_out = 0 AND (relaxed IS NULL OR relaxed NOT IN ('any_word', 'pinyin'))
  AND query != '' AND length(query) <= {MAX_SHOWN_CHARS}
GROUP BY query
HAVING COUNT(*) >= ?
ORDER BY searches DESC, MAX(ts) DESC, query
LIMIT ?
"""


@dataclasses.dataclass(frozen=True)
class HotEntry:
    query: str
    searches: int | None  # None: pinned and not among the computed entries
    pinned: bool = False

    def to_json(self) -> dict:
        return {"query": self.query, "pinned": self.pinned}


def computed(analytics_path: Path, days: int, min_searches: int, limit: int,
             now: float | None = None) -> list[tuple[str, int]]:
    """(query, searches) of readers' found searches in the last ``days`` days, most first."""
    if not analytics_path.is_file():
        return []
    since = (now if now is not None else time.time()) - days * 86400
    try:
        with contextlib.closing(sqlite3.connect(f"file:{analytics_path}?mode=ro", uri=True, timeout=5)) as conn:
            return [(q, int(n)) for q, n in conn.execute(_SQL, (since, min_searches, limit)).fetchall()]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise


def hot_list(rules: HotRules, counted: list[tuple[str, int]], length: int | None = None) -> list[HotEntry]:
    """Pins first (staff's order), then ``counted`` without blocked or pinned entries, ``length`` in all."""
    length = rules.length if length is None else length
    counts = dict(counted)
    out = [HotEntry(q, counts.get(q), True) for q in rules.pins if q not in rules.blocks]
    pinned = set(rules.pins)
    for query, searches in counted:
        if query in rules.blocks or query in pinned:
            continue
        out.append(HotEntry(query, searches))
    return out[:length]


class HotList:
    """The hot list of one analytics file, cached per process (see the module docstring)."""

    def __init__(self, analytics_path: Path) -> None:
        self.analytics_path = analytics_path
        self._lock = threading.Lock()
        self._cached: tuple[float, tuple, list[HotEntry]] | None = None

    def entries(self, rules: HotRules, version: int) -> list[HotEntry]:
        now = time.monotonic()
        key = (version, rules)
        cached = self._cached
        if cached is not None and cached[1] == key and now - cached[0] < CACHE_SECONDS:
            return cached[2]
        with self._lock:
            try:
                # Blocked and pinned entries are taken out afterwards: ask for enough to fill the list.
                counted = computed(self.analytics_path, rules.days, rules.min_searches,
                                   rules.length + len(rules.blocks) + len(rules.pins))
            except sqlite3.Error as exc:
                log.warning("hot searches: cannot read %s (%s); showing the pinned entries only",
                            self.analytics_path, exc)
                counted = []
            entries = hot_list(rules, counted)
            self._cached = (now, key, entries)
            return entries
