"""Search analytics: normalization, typing sessions, the recorder's queue, hand-counted reports,
recording from every channel, /api/click, and the staff page's access rules."""

from __future__ import annotations

import base64
import contextlib
import csv
import datetime as dt
import io
import json
import re
import shutil
import sqlite3
import threading
import time

import pytest

from search_service.analytics import (
    AnalyticsDB,
    AnalyticsRecorder,
    ClickEvent,
    NullRecorder,
    Period,
    SearchEvent,
    day_of,
    dictionary_hint,
    normalize_query,
    open_recorder,
)
from search_service.errors import InvalidParameter
from search_service.web import close_app, create_app

PASSWORD = "staff-secret-密码"
TOKEN = "tok-analytics-1"


def at(day: str, hour: int = 12, minute: int = 0) -> float:
    """Unix time of a local wall-clock moment (day_of gives ``day`` back)."""
    return time.mktime(dt.datetime.fromisoformat(f"{day} {hour:02d}:{minute:02d}:00").timetuple())


def basic(password: str, user: str = "staff") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def rows(db: AnalyticsDB, sql: str = "SELECT channel, query, results, refine FROM searches ORDER BY id") -> list:
    with contextlib.closing(sqlite3.connect(db.path)) as conn:
        return conn.execute(sql).fetchall()


# --------------------------------------------------------------------------- normalization


class TestNormalizeQuery:
    def test_traditional_and_simplified_are_one_query(self):
        assert normalize_query("習近平") == normalize_query("习近平") == "习近平"
        assert normalize_query("高新區 規劃") == "高新区 规划"

    def test_width_case_and_whitespace_fold(self):
        assert normalize_query("  ＡＩ　 智慧城市\t") == "ai 智慧城市"
        assert normalize_query("iPhone15") == "iphone15"

    def test_operators_keep_their_capitals(self):
        assert normalize_query("高新區 OR 開發區 NOT 招商") == "高新区 OR 开发区 NOT 招商"
        assert normalize_query("Oregon ORACLE") == "oregon oracle"

    def test_empty(self):
        assert normalize_query("   ") == ""

    def test_dictionary_hint_proposes_an_entry_for_a_split_term(self):
        hint = dictionary_hint("数字孪生园区")
        assert len(hint["words"]) > 1
        assert hint["entry"] == "数字孪生园区 1000 n"
        assert dictionary_hint("园区 规划")["entry"] == ""  # several words on purpose: nothing to add


class TestPeriod:
    def test_defaults_to_the_last_30_days(self):
        period = Period.parse(None, None, today=dt.date(2025, 3, 31))
        assert (period.start, period.end, period.days) == (dt.date(2025, 3, 2), dt.date(2025, 3, 31), 30)

    def test_explicit_and_invalid(self):
        assert Period.parse("2025-01-01", "2025-01-07").days == 7
        with pytest.raises(InvalidParameter) as bad:
            Period.parse("2025-1-1", "")
        assert bad.value.param == "from"
        with pytest.raises(InvalidParameter):
            Period.parse("2025-02-01", "2025-01-01")
        with pytest.raises(InvalidParameter):
            Period.parse("2025-02-30", None)


# --------------------------------------------------------------------------- reports, hand-counted


@pytest.fixture()
def fixture_db(tmp_path) -> AnalyticsDB:
    """Known rows over 2025-03-01 .. 2025-03-03, plus rows outside that period.

    Counted searches (refine = 0) in the period:
      园区规划: 3 page (5, 5, 5 results) + 1 widget (8) + 1 api (5) = 5, none empty
      数字孪生: 2 page empty + 1 widget empty + 1 api empty       = 4, all empty
      智慧城市: 1 page (3) + 1 widget (2, relaxed=substring)          = 2
      碳中和:   1 api (4)                                           = 1 (api: clicks not tracked)
      人工智能: 1 page (6)                                          = 1, never clicked
    Not counted: a refinement of 园区规划 (page 2), and rows on 2025-02-28 and 2025-03-04.
    Clicks in the period: 园区规划 ranks 1 (first), 3 (not first), 2 (widget, first);
    智慧城市 rank 4 (first). One click outside the period.
    """
    db = AnalyticsDB(tmp_path / "fixture.sqlite3")
    db.create()
    d1, d2, d3 = "2025-03-01", "2025-03-02", "2025-03-03"

    def s(query, channel, results, day, relaxed=None, refine=False, page=1, hour=12):
        return SearchEvent(query, channel, results, took_ms=10.0, relaxed=relaxed, refine=refine, page=page,
                           ts=at(day, hour))

    searches = [
        s("园区规划", "page", 5, d1), s("园区规划", "page", 5, d1, hour=13), s("园区规划", "page", 5, d2),
        s("园区规划", "widget", 8, d2), s("园区规划", "api", 5, d3),
        s("园区规划", "page", 5, d1, refine=True, page=2),
        s("数字孪生", "page", 0, d1), s("数字孪生", "page", 0, d3), s("数字孪生", "widget", 0, d3),
        s("数字孪生", "api", 0, d2),
        s("智慧城市", "page", 3, d2), s("智慧城市", "widget", 2, d3, relaxed="substring"),
        s("碳中和", "api", 4, d1),
        s("人工智能", "page", 6, d3, hour=18),
        s("园区规划", "page", 5, "2025-02-28"), s("旧词", "page", 0, "2025-02-28"), s("新词", "page", 0, "2025-03-04"),
    ]
    clicks = [
        ClickEvent("园区规划", "a1", 1, "page", True, at(d1)), ClickEvent("园区规划", "a3", 3, "page", False, at(d1)),
        ClickEvent("园区规划", "a2", 2, "widget", True, at(d2)), ClickEvent("智慧城市", "c4", 4, "page", True, at(d2)),
        ClickEvent("人工智能", "x", 1, "page", True, at("2025-03-04")),
    ]
    db.insert(searches, clicks)
    return db


