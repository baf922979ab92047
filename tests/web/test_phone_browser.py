"""The results and article pages on a phone (390 × 844) and for staff at a desktop (1366 × 900), in real
Chromium, on an index of awkward articles: long URLs and sources, long Latin words, 40-character
titles without spaces, two dozen categories and three decades of years (issue 27).

Screenshots of the phone results page and of the phone's filter flow go to test-artifacts/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from search_service.web import close_app, create_app

from ..browser_tabs import Tab, open_tab, params_of, screenshot, summary_total
from ..helpers import LiveServer, build_index, make_settings

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}

LONG_WORD = "Pneumonoultramicroscopicsilicovolcanoconiosis" * 3
MISSING_WORD = "Antidisestablishmentarianism" * 4  # in no article: the partial-match notice names it
LONG_URL = ("https://www.example.org/" + "/".join(f"averyveryverylongpathsegment{i}" for i in range(10))
            + "?session=" + "0123456789abcdef" * 12)
LONG_SOURCE = "CCTV 新闻联播 via github.com/yuekcc/cctv_news@f3f077685dd5:news/" + "20220210" * 12 + ".md"
LONG_TITLE = "园区高新技术产业开发区智慧城市建设总体规划暨重点产业集群发展示范项目实施方案发布会召开"  # no spaces
LONG_CATEGORY = "国家级经济技术开发区与高新技术产业开发区综合发展水平评价研究报告专栏"
LATIN_CATEGORY = "InternationalCooperationAndDevelopmentResearchReports"
CATEGORIES = [LONG_CATEGORY, LATIN_CATEGORY] + [f"专题栏目{i:02d}" for i in range(1, 25)]  # 26 in all


def awkward_articles() -> list[dict]:
    articles = [
        {"id": "awk-1", "title": LONG_TITLE, "category": LONG_CATEGORY, "date": "2026-03-01",
         "source": LONG_SOURCE, "url": LONG_URL,
         "body": f"园区建设。{LONG_WORD} 出现在正文里。\n第二段：{LONG_URL}\n第三段：园区规划与产业发展。"},
        {"id": "awk-2", "title": f"{LONG_WORD} 园区", "category": LATIN_CATEGORY, "date": "2026-02-01",
         "source": LONG_WORD, "url": LONG_URL, "body": f"园区 {LONG_WORD} {LONG_WORD}"},
        {"id": "awk-" + "x" * 150, "title": "园区" + "长" * 38, "category": LONG_CATEGORY, "date": "2026-01-15",
         "source": LONG_SOURCE, "url": "javascript:" + "a" * 300, "body": "园区" + "没有空格的长句子" * 60},
    ]
    for i in range(60):  # two dozen categories, some large, most small; decades of years
        category = CATEGORIES[2 + int(24 * (i / 60) ** 2)]
        articles.append({"id": f"fill-{i}", "title": f"园区规划第{i}号", "category": category,
                         "date": f"{1995 + i % 31}-{1 + i % 12:02d}-15", "source": "高新院",
                         "url": f"https://www.example.org/{i}",
                         "body": f"第{i}篇。园区规划推动高新区产业发展，专精特新企业集聚。" * 3})
    return articles


@pytest.fixture(scope="module")
def awkward_server(tmp_path_factory, jieba_cache) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("awkward-articles")
    with open(folder / "articles.jsonl", "w", encoding="utf-8") as handle:
        for article in awkward_articles():
            handle.write(json.dumps(article, ensure_ascii=False) + "\n")
    index_dir = tmp_path_factory.mktemp("awkward-index")
    build_index(index_dir, [folder / "articles.jsonl"])
    app = create_app(make_settings(index_dir, jieba_cache))
    try:
        with LiveServer(app) as server:
            yield server
    finally:
        close_app(app)


@pytest.fixture()
def phone(browser) -> Iterator[Tab]:
    context, tab = open_tab(browser, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture()
def desktop(browser) -> Iterator[Tab]:
    context, tab = open_tab(browser, viewport=DESKTOP)
    try:
        yield tab
    finally:
        context.close()


# Every element that is drawn: its right edge within the screen, and no box whose own content
# overflows it sideways (cut off, or scrolled inside it). Skip links wait off-screen to the left
# on purpose; .visually-hidden text is clipped to 1 px on purpose; a text field scrolls what is typed.
OVERFLOWING = """width => {
    const out = [];
    for (const e of document.querySelectorAll('body *')) {
        if (e.closest('.visually-hidden, .skip-links')) continue;
        const r = e.getBoundingClientRect();
        if (!r.width || !r.height || getComputedStyle(e).visibility === 'hidden') continue;
        const name = e.tagName.toLowerCase() + (e.className && e.className.baseVal === undefined ? '.' + e.className : '');
        if (r.right > width + 0.5) out.push(name + ' right ' + Math.round(r.right));
        const overflow = getComputedStyle(e).overflowX;
        if (overflow !== 'visible' && !e.matches('input, textarea') && e.scrollWidth > e.clientWidth + 1)
            out.push(name + ' scrolls sideways ' + e.scrollWidth + ' > ' + e.clientWidth);
    }
    return out.slice(0, 12);
}"""


def assert_fits(page, width: int, what: str) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width, f"{what} scrolls sideways"
    assert page.evaluate(OVERFLOWING, width) == [], what


def one_line(page, selector: str) -> list[int]:
    """How many lines the text of each element takes."""
    return page.eval_on_selector_all(selector, """elements => elements.map(e => {
        const range = document.createRange();
        range.selectNodeContents(e);
        return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
    })""")


# --------------------------------------------------------------------------- nothing wider than a phone


def test_no_page_is_wider_than_a_phone_whatever_the_data(phone, awkward_server):
    page = phone.page
    results = "/search?q=" + quote("园区") + "&sort=date_desc"
    pages = {
        "home": "/",
        "results": results,
        "results with notices": "/search?q=" + quote("园区 " + MISSING_WORD) + "&category=" + quote(LONG_CATEGORY)
                                + "&date_from=2026-12-31&date_to=1990-01-01",
        "no results": "/search?q=" + MISSING_WORD,
        "no results with filters": "/search?q=" + quote("园区") + "&category=" + quote(LATIN_CATEGORY)
                                   + "&date_from=1990-01-01&date_to=1990-12-31",
        "article": "/doc/awk-1?q=" + quote("园区"),
        "article with an unsafe url": "/doc/awk-" + "x" * 150 + "?q=" + quote("园区"),
        "help": "/help",
        "error 400": "/search?q=" + quote("园区") + "&page=" + LONG_WORD,
        "error 404": "/doc/" + LONG_WORD,
    }
    for what, path in pages.items():
        response = page.goto(awkward_server.url + path)
        assert response.status in (200, 400, 404), what
        assert_fits(page, PHONE["width"], what)
        if what == "results":
            # The awkward articles themselves are on the page being measured.
            assert page.locator(".hit-source", has_text="CCTV 新闻联播 via").count() >= 1
            assert page.locator(".hit-title", has_text=LONG_WORD[:20]).count() == 1
            screenshot(page, "phone-results-long-fields.png", full_page=True)
            # The filters, opened over the page: counts and the long category names fit too.
            page.locator("[data-filters-toggle]").tap()
            page.locator("#category-list + [data-more]").tap()
            assert_fits(page, PHONE["width"], "filter sheet")
            assert page.locator("#filters .count").first.is_visible()
        if what == "results with notices":
            assert page.locator(".notice-relaxed .unmatched-word").inner_text() == MISSING_WORD.lower()
            assert page.locator(".chip-category").inner_text().startswith("分类：" + LONG_CATEGORY)
        if what.startswith("article"):
            # Labels stay whole (来源, not 来/源) beside a value that breaks instead.
            assert page.locator(".article-meta dt").count() >= 3
            assert set(one_line(page, ".article-meta dt")) == {1}, what
            if what == "article":
                screenshot(page, "phone-article-long-fields.png", full_page=True)
    phone.check_clean()


# --------------------------------------------------------------------------- filtering on a phone


def test_phone_filter_sheet_gathers_choices_and_shows_the_results(phone, awkward_server):
    page = phone.page
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)
    page.goto(awkward_server.url + "/search?q=园区")
    total = summary_total(page)
    toggle = page.locator("[data-filters-toggle]")
    toggle.tap()

    # A dialog over the page, focus in it, the page behind out of reach.
    sheet = page.locator("[data-filters-sheet]")
    assert sheet.get_attribute("role") == "dialog" and sheet.get_attribute("aria-modal") == "true"
    assert page.evaluate("document.activeElement.id") == "filters-heading"
    assert page.evaluate("document.getElementById('results').inert") is True
    show = page.locator("[data-filters-show]")
    assert show.inner_text() == f"显示 {total} 条结果"
    screenshot(page, "phone-filter-flow-1-open.png")

    # The button stays at the bottom of the screen however far the choices scroll.
    page.locator(".facets-body").evaluate("body => body.scrollTo(0, body.scrollHeight)")
    box = show.bounding_box()
    assert PHONE["height"] - 120 < box["y"] and box["y"] + box["height"] <= PHONE["height"]
    page.locator(".facets-body").evaluate("body => body.scrollTo(0, 0)")

    # Two dozen categories: the largest in view, the rest behind 「更多」.
    boxes = page.locator("#category-list input[name=category]")
    assert boxes.count() == len(CATEGORIES)
    more = page.locator("#category-list + [data-more]")
    assert more.get_attribute("aria-expanded") == "false" and more.inner_text().startswith("更多分类（")
    folded = page.locator("#category-list li.is-more input").last
    assert not folded.is_visible()
    more.tap()
    assert more.get_attribute("aria-expanded") == "true" and folded.is_visible()

    # Ticking gathers choices (no reload); the button counts what they will show.
    first = boxes.first
    a, b = (int(x.get_attribute("data-count")) for x in (first, folded))
    chosen = [first.get_attribute("value"), folded.get_attribute("value")]
    first.tap()
    folded.tap()
    assert show.inner_text() == f"显示 {a + b} 条结果"
    assert len(navigations) == 1  # only the first load
    screenshot(page, "phone-filter-flow-2-chosen.png")

    with page.expect_navigation():
        show.tap()
    assert params_of(page.url) == {"q": ["园区"], "category": chosen}
    # The results, not the panel: closed, focus on the results' heading, the first result on screen.
    assert summary_total(page) == a + b
    assert page.locator("#filters").is_hidden()
    assert page.evaluate("document.activeElement.id") == "results-heading"
    assert page.locator(".hit").first.bounding_box()["y"] < PHONE["height"]
    assert toggle.inner_text().strip() == "筛选 (2)"
    screenshot(page, "phone-filter-flow-3-results.png")

    # Escape closes without applying: the box ticked meanwhile is unticked again, focus back on 筛选.
    toggle.tap()
    value = page.locator("#category-list input[name=category]:not(:checked)").first.get_attribute("value")
    third = page.locator(f'#category-list input[name=category][value="{value}"]')
    third.tap()
    assert third.is_checked()
    page.keyboard.press("Escape")
    assert page.locator("#filters").is_hidden() and not third.is_checked()
    assert page.evaluate("document.activeElement.hasAttribute('data-filters-toggle')")

    # Tab stays inside the open sheet.
    toggle.tap()
    for _ in range(12):
        page.keyboard.press("Tab")
        assert page.evaluate("!!document.activeElement.closest('#filters')")

    # A year applies at once, with the categories as ticked in the sheet.
    page.locator("#category-list input[name=category]:checked").first.tap()  # untick the first
    year = page.locator(".facet-year a[data-year]").first
    value = year.get_attribute("data-year")
    with page.expect_navigation():
        year.tap()
    assert params_of(page.url) == {"q": ["园区"], "category": [chosen[1]],
                                   "date_from": [f"{value}-01-01"], "date_to": [f"{value}-12-31"]}
    assert page.evaluate("document.activeElement.id") == "results-heading"
    phone.check_clean()


def test_phone_without_javascript_filters_with_plain_forms(browser, awkward_server):
    context, tab = open_tab(browser, viewport=PHONE, is_mobile=True, has_touch=True, java_script_enabled=False)
    try:
        page = tab.page
        page.goto(awkward_server.url + "/search?q=园区")
        toggle = page.locator("[data-filters-toggle]")
        assert toggle.get_attribute("href") == "#filters"
        # Results first, the filters after them; every category listed (nothing folds without JS).
        assert page.locator("#filters").bounding_box()["y"] > page.locator(".hit").first.bounding_box()["y"]
        boxes = page.locator("#category-list input[name=category]")
        assert all(boxes.nth(i).is_visible() for i in range(boxes.count()))
        assert page.locator("[data-more]").first.is_hidden()
        # Ticking near the top of a long list, the apply button is on screen all the same.
        first, last = boxes.first, boxes.last
        chosen = [first.get_attribute("value"), last.get_attribute("value")]
        first.scroll_into_view_if_needed()
        page.evaluate("y => window.scrollBy(0, y)", first.bounding_box()["y"] - 60)
        first.tap()
        apply = page.get_by_role("button", name="应用分类筛选")
        box = apply.bounding_box()
        assert 0 <= box["y"] and box["y"] + box["height"] <= PHONE["height"]
        last.tap()
        with page.expect_navigation():
            apply.tap()
        assert params_of(page.url)["category"] == chosen
        assert page.locator(".chip-category").count() == 2
        assert_fits(page, PHONE["width"], "results without JavaScript")
    finally:
        context.close()


# --------------------------------------------------------------------------- staff at a desktop


def test_desktop_skip_link_to_the_results_with_real_key_presses(desktop, awkward_server):
    page = desktop.page
    page.goto(awkward_server.url + "/search?q=园区")
    page.keyboard.press("Tab")
    focused = page.evaluate("[document.activeElement.textContent, document.activeElement.className]")
    assert focused == ["跳到搜索结果", "skip-link"]
    assert page.locator(".skip-link").first.is_visible()  # shown while focused
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    first_title = page.locator(".hit-title a").first.inner_text()
    assert page.evaluate("document.activeElement.closest('.hit-title') !== null")
    assert page.evaluate("document.activeElement.textContent") == first_title
    # The second skip link leads to the filters.
    page.goto(awkward_server.url + "/search?q=园区")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "跳到筛选条件"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "category"
    desktop.check_clean()


def test_desktop_filters_fit_the_first_screen_and_empty_pages_use_the_main_column(desktop, awkward_server):
    page = desktop.page
    stats = page.request.get(awkward_server.url + "/api/stats").json()
    page.goto(awkward_server.url + "/search?q=园区")
    # Two dozen categories and three decades of years: the year list and the date form on the first screen.
    date_button = page.get_by_role("button", name="按日期筛选")
    screenshot(page, "desktop-results-facets.png")
    box = date_button.bounding_box()
    assert box["y"] + box["height"] <= DESKTOP["height"]
    assert page.locator(".facet-year a[data-year]:visible").count() >= 5
    # The date fields offer the index's own range.
    for name in ("date_from", "date_to"):
        field = page.locator(f"input[type=date][name={name}]")
        assert (field.get_attribute("min"), field.get_attribute("max")) == (stats["date_min"], stats["date_max"])
    # 「更多」 by keyboard: Enter shows the rest, the button says 收起.
    more = page.locator("#category-list + [data-more]")
    more.focus()
    page.keyboard.press("Enter")
    assert more.get_attribute("aria-expanded") == "true" and more.inner_text() == "收起"
    folded = page.locator("#category-list li.is-more input").last
    value = folded.get_attribute("value")
    with page.expect_navigation():
        folded.click()  # on a desktop a tick applies at once
    assert params_of(page.url)["category"] == [value]
    # The chosen category stays in view (selected values never fold away), focus on it.
    assert page.evaluate("document.activeElement.value") == value
    assert page.get_by_role("checkbox", name=value).is_visible()
    screenshot(page, "desktop-results-chosen-from-more.png")

    # Dates typed the wrong way round: searched the right way round, said so, the category kept.
    page.fill("input[type=date][name=date_from]", "2020-12-31")
    page.fill("input[type=date][name=date_to]", "2000-01-01")
    with page.expect_navigation():
        date_button.click()
    assert page.locator(".notice-dates").is_visible()
    assert "已按 2000-01-01 至 2020-12-31 搜索" in page.locator(".notice-dates").inner_text()
    assert page.locator(".chip-category").count() == 1
    assert page.locator("input[type=date][name=date_from]").input_value() == "2000-01-01"
    assert page.locator("input[type=date][name=date_to]").input_value() == "2020-12-31"
    assert all("2000-01-01" <= d <= "2020-12-31" for d in page.locator(".hit time").all_inner_texts())

    # A query that finds nothing: the message in the main column, not squeezed into the filters' 250 px.
    page.goto(awkward_server.url + "/search?q=" + MISSING_WORD)
    empty = page.locator(".no-results").bounding_box()
    assert empty["width"] >= 600
    screenshot(page, "desktop-no-results.png")
    desktop.check_clean()
