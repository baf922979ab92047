"""Search analytics in a real browser (Debian's Chromium via Playwright): clicks reported by the
results page and the widget (also from another origin), and the staff page behind HTTP basic auth."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from search_service.web import close_app, create_app

from ..browser_tabs import Tab, host_page, open_tab, screenshot
from ..helpers import LiveServer, free_port

pytestmark = pytest.mark.browser

PASSWORD = "staff-pass-浏览器"
# Headless Chromium says "HeadlessChrome": such searches go to the "script" channel. These tests
# play a reader, so their browser presents itself as a desktop Chrome does.
READER_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/156.0.0.0 Safari/537.36")


@dataclass
class Site:
    app: object
    search_url: str   # the search service
    host_url: str     # the institute's demo page with the widget, on another origin

    def flush(self) -> None:
        self.app.extensions["analytics"].flush()

    def rows(self, sql: str) -> list:
        self.flush()
        with contextlib.closing(sqlite3.connect(self.app.extensions["analytics"].db.path)) as conn:
            return conn.execute(sql).fetchall()

    def clear(self) -> None:
        self.flush()
        with contextlib.closing(sqlite3.connect(self.app.extensions["analytics"].db.path)) as conn:
            conn.execute("DELETE FROM searches")
            conn.execute("DELETE FROM clicks")
            conn.commit()


@pytest.fixture(scope="module")
def site(sample_settings, tmp_path_factory) -> Iterator[Site]:
    """The sample index with its own analytics file, staff password, and a widget host page."""
    host_port = free_port()
    host_origin = f"http://127.0.0.1:{host_port}"
    settings = sample_settings.replace(
        analytics_db=str(tmp_path_factory.mktemp("analytics-browser") / "analytics.sqlite3"),
        admin_password=PASSWORD, cors_origins=(host_origin,))
    app = create_app(settings)
    try:
        with LiveServer(app) as search, host_page(host_port, search.url) as host_url:
            yield Site(app, search.url, host_url)
    finally:
        close_app(app)


@pytest.fixture()
def tab_options() -> dict:
    """The shared ``tab`` fixture (conftest.py) presents itself as a reader's desktop Chrome here."""
    return {"user_agent": READER_UA}


@pytest.fixture()
def staff_tab(browser) -> Iterator[Tab]:
    context, tab = open_tab(browser, user_agent=READER_UA,
                             http_credentials={"username": "staff", "password": PASSWORD})
    try:
        yield tab
    finally:
        context.close()


def beacon_fields(request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.post_data or "").items()}


def test_result_clicks_on_the_results_page_are_reported(tab, site):
    site.clear()
    page = tab.page
    page.goto(site.search_url + "/search?q=園區")
    second = page.locator(".hit-title a").nth(1)
    doc_path = urlsplit(second.get_attribute("href")).path
    with page.expect_request(lambda r: r.url.endswith("/api/click") and r.method == "POST") as beacon:
        with page.expect_navigation():
            second.click()
    assert beacon_fields(beacon.value) == {"q": "園區", "id": unquote(doc_path.rsplit("/", 1)[1]), "rank": "2",
                                           "channel": "page", "first": "1"}
    assert urlsplit(page.url).path == doc_path  # navigation went ahead
    tab.check_clean()  # sendBeacon to the same origin is allowed by the CSP

    assert site.rows("SELECT channel, query, refine FROM searches") == [("page", "园区", 0)]
    clicks = site.rows("SELECT channel, query, rank, first FROM clicks")
    assert clicks[0] == ("page", "园区", 2, 1)


def test_widget_on_another_origin_reports_its_session_and_click(tab, site):
    site.clear()
    page = tab.page
    page.goto(site.host_url)
    page.click("#site-q")
    page.locator("#site-q").press_sequentially("智慧城", delay=60)
    listbox = page.locator("[role=listbox]:visible")
    # The list built for the whole query (one for 「智」 may show first while typing goes on).
    listbox.locator(".ssw-all", has_text="搜索「智慧城」的全部结果").wait_for()
    suggests = [u for u in tab.requests if "/api/suggest?" in u]
    sids = {parse_qs(urlsplit(u).query)["sid"][0] for u in suggests}
    assert len(sids) == 1  # one typing session for the page load
    option = listbox.locator("[role=option]").first
    with page.expect_request(lambda r: r.url == site.search_url + "/api/click") as beacon:
        with page.expect_navigation():
            option.click()
    fields = beacon_fields(beacon.value)
    assert (fields["q"], fields["rank"], fields["channel"], fields["first"]) == ("智慧城", "1", "widget", "1")
    assert unquote(urlsplit(page.url).path) == "/doc/" + fields["id"]
    tab.check_clean()

    # The cross-origin beacon was accepted (the host is in cors_origins); the session counts once.
    assert site.rows("SELECT channel, query, rank FROM clicks") == [("widget", "智慧城", 1)]
    searches = site.rows("SELECT channel, query, results > 0 FROM searches")
    assert searches == [("widget", "智慧城", 1)]


