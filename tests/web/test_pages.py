"""The HTML pages, CSV export, OpenSearch description and static assets, through Flask's test client
on the real sample index (and a small hostile index for escaping)."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
from bs4 import BeautifulSoup

from search_service.web import create_app, pages

from ..helpers import build_index, make_settings

FIXTURES = Path(__file__).parents[1] / "fixtures"
SUMMARY = re.compile(r"找到 (\d+) 条结果，用时 ([\d.]+) 毫秒")


def soup_of(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def api(client, **params) -> dict:
    response = client.get("/api/search", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def query_of(href: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(href).query)


def assert_no_active_content(html: str) -> None:
    """No inline scripts, no event-handler attributes, no javascript:/data: links, no inline styles."""
    soup = BeautifulSoup(html, "html.parser")
    for script in soup.find_all("script"):
        assert script.get("src"), f"inline script: {script}"
        assert not script.string or not script.string.strip()
    assert not soup.find_all("style"), "inline <style> (CSP forbids it)"
    for tag in soup.find_all(True):
        for name, value in tag.attrs.items():
            assert not name.lower().startswith("on"), f"event handler attribute on {tag.name}: {name}"
            assert name.lower() != "style", f"style attribute on {tag.name}"
            if name.lower() in ("href", "src", "action", "formaction"):
                assert not re.match(r"\s*(javascript|data|vbscript):", str(value), re.I), f"{name}={value!r}"


# --------------------------------------------------------------------------- results page


def test_results_page_shows_highlighted_hits_like_the_api(client):
    response = client.get("/search", query_string={"q": "园区规划"})
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    expected = api(client, q="园区规划")
    soup = soup_of(response)
    hits = soup.select("ol.hits > li.hit")
    assert [urlsplit(h.select_one(".hit-title a")["href"]).path for h in hits] == [
        f"/doc/{h['id']}" for h in expected["hits"]
    ]
    assert soup.select(".hit-title mark") and soup.select(".hit-snippet mark")
    first = hits[0]
    assert query_of(first.select_one(".hit-title a")["href"]) == {"q": ["园区规划"]}
    assert first.select_one(".hit-category").get_text() == expected["hits"][0]["category"]
    assert first.select_one("time")["datetime"] == expected["hits"][0]["date"]
    assert first.select_one(".hit-url a")["href"] == expected["hits"][0]["url"]
    match = SUMMARY.search(soup.select_one(".summary").get_text())
    assert match and int(match.group(1)) == expected["total"]
    # The query stays in the box and in the title.
    assert soup.select_one("input#q")["value"] == "园区规划"
    assert "园区规划" in soup.title.get_text()


def test_root_lists_the_latest_articles_without_a_query(client):
    for path in ("/", "/search"):
        response = client.get(path)
        assert response.status_code == 200
        soup = soup_of(response)
        assert soup.select_one("h1.results-title").get_text() == "最新文章"
        dates = [t["datetime"] for t in soup.select(".hit time")]
        assert len(dates) == 10
        assert dates == sorted(dates, reverse=True)
        total = api(client)["total"]
        assert SUMMARY.search(soup.get_text()).group(1) == str(total)
        # Without a query there is no relevance order to offer.
        assert [a.get_text() for a in soup.select(".sort .sort-option")] == ["最新", "最早"]


def test_link_header_and_alternate_point_to_the_json_twin(client):
    params = [("q", "园区"), ("category", "园区规划"), ("category", "政策解读"), ("sort", "date_desc"), ("page", "1")]
    response = client.get("/search", query_string=params)
    link = response.headers["Link"]
    match = re.fullmatch(r'<([^>]+)>; rel="alternate"; type="application/json"', link)
    assert match, link
    target = match.group(1)
    assert target.startswith("/api/search?")
    assert parse_qsl(urlsplit(target).query) == [("q", "园区"), ("category", "园区规划"),
                                                   ("category", "政策解读"), ("sort", "date_desc")]
    page_total = int(SUMMARY.search(soup_of(response).get_text()).group(1))
    twin = client.get(target).get_json()
    assert twin["total"] == page_total
    assert soup_of(response).select_one('link[rel=alternate][type="application/json"]')["href"] == target


def test_pages_send_a_strict_csp_and_contain_no_inline_code(client):
    pages = ["/", "/search?q=园区", "/search?q=园区&category=园区规划&date_from=2024-01-01&date_to=2024-12-31",
             "/doc/gxy-2019-0315?q=园区", "/help", "/search?page=abc", "/doc/no-such-id", "/no/such/page"]
    for path in pages:
        response = client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp, path
        assert response.mimetype == "text/html", path
        assert_no_active_content(response.get_data(as_text=True))
        soup = soup_of(response)
        assert soup.html["lang"] == "zh-CN"
        assert soup.select_one('link[rel=search][type="application/opensearchdescription+xml"]')["href"] == \
            "/opensearch.xml"


def test_category_facet_is_a_get_form_of_checkboxes_with_counts(client):
    params = [("q", "园区"), ("category", "园区规划"), ("category", "政策解读"), ("sort", "date_asc")]
    soup = soup_of(client.get("/search", query_string=params))
    expected = api(client, q="园区", category=["园区规划", "政策解读"], sort="date_asc")
    form = soup.select_one(".facet-category form")
    assert form["method"] == "get" and form["action"] == "/search"
    assert "data-autosubmit" in form.attrs
    boxes = form.select("input[type=checkbox][name=category]")
    counts = {b["value"]: int(b.find_parent("label").select_one(".count").get_text()) for b in boxes}
    assert counts == {f["value"]: f["count"] for f in expected["facets"]["category"]}
    assert {b["value"] for b in boxes if b.has_attr("checked")} == {"园区规划", "政策解读"}
    hidden = [(i["name"], i["value"]) for i in form.select("input[type=hidden]")]
    assert hidden == [("q", "园区"), ("sort", "date_asc")]  # categories come from the boxes, page resets
    assert form.select_one("button[type=submit]"), "a submit button for visitors without JavaScript"
    # Ticking in a plain GET form gives exactly the API's parameters.
    total = int(SUMMARY.search(soup.get_text()).group(1))
    assert total == expected["total"] == sum(
        f["count"] for f in expected["facets"]["category"] if f["selected"]
    )


def test_year_links_drill_down_to_months(client):
    soup = soup_of(client.get("/search", query_string={"q": "园区"}))
    years = api(client, q="园区")["facets"]["year"]
    links = soup.select(".facet-year a[data-year]")
    assert [(a["data-year"], int(a.select_one(".count").get_text())) for a in links] == [
        (y["value"], y["count"]) for y in years
    ]
    year = years[0]["value"]
    href = next(a["href"] for a in links if a["data-year"] == year)
    assert query_of(href) == {"q": ["园区"], "date_from": [f"{year}-01-01"], "date_to": [f"{year}-12-31"]}
    assert not soup.select("a[data-month]"), "months appear only once a year is chosen"

    soup = soup_of(client.get(href))
    months = api(client, q="园区", date_from=f"{year}-01-01", date_to=f"{year}-12-31")["facets"]["month"]
    month_links = soup.select(".facet-months a[data-month]")
    assert [(a["data-month"], int(a.select_one(".count").get_text())) for a in month_links] == [
        (m["value"], m["count"]) for m in months
    ]
    assert soup.select_one(f'a[data-year="{year}"]')["aria-current"] == "true"
    for link in month_links:
        y, m = (int(p) for p in link["data-month"].split("-"))
        params = query_of(link["href"])
        first, last = params["date_from"][0], params["date_to"][0]
        assert first == f"{y:04d}-{m:02d}-01"
        import calendar
        assert last == f"{y:04d}-{m:02d}-{calendar.monthrange(y, m)[1]:02d}"
    soup = soup_of(client.get(month_links[0]["href"]))
    chip = soup.select_one(".chip-date").get_text()
    y, m = month_links[0]["data-month"].split("-")
    assert f"{int(y)}年{int(m)}月" in chip
    assert soup.select_one(f'a[data-month="{month_links[0]["data-month"]}"]')["aria-current"] == "true"


def test_february_of_a_leap_year_ends_on_the_29th(client):
    # 2024 is a leap year; build the URL the way the month link would and check the chip label.
    soup = soup_of(client.get("/search?date_from=2024-02-01&date_to=2024-02-29"))
    assert "2024年2月" in soup.select_one(".chip-date").get_text()


def test_date_range_form_keeps_the_other_state(client):
    params = [("q", "园区"), ("category", "园区规划"), ("date_from", "2020-01-01"), ("date_to", "2022-06-30")]
    soup = soup_of(client.get("/search", query_string=params))
    form = soup.select_one(".facet-dates form")
    assert form["method"] == "get"
    assert form.select_one("input[name=date_from]")["type"] == "date"
    assert form.select_one("input[name=date_from]")["value"] == "2020-01-01"
    assert form.select_one("input[name=date_to]")["value"] == "2022-06-30"
    assert [(i["name"], i["value"]) for i in form.select("input[type=hidden]")] == [("q", "园区"),
                                                                                   ("category", "园区规划")]
    assert "2020-01-01 至 2022-06-30" in soup.select_one(".chip-date").get_text()


def test_backwards_dates_are_searched_the_right_way_round_with_a_notice(client):
    # The form's two fields filled the wrong way round used to end on a 400 page that lost the query
    # and the other filters; the page now searches the range in order and says so.
    params = [("q", "园区"), ("category", "园区规划"), ("sort", "date_asc"),
              ("date_from", "2025-12-31"), ("date_to", "2019-01-01")]
    response = client.get("/search", query_string=params)
    assert response.status_code == 200
    soup = soup_of(response)
    notice = soup.select_one(".notice-dates").get_text()
    assert "起止日期填反了（从 2025-12-31 到 2019-01-01），已按 2019-01-01 至 2025-12-31 搜索。" == notice
    expected = api(client, q="园区", category="园区规划", sort="date_asc", date_from="2019-01-01",
                   date_to="2025-12-31")
    assert int(SUMMARY.search(soup.get_text()).group(1)) == expected["total"] > 0
    assert "2019-01-01 至 2025-12-31" in soup.select_one(".chip-date").get_text()
    assert soup.select_one(".chip-category").get_text().startswith("分类：园区规划")
    form = soup.select_one(".facet-dates form")
    assert (form.select_one("input[name=date_from]")["value"], form.select_one("input[name=date_to]")["value"]) == (
        "2019-01-01", "2025-12-31")
    # Every link of the page carries the range in order.
    assert query_of(soup.select_one("a.export")["href"])["date_from"] == ["2019-01-01"]
    # Scripts still get the error that names the parameter (and so does the CSV a script downloads).
    assert client.get("/api/search", query_string=params).status_code == 400
    assert client.get("/search.csv", query_string=params).status_code == 400


def test_date_fields_offer_the_range_of_the_index(client):
    stats = client.get("/api/stats").get_json()
    soup = soup_of(client.get("/search", query_string={"q": "园区"}))
    for name in ("date_from", "date_to"):
        field = soup.select_one(f".facet-dates input[name={name}]")
        assert (field["min"], field["max"]) == (stats["date_min"], stats["date_max"])
    assert soup.select_one(".date-range-hint").get_text() == f"文章日期：{stats['date_min']} 至 {stats['date_max']}"


def test_long_facet_lists_fold_behind_a_more_button(client):
    # The samples have the site's 13 categories: the 8 largest in view, 5 behind 「更多分类（5）」.
    soup = soup_of(client.get("/search"))
    items = soup.select("#category-list > li")
    expected = api(client)["facets"]["category"]
    assert [li.select_one("input")["value"] for li in items] == [f["value"] for f in expected]
    folded = [li.select_one("input")["value"] for li in items if "is-more" in (li.get("class") or [])]
    assert folded == [f["value"] for f in expected[pages.CATEGORIES_SHOWN:]]
    button = soup.select_one("button[data-more][aria-controls=category-list]")
    assert button.get_text() == f"更多分类（{len(folded)}）" and button["aria-expanded"] == "false"
    assert button.has_attr("hidden"), "without JavaScript every value is listed: the button is app.js's"
    # A chosen value is never folded away.
    soup = soup_of(client.get("/search", query_string={"category": folded[-1]}))
    chosen = soup.select_one(f'#category-list input[value="{folded[-1]}"]')
    assert chosen.has_attr("checked") and "is-more" not in (chosen.find_parent("li").get("class") or [])
    assert len(soup.select("#category-list > li.is-more")) == len(folded) - 1
    # Seven years: folding two away behind a button would save nothing, so all seven show.
    soup = soup_of(client.get("/search"))
    assert len(soup.select("#year-list > li")) == 7 and not soup.select("#year-list > li.is-more")
    assert not soup.select("button[data-more][aria-controls=year-list]")


def test_results_pages_have_a_skip_link_to_the_results(client):
    soup = soup_of(client.get("/search", query_string={"q": "园区"}))
    links = [(a.get_text(), a["href"]) for a in soup.select(".skip-links a")]
    assert links == [("跳到搜索结果", "#hits"), ("跳到筛选条件", "#filters")]
    hits = soup.select_one("ol#hits")
    assert hits["tabindex"] == "-1" and hits.select("li.hit")
    # Nothing found: the link leads to the message; no filters, no link to them; one column.
    soup = soup_of(client.get("/search", query_string={"q": "qzxjvw"}))
    assert [(a.get_text(), a["href"]) for a in soup.select(".skip-links a")] == [("跳到搜索结果", "#results")]
    assert soup.select_one("#results .no-results")
    assert "results-layout-single" in soup.select_one(".results-layout")["class"]
    # Other pages skip to their main content.
    soup = soup_of(client.get("/help"))
    assert [(a.get_text(), a["href"]) for a in soup.select(".skip-links a")] == [("跳到主要内容", "#main")]


def test_chips_remove_one_filter_each_and_clear_all_keeps_the_query(client):
    params = [("q", "园区"), ("category", "园区规划"), ("category", "政策解读"),
              ("date_from", "2019-01-01"), ("date_to", "2025-12-31"), ("sort", "date_desc"), ("page_size", "5")]
    soup = soup_of(client.get("/search", query_string=params))
    chips = {c.get_text(" ", strip=True).split(" ")[0]: query_of(c["href"]) for c in soup.select("a.chip")}
    assert set(chips) == {"分类：园区规划", "分类：政策解读", "日期：2019-01-01"}
    assert chips["分类：园区规划"]["category"] == ["政策解读"]
    assert chips["分类：政策解读"]["category"] == ["园区规划"]
    assert "date_from" not in chips["日期：2019-01-01"] and chips["日期：2019-01-01"]["category"] == [
        "园区规划", "政策解读"]
    for params_left in chips.values():
        assert params_left["q"] == ["园区"] and params_left["sort"] == ["date_desc"]
        assert params_left["page_size"] == ["5"]
    clear = soup.select_one("a.chip-clear")
    assert clear.get_text() == "清除全部"
    assert query_of(clear["href"]) == {"q": ["园区"], "sort": ["date_desc"], "page_size": ["5"]}


def test_pagination_links_keep_state_and_mark_the_current_page(client):
    params = {"q": "园区", "category": "", "sort": "date_desc", "page_size": "5", "page": "2"}
    expected = api(client, q="园区", sort="date_desc", page_size=5, page=2)
    assert expected["pages"] >= 3
    soup = soup_of(client.get("/search", query_string=params))
    nav = soup.select_one("nav.pagination")
    assert nav.select_one("[aria-current=page]").get_text() == "2"
    prev, nxt = nav.select_one("a[rel=prev]"), nav.select_one("a[rel=next]")
    assert prev.get_text() == "上一页" and nxt.get_text() == "下一页"
    assert query_of(prev["href"]) == {"q": ["园区"], "sort": ["date_desc"], "page_size": ["5"]}
    assert query_of(nxt["href"]) == {"q": ["园区"], "sort": ["date_desc"], "page_size": ["5"], "page": ["3"]}
    numbers = [a.get_text() for a in nav.select("li > a, li > span.current")
               if a.get_text().isdigit()]
    assert numbers[0] == "1" and numbers[-1] == str(expected["pages"])
    assert soup.select_one("ol.hits")["start"] == "6"
    assert [h.select_one(".hit-title a")["href"].split("?")[0] for h in soup.select(".hit")] == [
        f"/doc/{h['id']}" for h in expected["hits"]
    ]


def test_pagination_is_absent_on_a_single_page(client):
    response = client.get("/search", query_string={"q": "园区规划", "page_size": "50"})
    expected = api(client, q="园区规划", page_size=50)
    assert response.status_code == 200 and expected["pages"] == 1
    soup = soup_of(response)
    # A results page (an error page has no hits and no pagination either).
    assert len(soup.select(".hit")) == len(expected["hits"]) > 0
    assert not soup.select("nav.pagination")


def test_a_page_past_the_end_says_so_and_links_back(client):
    soup = soup_of(client.get("/search", query_string={"q": "园区规划", "page": "40"}))
    box = soup.select_one(".no-results")
    assert "第 40 页没有结果" in box.get_text()
    assert query_of(box.select_one("a")["href"]) == {"q": ["园区规划"]}


def test_sort_control_offers_relevance_newest_oldest(client):
    soup = soup_of(client.get("/search", query_string={"q": "园区", "sort": "date_asc", "page": "2"}))
    options = soup.select(".sort .sort-option")
    assert [o.get_text() for o in options] == ["相关度", "最新", "最早"]
    current = soup.select_one(".sort [aria-current]")
    assert current.get_text() == "最早"
    links = {a.get_text(): query_of(a["href"]) for a in soup.select(".sort a")}
    assert links == {"相关度": {"q": ["园区"]}, "最新": {"q": ["园区"], "sort": ["date_desc"]}}
    dates = [t["datetime"] for t in soup.select(".hit time")]
    assert dates == sorted(dates)


def test_no_results_says_so_and_offers_filters_to_drop(client):
    # 高新区新闻: a known category none of whose articles has 园区.
    params = [("q", "园区"), ("category", "高新区新闻"), ("date_from", "2024-01-01"), ("date_to", "2024-12-31")]
    soup = soup_of(client.get("/search", query_string=params))
    box = soup.select_one(".no-results")
    unfiltered = api(client, q="园区")["total"]
    # What is true: the query finds articles, the filters exclude all of them.
    assert "所选筛选条件下没有结果" in box.get_text()
    assert f"“园区”共有 {unfiltered} 条结果" in box.get_text()
    drops = {a.get_text(): query_of(a["href"]) for a in box.select(".drop-filters a")}
    # Removing the date still leaves a category without 园区: 0 results, so it is no link.
    assert "去掉「日期：2024年」" not in drops
    assert "去掉「日期：2024年」：仍没有结果" in box.select_one(".drop-none").get_text()
    assert drops["去掉「分类：高新区新闻」"] == {"q": ["园区"], "date_from": ["2024-01-01"],
                                               "date_to": ["2024-12-31"]}
    assert drops["清除全部筛选条件"] == {"q": ["园区"]}
    # Each count is what that link's page finds.
    for item in box.select(".drop-filters li"):
        link = item.select_one("a")
        if link is None:
            continue
        count = int(re.search(r"(\d+) 条结果", item.get_text()).group(1))
        target = soup_of(client.get(link["href"]))
        assert f"找到 {count} 条结果" in target.select_one("#summary").get_text()
    assert not soup.select("ol.hits")
    # Without filters: still a clear message and the syntax help.
    soup = soup_of(client.get("/search", query_string={"q": "qzxjvw"}))
    box = soup.select_one(".no-results")
    assert "未找到与“qzxjvw”相关的结果" in box.get_text()
    assert box.select_one('a[href="/help"]')


def test_relaxed_results_are_explained(client):
    expected = api(client, q="园区 不存在的词语")
    assert expected["relaxed"] == "any_word" and expected["total"] > 0
    soup = soup_of(client.get("/search", query_string={"q": "园区 不存在的词语"}))
    notice = soup.select_one(".notice-relaxed").get_text()
    # The notice names the words no article contains (none: it says only that no article has them all).
    assert expected["unmatched"] == ["存在", "词语"]
    assert "没有文章包含「存在」、「词语」，以下为部分匹配结果" in notice
    assert len(soup.select(".hit")) == len(expected["hits"])


def test_help_is_reachable_and_explains_the_syntax(client):
    soup = soup_of(client.get("/search?q=园区"))
    assert soup.select_one('header a[href="/help"]').get_text() == "搜索语法"
    response = client.get("/help")
    assert response.status_code == 200
    text = soup_of(response).get_text()
    for example in ('"新质生产力"', "高新区 OR 开发区", "园区 -招商", "title:智慧城市", "园区 规划"):
        assert example in text
    # Every example is a working search link.
    for link in soup_of(response).select(".syntax a"):
        assert client.get(link["href"]).status_code == 200


def test_query_text_is_escaped_everywhere_it_is_echoed(client):
    q = '"><script>alert(1)</script>'
    response = client.get("/search", query_string={"q": q})
    html = response.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert_no_active_content(html)
    assert soup_of(response).select_one("input#q")["value"] == q


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("query, param", [
    ("page=abc", "page"),
    ("page=0", "page"),
    ("sort=popular", "sort"),
    ("date_from=2024-13-01", "date_from"),
    ("page_size=100000", "page_size"),
    ("page=99999&page_size=100", "page"),
    ("q=" + "长" * 300, "q"),
])
def test_bad_parameters_render_a_chinese_400_page(client, query, param):
    for path in ("/search", "/search.csv", "/"):
        response = client.get(f"{path}?{query}")
        assert response.status_code == 400, (path, query)
        assert response.mimetype == "text/html"
        soup = soup_of(response)
        assert soup.select_one("h1").get_text() == "请求参数有误"
        assert soup.select_one(".error-detail code").get_text() == param
        text = soup.get_text()
        assert "Traceback" not in text and "File \"" not in text
        assert re.search(r"[\u4e00-\u9fff]{4,}", soup.select_one(".error-explanation").get_text())


def test_unknown_article_and_unknown_page_are_chinese_404_pages(client):
    response = client.get("/doc/no-such-article?q=园区")
    assert response.status_code == 404
    soup = soup_of(response)
    assert soup.select_one("h1").get_text() == "未找到该文章"
    assert soup.select_one("input#q")["value"] == "园区"
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert soup_of(response).select_one("h1").get_text() == "页面不存在"


# --------------------------------------------------------------------------- CSV


def read_csv(response) -> list[dict]:
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


def test_csv_export_has_bom_columns_and_every_result(client):
    response = client.get("/search.csv", query_string={"q": "园区", "page": "2", "page_size": "3"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and 'filename="search-results.csv"' in disposition
    raw = response.get_data(as_text=True)
    # Column names in Chinese, like the page (tests/web/test_csv_export.py has the rest of the export).
    assert raw.splitlines()[0] == "\ufeff排名,编号,标题,分类,日期,来源,原文链接,相关度,摘要"
    rows = read_csv(response)
    expected = api(client, q="园区", page_size=100)
    assert len(rows) == expected["total"]  # page and page_size are ignored
    assert [r["编号"] for r in rows] == [h["id"] for h in expected["hits"]]
    first = rows[0]
    assert first["标题"] == expected["hits"][0]["title"]
    assert float(first["相关度"]) == pytest.approx(expected["hits"][0]["score"])
    assert "<mark>" not in raw and "&lt;" not in raw
    assert "园区" in first["摘要"]


def test_csv_is_linked_from_the_results_page_with_the_same_filters(client):
    soup = soup_of(client.get("/search", query_string=[("q", "园区"), ("category", "园区规划"), ("page", "2")]))
    link = soup.select_one("a.export")
    assert link.get_text() == "导出 CSV"
    assert urlsplit(link["href"]).path == "/search.csv"
    assert query_of(link["href"]) == {"q": ["园区"], "category": ["园区规划"]}
    rows = read_csv(client.get(link["href"]))
    assert {r["分类"] for r in rows} == {"园区规划"}


def test_csv_exports_every_row_by_default(sample_settings):
    # csv_max_rows was 1,000 and cut exports short without a word; it is now 100,000 (far above
    # any result set of the site) and said when hit (tests/web/test_csv_export.py).
    assert sample_settings.csv_max_rows == 100_000
    client = create_app(sample_settings).test_client()
    total = api(client)["total"]
    assert total > 4
    rows = read_csv(client.get("/search.csv"))
    assert len(rows) == total
    dates = [r["日期"] for r in rows if r["日期"]]
    assert dates == sorted(dates, reverse=True)


# --------------------------------------------------------------------------- article page


def test_article_page_marks_the_query_and_shows_every_field(client):
    article = client.get("/api/documents/gxy-2019-0315").get_json()
    response = client.get("/doc/gxy-2019-0315", query_string={"q": "园区"})
    assert response.status_code == 200
    soup = soup_of(response)
    assert soup.select_one("h1.article-title").get_text() == article["title"]
    assert soup.select("h1.article-title mark")
    paragraphs = soup.select(".article-body p")
    lines = [line for line in article["body"].splitlines() if line.strip()]
    assert [p.get_text() for p in paragraphs] == [line.strip() for line in lines]
    assert all(m.get_text() == "园区" for m in soup.select(".article-body mark"))
    assert len(soup.select(".article-body mark")) == article["body"].count("园区")
    meta = soup.select_one(".article-meta").get_text()
    for field in ("date", "category", "source"):
        assert article[field] in meta
    assert soup.select_one(".article-url a")["href"] == article["url"]
    back = soup.select_one("a.back-link")
    assert query_of(back["href"]) == {"q": ["园区"]} and urlsplit(back["href"]).path == "/search"
    assert response.headers["Link"] == '</api/documents/gxy-2019-0315>; rel="alternate"; type="application/json"'
    # Without a query nothing is marked.
    plain = soup_of(client.get("/doc/gxy-2019-0315"))
    assert not plain.select("mark")


def test_article_page_marks_traditional_text_for_a_simplified_query(client):
    soup = soup_of(client.get("/doc/qyjj-2023-0815", query_string={"q": "园区"}))
    marks = {m.get_text() for m in soup.select(".article-body mark")}
    assert marks == {"園區"}


# --------------------------------------------------------------------------- OpenSearch and assets


def test_opensearch_description(sample_settings):
    # Absolute URLs come from the public_url setting (never from the Host header: see test_robustness).
    from search_service.web import close_app, create_app

    app = create_app(sample_settings.replace(public_url="https://search.example.org/"))
    try:
        response = app.test_client().get("/opensearch.xml", base_url="https://evil.example")
    finally:
        close_app(app)
    assert response.status_code == 200
    assert response.mimetype == "application/opensearchdescription+xml"
    root = ET.fromstring(response.get_data())
    ns = {"os": "http://a9.com/-/spec/opensearch/1.1/"}
    assert root.tag == "{http://a9.com/-/spec/opensearch/1.1/}OpenSearchDescription"
    assert 0 < len(root.findtext("os:ShortName", namespaces=ns)) <= 16
    urls = {u.get("type"): u.get("template") for u in root.findall("os:Url", ns)}
    assert urls["text/html"] == "https://search.example.org/search?q={searchTerms}"
    assert urls["application/x-suggestions+json"] == "https://search.example.org/opensearch/suggest?q={searchTerms}"
    assert root.findtext("os:InputEncoding", namespaces=ns) == "UTF-8"


def test_opensearch_suggestions_use_the_browser_format(client):
    response = client.get("/opensearch/suggest", query_string={"q": "智慧"})
    assert response.mimetype == "application/x-suggestions+json"
    query, titles, descriptions, urls = response.get_json(force=True)
    widget = client.get("/api/suggest", query_string={"q": "智慧"}).get_json()["suggestions"]
    assert query == "智慧" and titles == [s["title"] for s in widget]
    assert urls == ["http://127.0.0.1" + s["page_url"] for s in widget]  # the listening address, not Host
    assert len(descriptions) == len(titles)
    assert client.get("/opensearch/suggest").get_json(force=True) == ["", [], [], []]


@pytest.mark.parametrize("name, mimetype", [
    ("widget.js", "text/javascript"), ("widget.css", "text/css"), ("app.js", "text/javascript"),
    ("style.css", "text/css"),
])
def test_static_assets(client, name, mimetype):
    with client.get(f"/static/{name}") as response:
        assert response.status_code == 200
        assert response.mimetype == mimetype
        body = response.get_data(as_text=True)
    assert len(body.encode()) < 24_000  # small, no build step, no bundled libraries
    for cdn in ("unpkg", "jsdelivr", "cdnjs", "googleapis", "@import"):
        assert cdn not in body
    if name == "widget.js":
        for needle in ('"combobox"', '"listbox"', '"option"', "aria-activedescendant", "compositionstart",
                       "compositionend", "AbortController", "/api/suggest", "widget.css"):
            assert needle in body
        assert "innerHTML" not in body and "insertAdjacentHTML" not in body and "eval(" not in body


# --------------------------------------------------------------------------- hostile content


@pytest.fixture(scope="module")
def xss_client(tmp_path_factory, jieba_cache):
    index_dir = tmp_path_factory.mktemp("xss-index")
    build_index(index_dir, [FIXTURES / "xss"])
    app = create_app(make_settings(index_dir, jieba_cache))
    app.config["TESTING"] = True
    return app.test_client()


def test_hostile_articles_are_escaped_on_the_results_page(xss_client):
    response = xss_client.get("/search", query_string={"q": "园区"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert_no_active_content(html)
    assert "<script>alert" not in html and "<img src=x" not in html and "<svg" not in html
    soup = BeautifulSoup(html, "html.parser")
    titles = [h.get_text() for h in soup.select(".hit-title a")]
    assert "<script>alert(1)</script>园区安全测试" in titles
    assert "<img src=x onerror=alert(1)> 园区图片标题" in titles
    # javascript:/data: URLs are shown as text, never as links.
    unsafe = [s.get_text() for s in soup.select(".hit-url .unsafe-url")]
    assert any("javascript:alert(1)" in s for s in unsafe)
    assert any("JaVaScRiPt:alert(document.domain)" in s for s in unsafe)
    assert any(s.endswith("data:text/html,<script>alert(1)</script>") for s in unsafe)
    assert {a["href"] for a in soup.select(".hit-url a")} == {"https://example.org/ok?a=1&b=<2>",
                                                             "https://example.org/formula"}
    # A hostile category is a value, not markup.
    values = [i["value"] for i in soup.select(".facet-category input[type=checkbox]")]
    assert '"><script>alert(1)</script>' in values


def test_hostile_article_page_is_escaped(xss_client):
    response = xss_client.get("/doc/xss-script", query_string={"q": "园区"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert_no_active_content(html)
    soup = BeautifulSoup(html, "html.parser")
    assert soup.select_one("h1.article-title").get_text() == "<script>alert(1)</script>园区安全测试"
    assert [p.get_text() for p in soup.select(".article-body p")][1] == "第二段：<img src=x onerror=alert(1)>园区图片。"
    assert not soup.select(".article-url a")
    assert soup.select_one(".article-url .unsafe-url").get_text() == "javascript:alert(1)"
    assert "<img" not in str(soup.select_one(".article-meta"))
    # Entities already in the stored text stay visible as typed.
    soup = soup_of(xss_client.get("/doc/xss-img"))
    assert "&lt;已转义&gt; &amp;" in soup.select_one(".article-body").get_text()


def test_ids_with_slashes_and_markup_round_trip_through_links(xss_client):
    soup = soup_of(xss_client.get("/search", query_string={"q": "特殊编号"}))
    href = soup.select_one(".hit-title a")["href"]
    assert "<" not in href and '"' not in href
    response = xss_client.get(href)
    assert response.status_code == 200
    assert soup_of(response).select_one("h1").get_text() == "园区特殊编号测试"


def test_csv_cells_cannot_start_formulas(xss_client):
    rows = read_csv(xss_client.get("/search.csv", query_string={"q": "公式注入"}))
    row = next(r for r in rows if r["编号"] == "'-formula")
    assert row["标题"] == "'=HYPERLINK(\"http://evil.example\",\"园区\")"
    assert row["分类"] == "'+公式"
    assert row["摘要"].startswith("'@SUM(1+1)")
    for other in read_csv(xss_client.get("/search.csv", query_string={"q": "园区"})):
        for value in other.values():
            assert not value or value[0] not in "=+-@\t\r"


def test_article_page_lists_related_articles(client):
    hit = client.get("/api/search?q=智慧城市").get_json()["hits"][0]
    html = client.get(f"/doc/{hit['id']}").get_data(as_text=True)
    assert "相关文章" in html and 'class="related-list"' in html


def test_did_you_mean_and_synonyms_are_shown(client):
    # Searched as typed (correct=0), did-you-mean offers the correction; by default its results
    # are shown with the correction notice instead (tests/engine/test_correction.py).
    html = client.get("/search?q=高心区&correct=0").get_data(as_text=True)
    assert "您是不是要找" in html and "q=%E9%AB%98%E6%96%B0%E5%8C%BA" in html  # 高新区
    assert "已显示「" in client.get("/search?q=高心区").get_data(as_text=True)
    html = client.get("/search?q=经开区").get_data(as_text=True)
    assert "同时搜索了同义词" in html and "经济技术开发区" in html


def test_an_unknown_category_is_refused_on_the_page_and_in_the_export(client):
    # It used to find nothing without a word and keep the bogus value in every facet link.
    for url in ("/search?q=园区&category=不存在的分类", "/search.csv?category=不存在的分类"):
        response = client.get(url)
        assert response.status_code == 400, url
    soup = soup_of(client.get("/search?q=园区&category=不存在的分类"))
    assert "category" in soup.select_one("main").get_text()
    # A known category in another script is the index's own.
    response = client.get("/search?category=园区規劃")
    assert response.status_code == 200
    assert soup_of(response).select("input[name=category][value=园区规划][checked]")