PERIOD = Period(dt.date(2025, 3, 1), dt.date(2025, 3, 3))


class TestReports:
    def test_summary(self, fixture_db):
        summary = fixture_db.summary(PERIOD)
        assert summary.searches == 13
        assert summary.queries == 5
        assert summary.zero_results == 4
        assert summary.zero_rate == pytest.approx(4 / 13)
        assert summary.relaxed == 1
        # with results on page/widget: 园区规划 4, 智慧城市 2, 人工智能 1
        assert summary.trackable == 7
        assert summary.clicks == 4
        assert summary.clicked_searches == 3
        assert summary.ctr == pytest.approx(3 / 7)
        assert summary.avg_rank == pytest.approx((1 + 3 + 2 + 4) / 4)
        assert summary.avg_took_ms == pytest.approx(10.0)
        assert dict(summary.by_channel) == {"page": 7, "widget": 3, "api": 3, "script": 0}

    def test_top_queries(self, fixture_db):
        top = fixture_db.top_queries(PERIOD)
        assert [(r.query, r.searches) for r in top] == [
            ("园区规划", 5), ("数字孪生", 4), ("智慧城市", 2), ("人工智能", 1), ("碳中和", 1)]
        first = top[0]
        assert (first.zero_results, first.relaxed, first.trackable, first.clicks, first.clicked_searches) == (0, 0, 4, 3, 2)
        assert first.ctr == pytest.approx(2 / 4)
        assert first.avg_rank == pytest.approx(2.0)
        assert first.avg_results == pytest.approx((5 + 5 + 5 + 8 + 5) / 5)
        assert first.last_seen == "2025-03-03"
        smart = top[2]
        assert (smart.relaxed, smart.clicks, smart.ctr, smart.avg_rank) == (1, 1, 0.5, 4.0)
        assert top[1].ctr is None  # nothing found: no click-through rate
        assert fixture_db.top_queries(PERIOD, limit=2) == top[:2]

    def test_zero_result_queries(self, fixture_db):
        zero = fixture_db.zero_result_queries(PERIOD)
        assert [(r.query, r.searches, r.last_seen) for r in zero] == [("数字孪生", 4, "2025-03-03")]
        wider = fixture_db.zero_result_queries(Period(dt.date(2025, 2, 1), dt.date(2025, 3, 31)))
        assert [(r.query, r.searches) for r in wider] == [("数字孪生", 4), ("新词", 1), ("旧词", 1)]

    def test_no_click_queries(self, fixture_db):
        noclick = fixture_db.no_click_queries(PERIOD)
        # 碳中和 was only searched through the API, whose clicks cannot be seen: not listed.
        assert [(r.query, r.searches, r.trackable) for r in noclick] == [("人工智能", 1, 1)]
        # Its click on 2025-03-04 counts only in a period that includes that day.
        assert fixture_db.no_click_queries(Period(dt.date(2025, 3, 1), dt.date(2025, 3, 4))) == []

    def test_daily(self, fixture_db):
        daily = fixture_db.daily(Period(dt.date(2025, 2, 27), dt.date(2025, 3, 4)))
        assert [(d.day, d.searches, d.zero_results, d.clicks) for d in daily] == [
            ("2025-02-27", 0, 0, 0),
            ("2025-02-28", 2, 1, 0),
            ("2025-03-01", 4, 1, 2),   # 园区规划 ×2, 数字孪生, 碳中和; the refinement is not counted
            ("2025-03-02", 4, 1, 2),
            ("2025-03-03", 5, 2, 0),
            ("2025-03-04", 1, 1, 1),
        ]

    def test_report_and_missing_file(self, fixture_db, tmp_path):
        report = fixture_db.report(PERIOD, limit=3)
        assert len(report.top) == 3 and len(report.daily) == 3
        empty = AnalyticsDB(tmp_path / "none.sqlite3").report(PERIOD)
        assert empty.summary.searches == 0 and empty.top == [] and [d.searches for d in empty.daily] == [0, 0, 0]
        assert not (tmp_path / "none.sqlite3").exists()  # reading never creates the file

    def test_prune_keeps_the_retention_window(self, fixture_db):
        now = at("2025-03-04", 12)
        removed = fixture_db.prune(retention_days=2, now=now)  # keeps 2025-03-02 12:00 onwards
        assert removed == 7 + 2  # searches of 02-28 and 03-01, clicks of 03-01
        assert fixture_db.counts() == (17 - 7, 5 - 2)


# --------------------------------------------------------------------------- the recorder


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def make_recorder(tmp_path):
    made = []

    def make(**options) -> AnalyticsRecorder:
        db = AnalyticsDB(tmp_path / f"rec{len(made)}.sqlite3")
        recorder = AnalyticsRecorder(db, **options).start()
        made.append(recorder)
        return recorder

    yield make
    for recorder in made:
        recorder.close()


def _wait_for(db: AnalyticsDB, sql: str, expected: list, timeout: float = 5.0) -> None:
    """Until ``sql`` gives ``expected`` (a recorder's writer thread has got that far)."""
    deadline = time.monotonic() + timeout
    while rows(db, sql) != expected:
        assert time.monotonic() < deadline, rows(db, sql)
        time.sleep(0.02)