def test_widget_full_results_count_as_one_widget_search(tab, site):
    site.clear()
    page = tab.page
    page.goto(site.host_url)
    page.evaluate("endpoint => SearchBox.attach(document.querySelector('#explicit-q'), {endpoint})",
                  site.search_url)
    page.click("#explicit-q")
    page.locator("#explicit-q").press_sequentially("规划", delay=60)
    page.locator("[role=listbox]:visible").wait_for()
    page.keyboard.press("Escape")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert parse_qs(urlsplit(page.url).query) == {"q": ["规划"], "ref": ["widget"]}
    # A click on that results page belongs to the widget channel too.
    with page.expect_request(lambda r: r.url.endswith("/api/click")) as beacon:
        with page.expect_navigation():
            page.locator(".hit-title a").first.click()
    assert beacon_fields(beacon.value)["channel"] == "widget"
    assert site.rows("SELECT channel, query FROM searches") == [("widget", "规划")]
    tab.check_clean()


def test_analytics_page_needs_staff_credentials(tab, browser, site):
    response = tab.page.request.get(site.search_url + "/admin/analytics")
    assert response.status == 401
    assert response.headers["www-authenticate"].startswith('Basic realm="search admin"')
    assert "需要登录" in response.text()
    # A browser with the wrong password gets the 401 page, not the data.
    context, wrong = open_tab(browser, http_credentials={"username": "staff", "password": "wrong"})
    try:
        response = wrong.page.goto(site.search_url + "/admin/analytics")
        assert response.status == 401
        assert wrong.page.locator("h1").inner_text() == "需要登录"
        assert wrong.page.locator("svg.chart-svg").count() == 0
        assert wrong.page.request.get(site.search_url + "/admin/analytics.csv?table=top").status == 401
    finally:
        context.close()


def test_analytics_page_renders_for_staff(staff_tab, site):
    site.clear()
    page = staff_tab.page
    # Some traffic: a search that finds things, one that finds nothing, and a click.
    page.goto(site.search_url + "/search?q=园区")
    with page.expect_request(lambda r: r.url.endswith("/api/click")):
        with page.expect_navigation():
            page.locator(".hit-title a").first.click()
    page.goto(site.search_url + "/search?q=" + "量子纠缠鸵鸟舞")
    site.flush()

    response = page.goto(site.search_url + "/admin/analytics")
    assert response.status == 200
    assert page.locator("h1").inner_text() == "搜索分析"
    assert page.locator("[data-metric=searches] .card-value").inner_text() == "2"
    assert page.locator("[data-metric=unfound] .card-value").inner_text() == "50.0%"
    assert page.locator("[data-metric=ctr] .card-value").inner_text() == "100.0%"
    assert page.locator("[data-metric=rank] .card-value").inner_text() == "1.0"
    top = page.locator("table[data-table=top] td.query").all_inner_texts()
    assert set(top) == {"园区", "量子纠缠鸵鸟舞"}
    zero = page.locator("table[data-table=zero] tbody tr")
    assert zero.count() == 1
    assert zero.first.locator("td.query").inner_text() == "量子纠缠鸵鸟舞"
    actions = zero.first.locator("a.action")  # to the relevance desk: curation, synonym, dictionary word
    assert actions.count() == 3 and actions.first.get_attribute("href").startswith("/admin/desk/curation?q=")
    assert zero.first.locator(".dict-entry code").inner_text() == "量子纠缠鸵鸟舞 1000 n"
    chart = page.locator("svg.chart-svg")
    assert chart.is_visible() and chart.bounding_box()["width"] > 300
    assert page.locator("svg.chart-svg rect.bar").count() == 30
    fill = page.evaluate("getComputedStyle(document.querySelector('svg.chart-svg rect.bar')).fill")
    assert fill == "rgb(143, 179, 227)"  # styled by admin.css: classes, no inline style
    screenshot(page, "admin-analytics.png", full_page=True)

    # Presets and the query links.
    with page.expect_navigation():
        page.get_by_role("link", name="近 7 天").click()
    assert page.locator(".preset.is-current").inner_text() == "近 7 天"
    assert page.locator("svg.chart-svg rect.bar").count() == 7
    with page.expect_navigation():
        page.locator("table[data-table=top] a.query-link", has_text="园区").click()
    assert parse_qs(urlsplit(page.url).query) == {"q": ["园区"]}

    # CSV export, authenticated by the same context.
    csv_response = page.request.get(site.search_url + "/admin/analytics.csv?table=top")
    assert csv_response.status == 200 and csv_response.body().startswith("\ufeffquery,".encode())
    staff_tab.check_clean()
    # Opening a query from the analytics page is not counted as a reader's search.
    assert site.rows("SELECT COUNT(*) FROM searches WHERE query = '园区'") == [(1,)]
