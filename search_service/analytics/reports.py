"""The staff reports: what readers search, find and click, over a period (the queries, and their plain data).

:class:`ReportQueries` holds the SQL; :class:`~.store.AnalyticsDB` runs it on its file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import re
import sqlite3
import threading
from collections import Counter

from ..errors import InvalidParameter
from ..text.analysis import SEGMENTER, query_words
from .events import CHANNELS, day_of
from .sessions import SLIP_KINDS, slip_counts

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
    #: (typed, did-you-mean offered, searches): answered as typed with 「您是不是要找」 (:meth:`ReportQueries.slips`).
    offered: list[tuple[str, str, int]] = dataclasses.field(default_factory=list)
    #: (typed, what the reader searched next, searches): same-sound slips readers fixed by hand.
    refined: list[tuple[str, str, int]] = dataclasses.field(default_factory=list)


#: A character is *common* when the words of jieba's dictionary that contain it weigh at least
#: this much (the sum of their frequencies): about the 6,000 most used characters. 豳 (31),
#: 鬰 (4), 爨 (51) and 齉 (2) are not; 孪 of 数字孪生 (164) and 镓 of 氮化镓 (127) are.
COMMON_CHARACTER_WEIGHT = 100
#: Searches (each a reader's settled query) after which a term is proposed whatever its characters:
#: several readers typing the same rare characters are naming something (a person, a place).
SEVERAL_SEARCHES = 3

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_weights_lock = threading.Lock()
_weights: tuple[int, Counter] | None = None


def character_weight(char: str) -> int:
    """How much the words of the segmenter's dictionary that contain ``char`` weigh (the sum of
    their frequencies; user dictionaries included): how common the character is in real words.

    The table is built from the dictionary once per process (under a second) and again when a
    dictionary is loaded or a word added.
    """
    global _weights
    dictionary = SEGMENTER.dictionary()
    key = id(dictionary) ^ len(dictionary)
    table = _weights
    if table is None or table[0] != key:
        with _weights_lock:
            table = _weights
            if table is None or table[0] != key:
                counts: Counter = Counter()
                for word, frequency in dictionary.items():
                    if frequency > 0:
                        for c in set(word):
                            counts[c] += frequency
                table = _weights = (key, counts)
    return table[1][char]


def dictionary_hint(query: str, searches: int = 1) -> dict:
    """What the segmenter makes of a query, and a user-dictionary line that keeps it whole.

    ``{"words": [...], "entry": "数字孪生园区 1000 n" or "", "withheld": "" or why}``. A line is
    proposed for a query that is one run of Chinese text (no spaces or operators) that jieba
    splits into several words -- the usual reason a new term finds nothing by words -- and that
    looks like a word: every Chinese character in it common (:data:`COMMON_CHARACTER_WEIGHT`),
    or the query searched :data:`SEVERAL_SEARCHES` times or more (``searches``). Otherwise
    ``withheld`` says, in the staff page's Chinese, why no line is proposed (豳鬰爨齉 is no word
    to add to a dictionary because one reader typed it once).
    """
    words = query_words(query)
    text = query.strip()
    hint = {"words": words, "entry": "", "withheld": ""}
    if not (2 <= len(text) <= 16 and " " not in text and len(words) > 1
            and re.fullmatch(r"[\u3400-\u9fff\uf900-\ufaffA-Za-z0-9]+", text) and _CJK.search(text)):
        return hint
    rare = list(dict.fromkeys(c for c in text if _CJK.match(c) and character_weight(c) < COMMON_CHARACTER_WEIGHT))
    if rare and searches < SEVERAL_SEARCHES:
        hint["withheld"] = (f"含生僻字“{'、'.join(rare)}”（词典里几乎不用），只被搜索过 {searches} 次：不像一个词，"
                            f"暂不建议加入词典；搜索满 {SEVERAL_SEARCHES} 次后再建议。")
        return hint
    hint["entry"] = f"{text} 1000 n"
    return hint


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


class ReportQueries:
    """The report queries, over the rows ``_read(sql, params)`` returns, or over a connection to the
    file (``exists()``, ``connect()``) for the queries kept with their table (see ``store.AnalyticsDB``)."""

    def _read(self, sql: str, params: tuple) -> list[tuple]:
        raise NotImplementedError

    def exists(self) -> bool:
        raise NotImplementedError

    def connect(self) -> sqlite3.Connection:
        raise NotImplementedError

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

    def slips(self, period: Period, kind: str, limit: int | None = 50) -> list[tuple[str, str, int]]:
        """(typed, meant, searches) of one kind of slip (``offered``: the did-you-mean shown with the
        results as typed; ``refined``: the same-sound query the reader searched next), commonest
        first, scripts left out (:func:`.sessions.slip_counts`). ``[]`` before any slip is recorded."""
        if kind not in SLIP_KINDS:
            raise ValueError(f"unknown slip kind {kind!r}; one of {', '.join(SLIP_KINDS)}")
        if not self.exists():
            return []
        start, end = period.bounds()
        with contextlib.closing(self.connect()) as conn:
            return slip_counts(conn, start, end, kind, limit)

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
                      self.corrections(period, limit), self.slips(period, "offered", limit),
                      self.slips(period, "refined", limit))
