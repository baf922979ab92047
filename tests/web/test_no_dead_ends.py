"""No dead ends over HTTP: scripts with tokens, ETags, static caching, robots.txt, favicon, snippets,
visitor error pages, and the staff analytics' unfound / filtered-out / script counts."""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
from urllib.parse import urlsplit

import pytest
from bs4 import BeautifulSoup

from search_service.text.highlight import Highlighter
from search_service.web import close_app, create_app

from ..helpers import SAMPLES, build_index, make_settings

TOKEN = "dead-ends-token"
HEADLESS_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 "
               "Safari/537.36")
READER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"


def soup_of(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


@pytest.fixture(scope="module")
def writable(tmp_path_factory, jieba_cache):
    """An index of its own (writes change it), a small rate limit, a token and analytics."""
    index_dir = tmp_path_factory.mktemp("dead-ends-index")
    build_index(index_dir, [SAMPLES], default_category="高新院新闻")
    app = create_app(make_settings(index_dir, jieba_cache, rate_limit="3 per minute", api_tokens=(TOKEN,)))
    yield app
    close_app(app)


def client_at(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


# --------------------------------------------------------------------------- scripts


def test_a_script_with_a_valid_token_is_not_throttled(writable):
    client = client_at(writable, "192.0.2.10")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    statuses = [client.get("/api/search", query_string={"q": f"园区 {i}"}, headers=auth).status_code
                for i in range(150)]
    assert statuses == [200] * 150
    # The same address without the token (or with a wrong one) is an anonymous client: 3 per minute.
    anonymous = [client.get("/api/search?q=园区").status_code for _ in range(4)]
    assert anonymous == [200, 200, 200, 429]
    wrong = client.get("/api/search?q=园区", headers={"Authorization": "Bearer guessed"})
    assert wrong.status_code == 429


def test_api_answers_carry_an_etag_and_if_none_match_gives_304(writable):
    client = client_at(writable, "192.0.2.11")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    first = client.get("/api/search?q=园区", headers=auth)
    etag = first.headers["ETag"]
    assert re.fullmatch(r'W/"[0-9a-f]{32}"', etag)
    assert first.headers["Cache-Control"] == "no-cache"
    again = client.get("/api/search?q=园区", headers=auth)
    assert again.headers["ETag"] == etag  # the same inputs and index: the same tag
    other = client.get("/api/search?q=园区&page=2", headers=auth)
    assert other.headers["ETag"] != etag  # another input: another tag
    cached = client.get("/api/search?q=园区", headers={**auth, "If-None-Match": etag})
    assert cached.status_code == 304 and cached.get_data() == b""
    assert cached.headers["ETag"] == etag
    listed = client.get("/api/search?q=园区", headers={**auth, "If-None-Match": f'"nope", {etag}'})
    assert listed.status_code == 304
    for path in ("/api/suggest?q=园区", "/api/stats", "/api/documents/gxy-2019-0315",
                 "/api/documents/gxy-2019-0315/similar", "/openapi.json"):
        response = client.get(path, headers=auth)
        assert response.status_code == 200 and response.headers["ETag"], path
        assert client.get(path, headers={**auth, "If-None-Match": response.headers["ETag"]}).status_code == 304
    # Errors are not cached.
    bad = client.get("/api/search?q=园区&page=0", headers=auth)
    assert bad.status_code == 400 and "ETag" not in bad.headers
    # A write makes a new commit: the old tag no longer matches.
    doc = {"title": "缓存测试文章园区", "body": "园区缓存测试正文。", "category": "高新院新闻", "date": "2025-01-02"}
    assert client.put("/api/documents/etag-test", json=doc, headers=auth).status_code in (200, 201)
    after = client.get("/api/search?q=园区", headers={**auth, "If-None-Match": etag})
    assert after.status_code == 200 and after.headers["ETag"] != etag


def test_versioned_static_files_are_cached_for_a_year(client):
    html = client.get("/search?q=园区").get_data(as_text=True)
    urls = re.findall(r'(?:href|src)="(/static/[^"]+)"', html)
    assert urls and all("?v=" in url for url in urls), urls
    with client.get(urls[0]) as response:
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    # widget.js as the institute's pages include it (no version): a short lifetime.
    with client.get("/static/widget.js") as response:
        assert response.headers["Cache-Control"] == "public, max-age=300"
    # A stale version is not promised for a year.
    with client.get("/static/style.css?v=000000000000") as response:
        assert response.headers["Cache-Control"] == "public, max-age=300"


def test_robots_txt_keeps_crawlers_out_of_filter_and_csv_urls(client):
    response = client.get("/robots.txt")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    rules = response.get_data(as_text=True)
    for rule in ("Disallow: /search.csv", "Disallow: /*category=", "Disallow: /*date_from=", "Disallow: /*page=",
                 "Disallow: /api/", "Allow: /doc/"):
        assert rule in rules.splitlines(), rule


def test_favicon_is_served_and_linked(client):
    with client.get("/favicon.ico") as response:
        assert response.status_code == 200
        assert response.mimetype == "image/vnd.microsoft.icon"
        assert response.get_data()[:4] == b"\x00\x00\x01\x00"  # an ICO header
    soup = soup_of(client.get("/search?q=园区"))
    icons = [link["href"] for link in soup.select('link[rel="icon"]')]
    assert any(urlsplit(href).path == "/static/favicon.svg" for href in icons)
    with client.get(next(h for h in icons if "favicon.svg" in h)) as response:
        assert response.status_code == 200 and response.mimetype == "image/svg+xml"


# --------------------------------------------------------------------------- readers


def test_snippets_join_paragraphs_as_chinese_text_does():
    marker = Highlighter(["案例"])
    snippet = marker.snippet("推动产业。\n从案例看，5G\nnetwork 很好。\r\n\r\n  Open\nsource 软件", 120)
    assert snippet == "推动产业。从<mark>案例</mark>看，5G network 很好。Open source 软件"
    assert marker.mark("第一段。\n<第二段>") == "第一段。&lt;第二段&gt;"


def test_result_snippets_have_no_latin_space_after_chinese_punctuation(client):
    hits = client.get("/api/search?q=园区&page_size=50").get_json()["hits"]
    snippets = [re.sub(r"</?mark>", "", hit["snippet"]) for hit in hits]
    assert snippets
    assert not [s for s in snippets if re.search(r"[\u3000-\u303f\uff00-\uffef\u4e00-\u9fff][ \n][\u4e00-\u9fff]", s)]


def test_the_no_index_page_keeps_folders_and_commands_in_the_log(tmp_path, jieba_cache, caplog):
    empty = tmp_path / "no-index-here"
    app = create_app(make_settings(empty, jieba_cache))
    try:
        with caplog.at_level(logging.WARNING):
            response = app.test_client().get("/search?q=园区")
        assert response.status_code == 503
        text = soup_of(response).get_text()
        assert "搜索服务暂时不可用" in text
        assert str(empty) not in text and "search-service" not in text and "index" not in text.lower()
        assert not re.search(r"[A-Za-z]{4,} [A-Za-z]{4,} [A-Za-z]{4,}", text)  # no English sentences
        logged = " ".join(record.getMessage() for record in caplog.records)
        assert str(empty) in logged
        # The JSON API still says everything (scripts and operators read it).
        api = app.test_client().get("/api/search?q=园区")
        assert api.status_code == 503 and api.get_json()["error"]["code"] == "index_unavailable"
    finally:
        close_app(app)


def test_the_404_page_is_chinese_only_and_points_up(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    soup = soup_of(response)
    explanation = soup.select_one(".error-explanation").get_text()
    assert "上方的搜索框" in explanation
    assert "No such page" not in soup.get_text() and "openapi" not in soup.select_one("main").get_text()


# --------------------------------------------------------------------------- staff analytics


@pytest.fixture()
def counted(sample_settings, tmp_path):
    app = create_app(sample_settings.replace(analytics_db=str(tmp_path / "analytics.sqlite3"),
                                             api_tokens=(TOKEN,)))
    yield app
    close_app(app)


def stored(app, sql: str = "SELECT channel, query, results, relaxed, filtered_out FROM searches ORDER BY id"):
    app.extensions["analytics"].flush()
    with contextlib.closing(sqlite3.connect(app.extensions["analytics"].db.path)) as conn:
        return conn.execute(sql).fetchall()


def test_unfound_queries_include_partial_only_answers_and_filters_are_counted_apart(counted):
    from search_service.analytics import Period

    client = counted.test_client()
    reader = {"User-Agent": READER_UA}
    partial = client.get("/api/search?q=园区 乌有之乡测试词", headers={"Authorization": f"Bearer {TOKEN}"}).get_json()
    assert partial["relaxed"] == "any_word" and partial["total"] > 0
    client.get("/search?q=园区 乌有之乡测试词", headers=reader)          # only partial matches: unfound
    client.get("/search?q=qzxjvw", headers=reader)                      # nothing at all: unfound
    client.get("/search?q=园区&date_from=1990-01-01&date_to=1990-12-31", headers=reader)  # filters only
    client.get("/search?q=园区", headers=reader)                         # found
    rows = stored(counted)
    assert [(c, q, f) for c, q, _, _, f in rows if c != "script"] == [
        ("page", "园区 乌有之乡测试词", 0), ("page", "qzxjvw", 0), ("page", "园区", 1), ("page", "园区", 0)]
    db = counted.extensions["analytics"].db
    period = Period.last(1)
    unfound = {row.query: (row.searches, row.zero_results, row.relaxed) for row in db.zero_result_queries(period)}
    assert unfound == {"园区 乌有之乡测试词": (1, 0, 1), "qzxjvw": (1, 1, 0)}
    assert [(r.query, r.searches) for r in db.filtered_out_queries(period)] == [("园区", 1)]
    summary = db.summary(period)
    assert (summary.searches, summary.unfound, summary.zero_results, summary.filtered_out) == (4, 2, 1, 1)


def test_scripts_and_headless_browsers_are_their_own_channel(counted):
    from search_service.analytics import Period

    client = counted.test_client()
    client.get("/api/search?q=园区", headers={"Authorization": f"Bearer {TOKEN}"})
    client.get("/search?q=规划", headers={"User-Agent": HEADLESS_UA})
    client.get("/api/search?q=智慧", headers={"User-Agent": HEADLESS_UA})
    client.get("/api/suggest?q=智慧城&sid=abc", headers={"User-Agent": HEADLESS_UA})  # not recorded
    client.get("/api/search?q=高新", headers={"User-Agent": READER_UA})
    assert [(c, q) for c, q, *_ in stored(counted)] == [
        ("script", "园区"), ("script", "规划"), ("script", "智慧"), ("api", "高新")]
    db = counted.extensions["analytics"].db
    summary = db.summary(Period.last(1))
    assert summary.searches == 1  # only the reader's
    assert dict(summary.by_channel)["script"] == 3
    assert [row.query for row in db.top_queries(Period.last(1))] == ["高新"]


def test_metrics_export_the_recorder_counters_and_process_figures(counted):
    client = counted.test_client()
    client.get("/search?q=园区", headers={"User-Agent": READER_UA})
    counted.extensions["analytics"].flush()
    text = client.get("/metrics").get_data(as_text=True)
    for name in ("search_service_analytics_events_dropped_total 0.0", "search_service_analytics_events_failed_total 0.0",
                 "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                 "process_start_time_seconds"):
        assert name in text, name
    written = re.search(r"^search_service_analytics_rows_written_total (\S+)$", text, re.MULTILINE)
    assert written and float(written.group(1)) >= 1


def test_an_older_analytics_file_gets_the_new_column(tmp_path):
    from search_service.analytics import AnalyticsDB, SearchEvent

    path = tmp_path / "old.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript("""CREATE TABLE searches (id INTEGER PRIMARY KEY, ts REAL NOT NULL, day TEXT NOT NULL,
            channel TEXT NOT NULL, query TEXT NOT NULL, filters TEXT NOT NULL DEFAULT '', results INTEGER NOT NULL,
            relaxed TEXT, took_ms REAL NOT NULL, page INTEGER NOT NULL DEFAULT 1, refine INTEGER NOT NULL DEFAULT 0);
            INSERT INTO searches (ts, day, channel, query, results, took_ms) VALUES (1, '2025-01-01', 'page', '旧', 0, 1);
            PRAGMA user_version = 1;""")
    db = AnalyticsDB(path)
    db.create()
    db.insert([SearchEvent("新", "page", 0, filtered_out=True)])
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT query, filtered_out FROM searches ORDER BY id").fetchall() == [("旧", 0), ("新", 1)]


def test_suggestions_carry_the_original_url_and_an_excerpt_on_request(client):
    plain = client.get("/api/suggest?q=园区").get_json()["suggestions"]
    assert plain and all("excerpt_html" not in s for s in plain)
    assert all(s["source_url"] is None or s["source_url"].startswith(("http://", "https://")) for s in plain)
    assert any(s["source_url"] for s in plain)
    rich = client.get("/api/suggest?q=园区&excerpt=1").get_json()["suggestions"]
    assert [s["id"] for s in rich] == [s["id"] for s in plain]
    assert all(s["excerpt_html"] and len(re.sub(r"</?mark>", "", s["excerpt_html"])) <= 62 for s in rich)
    assert any("<mark>" in s["excerpt_html"] for s in rich)
    bad = client.get("/api/suggest?q=园区&excerpt=yes")
    assert bad.status_code == 400 and bad.get_json()["error"]["param"] == "excerpt"
