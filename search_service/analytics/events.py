"""What analytics records: the events, and the normalized form queries are grouped by."""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import threading
import time
from collections.abc import Mapping

from ..text.analysis import normalize

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


@functools.lru_cache(maxsize=4096)  # the same queries recur; each normalization calls OpenCC
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