class TestTypingSessions:
    def test_only_the_settled_text_of_a_session_is_kept(self, make_recorder):
        clock = Clock()
        rec = make_recorder(clock=clock)
        for text in ("园", "园区", "园区规", "园区规划"):
            rec.record_suggest(text, sid="s1", suggestions=3)
            clock.now += 0.5
        rec.flush()
        assert rows(rec.db) == [("widget", "园区规划", 3, 0)]

    def test_backspacing_replaces_too_and_a_new_topic_starts_a_new_query(self, make_recorder):
        clock = Clock()
        rec = make_recorder(clock=clock)
        for text in ("园去", "园", "园区", "智慧"):  # typo, backspace, fix; then something else
            rec.record_suggest(text, sid="s1", suggestions=1)
            clock.now += 1
        rec.flush()
        assert [r[1] for r in rows(rec.db)] == ["园区", "智慧"]

    def test_sessions_are_separate_and_expire_after_the_window(self, make_recorder):
        clock = Clock()
        rec = make_recorder(clock=clock)
        rec.record_suggest("智慧", sid="a", suggestions=2)
        rec.record_suggest("智慧城", sid="b", suggestions=2)   # another page load
        clock.now += 11                                      # past the 10 s window
        rec.record_suggest("智慧城市", sid="a", suggestions=2)
        rec.record_suggest("园区", suggestions=1, sid=None)     # no session: every call counts
        rec.record_suggest("园区规划", suggestions=1, sid=None)
        rec.flush()
        assert sorted(r[1] for r in rows(rec.db)) == sorted(["智慧", "智慧城", "智慧城市", "园区", "园区规划"])

    def test_a_session_is_written_once_its_window_has_passed(self, make_recorder):
        rec = make_recorder(session_window=0.2)
        rec.record_suggest("园区", sid="s", suggestions=2)
        deadline = time.monotonic() + 5
        while not rows(rec.db) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rows(rec.db) == [("widget", "园区", 2, 0)]

    def test_the_results_page_after_typing_replaces_the_session(self, make_recorder):
        clock = Clock()
        rec = make_recorder(clock=clock)
        rec.record_suggest("园区规", sid="s", suggestions=4)
        rec.record_suggest("智慧", sid="other", suggestions=4)
        clock.now += 1
        rec.record_search("园区规划", channel="page", results=7)   # Enter in the form
        rec.record_search("智慧", channel="api", results=9)        # the API closes no session
        rec.flush()
        assert rows(rec.db) == [("page", "园区规划", 7, 0), ("api", "智慧", 9, 0), ("widget", "智慧", 4, 0)]

    def test_workers_sharing_the_file_fold_one_session_and_a_late_keystroke_is_not_counted(self, tmp_path):
        clock = Clock()
        db = AnalyticsDB(tmp_path / "shared.sqlite3")
        first, second = (AnalyticsRecorder(db, clock=clock).start() for _ in range(2))  # two workers' recorders
        try:
            for rec, text in ((second, "智"), (first, "智慧"), (second, "智慧城")):
                rec.record_suggest(text, sid="t", suggestions=2)
                clock.now += 0.3
            _wait_for(db, "SELECT sid, query FROM typing_sessions", [("t", "智慧城")])  # one session, newest text
            first.record_search("智慧城市", channel="page", results=5)  # Enter, answered by one worker
            _wait_for(db, "SELECT closed_sid FROM typing_closers", [("t",)])
            # The same reader's last keystroke, written by the other worker after the page closed the session.
            second.record_suggest("智慧城市", sid="t", suggestions=2, ts=clock.now - 0.1)
            second.flush()
            first.flush()
            assert rows(db) == [("page", "智慧城市", 5, 0)]
        finally:
            first.close()
            second.close()

    def test_a_session_left_open_by_a_killed_worker_is_finished_by_another(self, tmp_path):
        db = AnalyticsDB(tmp_path / "shared.sqlite3")
        stuck = Clock()  # this worker's time stands still: it never finishes the session itself
        killed = AnalyticsRecorder(db, clock=stuck).start()
        killed.record_suggest("园区规划", sid="s", suggestions=3)
        _wait_for(db, "SELECT query FROM typing_sessions", [("园区规划",)])
        survivor = AnalyticsRecorder(db, clock=Clock(stuck.now + 11)).start()
        try:
            deadline = time.monotonic() + 5
            while not rows(db) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert rows(db) == [("widget", "园区规划", 3, 0)]
        finally:
            survivor.close()
            killed.close()
        assert rows(db) == [("widget", "园区规划", 3, 0)]  # taken once: closing the other finds nothing open

    def test_a_finished_session_is_stored_with_what_a_full_search_finds(self, make_recorder):
        calls = []

        def resolver(query):
            calls.append((query, threading.current_thread().name))
            return (0, None) if query == "数字孪生" else (12, "substring")

        rec = make_recorder(resolver=resolver)
        rec.record_suggest("數字孿生", sid="s", suggestions=0)
        rec.record_suggest("园区", sid="t", suggestions=2)
        rec.flush()
        assert rows(rec.db, "SELECT query, results, relaxed FROM searches ORDER BY query") == [
            ("园区", 12, "substring"), ("数字孪生", 0, None)]
        assert {name for _, name in calls} == {"analytics-writer"}  # never on the request thread

    def test_a_failing_resolver_keeps_the_suggestion_count(self, make_recorder):
        def resolver(query):
            raise RuntimeError("no index")

        rec = make_recorder(resolver=resolver)
        rec.record_suggest("园区", sid="s", suggestions=3)
        rec.flush()
        assert rows(rec.db) == [("widget", "园区", 3, 0)]


