"""The correction notice and its 仍然搜索 link in a real browser (Debian's Chromium via Playwright)."""

from __future__ import annotations

import pytest

from ..browser_tabs import params_of

pytestmark = pytest.mark.browser


def test_notice_and_search_as_typed_link(tab, live_server):
    page = tab.page
    page.goto(live_server.url + "/")
    page.fill("#q", "智惠城市")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    notice = page.locator(".notice-corrected")
    assert notice.inner_text() == "已显示「智慧城市」的搜索结果，仍然搜索「智惠城市」"
    assert page.locator("ol.hits mark").first.inner_text() == "智慧城市"
    assert page.locator("#q").input_value() == "智惠城市"  # the box keeps what was typed

    with page.expect_navigation():
        page.click(".notice-corrected a.original-link")
    assert params_of(page.url) == {"q": ["智惠城市"], "correct": ["0"]}
    assert page.locator(".notice-corrected").count() == 0
    relaxed = page.locator(".notice-relaxed")
    assert "「智惠」" in relaxed.inner_text()  # the partial-match notice names the word that found nothing
    assert page.locator(".did-you-mean a").inner_text() == "智慧城市"
    # Paging or sorting from here still searches as typed.
    sort_links = page.locator("nav.sort a")
    if sort_links.count():
        assert "correct=0" in sort_links.first.get_attribute("href")
    tab.check_clean()


def test_pinyin_notice_links_to_the_correction(tab, live_server):
    page = tab.page
    page.goto(live_server.url + "/search?q=zhihuichengshi")
    notice = page.locator(".notice-corrected")
    assert "已显示「智慧城市」的搜索结果" in notice.inner_text()
    with page.expect_navigation():
        page.click(".notice-corrected a.corrected-link")
    assert params_of(page.url) == {"q": ["智慧城市"]}
    assert page.locator(".notice-corrected").count() == 0
    assert page.locator("ol.hits li.hit").count() > 0
    tab.check_clean()
