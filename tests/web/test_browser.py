"""The staff pages and the website's search box in a real browser (Debian's Chromium via Playwright).

One browser for the session, a new context per test (fixtures in conftest.py). The widget runs on a
demo host page served from ANOTHER loopback origin, so suggestions go through CORS exactly as on the
institute's site.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from search_service.web import create_app

from ..browser_tabs import open_tab, params_of, screenshot, summary_total
from ..helpers import FIXTURES, LiveServer, build_index, make_settings

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def xss_server(tmp_path_factory, jieba_cache) -> Iterator[LiveServer]:
    index_dir = tmp_path_factory.mktemp("xss-browser-index")
    build_index(index_dir, [FIXTURES / "xss"])
    with LiveServer(create_app(make_settings(index_dir, jieba_cache))) as server:
        yield server


def hit_titles(page) -> list[str]:
    return page.locator(".hit-title a").all_inner_texts()


# --------------------------------------------------------------------------- staff pages


def test_search_a_chinese_query_and_see_marked_snippets(tab, live_server):
    page = tab.page
    page.goto(live_server.url + "/")
    assert page.locator("h1.results-title").inner_text() == "最新文章"
    page.fill("#q", "园区规划")
    with page.expect_navigation():
        page.press("#q", "Enter")
    assert params_of(page.url) == {"q": ["园区规划"]}
    assert page.locator(".hit-snippet mark").count() > 0
    assert set(page.locator(".hit-title mark, .hit-snippet mark").all_inner_texts()) <= {"园区", "规划", "园区规划"}
    api = page.request.get(live_server.url + "/api/search?q=园区规划").json()
    assert summary_total(page) == api["total"]
    assert hit_titles(page) == [h["title"] for h in api["hits"]]
    screenshot(page, "results-page.png", full_page=True)
    tab.check_clean()


def test_ticking_categories_filters_and_keeps_counts(tab, live_server):
    page = tab.page
    page.goto(live_server.url + "/search?q=园区")
    total = summary_total(page)
    options = page.locator(".facet-category label.facet-option")
    counts = {options.nth(i).locator(".facet-label").inner_text(): int(options.nth(i).locator(".count").inner_text())
              for i in range(options.count())}
    first, second = list(counts)[:2]
    assert counts[first] < total
    with page.expect_navigation():
        page.get_by_role("checkbox", name=first).check()
    assert params_of(page.url) == {"q": ["园区"], "category": [first]}
    assert summary_total(page) == counts[first]
    assert set(page.locator(".hit-category").all_inner_texts()) == {first}
    assert page.get_by_role("checkbox", name=first).is_checked()
    # The other categories keep their counts, so a second one can be added.
    second_box = page.locator(".facet-category label.facet-option", has_text=second)
    assert int(second_box.locator(".count").inner_text()) == counts[second]
    with page.expect_navigation():
        page.get_by_role("checkbox", name=second).check()
    assert params_of(page.url)["category"] == [first, second]
    assert summary_total(page) == counts[first] + counts[second]
    assert set(page.locator(".hit-category").all_inner_texts()) <= {first, second}
    assert page.locator("a.chip").count() == 2
    # Unticking goes back to one category.
    with page.expect_navigation():
        page.get_by_role("checkbox", name=first).uncheck()
    assert params_of(page.url)["category"] == [second]
    tab.check_clean()


def test_drill_into_a_year_then_a_month(tab, live_server):
    page = tab.page
    page.goto(live_server.url + "/search?q=园区")
    year_link = page.locator(".facet-year a[data-year]").first
    year = year_link.get_attribute("data-year")
    year_count = int(year_link.locator(".count").inner_text())
    with page.expect_navigation():
        year_link.click()
    assert params_of(page.url) == {"q": ["园区"], "date_from": [f"{year}-01-01"], "date_to": [f"{year}-12-31"]}
    assert summary_total(page) == year_count
    assert all(d.startswith(year) for d in page.locator(".hit time").all_inner_texts())
    month_link = page.locator(".facet-months a[data-month]").first
    month = month_link.get_attribute("data-month")
    month_count = int(month_link.locator(".count").inner_text())
    with page.expect_navigation():
        month_link.click()
    params = params_of(page.url)
    assert params["date_from"] == [f"{month}-01"] and params["date_to"][0].startswith(month)
    assert summary_total(page) == month_count
    assert all(d.startswith(month) for d in page.locator(".hit time").all_inner_texts())
    y, m = month.split("-")
    assert f"{int(y)}年{int(m)}月" in page.locator(".chip-date").inner_text()
    # The date inputs show the range too.
    assert page.locator("input[type=date][name=date_from]").input_value() == f"{month}-01"
    tab.check_clean()


def test_set_a_date_range(tab, live_server):
    page = tab.page
    page.goto(live_server.url + "/search?q=园区&sort=date_asc")
    page.fill("input[type=date][name=date_from]", "2021-01-01")
    page.fill("input[type=date][name=date_to]", "2023-06-30")
    with page.expect_navigation():
        page.get_by_role("button", name="按日期筛选").click()
    assert params_of(page.url) == {"q": ["园区"], "date_from": ["2021-01-01"], "date_to": ["2023-06-30"],
                                   "sort": ["date_asc"]}
    dates = page.locator(".hit time").all_inner_texts()
    assert dates and all("2021-01-01" <= d <= "2023-06-30" for d in dates)
    assert dates == sorted(dates)
    api = page.request.get(live_server.url + "/api/search?q=园区&date_from=2021-01-01&date_to=2023-06-30").json()
    assert summary_total(page) == api["total"]
    assert "2021-01-01 至 2023-06-30" in page.locator(".chip-date").inner_text()
    # Removing the chip removes the range.
    with page.expect_navigation():
        page.locator(".chip-date").click()
    assert params_of(page.url) == {"q": ["园区"], "sort": ["date_asc"]}
    tab.check_clean()


def test_page_forward_and_back_with_the_browser(tab, live_server):
    page = tab.page
    page.goto(live_server.url + "/search?q=园区&page_size=5")
    first = hit_titles(page)
    with page.expect_navigation():
        page.locator("a[rel=next]").click()
    assert params_of(page.url)["page"] == ["2"]
    second = hit_titles(page)
    assert second and set(second).isdisjoint(first)
    with page.expect_navigation():
        page.locator("a[rel=next]").click()
    assert params_of(page.url)["page"] == ["3"]
    assert page.locator("nav.pagination [aria-current=page]").inner_text() == "3"
    page.go_back()
    assert params_of(page.url)["page"] == ["2"]
    assert hit_titles(page) == second
    page.go_back()
    assert "page" not in params_of(page.url)
    assert hit_titles(page) == first
    page.go_forward()
    assert hit_titles(page) == second
    tab.check_clean()


def test_pages_work_with_javascript_off(browser, live_server):
    context, tab = open_tab(browser, java_script_enabled=False)
    try:
        page = tab.page
        page.goto(live_server.url + "/search?q=园区")
        apply = page.get_by_role("button", name="应用分类筛选")
        assert apply.is_visible()
        name = page.locator(".facet-category .facet-label").first.inner_text()
        page.get_by_role("checkbox", name=name).check()
        with page.expect_navigation():
            apply.click()
        assert params_of(page.url) == {"q": ["园区"], "category": [name]}
        with page.expect_navigation():
            page.locator(".hit-title a").first.click()
        assert urlsplit(page.url).path.startswith("/doc/")
        assert page.locator(".article-body mark").count() > 0
    finally:
        context.close()


# --------------------------------------------------------------------------- the widget on another origin


def open_suggestions(page, selector: str, text: str):
    page.click(selector)
    page.locator(selector).press_sequentially(text, delay=40)
    # The list for the whole text (one for a prefix can show first while typing goes on).
    listbox = page.locator(f'[role=listbox][data-query="{text}"]:visible')
    listbox.wait_for()
    return listbox


def test_widget_on_another_origin_suggests_and_opens_the_chosen_article(tab, widget_site):
    page = tab.page
    page.goto(widget_site.host_url)
    assert page.locator(f'link[rel=stylesheet][href="{widget_site.search_url}/static/widget.css"]').count() == 1
    box = page.locator("#site-q")
    assert box.get_attribute("role") == "combobox"
    assert box.get_attribute("aria-autocomplete") == "list"
    assert box.get_attribute("aria-expanded") == "false"

    listbox = open_suggestions(page, "#site-q", "智慧")
    assert box.get_attribute("aria-expanded") == "true"
    assert box.get_attribute("aria-controls") == listbox.get_attribute("id")
    options = listbox.locator("[role=option]")
    assert options.count() >= 2
    assert listbox.locator("[role=option] mark").first.inner_text() == "智慧"
    assert all(urlsplit(u).netloc == urlsplit(widget_site.search_url).netloc for u in tab.suggest_requests())
    assert params_of(tab.suggest_requests()[-1])["q"] == ["智慧"]

    page.keyboard.press("ArrowDown")
    first = options.nth(0)
    assert box.get_attribute("aria-activedescendant") == first.get_attribute("id")
    assert first.get_attribute("aria-selected") == "true"
    page.keyboard.press("ArrowDown")
    assert options.nth(1).get_attribute("aria-selected") == "true"
    assert first.get_attribute("aria-selected") == "false"
    page.keyboard.press("ArrowUp")
    assert box.get_attribute("aria-activedescendant") == first.get_attribute("id")
    title = first.locator(".ssw-title").inner_text()
    screenshot(page, "widget-open.png")

    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.startswith(widget_site.search_url + "/doc/")
    assert params_of(page.url) == {"q": ["智慧"]}
    assert page.locator("h1.article-title").inner_text() == title
    assert page.locator("h1.article-title mark, .article-body mark").count() > 0
    tab.check_clean()


def test_widget_sends_nothing_while_an_ime_is_composing(tab, widget_site):
    page = tab.page
    # The page's clock is driven by the test: "nothing was sent" is checked after every timer the
    # keystrokes could have set (the debounce included) has fired, not after a guessed pause.
    page.add_init_script("""(() => {
        const realFetch = window.fetch.bind(window);
        window.__fetched = [];
        window.fetch = (url, init) => { window.__fetched.push(String(url)); return realFetch(url, init); };
    })()""")
    page.clock.install()
    page.goto(widget_site.host_url)
    page.click("#site-q")
    page.dispatch_event("#site-q", "compositionstart", {"data": ""})
    page.keyboard.type("zhihui", delay=30)
    page.clock.run_for(5000)  # fires the debounce timers any of those keystrokes set (150 ms each)
    # Focusing the empty box may ask for the hot searches (once); nothing about what is being composed.
    assert [url for url in page.evaluate("window.__fetched") if not url.endswith("/api/hot")] == []
    assert tab.suggest_requests() == []
    assert page.locator("[role=listbox]").is_hidden()

    with page.expect_request(lambda r: "/api/suggest?" in r.url) as request:
        page.evaluate("""() => {
            const input = document.querySelector('#site-q');
            input.value = '智慧';
            input.dispatchEvent(new CompositionEvent('compositionend', {data: '智慧', bubbles: true}));
        }""")
        page.clock.run_for(1000)
    assert params_of(request.value.url)["q"] == ["智慧"]
    page.locator("[role=listbox]:visible").wait_for()
    assert len([url for url in page.evaluate("window.__fetched") if "/api/suggest?" in url]) == 1
    assert len(tab.suggest_requests()) == 1
    tab.check_clean()


def test_widget_escape_hover_and_enter_without_a_choice(tab, widget_site):
    page = tab.page
    page.goto(widget_site.host_url)
    listbox = open_suggestions(page, "#site-q", "园区")
    box = page.locator("#site-q")
    page.keyboard.press("Escape")
    assert listbox.is_hidden() and box.get_attribute("aria-expanded") == "false"
    page.keyboard.press("ArrowDown")  # reopens with the same suggestions
    listbox = page.locator("[role=listbox]:visible")
    listbox.wait_for()
    option = listbox.locator("[role=option]").nth(1)
    option.hover()
    assert option.get_attribute("aria-selected") == "true"
    assert box.get_attribute("aria-activedescendant") == option.get_attribute("id")
    page.mouse.move(0, 0)
    page.keyboard.press("Escape")
    # Enter with nothing chosen submits the site's own form to the results page.
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.startswith(widget_site.search_url + "/search?")
    assert params_of(page.url) == {"q": ["园区"]}
    assert summary_total(page) > 0
    tab.check_clean()


def test_widget_mouse_click_opens_an_article(tab, widget_site):
    page = tab.page
    page.goto(widget_site.host_url)
    listbox = open_suggestions(page, "#site-q", "园区")
    option = listbox.locator("[role=option]").nth(1)
    title = option.locator(".ssw-title").inner_text()
    with page.expect_navigation():
        option.click()
    assert page.url.startswith(widget_site.search_url + "/doc/")
    assert page.locator("h1.article-title").inner_text() == title
    tab.check_clean()


def test_widget_attached_explicitly_outside_a_form_navigates_to_results(tab, widget_site):
    page = tab.page
    page.goto(widget_site.host_url)
    page.evaluate("endpoint => SearchBox.attach(document.querySelector('#explicit-q'), {endpoint})",
                  widget_site.search_url + "/")
    listbox = open_suggestions(page, "#explicit-q", "规划")
    last = listbox.locator("[role=option]").last
    assert "全部结果" in last.inner_text()
    page.keyboard.press("Escape")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    # ref=widget: the search analytics count this search under the widget (docs/ANALYTICS.md).
    assert page.url == widget_site.search_url + "/search?q=%E8%A7%84%E5%88%92&ref=widget"
    tab.check_clean()


def test_widget_ignores_stale_and_out_of_order_responses(tab, widget_site):
    page = tab.page
    # Hold back the answer for the first keystroke, ignoring the widget's abort, so it arrives last.
    page.add_init_script("""(() => {
        const realFetch = window.fetch.bind(window);
        window.__stale = {held: 0, abortedBeforeReply: null, delivered: false};
        window.fetch = async (url, init) => {
            if (String(url).includes('q=%E5%9B%AD&')) {
                window.__stale.held++;
                await new Promise(resolve => setTimeout(resolve, 700));
                window.__stale.abortedBeforeReply = !!(init && init.signal && init.signal.aborted);
                const response = await realFetch(url, Object.assign({}, init, {signal: undefined}));
                // Once the widget has read the body, its handler runs in the microtasks that
                // follow; a task queued then runs after it: "delivered" means the widget has seen it.
                const json = response.json.bind(response);
                response.json = () => json().then(data => {
                    setTimeout(() => { window.__stale.delivered = true; });
                    return data;
                });
                return response;
            }
            return realFetch(url, init);
        };
    })()""")
    page.goto(widget_site.host_url)
    page.click("#site-q")
    page.keyboard.type("园")
    page.wait_for_function("window.__stale.held === 1")
    page.keyboard.type("区")
    listbox = page.locator("[role=listbox]:visible")
    listbox.wait_for()
    shown = listbox.locator(".ssw-title").all_inner_texts()
    page.wait_for_function("window.__stale.delivered")  # the stale reply reached the widget
    assert page.evaluate("window.__stale.abortedBeforeReply") is True
    assert listbox.locator(".ssw-title").all_inner_texts() == shown
    assert "园区" in listbox.locator("[role=option]").last.inner_text()
    tab.check_clean()


def test_own_search_box_has_suggestions_under_the_strict_csp(tab, live_server):
    page = tab.page
    page.goto(live_server.url + "/search?q=园区")
    page.fill("#q", "")
    listbox = open_suggestions(page, "#q", "新质")
    assert listbox.locator("[role=option]").count() >= 2
    assert listbox.locator("mark").first.inner_text() == "新质"
    box = listbox.bounding_box()
    field_box = page.locator("#q").bounding_box()
    assert abs(box["x"] - field_box["x"]) < 2 and box["y"] >= field_box["y"] + field_box["height"]
    screenshot(page, "own-box-suggestions.png")
    tab.check_clean()  # positioning through CSSOM is allowed by style-src 'self'


# --------------------------------------------------------------------------- hostile content


def test_hostile_articles_and_queries_never_run_script(tab, xss_server):
    page = tab.page
    for path in ("/search?q=园区", "/doc/xss-script?q=园区", "/doc/xss-img?q=园区",
                 "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E", "/search?q=%3Cimg+src%3Dx+onerror%3Dalert(1)%3E",
                 "/search?q=%22%3E%3Csvg+onload%3Dalert(1)%3E"):
        page.goto(xss_server.url + path)
        protocols = page.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.protocol)")
        assert set(protocols) <= {"http:", "https:"}, path
        assert page.evaluate("document.querySelectorAll('main script, main img, main svg').length") == 0
    page.goto(xss_server.url + "/doc/xss-script?q=园区")
    assert page.locator("h1.article-title").inner_text() == "<script>alert(1)</script>园区安全测试"
    assert page.locator(".article-url a").count() == 0

    # Suggestions carrying markup are shown as text.
    page.goto(xss_server.url + "/")
    listbox = open_suggestions(page, "#q", "园区")
    titles = listbox.locator(".ssw-title").all_inner_texts()
    assert "<script>alert(1)</script>园区安全测试" in titles
    assert "<img src=x onerror=alert(1)> 园区图片标题" in titles
    assert listbox.locator("script, img, svg").count() == 0
    page.keyboard.press("ArrowDown")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "/doc/" in page.url
    # Whatever the article page runs, it has run once the page has loaded and painted a frame;
    # the round trip also delivers every dialog and console event raised before it.
    page.wait_for_load_state("load")
    page.evaluate("() => new Promise(resolve => requestAnimationFrame(() => setTimeout(resolve)))")
    tab.check_clean()
