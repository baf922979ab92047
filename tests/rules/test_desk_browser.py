"""The relevance desk in a real browser (Debian's Chromium via Playwright), behind HTTP basic auth:
from the analytics page's unfound query to a pinned article readers see first, a synonym group with
its preview, the words and hot pages, and an undo. Screenshots go to test-artifacts/desk-*.png."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from search_service.analytics import AnalyticsDB, SearchEvent
from search_service.rules.store import RulesDB, rules_path

from ..browser_tabs import Tab, open_tab, screenshot
from ..helpers import LiveServer
from .conftest import PASSWORD, with_desk

pytestmark = pytest.mark.browser

READER_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/156.0.0.0 Safari/537.36")


@pytest.fixture()
def desk_site(desk_settings) -> Iterator[tuple[object, str]]:
    from search_service.web import close_app, create_app

    now = time.time()
    analytics = AnalyticsDB(desk_settings.analytics_db)
    analytics.create()
    analytics.insert([*(SearchEvent("园区招商", "page", 0, ts=now - 60 - i) for i in range(4)),
                      *(SearchEvent("亩均论英雄", "page", 0, ts=now - 120 - i) for i in range(3)),
                      *(SearchEvent("园区规划", "page", 6, ts=now - 200 - i) for i in range(7)),
                      *(SearchEvent("新质生产力", "widget", 4, ts=now - 300 - i) for i in range(5)),
                      *(SearchEvent("低空经济", "api", 2, ts=now - 400 - i) for i in range(3))])
    app = with_desk(create_app(desk_settings))
    try:
        with LiveServer(app) as server:
            yield app, server.url
    finally:
        close_app(app)


@pytest.fixture()
def staff_tab(browser) -> Iterator[Tab]:
    context, tab = open_tab(browser, user_agent=READER_UA,
                            http_credentials={"username": "王编辑", "password": PASSWORD})
    try:
        yield tab
    finally:
        context.close()


def test_from_an_unfound_query_to_a_pinned_result(staff_tab, desk_site):
    app, url = desk_site
    page = staff_tab.page
    page.goto(url + "/admin/analytics")
    row = page.locator("table[data-table=zero] tr", has_text="园区招商")
    with page.expect_navigation():
        row.locator("a[data-desk=curation]").click()
    assert page.locator("h1").inner_text().replace("“", "").replace("”", "") == "精选结果：园区招商"
    page.fill("#find", "招商")
    with page.expect_navigation():
        page.click(".desk-find button[type=submit]")
    found = page.locator(".desk-found li", has_text="从“拼政策”到“拼生态”")
    with page.expect_navigation():
        found.locator("button", has_text="置顶").click()
    assert page.locator(".desk-flash").inner_text() == "已保存。"
    assert page.locator("ol.desk-pins .desk-pin").first.get_attribute("data-id") == "hydj-2023-0516"
    first = page.locator(".desk-preview li").first
    assert first.get_attribute("data-id") == "hydj-2023-0516" and first.locator(".badge-pinned").inner_text() == "推荐"
    # A second pin comes after the first.
    page.fill("#find", "招商")
    with page.expect_navigation():
        page.click(".desk-find button[type=submit]")
    other = page.locator(".desk-found li:not([data-id='hydj-2023-0516'])").first
    second_pin = other.get_attribute("data-id")
    with page.expect_navigation():
        other.locator("button", has_text="置顶").click()
    pins = ["hydj-2023-0516", second_pin]
    assert [li.get_attribute("data-id") for li in page.locator("ol.desk-pins .desk-pin").all()] == pins
    preview = page.locator(".desk-preview li")
    assert [preview.nth(i).get_attribute("data-id") for i in (0, 1)] == pins
    # Hide another article straight from the preview.
    hidden_id = preview.nth(2).get_attribute("data-id")
    with page.expect_navigation():
        preview.nth(2).locator("button", has_text="隐藏").click()
    assert hidden_id not in [li.get_attribute("data-id") for li in page.locator(".desk-preview li").all()]
    screenshot(page, "desk-curation.png", full_page=True)
    staff_tab.check_clean()
    rule = RulesDB(rules_path(app.config["SETTINGS"].index_dir)).get("curation", "园区招商")
    assert rule == {"pin": pins, "hide": [hidden_id]}
    # what a reader gets
    page.goto(url + "/search?q=园区招商")
    hits = page.locator(".hits .hit")
    assert [hits.nth(i).locator(".hit-badge").inner_text() for i in (0, 1)] == ["推荐", "推荐"]
    assert hits.nth(2).locator(".hit-badge").count() == 0
    assert hidden_id not in page.content()
    screenshot(page, "desk-results-pinned.png", full_page=True)
    # The search box: the pinned article first, marked 推荐 (widget.css), the hidden one not offered.
    page.fill("#q", "")
    page.click("#q")
    page.locator("#q").press_sequentially("园区招商", delay=40)
    listbox = page.locator("[role=listbox][aria-label=搜索建议]:visible")  # not the hot searches of the empty box
    listbox.wait_for()
    first_option = listbox.locator("[role=option]").first
    assert "ssw-pinned" in first_option.get_attribute("class")
    badge = first_option.locator(".ssw-title").evaluate("t => getComputedStyle(t, '::before').content")
    assert badge == '"推荐"'
    screenshot(page, "desk-box-pinned.png")
    staff_tab.check_clean()


def test_synonym_group_with_its_preview(staff_tab, desk_site):
    _, url = desk_site
    page = staff_tab.page
    page.goto(url + "/admin/desk/synonyms")
    page.fill("#group-text", "亩均论英雄 = 亩均效益评价 = 标准地")
    with page.expect_navigation():
        page.click(".desk-group-form button")
    rows = page.locator("table[data-table=synonym-preview] tbody tr")
    assert rows.count() == 3
    before, after = (int(rows.first.locator("td.num").nth(i).inner_text()) for i in (0, 1))
    assert after > before >= 1
    screenshot(page, "desk-synonyms-preview.png", full_page=True)
    with page.expect_navigation():
        page.click("text=添加这一组")
    assert "亩均论英雄 = 亩均效益评价 = 标准地" in page.locator("table[data-table=synonyms]").inner_text()
    screenshot(page, "desk-synonyms.png", full_page=True)
    staff_tab.check_clean()


def test_words_hot_and_history_pages(staff_tab, desk_site):
    _, url = desk_site
    page = staff_tab.page
    page.goto(url + "/admin/desk/words")
    with page.expect_navigation():
        page.click("text=从搜索记录更新候选词")
    row = page.locator("tr[data-word=亩均论英雄]")
    assert "亩 均 论 英雄" in " ".join(row.locator(".segment").all_inner_texts())
    screenshot(page, "desk-words.png", full_page=True)
    with page.expect_navigation():
        row.locator("button", has_text="采纳").click()
    assert "待重建索引后生效" in page.locator(".desk-pending").inner_text()
    # The reindex the page starts, followed on the page (it refreshes itself) until it is done.
    with page.expect_navigation():
        page.click("text=重建索引，使已采纳的词生效")
    page.locator(".desk-job[data-state=done]", has_text="重建索引").wait_for(timeout=90_000)
    assert page.locator(".desk-pending").count() == 0
    assert "1 个自定义词已生效" in page.locator(".desk-job-message").inner_text()
    assert "已生效 1 个：亩均论英雄" in page.locator("main").inner_text()

    page.goto(url + "/admin/desk/hot")
    listed = page.locator(".desk-hot li")
    assert listed.all_inner_texts()[0].startswith("园区规划")
    with page.expect_navigation():
        page.locator(".desk-hot li", has_text="新质生产力").locator("button", has_text="置顶").click()
    assert page.locator(".desk-hot li").first.get_attribute("data-query") == "新质生产力"
    screenshot(page, "desk-hot.png", full_page=True)
    hot = page.request.get(url + "/api/hot").json()
    assert [e["query"] for e in hot["hot"]][:2] == ["新质生产力", "园区规划"]
    # Blocked: gone from the readers' list, listed under 已屏蔽.
    with page.expect_navigation():
        page.locator(".desk-hot li", has_text="园区规划").locator("button", has_text="屏蔽").click()
    assert "园区规划" not in page.locator(".desk-hot").inner_text()
    assert page.locator(".desk-blocked", has_text="园区规划").count() == 1
    assert "园区规划" not in [e["query"] for e in page.request.get(url + "/api/hot").json()["hot"]]

    page.goto(url + "/admin/desk/history")
    latest = page.locator("table[data-table=history] tbody tr").first
    assert "王编辑（管理密码）" in latest.inner_text() and "屏蔽「园区规划」" in latest.inner_text()
    with page.expect_navigation():
        latest.locator("button", has_text="撤销").click()
    assert page.locator(".desk-flash").inner_text() == "已撤销。"
    assert "园区规划" in [e["query"] for e in page.request.get(url + "/api/hot").json()["hot"]]
    screenshot(page, "desk-history.png", full_page=True)
    page.goto(url + "/admin/desk")
    screenshot(page, "desk-overview.png", full_page=True)
    staff_tab.check_clean()
