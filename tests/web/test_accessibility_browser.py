"""Every page kind, on a phone and on a desktop, has zero axe-core violations.

axe-core (Deque's rules for WCAG 2.x A/AA and best practices) runs inside real Chromium on each
page as a reader meets it: the home page, results (with filters chosen and with the filter sheet
open on a phone), no results, an article, the help page, the error pages, and the search box on
another site with its suggestion list open.
"""

from __future__ import annotations

import pytest

from ..browser_tabs import open_tab

pytestmark = pytest.mark.processes

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1366, "height": 900}}
PAGES = {
    "home": "/",
    "results": "/search?q=园区",
    "results, filtered and sorted": "/search?q=园区&category=园区规划&sort=date_desc",
    "results, a year chosen": "/search?q=发展&date_from=2019-01-01&date_to=2019-12-31",
    "no results": "/search?q=这个词不会出现在任何文章里xyz",
    "article": "/doc/gxy-2019-0315?q=园区",
    "help": "/help",
    "not found": "/no-such-page",
    "bad request": "/search?page=0",
}


def axe_violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:5]}"
            for v in results.response["violations"]]


@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_every_page_kind_has_no_axe_violations(browser, live_server, device):
    context, tab = open_tab(browser, **(PHONE if device == "phone" else DESKTOP))
    try:
        found = {}
        for name, path in PAGES.items():
            tab.page.goto(live_server.url + path)
            found[name] = axe_violations(tab.page)
        if device == "phone":
            # The filter sheet, open: a dialog over the page.
            tab.page.goto(live_server.url + PAGES["results"])
            tab.page.get_by_role("button", name="筛选").click()
            tab.page.get_by_role("dialog").wait_for()
            found["filter sheet"] = axe_violations(tab.page)
        assert {name: v for name, v in found.items() if v} == {}
    finally:
        context.close()


def test_the_search_box_with_its_suggestions_open_has_no_axe_violations(browser, widget_site):
    context, tab = open_tab(browser, **PHONE)
    try:
        tab.page.goto(widget_site.host_url)
        box = tab.page.get_by_role("combobox")
        box.fill("园区")
        tab.page.get_by_role("listbox").wait_for()
        tab.page.get_by_role("option").first.wait_for()
        assert axe_violations(tab.page) == []
    finally:
        context.close()
