"""No dead ends, in real Chromium: Back, kept state, phones, empty pages, links, the widget's options.

Each test plays one kind of user (a reader on a phone, staff with filters, an integrator's page) and
saves screenshots at 390 px and desktop width into test-artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from ..browser_tabs import Tab, open_tab, params_of, screenshot, summary_total

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture()
def phone(browser) -> Iterator[Tab]:
    context, tab = open_tab(browser, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    try:
        yield tab
    finally:
        context.close()


def checked_categories(page) -> list[str]:
    return page.eval_on_selector_all("form[data-autosubmit] input[name=category]",
                                     "boxes => boxes.filter(b => b.checked).map(b => b.value)")


# --------------------------------------------------------------------------- Back and kept state


def test_back_after_ticking_a_category_shows_controls_that_match_the_url(tab, live_server):
    page = tab.page
    page.goto(live_server.url + "/search?q=园区")
    assert checked_categories(page) == []
    first = page.locator("form[data-autosubmit] input[name=category]").first
    value = first.get_attribute("value")
    with page.expect_navigation():
        first.check()
    assert params_of(page.url)["category"] == [value]
    assert checked_categories(page) == [value]
    page.go_back()
    page.wait_for_load_state()
    assert "category" not in params_of(page.url)
    # Chrome would restore the ticked box (form state, back/forward cache): it must not.
    assert checked_categories(page) == []
    assert page.locator("form[data-autosubmit]").get_attribute("autocomplete") == "off"
    page.go_forward()
    page.wait_for_load_state()
    assert checked_categories(page) == [value]
    tab.check_clean()


def test_the_article_page_leads_back_to_the_same_filters_order_and_page(tab, live_server):
    page = tab.page
    start = live_server.url + "/search?q=园区&category=园区规划&category=政策解读&sort=date_desc&page=2&page_size=3"
    page.goto(start)
    wanted = params_of(page.url)
    link = page.locator(".hit-title a").first
    assert params_of(link.get_attribute("href")) == wanted
    with page.expect_navigation():
        link.click()
    assert page.url.startswith(live_server.url + "/doc/")
    back = page.locator("a.back-link")
    assert "返回“园区”的搜索结果" in back.inner_text()
    with page.expect_navigation():
        back.click()
    assert params_of(page.url) == wanted
    assert page.locator(".pagination .current").inner_text() == "2"
    assert page.locator(".sort-option.is-current").inner_text() == "最新"
    assert sorted(checked_categories(page)) == sorted(["园区规划", "政策解读"])
    tab.check_clean()


# --------------------------------------------------------------------------- phones


def test_on_a_phone_a_filters_button_at_the_top_opens_the_filters(phone, live_server):
    page = phone.page
    page.goto(live_server.url + "/search?q=园区")
    toggle = page.locator("[data-filters-toggle]")
    assert toggle.is_visible()
    assert toggle.inner_text().strip() == "筛选"
    assert toggle.get_attribute("aria-expanded") == "false"
    # At the top: above the first result, within the first screen.
    assert toggle.bounding_box()["y"] < page.locator(".hit").first.bounding_box()["y"]
    assert toggle.bounding_box()["y"] < PHONE["height"] / 2
    assert page.locator("#filters").is_hidden()
    screenshot(page, "phone-results.png")
    toggle.tap()
    assert toggle.get_attribute("aria-expanded") == "true"
    assert page.locator("#filters").is_visible()
    assert page.locator("#filters").bounding_box()["y"] < page.locator(".hit").first.bounding_box()["y"]
    screenshot(page, "phone-filters-open.png")
    # Touch targets of at least 44 px.
    small = page.evaluate("""() => {
        const selectors = ['[data-filters-toggle]', '.facet-option', '.facet-link', '.sort-option', '.export',
                           '.pagination a', '.search-button', '.search-input', '.date-form .button',
                           '.date-field input'];
        const out = [];
        for (const s of selectors) for (const e of document.querySelectorAll(s)) {
            const r = e.getBoundingClientRect();
            if (r.width && r.height < 44) out.push(s + ' ' + Math.round(r.height));
        }
        return out;
    }""")
    assert small == []
    assert page.locator(".facet-option").first.bounding_box()["height"] >= 44


def test_an_empty_page_offers_only_what_helps_and_counts_each_way_out(tab, live_server):
    page = tab.page
    page.goto(live_server.url + "/search?q=园区&date_from=1990-01-01&date_to=1990-12-31")
    box = page.locator(".no-results")
    assert "所选筛选条件下没有结果" in box.inner_text()
    assert "没有可选的分类" not in page.content() and "没有日期信息" not in page.content()
    link = box.locator(".drop-filters a").first
    count = int(re.search(r"(\d+) 条结果", link.locator("xpath=..").inner_text()).group(1))
    assert count > 0
    screenshot(page, "desktop-empty-filters.png", full_page=True)
    with page.expect_navigation():
        link.click()
    assert summary_total(page) == count
    # A query that finds nothing at all: no filter column, no CSV link, a true sentence.
    page.goto(live_server.url + "/search?q=qzxjvw&category=高新院新闻")
    assert "即使去掉全部筛选条件" in page.locator(".no-results").inner_text()
    assert page.locator("#filters").count() == 0
    assert page.locator("a.export").count() == 0
    tab.check_clean()


@pytest.mark.parametrize("path", ["/help", "/doc/gxy-2019-0315?q=园区", "/search?q=qzxjvw", "/no/such/page"])
def test_links_inside_text_are_underlined(tab, live_server, path):
    page = tab.page
    page.goto(live_server.url + path)
    # Links that sit inside a paragraph or list item of text (axe: link-in-text-block).
    not_underlined = page.evaluate("""() => {
        const blocks = document.querySelectorAll('main p a, main li a, main dd a');
        const out = [];
        for (const a of blocks) {
            if (a.closest('.hits, .pagination, .facets, .chips, .sort, .results-tools')) continue;
            const line = getComputedStyle(a).textDecorationLine;
            if (!line.includes('underline')) out.push(a.textContent.trim());
        }
        return out;
    }""")
    assert not_underlined == []
    assert page.locator("main a").count() > 0


def test_phone_and_desktop_screenshots_of_every_page(browser, live_server):
    pages = {"results": "/search?q=智慧城市", "article": "/doc/gxy-2019-0315?q=园区", "help": "/help",
             "empty": "/search?q=园区&date_from=1990-01-01&date_to=1990-12-31", "404": "/no/such/page"}
    for label, viewport in (("phone", PHONE), ("desktop", {"width": 1280, "height": 900})):
        context, tab = open_tab(browser, viewport=viewport)
        try:
            for name, path in pages.items():
                response = tab.page.goto(live_server.url + path)
                assert response.status in (200, 404)
                width = tab.page.evaluate("document.documentElement.scrollWidth")
                assert width <= viewport["width"], f"{name} scrolls sideways at {viewport['width']} px"
                screenshot(tab.page, f"{label}-{name}.png", full_page=True)
            tab.check_clean()
        finally:
            context.close()


def test_the_404_page_points_up_to_the_search_box(tab, live_server):
    page = tab.page
    page.goto(live_server.url + "/no/such/page")
    text = page.locator(".error-explanation").inner_text()
    assert "上方的搜索框" in text and "下面" not in text
    assert page.locator("#q").bounding_box()["y"] < page.locator(".error-explanation").bounding_box()["y"]
    assert "No such page" not in page.content()


# --------------------------------------------------------------------------- the widget


def test_widget_options_original_link_excerpt_and_slash(tab, widget_site):
    page = tab.page
    page.goto(widget_site.host_url)
    page.evaluate("""endpoint => {
        window.chosen = [];
        SearchBox.attach(document.querySelector('#explicit-q'), {
            endpoint, openOriginal: true, excerpt: true,
            onSelect: (suggestion, href) => { window.chosen.push(href); return false; }
        });
    }""", widget_site.search_url)
    # "/" focuses the page's first box (the data-search-box one), not when typing elsewhere.
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "site-q"
    assert page.locator("#site-q").input_value() == ""

    page.click("#explicit-q")
    page.locator("#explicit-q").press_sequentially("园区", delay=40)
    # The list for the whole text, not the first keystroke's (which the second one's replaces,
    # active row and all, when its answer comes in after the arrow key).
    listbox = page.locator('[role=listbox][data-query="园区"]:visible')
    listbox.wait_for()
    first = listbox.locator("[role=option]").first
    excerpt = first.locator(".ssw-excerpt")
    assert excerpt.count() == 1 and len(excerpt.inner_text()) > 10
    page.keyboard.press("ArrowDown")
    # The active row in a strong colour (white on the accent blue).
    colours = first.evaluate("e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).color]")
    assert colours == ["rgb(26, 86, 160)", "rgb(255, 255, 255)"]
    screenshot(page, "widget-excerpt-active.png")
    page.keyboard.press("Enter")
    page.wait_for_function("window.chosen.length > 0")
    href = page.evaluate("window.chosen[0]")
    assert href.startswith("https://www.example.org/"), href
    tab.check_clean()


def test_widget_without_suggestions_shows_a_row_to_search_everything(tab, widget_site):
    page = tab.page
    page.goto(widget_site.host_url)
    page.click("#site-q")
    page.locator("#site-q").press_sequentially("qzxjvw", delay=30)
    listbox = page.locator('[role=listbox][data-query="qzxjvw"]:visible')  # not a list for a prefix
    listbox.wait_for()
    options = listbox.locator("[role=option]")
    assert options.count() == 1
    assert options.first.inner_text() == "没有建议 — 搜索全部结果"
    screenshot(page, "widget-no-suggestion.png")
    page.keyboard.press("ArrowDown")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert params_of(page.url) == {"q": ["qzxjvw"], "ref": ["widget"]}
    tab.check_clean()


def test_the_all_results_row_of_a_list_for_an_earlier_text_searches_what_the_box_holds(tab, widget_site):
    # Typing can outrun the answers: the list on screen still answers an earlier text when the
    # reader picks its last row. That row means "all results for what I typed".
    page = tab.page
    page.goto(widget_site.host_url)
    page.click("#site-q")
    page.locator("#site-q").press_sequentially("qzxjvw", delay=30)
    page.locator('[role=listbox][data-query="qzxjvw"]:visible').wait_for()
    # More text, before its answer comes (set without an input event, so the list stays as it is).
    page.evaluate("document.querySelector('#site-q').value = 'qzxjvw 园区'")
    page.keyboard.press("ArrowDown")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert params_of(page.url) == {"q": ["qzxjvw 园区"], "ref": ["widget"]}
    tab.check_clean()
