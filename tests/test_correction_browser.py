"""The correction notice and its 仍然搜索 link in a real browser (Debian's Chromium via Playwright)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

pytestmark = pytest.mark.browser

TIMEOUT_MS = 8000


@pytest.fixture()
def page(browser):
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    try:
        yield page
    finally:
        context.close()


def test_notice_and_search_as_typed_link(page, live_server):
    page.goto(live_server.url + "/")
    page.fill("#q", "智惠城市")
    page.keyboard.press("Enter")
    notice = page.locator(".notice-corrected")
    notice.wait_for()
    assert notice.inner_text() == "已显示「智慧城市」的搜索结果，仍然搜索「智惠城市」"
    assert page.locator("ol.hits mark").first.inner_text() == "智慧城市"
    assert page.locator("#q").input_value() == "智惠城市"  # the box keeps what was typed

    page.click(".notice-corrected a.original-link")
    page.wait_for_load_state()
    assert parse_qs(urlsplit(page.url).query) == {"q": ["智惠城市"], "correct": ["0"]}
    assert page.locator(".notice-corrected").count() == 0
    relaxed = page.locator(".notice-relaxed")
    assert "「智惠」" in relaxed.inner_text()  # the partial-match notice names the word that found nothing
    assert page.locator(".did-you-mean a").inner_text() == "智慧城市"
    # Paging or sorting from here still searches as typed.
    sort_links = page.locator("nav.sort a")
    if sort_links.count():
        assert "correct=0" in sort_links.first.get_attribute("href")
    assert not page.errors


def test_pinyin_notice_links_to_the_correction(page, live_server):
    page.goto(live_server.url + "/search?q=zhihuichengshi")
    notice = page.locator(".notice-corrected")
    assert "已显示「智慧城市」的搜索结果" in notice.inner_text()
    page.click(".notice-corrected a.corrected-link")
    page.wait_for_load_state()
    assert parse_qs(urlsplit(page.url).query) == {"q": ["智慧城市"]}
    assert page.locator(".notice-corrected").count() == 0
    assert page.locator("ol.hits li.hit").count() > 0
    assert not page.errors
