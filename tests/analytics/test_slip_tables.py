"""The staff page's two slip tables (issue 26): did-you-means offered with the results as typed
(「提示了“您是不是要找”的搜索词」) and slips readers fixed by hand (「读者自己改正的错字」), with
their period, CSV export, empty state and the links to the relevance desk."""

from __future__ import annotations

import base64
import csv
import io
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from search_service.web import close_app, create_app

PASSWORD = "slips-staff-密码"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"staff:{PASSWORD}".encode()).decode()}

#: Hand-counted from ``web_with_slips``: (typed, meant, searches), commonest first.
OFFERED = [("程式", "城市", 2), ("指挥", "智慧", 1)]
REFINED = [("一代一路", "一带一路", 2), ("消费这", "消费者", 1)]


@pytest.fixture()
def web(sample_settings, tmp_path):
    app = create_app(sample_settings.replace(analytics_db=str(tmp_path / "slips.sqlite3"), admin_password=PASSWORD))
    app.config["TESTING"] = True
    yield app
    close_app(app)


@pytest.fixture()
def web_with_slips(web):
    """Slips recorded through the app's own recorder (what the request handlers call).

    Offered: 程式 → 城市 on the page and the API (2), 指挥 → 智慧 (1, once as typed in traditional
    characters: one query); not counted: its page 2, a script's, a search offered nothing.
    Refined: 一代一路 → 一带一路 twice, 消费这 → 消费者 once; not a slip: 一带一路 → 一带一路 倡议.
    """
    rec = web.extensions["analytics"]
    rec.record_search("程式", channel="page", results=3, suggested="城市")
    rec.record_search("程式", channel="api", results=3, suggested="城市")
    rec.record_search("程式", channel="page", results=3, suggested="城市", page=2, refine=True)
    rec.record_search("程式", channel="script", results=3, suggested="城市")
    rec.record_search("指揮", channel="page", results=8, suggested="智慧")
    rec.record_search("园区", channel="page", results=20)
    for _ in range(2):
        rec.record_search("一代一路", channel="page", results=7)
        rec.record_search("一带一路", channel="page", results=185, previous="一代一路")
    rec.record_search("一带一路 倡议", channel="page", results=40, previous="一带一路")
    rec.record_search("消费这", channel="page", results=3)
    rec.record_search("消费者", channel="widget", results=300, previous="消费这")
    rec.flush()
    return web


def section(html: str, kind: str) -> str:
    start = html.index(f'<section class="admin-section" aria-labelledby="{kind}-heading">')
    return html[start:html.index("</section>", start)]


def shown(part: str) -> list[tuple[str, str, int]]:
    """(typed, meant, count) of each row of a slip table, in order, with its rank checked."""
    found = re.findall(r'<tr><td class="col-rank">(\d+)</td><td class="query"><a [^>]*>([^<]*)</a></td>'
                       r'<td class="query"><a [^>]*>([^<]*)</a></td><td class="num">(\d+)</td>', part)
    assert [int(rank) for rank, *_ in found] == list(range(1, len(found) + 1))
    return [(typed, meant, int(count)) for _, typed, meant, count in found]


