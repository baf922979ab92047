"""The JSON API: parameters, response shape, the one error shape, over the test client and waitress."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import pytest
from openapi_spec_validator import validate

from search_service.web import create_app

from ..helpers import make_settings


def get_json(client, url, status=200):
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.get_json()


class TestSearch:
    def test_response_shape(self, client):
        data = get_json(client, "/api/search?q=智慧城市")
        for key in ("total", "page", "page_size", "took_ms", "hits", "facets", "relaxed"):
            assert key in data
        assert data["total"] > 0 and data["page"] == 1 and data["page_size"] == 10
        hit = data["hits"][0]
        for key in ("id", "title", "title_html", "snippet", "category", "date", "url", "score"):
            assert key in hit
        assert "<mark>" in hit["title_html"] + hit["snippet"]
        assert {"category", "year"} <= set(data["facets"])
        assert set(data["facets"]["category"][0]) == {"value", "count", "selected", "toggle_url"}

    def test_facet_toggle_urls_select_and_unselect_like_the_page_links(self, client):
        data = get_json(client, "/api/search?q=智慧城市&page=2&page_size=5")
        value = data["facets"]["category"][0]
        assert not value["selected"]
        picked = get_json(client, value["toggle_url"])
        assert picked["filters"]["category"] == [value["value"]] and picked["total"] == value["count"]
        assert picked["page"] == 1 and picked["page_size"] == 5 and picked["query"] == "智慧城市"
        selected = next(v for v in picked["facets"]["category"] if v["value"] == value["value"])
        assert selected["selected"]
        back = get_json(client, selected["toggle_url"])
        assert back["filters"]["category"] == [] and back["total"] == data["total"]
        year = picked["facets"]["year"][0]
        in_year = get_json(client, year["toggle_url"])
        assert in_year["filters"]["date_from"] == f"{year['value']}-01-01" and in_year["total"] == year["count"]
        month = in_year["facets"]["month"][0]
        in_month = get_json(client, month["toggle_url"])
        assert in_month["filters"]["date_from"].startswith(month["value"]) and in_month["total"] == month["count"]
        this_month = next(v for v in in_month["facets"]["month"] if v["value"] == month["value"])
        assert get_json(client, this_month["toggle_url"])["filters"]["date_to"] == f"{year['value']}-12-31"

    def test_utf8_not_ascii_escaped(self, client):
        body = client.get("/api/search?q=智慧城市").get_data()
        assert "智慧城市".encode() in body and b"\\u" not in body

    def test_body_is_what_the_standard_library_writes(self, client):
        # orjson writes the bodies (web/json_provider.py): the same bytes as json.dumps would.
        body = client.get("/api/search?q=智慧城市&page_size=3").get_data()
        assert body == json.dumps(json.loads(body), ensure_ascii=False, separators=(",", ":")).encode() + b"\n"

    def test_what_orjson_cannot_write_is_written_as_flask_writes_it(self, client):
        import datetime as dt

        app = client.application
        with app.app_context():
            assert app.json.dumps({"when": dt.date(2024, 3, 1)}) == '{"when":"Fri, 01 Mar 2024 00:00:00 GMT"}'
            assert app.json.dumps({1: "a"}) == '{"1":"a"}'
            assert json.loads(app.json.dumps({"x": "\ud800"})) == {"x": "\ud800"}  # a lone surrogate
            assert app.json.dumps(2 ** 70) == str(2 ** 70)

    def test_a_repeated_search_is_the_same_answer_saying_it_came_from_the_cache(self, client):
        first = get_json(client, "/api/search?q=智慧城市&category=政策解读&page_size=5")
        again = get_json(client, "/api/search?q=智慧城市&category=政策解读&page_size=5")
        assert not first["cached"] and again["cached"]
        assert {k: v for k, v in again.items() if k not in ("cached", "took_ms")} == \
            {k: v for k, v in first.items() if k not in ("cached", "took_ms")}

    @pytest.mark.parametrize("url", ["/api/search?q=智慧城市&category=政策解读&page_size=4", "/api/search?q=园区&page_size=9",
                                     "/api/search?page_size=99", "/api/search?q=qzxjvw&page_size=3"])
    def test_an_answer_is_the_bytes_jsonify_writes_first_and_from_the_cache(self, client, url):
        # The body is written once and only took_ms and cached are put in per request: it must
        # stay exactly what the app's JSON provider writes for the same object.
        app = client.application
        for cached in (False, True):
            response = client.get(url)
            body = response.get_data()
            data = json.loads(body)
            assert data["cached"] is cached and isinstance(data["took_ms"], float)
            with app.app_context():
                assert body == app.json.dumps_bytes(data) + b"\n"
            assert response.mimetype == "application/json"

    def test_every_parameter(self, client):
        everything = get_json(client, "/api/search?page_size=100")
        year = everything["facets"]["year"][0]["value"]
        data = get_json(client, f"/api/search?date_from={year}-01-01&date_to={year}-12-31&sort=date_asc"
                                "&page=1&page_size=3")
        assert data["total"] == everything["facets"]["year"][0]["count"]
        assert "month" in data["facets"] and len(data["hits"]) <= 3
        dates = [h["date"] for h in data["hits"]]
        assert dates == sorted(dates) and all(d.startswith(year) for d in dates)
        category = everything["facets"]["category"][0]["value"]
        filtered = get_json(client, f"/api/search?category={category}")
        assert filtered["total"] == everything["facets"]["category"][0]["count"]
        assert all(h["category"] == category for h in filtered["hits"])
        # A category the index does not have would find nothing without a word: refused, naming the known ones.
        error = get_json(client, f"/api/search?category={category}&category=不存在的类别", status=400)["error"]
        assert error["param"] == "category" and "'不存在的类别'" in error["message"] and category in error["message"]

    def test_empty_query_lists_everything_by_date(self, client):
        data = get_json(client, "/api/search?page_size=100")
        dates = [h["date"] for h in data["hits"] if h["date"]]
        assert dates == sorted(dates, reverse=True)

    def test_relaxed_is_reported(self, client):
        data = get_json(client, "/api/search?q=智慧城市 火星基地")
        assert data["relaxed"] == "any_word" and data["total"] > 0


class TestErrors:
    @pytest.mark.parametrize("query, param", [
        ("page=0", "page"), ("page=abc", "page"), ("page_size=101", "page_size"),
        ("date_from=2024-02-30", "date_from"), ("date_from=2025-01-02&date_to=2025-01-01", "date_from"),
        ("sort=best", "sort"), ("q=" + "字" * 257, "q"), ("page=2000", "page"), ("qq=x", "qq"),
    ])
    def test_bad_parameters_get_400_in_the_error_shape(self, client, query, param):
        data = get_json(client, "/api/search?" + query, status=400)
        assert set(data) == {"error"}
        assert data["error"]["status"] == 400 and data["error"]["code"] == "invalid_parameter"
        assert data["error"]["param"] == param and param in data["error"]["message"]

    def test_error_shape_is_pinned(self, client):
        assert get_json(client, "/api/search?page_size=1000", status=400) == {"error": {
            "status": 400, "code": "invalid_parameter", "message": "page_size must be between 1 and 100 (setting max_page_size); got 1000.",
            "param": "page_size"}}

    def test_unknown_document_route_and_method(self, client):
        assert get_json(client, "/api/documents/nope", status=404)["error"]["code"] == "not_found"
        assert get_json(client, "/api/nothing-here", status=404)["error"]["code"] == "not_found"
        response = client.post("/api/search")
        assert response.status_code == 405 and response.get_json()["error"]["code"] == "method_not_allowed"

    @pytest.mark.parametrize("q", ['"', "(((", "OR", "-", "AND AND", "title:", '"a" OR (b', "\x00", "🙂" * 10])
    def test_malformed_queries_never_fail(self, client, q):
        get_json(client, "/api/search?" + urllib.parse.urlencode({"q": q}))

    def test_no_index_is_503(self, tmp_path, jieba_cache):
        app = create_app(make_settings(tmp_path / "empty", jieba_cache))
        client = app.test_client()
        data = get_json(client, "/healthz", status=503)
        assert data["error"]["code"] == "index_unavailable"
        assert get_json(client, "/api/search?q=x", status=503)["error"]["status"] == 503


class TestOtherEndpoints:
    def test_document(self, client):
        hit = get_json(client, "/api/search?q=智慧城市")["hits"][0]
        doc = get_json(client, f"/api/documents/{hit['id']}")
        assert doc["id"] == hit["id"] and doc["body"]

    def test_stats_and_health(self, client):
        stats = get_json(client, "/api/stats")
        assert stats["documents"] > 0 and stats["generation"] and stats["categories"]
        assert get_json(client, "/healthz")["status"] == "ok"

    def test_suggest(self, client):
        data = get_json(client, "/api/suggest?q=智慧")
        assert data["suggestions"] and "<mark>" in data["suggestions"][0]["title_html"]
        assert get_json(client, "/api/suggest?q=智慧&limit=0", status=400)["error"]["param"] == "limit"

    def test_openapi_is_valid(self, client):
        document = get_json(client, "/openapi.json")
        validate(document)
        assert {"/api/search", "/api/suggest", "/api/documents/{doc_id}", "/api/stats", "/healthz"} <= set(
            document["paths"])

    def test_cors_only_for_allowed_origins(self, client):
        allowed = client.get("/api/suggest?q=智慧", headers={"Origin": "http://127.0.0.1:1"})
        assert allowed.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:1"
        denied = client.get("/api/suggest?q=智慧", headers={"Origin": "http://evil.example"})
        assert "Access-Control-Allow-Origin" not in denied.headers


class TestXss:
    def test_titles_and_bodies_come_back_escaped(self, tmp_path, jieba_cache):
        from search_service.article import Article
        from search_service.engine import indexer
        from search_service.engine.store import IndexStore

        evil = Article("x1", "<script>alert(1)</script>智慧城市", '<img src=x onerror=alert(1)> 智慧城市 "引号"',
                       "政策解读")
        indexer.rebuild(IndexStore(tmp_path / "xss"), [evil])
        client = create_app(make_settings(tmp_path / "xss", jieba_cache)).test_client()
        hit = get_json(client, "/api/search?q=智慧城市")["hits"][0]
        assert "<script>" not in hit["title_html"] and "&lt;script&gt;" in hit["title_html"]
        assert "<img" not in hit["snippet"] and "&lt;img" in hit["snippet"]
        assert hit["title"] == evil.title  # the plain field is the text itself, for scripts


class TestOverWaitress:
    def test_search_over_http(self, live_server):
        with urllib.request.urlopen(live_server.url + "/api/search?q=" + urllib.parse.quote("智慧城市")) as response:
            assert response.headers["Content-Type"].startswith("application/json")
            assert json.load(response)["total"] > 0

    def test_errors_over_http(self, live_server):
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(live_server.url + "/api/search?page=0")
        assert caught.value.code == 400
        assert json.load(caught.value)["error"]["param"] == "page"


class TestSimilar:
    def test_related_articles_exclude_the_article(self, client):
        hit = get_json(client, "/api/search?q=智慧城市")["hits"][0]
        data = get_json(client, f"/api/documents/{hit['id']}/similar?limit=3")
        assert data["id"] == hit["id"] and data["terms"]
        assert 0 < len(data["similar"]) <= 3 and hit["id"] not in [s["id"] for s in data["similar"]]

    def test_url_is_the_source_site_and_page_url_this_service(self, client):
        """One name, one meaning: ``url`` is where the article is published (as in hits and
        documents); ``page_url`` is its page here, under the service's path prefix."""
        hit = get_json(client, "/api/search?q=智慧城市")["hits"][0]
        related = get_json(client, f"/api/documents/{hit['id']}/similar?limit=3")["similar"]
        suggested = get_json(client, "/api/suggest?q=智慧")["suggestions"]
        assert related and suggested
        for item in related + suggested:
            document = get_json(client, "/api/documents/" + urllib.parse.quote(item["id"], safe=""))
            assert item["url"] == document["url"]
            assert item["page_url"] == "/doc/" + urllib.parse.quote(item["id"], safe="")
            assert client.get(item["page_url"]).status_code == 200
        prefixed = client.get("/api/suggest?q=智慧", base_url="http://localhost/site-search/").get_json()
        assert [s["page_url"] for s in prefixed["suggestions"]] == ["/site-search" + s["page_url"] for s in suggested]

    def test_unknown_article_and_bad_limit(self, client):
        assert get_json(client, "/api/documents/nope/similar", status=404)["error"]["code"] == "not_found"
        hit = get_json(client, "/api/search?q=智慧城市")["hits"][0]
        assert get_json(client, f"/api/documents/{hit['id']}/similar?limit=x", status=400)["error"]["param"] == "limit"


