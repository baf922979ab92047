"""Slips beyond the corrections: did-you-means offered with the typed results, and same-sound
rewrites readers made by hand after a slip was answered as typed (issue 26)."""

from __future__ import annotations

import contextlib
import sqlite3
import time

import pytest

from search_service.analytics import AnalyticsDB, AnalyticsRecorder, day_of
from search_service.analytics.sessions import is_refined_slip, slip_counts


@pytest.fixture()
def recorder(tmp_path, jieba_cache):
    rec = AnalyticsRecorder(AnalyticsDB(tmp_path / "analytics.sqlite3")).start()
    yield rec
    rec.close()


def slips(rec: AnalyticsRecorder, kind: str, days: int = 1) -> list[tuple[str, str, int]]:
    end = time.time()
    with contextlib.closing(rec.db.connect()) as conn:
        return slip_counts(conn, day_of(end - (days - 1) * 86400), day_of(end), kind)


@pytest.mark.parametrize("previous, query, refined", [
    ("一代一路", "一带一路", True),      # one character, same sound
    ("消费这", "消费者", True),
    ("只会城市", "智慧城市", True),      # a whole word the input method chose wrong
    ("一带一路", "一带一路", False),     # the same query again
    ("一带一路", "一带一路 倡议", False),  # more words: another kind of refinement
    ("智慧城市", "数字城市", False),     # another word
    ("权力", "权利", True),              # same sound: the reader's own correction, listed
    ("zhihui", "智慧", False),           # pinyin turned into characters is no slip of characters
    ("城市", "", False),
])
def test_what_counts_as_a_slip_fixed_by_hand(jieba_cache, previous, query, refined):
    assert is_refined_slip(previous, query) is refined


def test_offered_did_you_means_are_recorded_and_counted(recorder):
    recorder.record_search("程式", channel="page", results=3, suggested="城市")
    recorder.record_search("程式", channel="api", results=3, suggested="城市")
    recorder.record_search("程式", channel="page", results=3, suggested="城市", page=2, refine=True)  # same search
    recorder.record_search("指挥", channel="page", results=8)  # nothing offered
    recorder.record_search("程式", channel="script", results=3, suggested="城市")  # not a reader
    recorder.flush()
    assert slips(recorder, "offered") == [("程式", "城市", 2)]
    assert slips(recorder, "refined") == []


def test_a_slip_fixed_by_the_reader_is_listed(recorder):
    # 一代一路 answered as typed (the reader had asked correct=0, or it predates the weighing),
    # then, from its results page, 一带一路: the reader fixed the slip by hand.
    recorder.record_search("一代一路", channel="page", results=7)
    recorder.record_search("一带一路", channel="page", results=185, previous="一代一路")
    recorder.record_search("一带一路 倡议", channel="page", results=40, previous="一带一路")  # not a slip
    recorder.record_search("消費這", channel="page", results=3)
    recorder.record_search("消费者", channel="widget", results=300, previous="消費這")  # script folded
    recorder.flush()
    assert sorted(slips(recorder, "refined")) == [("一代一路", "一带一路", 1), ("消费这", "消费者", 1)]
    # The searches themselves are recorded as always.
    with contextlib.closing(sqlite3.connect(recorder.db.path)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM searches").fetchone()[0] == 5


def test_slips_are_pruned_with_the_searches(tmp_path, jieba_cache):
    db = AnalyticsDB(tmp_path / "a.sqlite3")
    old = AnalyticsRecorder(db, retention_days=180, clock=lambda: time.time() - 200 * 86400).start()
    old.record_search("程式", channel="page", results=3, suggested="城市")
    old.close()
    with contextlib.closing(db.connect()) as conn:
        assert conn.execute("SELECT COUNT(*) FROM slips").fetchone()[0] == 1
    now = AnalyticsRecorder(db, retention_days=180).start()  # prunes when it starts
    try:
        now.record_search("指挥", channel="page", results=8, suggested="智慧")
        now.flush()
        with contextlib.closing(db.connect()) as conn:
            assert conn.execute("SELECT query FROM slips").fetchall() == [("指挥",)]
    finally:
        now.close()


def test_a_file_without_slips_reads_as_none(tmp_path):
    db = AnalyticsDB(tmp_path / "old.sqlite3")
    db.create()  # the file's own schema has no slips table until a slip is written
    with contextlib.closing(db.connect()) as conn:
        assert slip_counts(conn, "2026-01-01", "2026-12-31", "offered") == []
    with pytest.raises(ValueError):
        slip_counts(sqlite3.connect(":memory:"), "2026-01-01", "2026-12-31", "corrected")
