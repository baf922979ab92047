"""The JSON API as the pages' twin (issue 27): suggestions that know what the results page knows,
hits with their page on this service, the same facets, and unknown categories refused.

A small index written here holds each slip of the issue's (zhihuichengshi, 智惠城市, 乡村阵兴, 碳达风,
高心区) next to the articles that answer it, titled and untitled, in both scripts.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import quote, urlencode

import pytest

from search_service.article import Article
from search_service.engine import indexer
from search_service.engine.store import IndexStore
from search_service.web import close_app, create_app

from ..helpers import make_settings


def _article(n: int, title: str, body: str, category: str, date: str) -> Article:
    return Article(f"twin-{n:02d}", title, body, category, dt.date.fromisoformat(date),
                   f"https://www.example.org/a/{n}.html")


ARTICLES = [
    _article(1, "乡村振兴战略下的产业园区规划", "乡村振兴需要产业支撑，园区规划要服务县域发展。", "政策解读", "2024-03-05"),
    _article(2, "县域经济与乡村振兴的路径", "县域经济是乡村振兴的重要载体，产业融合是关键。", "区域经济研究", "2024-07-12"),
    _article(3, "农业科技园区建设观察", "农业科技园区带动农民增收，成为推动乡村振兴的新平台。", "园区规划", "2023-11-02"),
    _article(4, "碳达峰行动方案解读", "各地碳达峰行动方案陆续出台，工业领域是重点。", "政策解读", "2024-03-20"),
    _article(5, "工业园区碳达峰路径研究", "园区是工业碳排放的主要载体，碳达峰路径各有不同。", "产业规划", "2023-05-18"),
    _article(6, "绿色低碳转型的园区实践", "多个园区提前布局，力争在碳达峰目标之前完成能源结构调整。", "园区规划", "2024-09-09"),
    _article(7, "智慧城市建设的三个阶段", "智慧城市建设从信息化走向数据驱动的城市治理。", "智慧城市案例", "2024-03-28"),
    _article(8, "智慧城市数据平台案例", "城市数据平台是智慧城市的底座，打通部门数据。", "智慧城市案例", "2023-08-08"),
    _article(9, "城市運行管理中心建設實踐", "新區的運行管理中心是智慧城市建設的核心工程。", "智慧城市案例", "2022-01-15"),
    _article(10, "国家高新区高质量发展评价", "国家高新区评价指标体系发布，创新能力权重提高。", "高新区新闻", "2024-10-10"),
    _article(11, "临江高新区发布产业政策", "临江高新区围绕新质生产力调整产业政策。", "高新区新闻", "2023-02-02"),
    _article(12, "科技企业孵化器通过认定", "云溪高新区的科技企业孵化器通过国家级认定。", "高新区新闻", "2022-06-06"),
    _article(13, "戶籍法施行細則修正", "戶籍登記之申請，應於事實發生後三十日內為之。", "行政＞內政部", "2021-04-01"),
    _article(14, "产业链招商的新思路", "从拼政策到拼生态，产业链招商需要新方法。", "产业规划", "2022-09-09"),
]

SLIPS = [("zhihuichengshi", "智慧城市", "pinyin"), ("智惠城市", "智慧城市", "homophone"),
         ("乡村阵兴", "乡村振兴", "homophone"), ("碳达风", "碳达峰", "homophone"), ("高心区", "高新区", "homophone")]


def _client_for(tmp_path_factory, jieba_cache, **settings):
    index_dir = tmp_path_factory.mktemp("twin-index")
    indexer.rebuild(IndexStore(index_dir), ARTICLES, procs=1)
    return create_app(make_settings(index_dir, jieba_cache, **settings))


@pytest.fixture(scope="module")
def twin_app(tmp_path_factory, jieba_cache):
    app = _client_for(tmp_path_factory, jieba_cache)
    yield app
    close_app(app)


@pytest.fixture()
def client(twin_app):
    return twin_app.test_client()


def get_json(client, path: str, status: int = 200, **params) -> dict:
    response = client.get(path + ("?" + urlencode(params, doseq=True) if params else ""))
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def page_total(client, q: str) -> int:
    """The count the results page shows for ``q`` (its own HTML, 找到 N 条结果)."""
    html = client.get("/search?" + urlencode({"q": q})).get_data(as_text=True)
    return int(re.search(r'id="summary">找到 (\d+) 条结果', html).group(1))


def marked(suggestion: dict) -> set[str]:
    html = suggestion["title_html"] + suggestion.get("excerpt_html", "")
    return set(re.findall(r"<mark>(.*?)</mark>", html))


# --------------------------------------------------------------------------- suggestions


class TestSuggestKnowsWhatThePageKnows:
    @pytest.mark.parametrize("typed, searched, kind", SLIPS)
    def test_a_slip_gets_the_corrections_suggestions_and_the_pages_count(self, client, typed, searched, kind):
        data = get_json(client, "/api/suggest", q=typed)
        assert data["query"] == typed and data["searched"] == searched
        assert data["correction"]["searched"] == searched and data["correction"]["kind"] == kind
        page = get_json(client, "/api/search", q=typed)
        assert page["correction"] == data["correction"]
        assert data["total"] == page["total"] == page_total(client, typed) > 0
        assert data["suggestions"], "the box says nothing while the page finds results"
        for suggestion in data["suggestions"]:
            # Each shows the corrected words: in its title, or in the excerpt sent because the title does not.
            assert {m.replace("區", "区") for m in marked(suggestion)} == {searched}, suggestion

    def test_partial_matches_are_counted_not_nothing(self, client):
        data = get_json(client, "/api/suggest", q="智慧城市 火星基地")
        page = get_json(client, "/api/search", q="智慧城市 火星基地")
        assert data["suggestions"] == [] and page["relaxed"] == "any_word"
        assert data["total"] == page["total"] == page_total(client, "智慧城市 火星基地") > 0
        assert data["relaxed"] == "any_word" and data["correction"] is None

    def test_nothing_is_said_only_when_the_page_finds_nothing(self, client):
        data = get_json(client, "/api/suggest", q="qzxjvw")
        assert data == {"query": "qzxjvw", "searched": "qzxjvw", "correction": None, "did_you_mean": None,
                        "total": 0, "relaxed": None, "suggestions": []}
        assert get_json(client, "/api/search", q="qzxjvw")["total"] == 0

    def test_a_full_list_is_not_counted(self, client):
        # Titles fill the list: no count is run for it (a common character's count is costly at scale).
        data = get_json(client, "/api/suggest", q="智慧城市", limit=2)
        assert len(data["suggestions"]) == 2 and data["total"] is None and data["correction"] is None

    def test_a_short_list_is_counted(self, client):
        data = get_json(client, "/api/suggest", q="碳达峰")
        assert data["total"] == page_total(client, "碳达峰") == 3 and data["correction"] is None
        assert data["searched"] == "碳达峰"

    def test_did_you_mean_when_the_page_finds_nothing_and_corrects_nothing(self, tmp_path_factory, jieba_cache):
        app = _client_for(tmp_path_factory, jieba_cache, correction=False)
        try:
            client = app.test_client()
            page = get_json(client, "/api/search", q="只会")
            assert page["total"] == 0 and page["suggestion"] == "智慧"
            data = get_json(client, "/api/suggest", q="只会")
            assert data["total"] == 0 and data["correction"] is None
            assert data["did_you_mean"] == data["searched"] == "智慧"
            assert data["suggestions"] and all(marked(s) == {"智慧"} for s in data["suggestions"])
            # Results as typed and a did-you-mean: the box offers it too, its suggestions stay the text's.
            page = get_json(client, "/api/search", q="园区 只会")
            assert page["total"] > 0 and page["suggestion"] == "园区 智慧"
            data = get_json(client, "/api/suggest", q="园区 只会")
            assert data["did_you_mean"] == "园区 智慧" and data["searched"] == "园区 只会"
            assert data["total"] == page["total"] and data["relaxed"] == page["relaxed"] == "any_word"
        finally:
            close_app(app)


class TestSuggestExplainsTextMatches:
    def test_a_title_without_the_match_gets_an_excerpt_with_it(self, client):
        suggestions = get_json(client, "/api/suggest", q="乡村振兴")["suggestions"]
        by_id = {s["id"]: s for s in suggestions}
        assert {"twin-01", "twin-02", "twin-03"} <= set(by_id)
        assert "<mark>" not in by_id["twin-03"]["title_html"]
        assert "<mark>乡村振兴</mark>" in by_id["twin-03"]["excerpt_html"]
        for doc_id in ("twin-01", "twin-02"):  # the title shows it: no excerpt unless asked for
            assert "<mark>乡村振兴</mark>" in by_id[doc_id]["title_html"] and "excerpt_html" not in by_id[doc_id]

    def test_excerpt_1_still_gives_every_suggestion_one(self, client):
        suggestions = get_json(client, "/api/suggest", q="乡村振兴", excerpt=1)["suggestions"]
        assert suggestions and all("<mark>乡村振兴</mark>" in s["excerpt_html"] for s in suggestions)


# --------------------------------------------------------------------------- /api/search as the page's twin


class TestSearchIsThePagesTwin:
    def test_hits_carry_their_page_on_this_service(self, client):
        hits = get_json(client, "/api/search", q="碳达峰")["hits"]
        assert hits
        for hit in hits:
            assert hit["page_url"] == "/doc/" + quote(hit["id"], safe="")
            assert hit["url"].startswith("https://www.example.org/")  # url stays the source site's
            page = client.get(hit["page_url"] + "?" + urlencode({"q": "碳达峰"}))
            assert page.status_code == 200 and hit["title"] in page.get_data(as_text=True)

    def test_year_then_month_facets_match_the_page(self, client):
        def page_facet(html: str, attribute: str) -> dict[str, int]:
            found = re.findall(attribute + r'="([0-9-]+)">\s*<span class="facet-label">[^<]*</span>'
                               r'<span class="count">(\d+)</span>', html)
            return {value: int(count) for value, count in found}

        year = {"q": "园区", "date_from": "2024-01-01", "date_to": "2024-12-31"}
        data = get_json(client, "/api/search", **year)
        html = client.get("/search?" + urlencode(year)).get_data(as_text=True)
        months = {v["value"]: v["count"] for v in data["facets"]["month"]}
        assert months == page_facet(html, "data-month") and len(months) >= 2
        assert {v["value"]: v["count"] for v in data["facets"]["year"]} == page_facet(html, "data-year")
        # A month's toggle narrows to it; the page's month link says the same.
        month = data["facets"]["month"][0]
        assert client.get(month["toggle_url"]).get_json()["total"] == month["count"]


class TestUnknownCategories:
    def test_an_unknown_category_is_refused_naming_the_known_ones(self, client):
        error = get_json(client, "/api/search", status=400, q="园区", category="不存在的类别")["error"]
        assert error["code"] == "invalid_parameter" and error["param"] == "category"
        assert "'不存在的类别'" in error["message"]
        for name in ("政策解读", "园区规划", "智慧城市案例", "行政＞內政部"):
            assert name in error["message"]

    def test_a_near_miss_names_the_closest_category(self, client):
        error = get_json(client, "/api/search", status=400, category=["政策解读", "园区规"])["error"]
        assert "Did you mean 园区规划?" in error["message"]

    def test_any_script_or_width_of_a_known_category_is_that_category(self, client):
        typed = get_json(client, "/api/search", category="行政>内政部")
        assert typed["total"] == 1 and typed["filters"]["category"] == ["行政＞內政部"]
        # Every link onwards carries the index's spelling (selecting another category keeps this one).
        others = [v["toggle_url"] for v in typed["facets"]["category"] if not v["selected"]]
        assert others and all("category=%E8%A1%8C%E6%94%BF%EF%BC%9E%E5%85%A7" in url for url in others)
        assert get_json(client, "/api/search", category="政策解讀")["total"] == 2

    def test_a_site_category_without_articles_yet_is_no_error(self, client):
        data = get_json(client, "/api/search", category="一带一路新闻")
        assert data["total"] == 0 and data["filters"]["category"] == ["一带一路新闻"]
