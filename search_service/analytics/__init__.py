"""Search analytics: what readers search, what finds nothing, and what they click.

Plain domain code (no Flask), by job: :mod:`.events` (what is recorded, the normalized
query), :mod:`.recording` (the recorder: a queue and one writer thread), :mod:`.sessions`
(typing sessions folded into one search), :mod:`.store` (the SQLite file) and
:mod:`.reports` (the staff page's queries).

* :class:`AnalyticsDB` owns one SQLite file: schema, inserts, pruning, reports.
* :class:`AnalyticsRecorder` is what request handlers call. ``record_*`` only put
  an event on a bounded queue (never waiting: when the queue is full the event is
  dropped and :attr:`AnalyticsRecorder.dropped` counts it); one background thread
  turns events into rows and inserts them in batches.
* :class:`NullRecorder` has the same methods and does nothing (``analytics = false``).

Nothing personal is stored: no IP address, no user agent, no cookie, no session
id. A row holds the normalized query, its filters, the result count, the relaxed
mode, the time taken, a timestamp and the channel (``page``, ``widget``, ``api``, or
``script`` for token-carrying API calls and headless browsers, which no report counts).

A query is *unfound* when its answer had no exact match: nothing at all, or only the
any-word or pinyin fallback (partial matches fill every page, so "zero results" alone
would miss almost every failed search). A search that was empty only because of its
filters (the query alone finds articles) is ``filtered_out``: counted apart, not as unfound.

As-you-type queries (the widget's suggest calls) are folded into one query per
typing session before anything is written (the open sessions wait in the database, so the
worker processes of ``serve --workers N`` fold them together); see
:meth:`AnalyticsRecorder.record_suggest` and docs/ANALYTICS.md for the rules.
"""

from __future__ import annotations

from .events import (
    CHANNELS,
    CLICK_CHANNELS,
    READER_CHANNELS,
    SESSION_WINDOW,
    UNFOUND_RELAXED,
    ClickEvent,
    SearchEvent,
    day_of,
    filters_json,
    normalize_query,
)
from .recording import AnalyticsRecorder, NullRecorder, Resolver, open_recorder
from .reports import DayRow, Period, QueryRow, Report, Summary, dictionary_hint
from .store import AnalyticsDB, database_path

__all__ = ["CHANNELS", "CLICK_CHANNELS", "READER_CHANNELS", "SESSION_WINDOW", "UNFOUND_RELAXED", "AnalyticsDB",
           "AnalyticsRecorder", "ClickEvent", "DayRow", "NullRecorder", "Period", "QueryRow", "Report", "Resolver",
           "SearchEvent", "Summary", "database_path", "day_of", "dictionary_hint", "filters_json", "normalize_query",
           "open_recorder"]
