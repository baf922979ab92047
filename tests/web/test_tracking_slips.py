"""What the pages and the API record of a reader's slips (issue 26), end to end through the app.

A did-you-mean offered with the results as typed is kept as an ``offered`` slip; a search made from a
results page that rewrites its query with the same sounds (the reader fixing a slip the page answered
as typed) as a ``refined`` one. Staff read them with ``analytics.sessions.slip_counts``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3

import pytest

from search_service.analytics.sessions import slip_counts
from search_service.web import close_app, create_app

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"}


@pytest.fixture()
def web(sample_settings, tmp_path):
    app = create_app(sample_settings.replace(analytics_db=str(tmp_path / "slips.sqlite3")))
    yield app
    close_app(app)


def slips(app, kind: str) -> list[tuple[str, str, int]]:
    recorder = app.extensions["analytics"]
    recorder.flush()
    today = dt.date.today()
    with contextlib.closing(sqlite3.connect(recorder.db.path)) as conn:
        return slip_counts(conn, (today - dt.timedelta(days=1)).isoformat(), (today + dt.timedelta(days=1)).isoformat(),
                           kind)


def test_a_did_you_mean_offered_on_the_page_and_in_the_api_is_kept(web):
    client = web.test_client()
    assert client.get("/api/search?q=园区 只会", headers=BROWSER).get_json()["suggestion"] == "园区 智慧"
    assert client.get("/search?q=只会", headers=BROWSER).status_code == 200
    assert sorted(slips(web, "offered")) == [("只会", "智慧", 1), ("园区 只会", "园区 智慧", 1)]


def test_a_same_sound_rewrite_from_a_results_page_is_kept_as_the_readers_own_fix(web):
    client = web.test_client()
    referrer = {**BROWSER, "Referer": "http://localhost/search?q=%E5%8F%91%E5%B8%83%E5%9B%9E"}  # /search?q=发布回
    assert client.get("/search?q=发布回", headers=BROWSER).status_code == 200
    assert client.get("/search?q=发布会", headers=referrer).status_code == 200
    assert ("发布回", "发布会", 1) in slips(web, "refined")
    # Another query from the same page is no fix of a slip.
    assert client.get("/search?q=园区", headers=referrer).status_code == 200
    assert [row for row in slips(web, "refined") if row[1] == "园区"] == []