class TestMaxLimit:
    """One setting, max_limit, bounds ``limit`` on suggest and similar; refusals name it."""

    def test_over_the_bound_names_the_parameter_and_the_setting(self, client):
        hit = get_json(client, "/api/search?q=智慧城市")["hits"][0]
        for path in ("/api/suggest?q=智慧&limit=51", f"/api/documents/{hit['id']}/similar?limit=51"):
            assert get_json(client, path, status=400) == {"error": {
                "status": 400, "code": "invalid_parameter",
                "message": "limit must be between 1 and 50 (setting max_limit); got 51.", "param": "limit"}}
        assert get_json(client, "/api/suggest?q=智慧&limit=50")["suggestions"]

    def test_a_lower_setting_bounds_both_endpoints_and_the_openapi_document(self, sample_settings):
        from search_service.web import close_app

        app = create_app(sample_settings.replace(max_limit=3, suggest_limit=2))
        try:
            client = app.test_client()
            hit = get_json(client, "/api/search?q=智慧城市")["hits"][0]
            for path in ("/api/suggest?q=智慧&limit=4", f"/api/documents/{hit['id']}/similar?limit=4"):
                message = get_json(client, path, status=400)["error"]["message"]
                assert message == "limit must be between 1 and 3 (setting max_limit); got 4."
            assert 0 < len(get_json(client, "/api/suggest?q=城市")["suggestions"]) <= 2
            assert 0 < len(get_json(client, "/api/suggest?q=城市&limit=3")["suggestions"]) <= 3
            # The default of similar (5) follows the lower bound instead of exceeding it.
            assert 0 < len(get_json(client, f"/api/documents/{hit['id']}/similar")["similar"]) <= 3
            paths = get_json(client, "/openapi.json")["paths"]
            schemas = {name: next(p["schema"] for p in paths[name]["get"]["parameters"] if p["name"] == "limit")
                       for name in ("/api/suggest", "/api/documents/{doc_id}/similar")}
            assert schemas["/api/suggest"]["maximum"] == 3 and schemas["/api/suggest"]["default"] == 2
            assert schemas["/api/documents/{doc_id}/similar"] == {"type": "integer", "minimum": 1, "maximum": 3,
                                                                  "default": 3}
        finally:
            close_app(app)


def test_other_http_errors_keep_their_status(client):
    """werkzeug errors without a class of their own (here 416, from a static file) keep their status."""
    response = client.get("/static/widget.js", headers={"Range": "bytes=99999999-"})
    assert response.status_code == 416 and response.mimetype == "text/html"
    assert "出错了" in response.get_data(as_text=True)


def test_sort_may_carry_blanks_like_every_other_parameter(client):
    answer = client.get("/api/search", query_string={"sort": " date_desc ", "q": " 园区 "})
    assert answer.status_code == 200 and answer.get_json()["sort"] == "date_desc"


def test_the_app_remembers_which_functions_are_plain_and_still_wraps_a_coroutine(app):
    def plain():
        return "x"

    async def coroutine():
        return "y"

    assert app.ensure_sync(plain) is plain and app.ensure_sync(plain) is plain
    # A coroutine still goes through Flask's own check (here without the async extra: its error).
    for _ in range(2):
        with pytest.raises(RuntimeError, match="async"):
            app.ensure_sync(coroutine)