def csv_table(client, kind: str, query: str = "") -> list[list[str]]:
    response = client.get(f"/admin/analytics.csv?table={kind}{query}", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert f"search-analytics-{kind}-" in response.headers["Content-Disposition"]
    body = response.get_data()
    assert body.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def page(client, query: str = "") -> str:
    response = client.get("/admin/analytics" + query, headers=AUTH)
    assert response.status_code == 200
    return response.get_data(as_text=True)


class TestTables:
    def test_both_tables_list_the_slips_commonest_first(self, web_with_slips):
        html = page(web_with_slips.test_client())
        offered = section(html, "offered")
        assert "<h2 id=\"offered-heading\">提示了“您是不是要找”的搜索词</h2>" in offered
        assert shown(offered) == OFFERED
        assert "<th scope=\"col\">提示的词</th>" in offered
        refined = section(html, "refined")
        assert "<h2 id=\"refined-heading\">读者自己改正的错字</h2>" in refined
        assert shown(refined) == REFINED
        assert "<th scope=\"col\">接着搜索</th>" in refined
        assert "这段时间没有" not in offered + refined
        # Each query opens its results, as readers saw them.
        assert 'href="/search?q=%E4%B8%80%E4%BB%A3%E4%B8%80%E8%B7%AF"' in refined  # 一代一路
        assert " style=" not in html and "<script>" not in html  # the CSP forbids both

    def test_the_period_selector_applies_to_both_tables(self, web_with_slips):
        client = web_with_slips.test_client()
        html = page(client, "?from=2020-01-01&to=2020-01-31")
        for kind in ("offered", "refined"):
            assert shown(section(html, kind)) == []
            assert "from=2020-01-01" in section(html, kind) and f"table={kind}" in section(html, kind)
            assert csv_table(client, kind, "&from=2020-01-01&to=2020-01-31")[1:] == []

    def test_each_row_links_to_a_one_way_synonym_group_and_the_curation_editor(self, web_with_slips):
        client = web_with_slips.test_client()
        refined = section(page(client), "refined")
        body = refined[refined.index("<tbody>"):]
        row = body[:body.index("</tr>")]  # the first row: 一代一路 → 一带一路
        assert shown(row + "</tr>") == [REFINED[0]]
        links = {desk: href.replace("&amp;", "&") for href, desk in re.findall(
            r'<a class="action" href="([^"]+)" data-desk="(\w+)"', row)}
        synonyms, curation = urlsplit(links["synonyms"]), urlsplit(links["curation"])
        assert synonyms.path == "/admin/desk/synonyms"
        assert parse_qs(synonyms.query) == {"text": ["一代一路 => 一带一路"]}
        assert curation.path == "/admin/desk/curation" and parse_qs(curation.query) == {"q": ["一代一路"]}
        # The desk opens the group ready to preview and save.
        desk = client.get(links["synonyms"], headers=AUTH)
        assert desk.status_code == 200 and "一代一路 =&gt; 一带一路" in desk.get_data(as_text=True)
        assert client.get(links["curation"], headers=AUTH).status_code == 200
        offered = section(page(client), "offered")
        assert "text=%E7%A8%8B%E5%BC%8F+%3D%3E+%E5%9F%8E%E5%B8%82" in offered  # 程式 => 城市

    def test_without_the_desk_the_actions_point_to_the_docs(self, web_with_slips):
        web_with_slips.blueprints.pop("desk")  # an app that does not serve the desk
        refined = section(page(web_with_slips.test_client()), "refined")
        assert "/admin/desk/" not in refined
        assert re.search(r'<a class="action" href="/admin/docs/RELEVANCE.md#synonyms"[^>]*>加同义词</a>', refined)

    def test_csv_export(self, web_with_slips):
        client = web_with_slips.test_client()
        assert csv_table(client, "offered") == [["typed", "offered", "searches"]] + [
            [typed, meant, str(n)] for typed, meant, n in OFFERED]
        assert csv_table(client, "refined") == [["typed", "searched_next", "searches"]] + [
            [typed, meant, str(n)] for typed, meant, n in REFINED]

    def test_csv_cells_that_look_like_formulas_are_defused(self, web):
        rec = web.extensions["analytics"]
        rec.record_search("=程式", channel="page", results=1, suggested="=城市")
        rec.flush()
        assert csv_table(web.test_client(), "offered")[1] == ["'=程式", "'=城市", "1"]


class TestEmpty:
    def test_an_empty_table_says_so(self, web):
        """A file that never held a slip (no ``slips`` table yet): both tables empty, in Chinese."""
        client = web.test_client()
        web.extensions["analytics"].record_search("园区", channel="page", results=20)
        web.extensions["analytics"].flush()
        html = page(client)
        offered, refined = section(html, "offered"), section(html, "refined")
        assert '<p class="empty">这段时间没有提示过“您是不是要找”的搜索。</p>' in offered
        assert '<p class="empty">这段时间没有读者自己改正的错字。</p>' in refined
        assert "data-table=" not in offered + refined
        assert csv_table(client, "offered") == [["typed", "offered", "searches"]]
        assert csv_table(client, "refined") == [["typed", "searched_next", "searches"]]
