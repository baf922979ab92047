"""The search box (widget.js) on a page of ANOTHER origin, at phone and desktop size, in Debian's Chromium.

What the box must share with the results page (issue 27): the correction the page would search, the
page's count instead of 「没有建议」, the results row in view however the list scrolls, the list back
on a click or tap into the box, and an excerpt for a suggestion whose title does not show the match.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from search_service.web import close_app, create_app

from ..browser_tabs import Tab, host_page, open_tab, params_of, screenshot, summary_total
from ..conftest import WidgetSite
from ..helpers import LiveServer, free_port

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
SIZES = {"phone": dict(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2),
         "desktop": dict(viewport=DESKTOP)}


@pytest.fixture(params=sorted(SIZES))
def sized(request, browser) -> Iterator[tuple[str, Tab]]:
    """A tab at 390×844 (a phone: touch, mobile viewport) or 1366×900."""
    context, tab = open_tab(browser, **SIZES[request.param])
    try:
        yield request.param, tab
    finally:
        context.close()


@pytest.fixture()
def phone(browser) -> Iterator[Tab]:
    context, tab = open_tab(browser, **SIZES["phone"])
    try:
        yield tab
    finally:
        context.close()


def type_into_box(page, text: str):
    """Type ``text`` into the host page's box and wait for the list it opens for the whole text
    (a list for a prefix can be shown first, when its answer came back before the last keystroke's)."""
    page.click("#site-q")
    page.locator("#site-q").press_sequentially(text, delay=30)
    listbox = page.locator(f'[role=listbox][data-query="{text}"]:visible')
    listbox.wait_for()
    return listbox


def rect(locator) -> dict:
    box = locator.bounding_box()
    assert box is not None
    return box


def shown_inside(inner: dict, outer: dict) -> bool:
    """True when ``inner`` lies within ``outer`` (a pixel of rounding allowed)."""
    return (inner["y"] >= outer["y"] - 1 and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 1
            and inner["x"] >= outer["x"] - 1 and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 1)


def test_a_corrected_query_shows_the_corrections_suggestions_and_the_pages_count(sized, widget_site):
    size, tab = sized
    page = tab.page
    page.goto(widget_site.host_url)
    api = page.request.get(widget_site.search_url + "/api/search?q=智惠城市").json()
    assert api["correction"]["searched"] == "智慧城市" and api["total"] > 0

    listbox = type_into_box(page, "智惠城市")
    note = listbox.locator(".ssw-note")
    assert note.inner_text() == "已显示「智慧城市」的建议"
    assert note.get_attribute("aria-hidden") == "true"  # said through the label and the status line instead
    assert listbox.get_attribute("aria-label") == "「智慧城市」的搜索建议"
    assert page.locator(".ssw-status").inner_text().startswith("已显示「智慧城市」的建议")
    options = listbox.locator("[role=option]")
    assert options.count() >= 3
    assert set(listbox.locator(".ssw-title mark, .ssw-excerpt mark").all_inner_texts()) == {"智慧城市"}
    last = options.last
    assert last.inner_text() == f"搜索「智慧城市」的全部结果（{api['total']} 条）"
    assert listbox.locator(".ssw-none").count() == 0
    screenshot(page, f"widget-corrected-{size}.png")

    # The row opens the results page with the text typed: the page shows the same correction and count.
    if size == "phone":
        last.tap()
    else:
        last.click()
    page.wait_for_url(widget_site.search_url + "/search?*")
    assert params_of(page.url) == {"q": ["智惠城市"], "ref": ["widget"]}
    assert summary_total(page) == api["total"]
    assert "已显示「智慧城市」的搜索结果" in page.locator(".notice-corrected").inner_text()
    tab.check_clean()


@pytest.mark.parametrize("typed, searched", [("zhihuichengshi", "智慧城市"), ("高心区", "高新区")])
def test_pinyin_and_homophone_slips_get_suggestions(tab, widget_site, typed, searched):
    page = tab.page
    page.goto(widget_site.host_url)
    listbox = type_into_box(page, typed)
    assert listbox.locator(".ssw-note").inner_text() == f"已显示「{searched}」的建议"
    titles = listbox.locator(".ssw-option:not(.ssw-all)")
    assert titles.count() >= 2
    # Every suggestion shows the corrected words, in its title or in its excerpt.
    for i in range(titles.count()):
        marks = titles.nth(i).locator("mark").all_inner_texts()
        assert marks and {m.replace("區", "区") for m in marks} == {searched}, titles.nth(i).inner_text()
    # Opening one marks the correction on the article page.
    page.keyboard.press("ArrowDown")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert params_of(page.url) == {"q": [searched]}
    assert page.locator(".article-body mark, h1.article-title mark").count() > 0
    tab.check_clean()


def test_partial_matches_are_offered_with_the_pages_count_not_nothing(tab, widget_site):
    page = tab.page
    page.goto(widget_site.host_url)
    q = "智慧城市 火星基地"
    api = page.request.get(widget_site.search_url + "/api/search?q=" + q).json()
    assert api["relaxed"] == "any_word" and api["total"] > 0
    listbox = type_into_box(page, q)
    options = listbox.locator("[role=option]")
    # The list first shown can be that of a prefix (搜索「智慧城市 火星」…: a faster answer for it
    # arrived before the last keystroke's): wait for the one built for the whole query.
    expect(options.first).to_have_text(f"搜索「{q}」的全部结果（{api['total']} 条）")
    assert options.count() == 1
    assert "没有建议" not in listbox.inner_text()
    page.keyboard.press("ArrowDown")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert summary_total(page) == api["total"]
    tab.check_clean()


def test_the_results_row_stays_in_view_while_the_list_scrolls(phone, widget_site):
    page = phone.page
    page.goto(widget_site.host_url)
    listbox = type_into_box(page, "高心区")
    options = listbox.locator("[role=option]")
    assert options.count() == 9  # 8 suggestions and the results row
    sizes = listbox.evaluate("l => [l.scrollHeight, l.clientHeight]")
    assert sizes[0] > sizes[1], sizes  # the list scrolls: the case the row used to vanish in
    all_row = options.last
    assert "的全部结果" in all_row.inner_text()
    assert shown_inside(rect(all_row), rect(listbox))
    # The list keeps 8 px from the screen's edges (it once ended on the right edge itself, and an
    # arrow key's scrollIntoView then panned the page sideways).
    width = page.viewport_size["width"]
    box = rect(listbox)
    assert box["x"] >= 7 and box["x"] + box["width"] <= width - 7, (box, width)
    # Down through every suggestion: each active row is shown above the pinned row, not under it.
    for i in range(8):
        page.keyboard.press("ArrowDown")
        active = options.nth(i)
        assert active.get_attribute("aria-selected") == "true"
        box, pinned = rect(active), rect(all_row)
        assert box["y"] + box["height"] <= pinned["y"] + 1, (i, box, pinned)
        assert shown_inside(pinned, rect(listbox))
    assert page.evaluate("window.scrollX") == 0  # the page never panned sideways
    listbox.evaluate("l => { l.scrollTop = l.scrollHeight; }")
    assert shown_inside(rect(all_row), rect(listbox))
    screenshot(page, "widget-pinned-row-phone.png")
    phone.check_clean()


def test_tapping_back_into_the_box_reopens_the_suggestions(phone, widget_site):
    page = phone.page
    page.goto(widget_site.host_url)
    listbox = type_into_box(page, "园区")
    titles = listbox.locator(".ssw-title").all_inner_texts()
    asked = len(phone.suggest_requests())
    page.touchscreen.tap(4, PHONE["height"] - 4)  # elsewhere (below the list): the box loses focus
    assert page.evaluate("document.activeElement.id") != "site-q"
    assert page.locator("[role=listbox]").is_hidden()
    assert page.locator("#site-q").get_attribute("aria-expanded") == "false"
    page.locator("#site-q").tap()
    listbox = page.locator("[role=listbox]:visible")
    listbox.wait_for()
    assert listbox.locator(".ssw-title").all_inner_texts() == titles
    assert page.locator("#site-q").get_attribute("aria-expanded") == "true"
    assert len(phone.suggest_requests()) == asked  # the same answer, not asked again
    # Closed with Esc while the box keeps focus: a tap on it opens the list again too.
    page.keyboard.press("Escape")
    assert page.locator("[role=listbox]").is_hidden()
    page.locator("#site-q").tap()
    page.locator("[role=listbox]:visible").wait_for()
    phone.check_clean()


def test_clicking_into_a_box_with_changed_text_asks_for_it(tab, widget_site):
    page = tab.page
    page.goto(widget_site.host_url)
    type_into_box(page, "园区")
    page.mouse.click(4, DESKTOP["height"] - 4)
    assert page.locator("[role=listbox]").is_hidden()
    page.evaluate("() => { document.querySelector('#site-q').value = '规划'; }")  # e.g. restored by the browser
    with page.expect_request(lambda r: "/api/suggest?" in r.url) as asked:
        page.locator("#site-q").click()
    assert params_of(asked.value.url)["q"] == ["规划"]
    listbox = page.locator("[role=listbox]:visible")
    listbox.wait_for()
    assert "规划" in listbox.locator("mark").first.inner_text()
    tab.check_clean()


def test_a_title_without_the_match_shows_why_it_matched(tab, widget_site):
    page = tab.page
    page.goto(widget_site.host_url)
    listbox = type_into_box(page, "智慧城市")
    rows = listbox.locator(".ssw-option:not(.ssw-all)")
    with_mark = without_mark = 0
    for i in range(rows.count()):
        row = rows.nth(i)
        excerpt = row.locator(".ssw-excerpt")
        if row.locator(".ssw-title mark").count():
            with_mark += 1
            assert excerpt.count() == 0  # the title says it already: no extra line by default
        else:
            without_mark += 1
            assert excerpt.count() == 1 and excerpt.locator("mark").inner_text() == "智慧城市"
    assert with_mark and without_mark
    screenshot(page, "widget-excerpt-for-text-matches.png")
    tab.check_clean()


@pytest.fixture(scope="module")
def plain_site(sample_settings) -> Iterator[WidgetSite]:
    """The widget on another origin, the service answering queries as typed (setting correction off):
    the results page then offers its did-you-mean rather than answering with it."""
    host_port = free_port()
    app = create_app(sample_settings.replace(correction=False, cors_origins=(f"http://127.0.0.1:{host_port}",)))
    try:
        with LiveServer(app) as search, host_page(host_port, search.url) as host_url:
            yield WidgetSite(host_url, search.url)
    finally:
        close_app(app)


def test_the_pages_did_you_mean_is_offered_in_the_box(tab, plain_site):
    page = tab.page
    page.goto(plain_site.host_url)
    api = page.request.get(plain_site.search_url + "/api/search?q=只会").json()
    assert api["total"] == 0 and api["suggestion"] == "智慧"
    # Nothing as typed: the box shows the did-you-mean's suggestions and searches it.
    listbox = type_into_box(page, "只会")
    assert listbox.locator(".ssw-note").inner_text() == "没有找到「只会」的结果，你是不是要找「智慧」？"
    assert listbox.locator(".ssw-option:not(.ssw-all) .ssw-title mark").first.inner_text() == "智慧"
    last = listbox.locator("[role=option]").last
    assert last.inner_text() == "搜索「智慧」的全部结果"
    with page.expect_navigation():
        last.click()
    assert params_of(page.url) == {"q": ["智慧"], "ref": ["widget"]} and summary_total(page) > 0

    # Partial matches as typed and a did-you-mean: the page's count, and the did-you-mean as a row.
    page.goto(plain_site.host_url)
    api = page.request.get(plain_site.search_url + "/api/search?q=智惠城市").json()
    assert api["total"] > 0 and api["suggestion"] == "智慧城市" and api["correction"] is None
    listbox = type_into_box(page, "智惠城市")
    options = listbox.locator("[role=option]")
    assert options.all_inner_texts()[-2:] == ["你是不是要找「智慧城市」", f"搜索「智惠城市」的全部结果（{api['total']} 条）"]
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert params_of(page.url) == {"q": ["智慧城市"], "ref": ["widget"]} and summary_total(page) > 0
    tab.check_clean()


@pytest.fixture(scope="module")
def hot_site(tmp_path_factory, jieba_cache) -> Iterator[WidgetSite]:
    """The widget on another origin, on an index whose staff pinned two hot searches (issue 28)."""
    from search_service.rules import RulesDB, rules_path
    from search_service.rules.edits import pin_hot

    from ..helpers import SAMPLES, build_index, make_settings

    index_dir = tmp_path_factory.mktemp("hot-index")
    build_index(index_dir, [SAMPLES], default_category="高新院新闻")
    db = RulesDB(rules_path(index_dir)).create()
    for entry in ("园区规划", "智慧城市"):
        pin_hot(db, entry, "测试")
    host_port = free_port()
    app = create_app(make_settings(index_dir, jieba_cache, cors_origins=(f"http://127.0.0.1:{host_port}",)))
    try:
        with LiveServer(app) as search, host_page(host_port, search.url) as host_url:
            yield WidgetSite(host_url, search.url)
    finally:
        close_app(app)


def test_the_empty_box_lists_the_hot_searches_on_focus(sized, hot_site):
    name, tab = sized
    page = tab.page
    page.goto(hot_site.host_url)
    page.click("#site-q")  # focus, nothing typed
    listbox = page.locator("[role=listbox]:visible")
    listbox.wait_for()
    assert listbox.get_attribute("aria-label") == "热门搜索"
    assert listbox.locator("[role=option]").all_inner_texts() == ["园区规划", "智慧城市"]
    assert "热门搜索 2 条" in page.locator(".ssw-status").first.inner_text()
    screenshot(page, f"widget-hot-{name}.png")
    # Typing replaces the list with suggestions; emptying the box brings the hot searches back.
    page.locator("#site-q").press_sequentially("园区", delay=30)
    page.wait_for_function("document.querySelector('[role=listbox]').getAttribute('aria-label') !== '热门搜索'")
    page.locator("#site-q").fill("")
    page.locator("#site-q").dispatch_event("input")
    page.wait_for_function("document.querySelector('[role=listbox]').getAttribute('aria-label') === '热门搜索'")
    # An input method's composition starting is typing too: the hot searches close (CI met them left
    # open under a composition), and come back when it is abandoned with the box still empty.
    page.dispatch_event("#site-q", "compositionstart", {"data": ""})
    assert page.locator("[role=listbox]").is_hidden()
    page.dispatch_event("#site-q", "compositionend", {"data": ""})
    page.locator("#site-q").blur()
    page.click("#site-q")
    page.wait_for_function("document.querySelector('[role=listbox]').getAttribute('aria-label') === '热门搜索'")
    # The keyboard chooses one: the results page of that search.
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert params_of(page.url) == {"q": ["智慧城市"], "ref": ["widget"]} and summary_total(page) > 0
    tab.check_clean()