class TestRecorder:
    def test_events_are_normalized_and_written_in_order(self, make_recorder):
        rec = make_recorder()
        rec.record_search("習近平", channel="page", results=3, took_ms=4.5, relaxed=None,
                          filters={"category": ["政策解读"], "date_from": None, "sort": "date_desc"})
        rec.record_search("习近平", channel="api", results=3, page=2, refine=True)
        rec.record_search("   ", channel="api", results=0)
        rec.record_click("習近平", "doc-1", 2, channel="page", first=True)
        rec.flush()
        stored = rows(rec.db, "SELECT channel, query, filters, results, took_ms, page, refine FROM searches")
        assert stored == [("page", "习近平", '{"category":["政策解读"],"sort":"date_desc"}', 3, 4.5, 1, 0),
                          ("api", "习近平", "", 3, 0.0, 2, 1)]
        assert rows(rec.db, "SELECT channel, query, doc_id, rank, first, day FROM clicks") == [
            ("page", "习近平", "doc-1", 2, 1, day_of(time.time()))]
        assert rec.written == 3 and rec.dropped == 0

    def test_no_personal_data_columns(self, make_recorder):
        rec = make_recorder()
        columns = {row[1] for table in ("searches", "clicks")
                   for row in rows(rec.db, f"PRAGMA table_info({table})")}
        assert not columns & {"ip", "address", "user_agent", "sid", "session", "cookie", "user"}

    def test_a_full_queue_drops_and_counts_instead_of_waiting(self, tmp_path):
        db = AnalyticsDB(tmp_path / "q.sqlite3")
        rec = AnalyticsRecorder(db, queue_max=3)  # not started: nothing drains the queue
        started = time.perf_counter()
        for n in range(10):
            rec.record_search(f"词{n}", channel="page", results=1)
        assert time.perf_counter() - started < 0.5
        assert rec.dropped == 7
        assert rec.counters()["analytics_events_dropped_total"] == 7

    def test_events_arriving_together_are_written_together_and_a_flush_cuts_the_wait_short(self, make_recorder):
        rec = make_recorder(linger=30.0)  # the writer waits up to 30 s for more after the first event
        rec.record_search("园区", channel="page", results=4)
        time.sleep(0.3)
        assert rows(rec.db) == []  # held back for the batch, not one transaction per search
        rec.record_search("规划", channel="page", results=2)
        started = time.monotonic()
        assert rec.flush()
        assert time.monotonic() - started < 5  # a flush does not wait out the linger
        assert rows(rec.db) == [("page", "园区", 4, 0), ("page", "规划", 2, 0)]
        rec.record_search("智慧", channel="page", results=1)
        started = time.monotonic()
        rec.close()  # nor does stopping: what is pending is written
        assert time.monotonic() - started < 5
        assert rows(rec.db)[-1] == ("page", "智慧", 1, 0)

    def test_a_batch_worth_of_events_ends_the_linger_without_a_flush(self, make_recorder):
        rec = make_recorder(linger=30.0, batch_max=4)
        for n in range(4):
            rec.record_search(f"园区{n}", channel="page", results=n)
        deadline = time.monotonic() + 5
        while len(rows(rec.db)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(rows(rec.db)) == 4  # written well before the 30 s linger was out

    def test_searching_never_waits_for_a_locked_database(self, make_recorder):
        rec = make_recorder()
        blocker = sqlite3.connect(rec.db.path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            started = time.perf_counter()
            for n in range(200):
                rec.record_search(f"词{n}", channel="page", results=1)
            assert time.perf_counter() - started < 0.5
        finally:
            blocker.execute("COMMIT")
            blocker.close()
        rec.flush(timeout=20)
        assert len(rows(rec.db)) == 200

    def test_old_rows_are_pruned_at_start(self, tmp_path):
        db = AnalyticsDB(tmp_path / "p.sqlite3")
        db.create()
        now = time.time()
        db.insert([SearchEvent("旧", "page", 1, ts=now - 40 * 86400), SearchEvent("新", "page", 1, ts=now - 86400)],
                  [ClickEvent("旧", "d", 1, "page", ts=now - 40 * 86400)])
        rec = AnalyticsRecorder(db, retention_days=30).start()
        try:
            rec.flush()
            assert [r[1] for r in rows(db)] == ["新"] and db.counts() == (1, 0)
        finally:
            rec.close()

    def test_close_writes_what_is_pending_and_later_events_are_ignored(self, make_recorder):
        rec = make_recorder()
        rec.record_suggest("园区", sid="s", suggestions=1)
        rec.close()
        rec.record_search("之后", channel="page", results=1)
        assert rows(rec.db) == [("widget", "园区", 1, 0)]

    def test_an_unusable_path_disables_recording_instead_of_failing(self, tmp_path):
        blocker = tmp_path / "file"
        blocker.write_text("x")
        rec = open_recorder(blocker / "sub" / "a.sqlite3")
        assert isinstance(rec, NullRecorder) and "cannot be used" in rec.problem
        # Every event it loses reaches the failed counter (the metric operators alert on).
        rec.record_search("园区", channel="page", results=1)
        rec.record_click("园区", "a", 1, channel="page")
        assert rec.counters()["analytics_events_failed_total"] == 2
        off = open_recorder(tmp_path / "off.sqlite3", enabled=False)
        assert isinstance(off, NullRecorder) and not off.enabled and off.problem is None
        off.record_search("园区", channel="page", results=1)
        assert off.counters()["analytics_events_failed_total"] == 0
        assert not (tmp_path / "off.sqlite3").exists()

    @pytest.mark.parametrize("damage", ["overwrite", "truncate"])
    def test_a_file_damaged_under_running_recorders_is_set_aside_once_and_recording_goes_on(
            self, make_recorder, damage):
        rec = make_recorder()
        other = AnalyticsRecorder(AnalyticsDB(rec.db.path)).start()  # another worker on the same file
        try:
            rec.record_search("园区", channel="page", results=1)
            other.record_search("园区", channel="page", results=1)
            assert rec.flush() and other.flush()
            with contextlib.closing(sqlite3.connect(rec.db.path)) as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the rows in the main file, as after a while
            with open(rec.db.path, "r+b") as handle:
                if damage == "truncate":
                    handle.truncate(100)
                else:
                    handle.write(b"\x5a" * 4096)
            rec.record_search("高新区", channel="page", results=2)
            assert rec.flush()
            other.record_search("智慧城市", channel="page", results=3)
            assert other.flush()
            for recorder in (rec, other):
                assert (recorder.problem, recorder.failed) == (None, 0)
            assert rows(rec.db, "SELECT query FROM searches ORDER BY query") == [("智慧城市",), ("高新区",)]
            aside = [p.name for p in rec.db.path.parent.glob(rec.db.path.name + ".damaged-*")]
            assert len([name for name in aside if not name.endswith(("-wal", "-shm"))]) == 1, aside
        finally:
            other.close()

    def test_a_recorder_that_cannot_write_counts_the_loss_says_why_and_recovers(self, tmp_path):
        folder = tmp_path / "analytics"
        rec = AnalyticsRecorder(AnalyticsDB(folder / "a.sqlite3")).start()
        try:
            rec.record_search("园区", channel="page", results=1)
            assert rec.flush() and rec.written == 1
            shutil.rmtree(folder)
            folder.write_text("a file where the folder was")  # nothing can be created there
            rec.record_search("高新区", channel="page", results=1)
            rec.record_click("高新区", "a", 1, channel="page")
            assert rec.flush()
            assert rec.failed == 2 and rec.written == 1
            assert rec.problem is not None and "a.sqlite3" in rec.problem
            folder.unlink()
            folder.mkdir()
            rec.record_search("智慧城市", channel="page", results=1)
            assert rec.flush()
            assert rec.problem is None and rec.written == 2
            assert rows(rec.db, "SELECT query FROM searches") == [("智慧城市",)]
        finally:
            rec.close()

    def test_a_file_damaged_before_start_is_set_aside_at_start(self, tmp_path):
        path = tmp_path / "a.sqlite3"
        path.write_bytes(b"garbage" * 1000)
        rec = open_recorder(path)
        try:
            assert isinstance(rec, AnalyticsRecorder) and rec.problem is None
            rec.record_search("园区", channel="page", results=1)
            assert rec.flush()
            assert rows(rec.db, "SELECT query FROM searches") == [("园区",)]
            assert [p.name for p in tmp_path.glob("a.sqlite3.damaged-*")]
        finally:
            rec.close()

    def test_unknown_channels_are_programming_errors(self, make_recorder):
        rec = make_recorder()
        with pytest.raises(ValueError):
            rec.record_search("x", channel="email", results=1)
        with pytest.raises(ValueError):
            rec.record_click("x", "d", 1, channel="api")


# --------------------------------------------------------------------------- the web app


@pytest.fixture()
def web(sample_settings, tmp_path):
    """An app of the sample index with its own analytics file and staff credentials."""
    settings = sample_settings.replace(analytics_db=str(tmp_path / "web.sqlite3"), admin_password=PASSWORD,
                                       api_tokens=(TOKEN,), cors_origins=("https://www.example.org",))
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    close_app(app)


def recorder(app):
    return app.extensions["analytics"]


def stored(app, sql="SELECT channel, query, results, refine FROM searches ORDER BY id"):
    recorder(app).flush()
    return rows(recorder(app).db, sql)


class TestChannels:
    def test_results_page_is_channel_page(self, web):
        client = web.test_client()
        assert client.get("/search?q=園區").status_code == 200
        got = stored(web, "SELECT channel, query, results, refine, page, took_ms > 0 FROM searches")
        total = client.get("/api/search?q=园区").get_json()["total"]
        assert got[0] == ("page", "园区", total, 0, 1, 1)

    def test_api_is_channel_api_and_later_pages_are_refinements(self, web):
        client = web.test_client()
        client.get("/api/search?q=园区&category=政策解读")
        client.get("/api/search?q=园区&page=2&page_size=1")
        got = stored(web, "SELECT channel, query, refine, filters FROM searches")
        assert got == [("api", "园区", 0, '{"category":["政策解读"]}'), ("api", "园区", 1, "")]

    def test_widget_suggest_calls_fold_into_the_settled_query(self, web):
        client = web.test_client()
        for text in ("智", "智慧", "智慧城市"):
            assert client.get("/api/suggest", query_string={"q": text, "sid": "k3j4h5"}).status_code == 200
        got = stored(web)
        total = client.get("/api/search?q=智慧城市").get_json()["total"]
        assert got == [("widget", "智慧城市", total, 0)]  # stored with what a full search finds

    def test_widget_full_results_link_is_channel_widget(self, web):
        client = web.test_client()
        client.get("/api/suggest?q=园区&sid=abc")
        client.get("/search?q=园区&ref=widget")
        assert stored(web) == [("widget", "园区", client.get("/api/search?q=园区").get_json()["total"], 0)]

    def test_the_form_after_typing_counts_once(self, web):
        client = web.test_client()
        client.get("/api/suggest?q=园&sid=abc")
        client.get("/api/suggest?q=园区&sid=abc")
        client.get("/search?q=园区")
        assert [(c, q) for c, q, _, _ in stored(web)] == [("page", "园区")]

    def test_refinements_admin_checks_bots_and_empty_queries(self, web):
        client = web.test_client()
        base = "http://localhost"
        client.get("/search?q=园区")
        client.get("/search?q=園區&sort=date_desc", headers={"Referer": base + "/search?q=%E5%9B%AD%E5%8C%BA"})
        client.get("/search?q=园区&page=2")
        client.get("/search?q=规划", headers={"Referer": base + "/search?q=%E5%9B%AD%E5%8C%BA"})  # a new query
        client.get("/search?q=规划", headers={"Referer": base + "/admin/analytics"})
        client.get("/search?q=规划", headers={"User-Agent": "Mozilla/5.0 (compatible; Baiduspider/2.0)"})
        client.get("/search?q=规划", headers={"Sec-Purpose": "prefetch"})
        client.get("/search")
        client.get("/")
        assert [(q, refine) for _, q, _, refine in stored(web)] == [
            ("园区", 0), ("园区", 1), ("园区", 1), ("规划", 0)]

    def test_crawlers_are_never_counted_and_programs_go_to_the_script_channel(self, web):
        # Crawlers' API and suggest calls were counted as readers'; 75 token-less curl calls pushed
        # the unfound rate to 44%.
        client = web.test_client()
        crawler = {"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}
        client.get("/api/search?q=园区", headers=crawler)
        client.get("/api/suggest?q=园区&sid=s1", headers=crawler)
        client.get("/search?q=园区", headers={"User-Agent": "Mozilla/5.0 (compatible; bingbot/2.0)"})
        for agent in ("curl/8.5.0", "python-requests/2.32.3", "Go-http-client/1.1", ""):
            client.get("/api/search?q=规划", headers={"User-Agent": agent})
            client.get("/search?q=规划", headers={"User-Agent": agent})
            client.get("/api/suggest?q=规划&sid=s2", headers={"User-Agent": agent})
        browser = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}
        client.get("/api/search?q=智慧城市", headers=browser)
        recorder(web).flush()
        got = stored(web, "SELECT channel, query FROM searches ORDER BY id")
        assert got == [("script", "规划")] * 8 + [("api", "智慧城市")]

    def test_suggest_sid_is_validated_and_documented(self, web):
        client = web.test_client()
        bad = client.get("/api/suggest?q=园区&sid=has%20space")
        assert bad.status_code == 400 and bad.get_json()["error"]["param"] == "sid"
        spec = client.get("/openapi.json").get_json()
        assert "sid" in [p["name"] for p in spec["paths"]["/api/suggest"]["get"]["parameters"]]
        click = spec["paths"]["/api/click"]["post"]
        assert "204" in click["responses"]
        assert {"q", "id", "rank"} <= set(
            click["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]["properties"])

    def test_openapi_document_is_still_valid(self, web):
        validator = pytest.importorskip("openapi_spec_validator")
        validator.validate(web.test_client().get("/openapi.json").get_json())


class TestClicks:
    def test_form_json_and_text_plain_bodies(self, web):
        client = web.test_client()
        r1 = client.post("/api/click", data={"q": "園區", "id": "doc/1", "rank": "2", "channel": "page", "first": "1"})
        r2 = client.post("/api/click", json={"q": "园区", "id": "doc-2", "rank": 3, "channel": "widget", "first": False})
        r3 = client.post("/api/click", data='{"q": "规划", "id": "d3", "rank": "1"}', content_type="text/plain")
        assert [r.status_code for r in (r1, r2, r3)] == [204, 204, 204]
        assert r1.get_data() == b""
        assert stored(web, "SELECT channel, query, doc_id, rank, first FROM clicks ORDER BY id") == [
            ("page", "园区", "doc/1", 2, 1), ("widget", "园区", "doc-2", 3, 0), ("page", "规划", "d3", 1, 1)]

    def test_bad_reports_are_400(self, web):
        client = web.test_client()
        for data, param in (({"id": "d", "rank": "1"}, "q"), ({"q": "x", "rank": "1"}, "id"),
                            ({"q": "x", "id": "d", "rank": "0"}, "rank"), ({"q": "x", "id": "d", "rank": "a"}, "rank"),
                            ({"q": "x", "id": "d", "rank": "1", "channel": "api"}, "channel")):
            response = client.post("/api/click", data=data)
            assert response.status_code == 400, data
            assert response.get_json()["error"]["param"] == param
        assert client.post("/api/click", data="x" * 5000, content_type="text/plain").status_code == 413
        assert client.get("/api/click").status_code == 405

    def test_origins(self, web):
        client = web.test_client()
        fields = {"q": "园区", "id": "d", "rank": "1"}
        assert client.post("/api/click", data=fields, headers={"Origin": "https://evil.example"}).status_code == 403
        assert client.post("/api/click", data=fields, headers={"Origin": "https://www.example.org"}).status_code == 204
        assert client.post("/api/click", data=fields, headers={"Origin": "http://localhost"}).status_code == 204
        assert client.post("/api/click", data=fields, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
        assert len(stored(web, "SELECT id FROM clicks")) == 2


class TestAnalyticsOff:
    def test_nothing_is_recorded_and_clicks_still_answer(self, sample_settings, tmp_path):
        path = tmp_path / "off.sqlite3"
        app = create_app(sample_settings.replace(analytics=False, analytics_db=str(path)))
        try:
            client = app.test_client()
            assert client.get("/search?q=园区").status_code == 200
            assert client.get("/api/suggest?q=园区&sid=abc").status_code == 200
            assert client.post("/api/click", data={"q": "园区", "id": "d", "rank": "1"}).status_code == 204
            assert not app.extensions["analytics"].enabled
            assert not path.exists()
        finally:
            close_app(app)


# --------------------------------------------------------------------------- the staff page


class TestAccess:
    def test_without_credentials_configured_the_page_is_off(self, sample_settings, tmp_path):
        app = create_app(sample_settings.replace(analytics_db=str(tmp_path / "a.sqlite3"), admin_password="",
                                                 api_tokens=()))
        try:
            client = app.test_client()
            for path in ("/admin/analytics", "/admin/analytics.csv?table=top"):
                response = client.get(path, headers=basic("anything"))
                assert response.status_code == 403
                assert "SEARCH_SERVICE_ADMIN_PASSWORD" in response.get_data(as_text=True)
                assert "WWW-Authenticate" not in response.headers
        finally:
            close_app(app)

    @pytest.mark.parametrize("path", ["/admin/analytics", "/admin/analytics.csv?table=zero", "/admin/docs/ANALYTICS.md"])
    def test_unauthenticated_and_wrong_credentials_are_refused(self, web_with_rows, path):
        client = web_with_rows.test_client()
        for headers in ({}, basic("wrong"), {"Authorization": "Bearer wrong"}, {"Authorization": "Basic !!!"},
                        basic(""), {"Authorization": "Digest x"}):
            response = client.get(path, headers=headers)
            assert response.status_code == 401, headers
            assert response.headers["WWW-Authenticate"].startswith('Basic realm="search admin"')
            assert "需要登录" in response.get_data(as_text=True)
            assert "数字孪生" not in response.get_data(as_text=True)  # no data leaks

    def test_password_token_and_bearer_are_accepted(self, web):
        client = web.test_client()
        for headers in (basic(PASSWORD), basic(TOKEN, user=""), {"Authorization": f"Bearer {TOKEN}"}):
            response = client.get("/admin/analytics", headers=headers)
            assert response.status_code == 200
            assert response.headers["Cache-Control"] == "no-store"
        assert client.get("/admin", headers=basic(PASSWORD)).status_code == 302


@pytest.fixture()
def web_with_rows(web):
    """The web app's file filled with today's hand-counted rows."""
    db = recorder(web).db
    now = time.time()
    db.insert(
        [SearchEvent("园区规划", "page", 5, ts=now), SearchEvent("园区规划", "widget", 5, ts=now),
         SearchEvent("数字孪生", "page", 0, ts=now), SearchEvent("数字孪生", "api", 0, ts=now),
         SearchEvent("数字孪生", "page", 0, ts=now), SearchEvent("<b>x</b>", "page", 2, ts=now),
         SearchEvent("=cmd()", "page", 0, ts=now)],
        [ClickEvent("园区规划", "a", 2, "page", True, now)],
    )
    return web


class TestAnalyticsPage:
    def test_page_shows_the_hand_counted_numbers(self, web_with_rows):
        html = web_with_rows.test_client().get("/admin/analytics", headers=basic(PASSWORD)).get_data(as_text=True)
        assert '<html lang="zh-CN">' in html and "搜索分析" in html
        assert 'data-metric="searches"><dt>搜索次数</dt><dd class="card-value">7</dd>' in html
        assert "57.1%" in html          # 4 of 7 searches found nothing
        assert "33.3%" in html          # 1 clicked of 3 page/widget searches with results
        assert 'href="/search?q=%E6%95%B0%E5%AD%97%E5%AD%AA%E7%94%9F"' in html  # each query links to its results
        assert "docs/RELEVANCE.md#synonyms" in html or "/admin/docs/RELEVANCE.md#synonyms" in html
        assert "/admin/docs/RELEVANCE.md#dictionary" in html
        assert "<svg" in html and 'class="bar"' in html
        assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
        assert " style=" not in html and "<script>" not in html  # the CSP forbids both

    def test_presets_and_period(self, web_with_rows):
        client = web_with_rows.test_client()
        html = client.get("/admin/analytics?from=2020-01-01&to=2020-01-31", headers=basic(PASSWORD)).get_data(
            as_text=True)
        assert "2020-01-01" in html and "（31 天）" in html and "这段时间没有搜索记录" in html
        for days in (7, 30, 90):
            assert f"近 {days} 天" in html
        bad = client.get("/admin/analytics?from=yesterday", headers=basic(PASSWORD))
        assert bad.status_code == 400

    def test_csv_tables(self, web_with_rows):
        client = web_with_rows.test_client()

        def table(name):
            response = client.get(f"/admin/analytics.csv?table={name}", headers=basic(PASSWORD))
            assert response.status_code == 200
            assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
            assert f"search-analytics-{name}-" in response.headers["Content-Disposition"]
            body = response.get_data()
            assert body.startswith("\ufeff".encode())
            return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))

        top = table("top")
        assert top[0] == ["query", "searches", "zero_results", "relaxed", "clicks", "ctr", "avg_click_rank",
                          "last_seen"]
        assert top[1][:7] == ["数字孪生", "3", "3", "0", "0", "", ""]
        assert top[2][:7] == ["园区规划", "2", "0", "0", "1", "0.5000", "2.00"]
        zero = table("zero")
        assert [r[:2] for r in zero[1:]] == [["数字孪生", "3"], ["'=cmd()", "1"]]  # formulas defused
        assert zero[0][-2:] == ["user_dict_entry", "user_dict_withheld"]
        assert [r[0] for r in table("noclick")[1:]] == ["<b>x</b>"]
        daily = table("daily")
        assert daily[0] == ["day", "searches", "zero_results", "clicks"]
        assert daily[-1][1:] == ["7", "4", "1"] and len(daily) == 31
        assert client.get("/admin/analytics.csv?table=users", headers=basic(PASSWORD)).status_code == 400

    def test_docs_are_served_to_staff(self, web):
        client = web.test_client()
        response = client.get("/admin/docs/ANALYTICS.md", headers=basic(PASSWORD))
        assert response.status_code == 200 and "analytics" in response.get_data(as_text=True).lower()
        assert client.get("/admin/docs/nothing.md", headers=basic(PASSWORD)).status_code == 404
        assert client.get("/admin/docs/..%2Fpyproject.toml", headers=basic(PASSWORD)).status_code == 404


@pytest.fixture()
def web_with_slips(web):
    """Corrected searches recorded through the app's own recorder, hand-counted.

    Counted: 智惠城市 → 智慧城市 3 (page ×2, api), kepu → 科普 2 (typed "KePu": normalized),
    企业新用 → 企业信用 1. Not counted: a refinement of 智惠城市 and a script's 可普 → 科普.
    Not a correction at all: 园区规划.
    """
    rec = recorder(web)
    rec.record_search("智惠城市", channel="page", results=7, searched="智慧城市")
    rec.record_search("KePu", channel="api", results=4, searched="科普")
    rec.record_search("企业新用", channel="page", results=2, searched="企业信用")
    rec.record_search("智惠城市", channel="api", results=7, searched="智慧城市")
    rec.record_search("智惠城市", channel="page", results=7, searched="智慧城市", page=2, refine=True)
    rec.record_search("kepu", channel="page", results=4, searched="科普")
    rec.record_search("可普", channel="script", results=4, searched="科普")
    rec.record_search("智惠城市", channel="page", results=7, searched="智慧城市")
    rec.record_search("园区规划", channel="page", results=5)
    rec.flush()
    return web


def corrections_section(html: str) -> str:
    start = html.index('<section class="admin-section" aria-labelledby="corrections-heading">')
    return html[start:html.index("</section>", start)]


class TestCorrectionsSection:
    ROWS = [("智惠城市", "智慧城市", 3), ("kepu", "科普", 2), ("企业新用", "企业信用", 1)]

    def test_page_lists_the_slips_commonest_first(self, web_with_slips):
        html = web_with_slips.test_client().get("/admin/analytics", headers=basic(PASSWORD)).get_data(as_text=True)
        section = corrections_section(html)
        assert "自动纠正的搜索词" in section and "同音" in section
        assert 'href="/admin/analytics.csv?' in section and "table=corrections" in section
        shown = re.findall(r'<tr><td class="col-rank">(\d+)</td><td class="query"><a [^>]*>([^<]*)</a></td>'
                           r'<td class="query"><a [^>]*>([^<]*)</a></td><td class="num">(\d+)</td></tr>', section)
        assert shown == [(str(n), typed, searched, str(count))
                         for n, (typed, searched, count) in enumerate(self.ROWS, start=1)]
        assert 'href="/search?q=%E6%99%BA%E6%83%A0%E5%9F%8E%E5%B8%82"' in section  # the typed query, as readers saw it
        assert "这段时间没有自动纠正的搜索" not in section
        assert " style=" not in html and "<script>" not in html

    def test_csv_table(self, web_with_slips):
        response = web_with_slips.test_client().get("/admin/analytics.csv?table=corrections", headers=basic(PASSWORD))
        assert response.status_code == 200
        assert "search-analytics-corrections-" in response.headers["Content-Disposition"]
        table = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
        assert table == [["typed", "searched_instead", "searches"]] + [
            [typed, searched, str(count)] for typed, searched, count in self.ROWS]

    def test_empty_state(self, web_with_rows):
        client = web_with_rows.test_client()
        html = client.get("/admin/analytics", headers=basic(PASSWORD)).get_data(as_text=True)
        section = corrections_section(html)
        assert '<p class="empty">这段时间没有自动纠正的搜索。</p>' in section
        assert 'data-table="corrections"' not in section
        response = client.get("/admin/analytics.csv?table=corrections", headers=basic(PASSWORD))
        assert list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig")))) == [
            ["typed", "searched_instead", "searches"]]


def test_daily_chart_geometry():
    from search_service.analytics import DayRow
    from search_service.web.admin import daily_chart

    chart = daily_chart([DayRow("2025-03-01", 10, 5, 1), DayRow("2025-03-02", 0), DayRow("2025-03-03", 3, 0, 0)])
    assert chart.maximum == 10
    assert [b.height for b in chart.bars] == [chart.plot_height, 0, round(chart.plot_height * 0.3, 2)]
    assert chart.bars[0].zero_height == chart.plot_height / 2
    assert [t.label for t in chart.y_ticks] == ["0", "5", "10"]
    assert [t.label for t in chart.x_ticks] == ["03-01", "03-02", "03-03"]
    assert "2025-03-01" in chart.bars[0].title


def _start_recorder_at_once(path: str, barrier, results) -> None:
    """One worker process of `serve` starting: its recorder on the shared file."""
    barrier.wait()
    recorder = open_recorder(path)
    results.put(type(recorder).__name__)
    recorder.close()


@pytest.mark.processes
def test_worker_processes_starting_together_all_record_analytics(tmp_path):
    # The workers of `serve --workers N` open a new analytics file at the same moment; SQLite
    # refuses a second connection switching it to WAL at once ("database is locked"), which
    # disabled that worker's analytics in about 4 starts of 10 before they took turns.
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for trial in range(8):
        path = str(tmp_path / f"analytics-{trial}.sqlite3")
        barrier, results = context.Barrier(3), context.Queue()
        workers = [context.Process(target=_start_recorder_at_once, args=(path, barrier, results)) for _ in range(3)]
        for worker in workers:
            worker.start()
        started = [results.get(timeout=30) for _ in workers]
        for worker in workers:
            worker.join(timeout=10)
        assert started == ["AnalyticsRecorder"] * 3, f"start {trial}: {started}"


class TestDamagedFile:
    """The analytics file damaged under a running app: staff get the page, operators the signal."""

    def test_the_staff_page_sets_a_damaged_file_aside_instead_of_answering_500(self, web, tmp_path):
        client = web.test_client()
        assert client.get("/search?q=园区").status_code == 200
        recorder(web).flush()
        path = recorder(web).db.path
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        path.write_bytes(b"\x00garbage" * 512)  # overwritten: "file is not a database"
        page = client.get("/admin/analytics", headers=basic(PASSWORD))
        assert page.status_code == 200  # was 500
        html = page.get_data(as_text=True)
        assert "统计数据文件已损坏" in html and ".damaged-" in html
        assert list(tmp_path.glob("web.sqlite3.damaged-*"))
        csv_answer = client.get("/admin/analytics.csv?table=top", headers=basic(PASSWORD))
        assert csv_answer.status_code == 200
        # Recording goes on into the new file.
        assert client.get("/search?q=高新区").status_code == 200
        assert stored(web, "SELECT query FROM searches") == [("高新区",)]
        assert client.get("/healthz").get_json()["status"] == "ok"

    def test_a_recorder_that_cannot_write_shows_in_healthz_metrics_and_the_page(self, sample_settings, tmp_path):
        blocker = tmp_path / "blocker"
        blocker.write_text("x")
        settings = sample_settings.replace(analytics_db=str(blocker / "a.sqlite3"), admin_password=PASSWORD)
        app = create_app(settings)
        try:
            client = app.test_client()
            for _ in range(3):
                assert client.get("/search?q=园区").status_code == 200
            health = client.get("/healthz").get_json()
            assert health["status"] == "degraded" and "a.sqlite3" in health["degraded"]["analytics"]
            assert str(tmp_path) not in json.dumps(health)  # /healthz is public: no server folder
            text = client.get("/metrics").get_data(as_text=True)
            assert 'search_service_degraded{component="analytics"} 1.0' in text
            assert "search_service_analytics_events_failed_total 3.0" in text  # the metric DEPLOY.md alerts on
            page = client.get("/admin/analytics", headers=basic(PASSWORD))
            assert page.status_code == 200
            assert "搜索记录暂时无法写入" in page.get_data(as_text=True)
        finally:
            close_app(app)
