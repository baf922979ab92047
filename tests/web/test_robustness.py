"""Issue 11: bad data never takes the site down, and every answer tells the truth.

One test (or a few) per finding of the outside review, from its reproduction, then Hypothesis
properties over the write API and the query parser. Everything runs against the real app: the
Flask test client where the transport does not matter, the real waitress server where it does
(raw bytes in the URL path, which the test client would already have decoded).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import random
import re
import statistics
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from bs4 import BeautifulSoup
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search_service.article import Article
from search_service.categories import SITE_CATEGORIES
from search_service.engine import indexer
from search_service.engine.compiler import compile_query
from search_service.engine.request import Limits, SearchRequest, get_list_from_mapping
from search_service.engine.store import IndexStore
from search_service.engine.syntax import MAX_QUERY_DEPTH, And, Not, Or, Term, check_query, parse
from search_service.errors import InvalidParameter
from search_service.ingest import Ingest
from search_service.text.highlight import MARK_SCAN_CHARS, SNIPPET_SCAN_CHARS, Highlighter
from search_service.web import CatchAll, close_app, create_app

from ..helpers import LiveServer, make_settings

TOKEN = "robust-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {**AUTH, "Content-Type": "application/json"}
NDJSON = {**AUTH, "Content-Type": "application/x-ndjson"}

SEED = [
    Article("seed-1", "城市发展 智慧城市", "高新区推进智慧城市建设，城市发展进入新阶段。", "智慧城市案例", dt.date(2025, 3, 1)),
    Article("seed-2", "园区规划 最新", "园区规划与产业发展。\n第二段落讲城市。", "园区规划", dt.date(2024, 7, 9)),
    Article("seed-3", "年末的文章", "一篇日期在九九九九年十二月的文章。", "高新院新闻", dt.date(9999, 12, 5)),
]


def _app(tmp_path: Path, jieba_cache: Path, **changes):
    index_dir = tmp_path / "index"
    if not index_dir.exists():
        indexer.rebuild(IndexStore(index_dir), SEED)
    changes.setdefault("api_tokens", (TOKEN,))
    changes.setdefault("commit_delay", 0.0)
    return create_app(make_settings(index_dir, jieba_cache, **changes))


@pytest.fixture(scope="module")
def app(tmp_path_factory, jieba_cache):
    app = _app(tmp_path_factory.mktemp("robust"), jieba_cache, max_article_kb=8)
    yield app
    close_app(app)


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def server(app):
    with LiveServer(app) as live:
        yield live


@pytest.fixture(autouse=True)
def no_tracebacks(caplog):
    """No request in this module may write a traceback (or any exc_info) to the log."""
    caplog.set_level(logging.INFO)
    yield
    for record in caplog.records:
        assert record.exc_info is None, record.getMessage()
        assert "Traceback" not in record.getMessage()


def raw(server: LiveServer, method: str, path: str, body: bytes | str | None = None,
        headers: dict | None = None) -> tuple[int, bytes]:
    """One request with the path sent byte for byte (percent-escapes as given)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def error_of(response) -> dict:
    assert response.is_json, response.get_data(as_text=True)[:300]
    return response.get_json()["error"]


def pages_answer(client) -> None:
    """The pages a visitor meets answer 200."""
    for path in ("/", "/search?q=城市", "/api/search?q=城市", "/api/search", "/search.csv?q=城市"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.get_data(as_text=True)[:300])


def documents(client) -> int:
    return client.get("/api/stats").get_json()["documents"]


# --------------------------------------------------------------------------- §1 invalid text


POISON = '{"title":"城市发展 最新","body":"城市发展 智慧城市","date":"2099-01-01","url":"https://example.org/x"}'


@pytest.mark.parametrize("field", ["url", "source", "category", "title", "body", "date"])
def test_a_lone_surrogate_in_any_field_is_refused_naming_the_field(client, field):
    # The review's curl: a valid JSON escape that is not Unicode. Sent as the raw JSON text.
    record = json.loads(POISON)
    record[field] = record.get(field, "值") + "\ud83d"
    before = documents(client)
    response = client.put("/api/documents/poison", data=json.dumps(record), headers=JSON)
    assert response.status_code == 400
    reason = error_of(response)["problems"][0]["reason"]
    assert f'"{field}"' in reason and "surrogate" in reason and "U+D83D" in reason
    assert client.get("/api/documents/poison").status_code == 404
    assert documents(client) == before
    pages_answer(client)
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("field, value", [("title", "标题\x00"), ("title", "标题\t二"), ("title", "标题\n二"),
                                          ("url", "https://e.org/\x1b"), ("source", "来源\x7f"),
                                          ("category", "分类\x85"), ("body", "正文\x00"), ("body", "正文\x0c")])
def test_control_characters_are_refused(client, field, value):
    record = {"title": "标题", "body": "正文", field: value}
    response = client.put("/api/documents/ctl", data=json.dumps(record), headers=JSON)
    assert response.status_code == 400
    reason = error_of(response)["problems"][0]["reason"]
    assert f'"{field}"' in reason and "control character" in reason
    assert client.get("/api/documents/ctl").status_code == 404


def test_line_breaks_and_tabs_are_allowed_in_the_body(client):
    record = {"title": "换行测试", "body": "第一段\t有制表符\n第二段\r\n第三段"}
    response = client.put("/api/documents/breaks", data=json.dumps(record), headers=JSON)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert client.get("/api/documents/breaks").get_json()["body"] == "第一段 有制表符\n第二段\n第三段"
    assert client.delete("/api/documents/breaks", headers=AUTH).status_code == 200


def test_ingest_reports_invalid_characters_with_file_and_line(tmp_path):
    path = tmp_path / "articles.jsonl"
    lines = [
        {"id": "good", "title": "好的", "body": "正文"},
        {"id": "bad-url", "title": "标题", "body": "正文", "url": "https://example.org/x\ud83d"},
        {"id": "bad-title", "title": "标\x00题", "body": "正文"},
        {"id": "bad-source", "title": "标题", "body": "正文", "source": "\ud800"},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    ingest = Ingest(log_problems=False)
    assert [a.id for a in ingest.read([path])] == ["good"]
    problems = [str(p) for p in ingest.report.problems]
    assert problems[0].startswith(f"{path}:2: ") and '"url"' in problems[0] and "surrogate" in problems[0]
    assert problems[1].startswith(f"{path}:3: ") and '"title"' in problems[1] and "U+0000" in problems[1]
    assert problems[2].startswith(f"{path}:4: ") and '"source"' in problems[2]


def test_ingest_locates_a_control_character_on_its_line_of_a_page_file(tmp_path):
    page = tmp_path / "page.txt"
    page.write_text("标题\n來源:高新院 日期:2025-09-11\n第一段。\n第二段\x07有响铃。\n", encoding="utf-8")
    ingest = Ingest(log_problems=False)
    assert list(ingest.read([page])) == []
    assert str(ingest.report.problems[0]).startswith(f"{page}:4: ")


def test_cli_rebuild_refuses_the_poisoned_line(tmp_path, monkeypatch, jieba_cache, capsys):
    from search_service.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEARCH_SERVICE_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("SEARCH_SERVICE_CACHE_DIR", str(jieba_cache))
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"id": "ok", "title": "城市", "body": "城市发展"}) + "\n"
                    + '{"id":"poison","title":"城市发展 最新","body":"城市发展","url":"https://e.org/x\\ud83d"}\n',
                    encoding="utf-8")
    assert main(["index", "--rebuild", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:2: " in err and '"url"' in err
    settings = make_settings(tmp_path / "index", jieba_cache)
    built = create_app(settings)
    try:
        assert built.test_client().get("/").status_code == 200
    finally:
        close_app(built)


def test_healthz_fails_when_the_store_cannot_serve_its_pages(tmp_path, jieba_cache, caplog):
    # What the old write path let into the index: text no encoder takes. The index opens,
    # so only a canary that renders pages notices.
    poisoned = Article("poison", "城市发展 最新", "城市发展 智慧城市", url="https://example.org/x\ud83d")
    indexer.rebuild(IndexStore(tmp_path / "index"), [*SEED, poisoned])
    broken = create_app(make_settings(tmp_path / "index", jieba_cache))
    try:
        client = broken.test_client()
        assert client.get("/").status_code == 500
        response = client.get("/healthz")
        assert response.status_code == 503
        error = error_of(response)
        assert error["code"] == "unhealthy" and "UnicodeEncodeError" in error["message"]
        # The 500 above was logged once, in one line, without a traceback (see no_tracebacks).
        unhandled = [r for r in caplog.records if r.getMessage().startswith("unhandled ")]
        assert len(unhandled) == 1 and "\n" not in unhandled[0].getMessage()
    finally:
        close_app(broken)


def test_healthz_is_ok_for_a_good_store_and_cheap_when_polled(client):
    started = time.perf_counter()
    for _ in range(20):
        response = client.get("/healthz")
        assert response.status_code == 200 and response.get_json()["status"] == "ok"
    assert time.perf_counter() - started < 5  # one canary, then cached verdicts


# --------------------------------------------------------------------------- §2 requests that gave 500

DEEP = "(" * 250 + "城市"


@pytest.mark.parametrize("path", ["/api/search", "/search", "/search.csv", "/doc/seed-1"])
def test_deeply_nested_queries_are_400_naming_the_limit(client, path):
    for q in (DEEP, "-" * 200 + "城市", "NOT " * 60 + "(((((((城市)))))))"):
        response = client.get(path, query_string={"q": q})
        assert response.status_code == 400, (q[:20], response.status_code)
        if path.startswith("/api/"):
            assert error_of(response)["param"] == "q"
            assert f"the limit is {MAX_QUERY_DEPTH}" in error_of(response)["message"]


def _tree_depth(node) -> int:
    """How deep a syntax tree nests, measured without recursion (the thing under test)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, depth = stack.pop()
        if current is None:
            continue
        deepest = max(deepest, depth)
        if isinstance(current, Not):
            stack.append((current.child, depth + 1))
        elif isinstance(current, (And, Or)):
            stack.extend((child, depth + 1) for child in current.children)
    return deepest


def test_the_parser_never_recurses_past_its_bound():
    """Whatever is typed, the tree the parser builds (and every walk over it recurses along)
    nests at most MAX_QUERY_DEPTH levels below its root; deeper input is searched as its words."""
    for text in (DEEP, "(" * 5000, "NOT " * 3000 + "a", "-" * 5000 + "a", '"' * 999, "(a OR (b " * 500):
        assert _tree_depth(parse(text)) <= MAX_QUERY_DEPTH + 1, text[:20]
        compiled = compile_query(text)  # every walk of the compiled query finishes: no RecursionError
        compiled.words(), compiled.substring(), compiled.any_word(), compiled.highlight_terms()
    # At the bound the nesting is real (a tree that deep); one past it, the words alone.
    assert _tree_depth(parse("NOT " * (MAX_QUERY_DEPTH - 1) + "城市")) == MAX_QUERY_DEPTH
    assert parse("NOT " * (MAX_QUERY_DEPTH + 1) + "城市") == Term("城市")
    assert compile_query(DEEP).highlight_terms() == ["城市"]  # 250 open parentheses: still a search for 城市
    assert parse("-" * 5000 + "城市") == Term("城市")


@pytest.mark.parametrize("path", ["/api/search", "/search", "/search.csv"])
def test_the_last_month_of_year_9999_is_a_valid_filter(client, path):
    response = client.get(path, query_string={"date_from": "9999-12-01", "date_to": "9999-12-31"})
    assert response.status_code == 200
    if path == "/api/search":
        assert [h["id"] for h in response.get_json()["hits"]] == ["seed-3"]


def test_every_year_and_month_link_of_the_page_answers(client):
    seen = set()
    queue = ["/search?date_from=9999-01-01&date_to=9999-12-31", "/search?date_from=9999-12-01&date_to=9999-12-31"]
    while queue and len(seen) < 40:
        url = queue.pop()
        if url in seen:
            continue
        seen.add(url)
        response = client.get(url)
        assert response.status_code == 200, url
        soup = BeautifulSoup(response.get_data(as_text=True), "html.parser")
        queue += [a["href"] for a in soup.select(".facet-year a[href]")]


@pytest.mark.parametrize("path, name", [("/api/suggest?q=城市&limit={}", "limit"),
                                        ("/api/documents/seed-1/similar?limit={}", "limit"),
                                        ("/api/search?page={}", "page"), ("/api/search?page_size={}", "page_size"),
                                        ("/search?page={}", "page")])
@pytest.mark.parametrize("value", ["%C2%B2", "%D9%A3", "%EF%BC%91", "9" * 5000, "-1", "1e3", "0x10"])
def test_integers_are_ascii_digits_of_bounded_length(client, path, name, value):
    response = client.get(path.format(value))
    assert response.status_code == 400
    if path.startswith("/api/"):
        error = error_of(response)
        assert error["param"] == name and len(error["message"]) < 400


def test_an_empty_limit_is_refused_as_before(client):
    for path in ("/api/suggest?q=城市&limit=", "/api/documents/seed-1/similar?limit="):
        assert error_of(client.get(path))["param"] == "limit"
    assert client.get("/api/search?page=&page_size=").status_code == 200  # documented: empty = default


@pytest.mark.parametrize("rank", ["²", "٣", "9" * 2000, ""])
def test_click_rank_is_ascii_digits(client, rank):
    response = client.post("/api/click", data={"q": "城市", "id": "seed-1", "rank": rank, "channel": "page"})
    assert response.status_code == 400 and error_of(response)["param"] == "rank"


@pytest.mark.parametrize(("q", "words"), [("", "q is required"), ("  ", "q is required"),
                                         ("城" * 300, "max_query_length"), ("\\ud800", "invalid Unicode")])
def test_click_q_is_checked_like_every_query(client, q, words):
    body = '{"q": "' + q + '", "id": "seed-1", "rank": 1, "channel": "page"}'  # \ud800: a lone surrogate
    response = client.post("/api/click", data=body, content_type="application/json")
    assert response.status_code == 400 and error_of(response)["param"] == "q"
    assert words in error_of(response)["message"]


def test_click_bodies_that_json_cannot_hold_are_400(client):
    for body in ('{"q": ' + "[" * 5000 + "]" * 5000 + "}", '{"q": "a", "id": "b", "rank": ' + "1" * 5000 + "}"):
        response = client.post("/api/click", data=body, content_type="application/json")
        assert response.status_code in (400, 413)


def test_the_outermost_layer_turns_an_escaped_error_into_one_log_line(caplog):
    def broken_app(environ, start_response):
        raise RecursionError("maximum recursion depth exceeded")

    statuses = []
    body = CatchAll(broken_app)({"REQUEST_METHOD": "GET", "PATH_INFO": "/x"},
                                lambda status, headers, exc_info=None: statuses.append(status))
    assert statuses == ["500 Internal Server Error"]
    assert json.loads(b"".join(body))["error"]["code"] == "internal_error"
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("unhandled ")]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert lines[0].startswith("unhandled RecursionError on GET '/x': maximum recursion depth exceeded at web/")


# --------------------------------------------------------------------------- §3 category count


def test_category_values_are_bounded(client, app):
    limit = app.config["SETTINGS"].max_categories
    over = "&".join(f"category=c{i}" for i in range(limit + 1))
    for path in ("/api/search", "/search", "/search.csv"):
        response = client.get(f"{path}?{over}")
        assert response.status_code == 400
    error = error_of(client.get(f"/api/search?{over}"))
    assert error["param"] == "category" and "max_categories" in error["message"]


def test_max_categories_is_a_setting(tmp_path, jieba_cache):
    built = _app(tmp_path, jieba_cache, max_categories=2)
    try:
        client = built.test_client()
        # Categories the index may not have are refused on their own: these are the site's.
        two = "&".join(f"category={name}" for name in SITE_CATEGORIES[:2])
        assert client.get(f"/api/search?{two}").status_code == 200
        error = error_of(client.get(f"/api/search?{two}&category={SITE_CATEGORIES[2]}"))
        assert "the limit is 2 (setting max_categories)" in error["message"]
    finally:
        close_app(built)


def test_rendering_at_the_category_bound_stays_small(client, app):
    limit = app.config["SETTINGS"].max_categories

    def page(n: int) -> tuple[float, int]:
        # Categories a search may select (the site's: an unknown one is refused on its own).
        url = "/search?q=城市&" + "&".join(f"category={SITE_CATEGORIES[i % len(SITE_CATEGORIES)]}" for i in range(n))
        started = time.perf_counter()
        response = client.get(url)
        assert response.status_code == 200
        return time.perf_counter() - started, len(response.get_data())

    page(limit)  # warm
    seconds, size = min(page(limit) for _ in range(3))
    assert seconds < 1.0 and size < 300_000, (seconds, size)
    at_bound = "&".join(f"category={SITE_CATEGORIES[i % len(SITE_CATEGORIES)]}" for i in range(limit))
    assert client.get("/api/search?" + at_bound).status_code == 200


# --------------------------------------------------------------------------- §4 bodies


@pytest.mark.parametrize("body", ["[" * 100_000 + "]" * 100_000,
                                  '{"title": "t", "body": "b", "extra": ' + "[" * 100_000 + "]" * 100_000 + "}",
                                  '{"title": "t", "body": "b", "n": ' + "1" * 5000 + "}",
                                  '{"title": "t", "body": "b", "n": -' + "1" * 5000 + "}"])
def test_put_bodies_json_cannot_hold_are_400(client, body):
    before = documents(client)
    response = client.put("/api/documents/deep", data=body, headers=JSON)
    assert response.status_code == 400 and error_of(response)["param"] == "body"
    assert documents(client) == before


def test_batches_json_cannot_hold_are_400(client):
    deep = "[" * 100_000 + "]" * 100_000
    good = json.dumps({"id": "ok-line", "title": "标题", "body": "正文"})
    for data, headers in ((f"[{good}, {deep}]", JSON), (f"{good}\n{deep}\n", NDJSON),
                          (good + "\n" + '{"id": "x", "title": "t", "body": "b", "n": ' + "9" * 5000 + "}\n", NDJSON)):
        response = client.post("/api/documents", data=data, headers=headers)
        assert response.status_code == 400, response.get_data(as_text=True)[:200]
    assert client.get("/api/documents/ok-line").status_code == 404


# --------------------------------------------------------------------------- §5 ids


def test_an_id_with_surrounding_spaces_is_refused_not_trimmed(client):
    response = client.put("/api/documents/%20a%20", data=json.dumps({"title": "标题", "body": "正文"}), headers=JSON)
    assert response.status_code == 400
    error = error_of(response)
    assert error["param"] == "id" and "whitespace" in error["message"]
    assert client.get("/api/documents/a").status_code == 404


@pytest.mark.parametrize("path, rule", [("/api/documents/a%00b", "U+0000"), ("/api/documents/a%09b", "U+0009"),
                                        ("/api/documents/" + "x" * 257, "max_id_length")])
def test_id_rules_are_400_naming_the_rule(client, path, rule):
    response = client.put(path, data=json.dumps({"title": "标题", "body": "正文"}), headers=JSON)
    assert response.status_code == 400 and rule in error_of(response)["message"]


def test_an_id_at_the_length_bound_can_be_written_read_and_deleted(client):
    doc_id = "长" * 256
    path = "/api/documents/" + quote(doc_id, safe="")
    response = client.put(path, data=json.dumps({"title": "标题", "body": "正文"}), headers=JSON)
    assert response.status_code == 200 and response.get_json()["upserted"] == [doc_id]
    assert client.get(path).get_json()["id"] == doc_id
    assert client.delete(path, headers=AUTH).status_code == 200


def test_the_acknowledged_id_is_the_stored_id(client):
    for doc_id in ("a b", "名字/带斜杠", "%41", "é\u0301"):
        path = "/api/documents/" + quote(doc_id, safe="")
        response = client.put(path, data=json.dumps({"title": "标题", "body": "正文"}), headers=JSON)
        assert response.get_json()["upserted"] == [doc_id]
        assert client.get(path).get_json()["id"] == doc_id
        assert client.delete(path, headers=AUTH).status_code == 200


def test_invalid_utf8_in_the_url_is_400_not_replacement_characters(server, client):
    before = documents(client)
    status, body = raw(server, "PUT", "/api/documents/%ED%A0%80", json.dumps({"title": "t", "body": "b"}), JSON)
    assert status == 400 and b"UTF-8" in body
    status, body = raw(server, "PUT", "/api/documents/ok%FF", json.dumps({"title": "t", "body": "b"}), JSON)
    assert status == 400
    assert documents(client) == before
    status, _ = raw(server, "GET", "/search?q=%ED%A0%80")
    assert status == 400
    status, body = raw(server, "GET", "/api/search?q=%E5%9F%8E%E5%B8%82")  # valid UTF-8 is untouched
    assert status == 200 and json.loads(body)["query"] == "城市"


def test_ingest_applies_the_id_rules_with_file_and_line(tmp_path):
    path = tmp_path / "ids.jsonl"
    rows = [{"id": " padded", "title": "t", "body": "b"}, {"id": "x" * 300, "title": "t", "body": "b"},
            {"id": "nul\x00", "title": "t", "body": "b"}, {"id": "fine id", "title": "t", "body": "b"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    ingest = Ingest(log_problems=False, max_id_length=256)
    assert [a.id for a in ingest.read([path])] == ["fine id"]
    problems = [str(p) for p in ingest.report.problems]
    assert problems[0].startswith(f"{path}:1: ") and "whitespace" in problems[0]
    assert problems[1].startswith(f"{path}:2: ") and "max_id_length" in problems[1]
    assert problems[2].startswith(f"{path}:3: ") and "U+0000" in problems[2]


# --------------------------------------------------------------------------- §6 huge articles


def test_articles_over_the_size_bound_are_refused(client, tmp_path):
    body = "园" * 3000  # 9,000 bytes of UTF-8 over the module's max_article_kb = 8
    response = client.put("/api/documents/huge", data=json.dumps({"title": "大文章", "body": body}), headers=JSON)
    assert response.status_code == 400
    assert "max_article_kb" in error_of(response)["problems"][0]["reason"]
    path = tmp_path / "huge.jsonl"
    path.write_text(json.dumps({"id": "ok", "title": "t", "body": "b"}) + "\n"
                    + json.dumps({"id": "huge", "title": "大文章", "body": body}) + "\n", encoding="utf-8")
    ingest = Ingest(log_problems=False, max_article_kb=8)
    assert [a.id for a in ingest.read([path])] == ["ok"]
    assert str(ingest.report.problems[0]).startswith(f"{path}:2: ") and "max_article_kb" in str(
        ingest.report.problems[0])


def test_snippet_work_is_bounded_by_the_scan_window():
    highlighter = Highlighter(["智慧城市"])
    normal = "高新区推进产业发展。" * 300 + "智慧城市建设。"
    huge = normal + "园区规划与产业发展。" * 100_000  # about 1 M characters

    def cost(text: str) -> float:
        samples = []
        for _ in range(7):
            started = time.perf_counter()
            snippet = highlighter.snippet(text)
            samples.append(time.perf_counter() - started)
        assert "<mark>智慧城市</mark>" in snippet
        return statistics.median(samples)

    cost(normal)
    assert cost(huge) < 3 * cost(normal) + 0.002
    # Matches beyond the scan window are not looked for: the snippet is the start of the text.
    late = "园区规划。" * (SNIPPET_SCAN_CHARS // 5 + 10) + "智慧城市"
    assert "<mark>" not in highlighter.snippet(late)


def test_the_article_page_marks_a_bounded_prefix_and_shows_everything(tmp_path, jieba_cache):
    paragraph = "智慧城市建设与园区规划相辅相成，" * 10  # 160 characters
    count = MARK_SCAN_CHARS // len(paragraph) + 50
    article = Article("long", "长文章", "\n".join([paragraph] * count))
    indexer.rebuild(IndexStore(tmp_path / "index"), [article])
    built = create_app(make_settings(tmp_path / "index", jieba_cache))
    try:
        response = built.test_client().get("/doc/long", query_string={"q": "智慧城市"})
        assert response.status_code == 200
        soup = BeautifulSoup(response.get_data(as_text=True), "html.parser")
        paragraphs = soup.select(".article-body p")
        assert len(paragraphs) == count
        marked = [p for p in paragraphs if p.find("mark")]
        assert MARK_SCAN_CHARS // len(paragraph) - 1 <= len(marked) <= MARK_SCAN_CHARS // len(paragraph) + 1
        assert marked == paragraphs[:len(marked)]
    finally:
        close_app(built)


# --------------------------------------------------------------------------- §7 Host header


def _opensearch_urls(client, **kwargs) -> list[str]:
    text = client.get("/opensearch.xml", **kwargs).get_data(as_text=True)
    urls = re.findall(r'template="([^"]+)"', text)
    suggest = client.get("/opensearch/suggest", query_string={"q": "城市"}, **kwargs).get_json(force=True)
    return urls + suggest[3]


def test_the_host_header_is_never_reflected(server):
    for path in ("/opensearch.xml", "/opensearch/suggest?q=%E5%9F%8E%E5%B8%82"):
        status, body = raw(server, "GET", path, headers={"Host": "evil.example"})
        assert status == 200 and b"evil.example" not in body
        status, body = raw(server, "GET", path, headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example",
                                                         "X-Forwarded-Proto": "https"})
        assert status == 200 and b"evil.example" not in body and b"https://" not in body
        assert f"127.0.0.1:{server.port}".encode() in body


def test_public_url_sets_absolute_urls(tmp_path, jieba_cache):
    built = _app(tmp_path, jieba_cache, public_url="https://search.example.org/site/")
    try:
        urls = _opensearch_urls(built.test_client(), headers={"Host": "evil.example"})
        assert urls and all(u.startswith("https://search.example.org/site/") for u in urls), urls
    finally:
        close_app(built)


def test_forwarded_host_is_believed_from_trusted_proxies_only(tmp_path, jieba_cache):
    forwarded = {"X-Forwarded-Host": "search.example.org", "X-Forwarded-Proto": "https", "Host": "evil.example"}
    trusted = _app(tmp_path, jieba_cache, trusted_proxies=("127.0.0.1",))
    untrusted = _app(tmp_path, jieba_cache, trusted_proxies=("10.0.0.1",))
    try:
        urls = _opensearch_urls(trusted.test_client(), headers=forwarded)
        assert all(u.startswith("https://search.example.org/") for u in urls), urls
        urls = _opensearch_urls(untrusted.test_client(), headers=forwarded)
        assert all(u.startswith("http://127.0.0.1/") for u in urls), urls
        # A forwarded host that is not a host name is ignored, not pasted into URLs.
        odd = {**forwarded, "X-Forwarded-Host": 'evil.example/"><x'}
        assert all("evil" not in u for u in _opensearch_urls(trusted.test_client(), headers=odd))
    finally:
        close_app(trusted)
        close_app(untrusted)


def test_public_url_must_be_an_absolute_url(tmp_path, jieba_cache):
    from search_service.errors import ConfigError

    with pytest.raises(ConfigError, match="public_url"):
        _app(tmp_path, jieba_cache, public_url="search.example.org")


# --------------------------------------------------------------------------- §10 properties

PROPERTY = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Every code point, surrogates included (Hypothesis leaves them out by default).
any_char = st.characters(blacklist_categories=())
odd_text = st.one_of(
    st.text(any_char, max_size=20),
    st.sampled_from(["\ud83d", "\udc00x", "\x00", "\t", "\n", "\r\n", "\x1b[31m", "\x85", "\u2028", "\ufeff",
                     "城市发展", "  ", "", "é\u0301", "\U0001f600"]),
)
NESTED, HUGE = "\u0000NESTED\u0000", "\u0000HUGE\u0000"  # placeholders replaced in the JSON text
field_value = st.one_of(odd_text, st.integers(), st.none(), st.booleans(), st.just(NESTED), st.just(HUGE),
                        st.lists(st.text(max_size=3), max_size=2))
odd_id = st.one_of(
    st.text(any_char, min_size=1, max_size=12),
    st.sampled_from([" a", "a ", "a b", "\x00", "\ud800", "x" * 257, "x" * 256, "名字", "a/b", "%", "..", "\t"]),
)


def unseed_whoosh() -> None:
    """Whoosh names each new segment from the global ``random``, which Hypothesis seeds
    identically for every example: two examples' commits would then pick the same segment
    name and the second commit would fail. Fresh entropy per example (test data is drawn
    from Hypothesis' own generator, so the examples stay reproducible)."""
    random.seed()


def _body_text(record: dict, depth: int) -> str:
    text = json.dumps(record)  # ensure_ascii: a lone surrogate becomes its \\ud83d escape
    text = text.replace(json.dumps(NESTED), "[" * depth + "]" * depth)
    return text.replace(json.dumps(HUGE), "7" * 5000)


@PROPERTY
@given(doc_id=odd_id,
       record=st.fixed_dictionaries({"title": st.one_of(st.just("城市发展 智慧城市"), field_value),
                                     "body": st.one_of(st.just("城市发展 智慧城市\n第二段"), field_value)},
                                    optional={name: field_value for name in ("category", "date", "url", "source",
                                                                             "extra")}),
       depth=st.sampled_from([2, 40, 100_000]))
def test_any_write_is_the_truth(server, doc_id, record, depth):
    unseed_whoosh()
    path = "/api/documents/" + quote(doc_id.encode("utf-8", "surrogatepass"), safe="")
    status, before = raw(server, "GET", path)
    count = json.loads(raw(server, "GET", "/api/stats")[1])["documents"]
    status, body = raw(server, "PUT", path, _body_text(record, depth).encode("utf-8", "surrogatepass"), JSON)
    assert status < 500, body[:300]
    if 200 <= status < 300:
        assert json.loads(body)["upserted"] == [doc_id]
        got_status, got = raw(server, "GET", path)
        assert got_status == 200 and json.loads(got)["id"] == doc_id
        for page in ("/", "/search?q=%E5%9F%8E%E5%B8%82", "/api/search?q=%E5%9F%8E%E5%B8%82", "/healthz"):
            assert raw(server, "GET", page)[0] == 200, page
        assert raw(server, "DELETE", path, headers=AUTH)[0] == 200
    else:
        assert json.loads(body)["error"]["status"] == status
        assert raw(server, "GET", path)[1] == before
        assert json.loads(raw(server, "GET", "/api/stats")[1])["documents"] == count


SYNTAX = ["(", ")", "（", "）", '"', "“", "”", "「", "」", "『", "』", "＂", "OR", "AND", "NOT", "|", "||", "&&",
          "-", "*", ":", "title:", "城市", "发展", "a", " ", "\u3000", "\x00", "\ud83d"]
query_soup = st.one_of(
    st.lists(st.sampled_from(SYNTAX), max_size=120).map("".join),
    st.lists(st.sampled_from(SYNTAX), max_size=60).map(" ".join),
    st.builds(lambda opener, n, word: opener * n + word, st.sampled_from(["(", "NOT ", "-", "（", '"(']),
              st.integers(0, 400), st.sampled_from(["城市", "a", ""])),
    st.text(any_char, max_size=80),
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(query_soup)
def test_the_query_parser_never_fails(text):
    if re.search("[\ud800-\udfff]", text):
        # Invalid Unicode never reaches the parser: the request is refused first.
        with pytest.raises(InvalidParameter):
            SearchRequest.from_params(get_list_from_mapping({"q": text}), Limits(max_query_length=10_000))
        return
    parse(text)
    compiled = compile_query(text)
    compiled.words(), compiled.substring(), compiled.any_word(), compiled.negatives(), compiled.highlight_terms()
    try:
        check_query(text, 32)
    except InvalidParameter as exc:
        assert exc.param == "q"


@PROPERTY
@given(query_soup)
def test_any_query_is_answered_without_a_5xx(client, text):
    q = text.encode("utf-8", "replace").decode("utf-8")[:256]
    for path in ("/api/search", "/search", "/doc/seed-1"):
        response = client.get(path, query_string={"q": q})
        assert response.status_code in (200, 400), (path, response.status_code)


def test_the_snapshot_keeps_decoded_long_articles_only(tmp_path, jieba_cache):
    from search_service.engine.searcher import EngineOptions, SearchEngine

    long_body = "智慧城市建设与园区规划。" * 5000  # 60,000 characters
    indexer.rebuild(IndexStore(tmp_path / "index"),
                    [Article("long", "长文章 智慧城市", long_body), Article("short", "短文章 智慧城市", "智慧城市。")])
    engine = SearchEngine(tmp_path / "index", EngineOptions())
    try:
        cache = engine.snapshot().large_articles
        first = engine.search(SearchRequest(q="智慧城市"))
        assert {hit.id for hit in first.hits} == {"long", "short"}
        assert len(cache._items) == 1 and next(iter(cache._items.values()))["body"] == long_body
        cache.clear()
        assert engine.search(SearchRequest(q="智慧城市", page_size=11)).hits[0].snippet  # decoded again
        assert len(cache._items) == 1
    finally:
        engine.close()


@PROPERTY
@given(records=st.lists(st.fixed_dictionaries({"id": odd_id, "title": st.one_of(st.just("城市发展"), field_value),
                                               "body": st.one_of(st.just("智慧城市"), field_value)},
                                              optional={"url": field_value, "category": field_value}),
                        min_size=1, max_size=4),
       ndjson=st.booleans())
def test_any_batch_is_all_or_nothing(server, records, ndjson):
    unseed_whoosh()
    paths = ["/api/documents/" + quote(str(r["id"]).encode("utf-8", "surrogatepass"), safe="") for r in records]
    before = [raw(server, "GET", path) for path in paths]
    count = json.loads(raw(server, "GET", "/api/stats")[1])["documents"]
    if ndjson:
        body, headers = "\n".join(_body_text(r, 50) for r in records), NDJSON
    else:
        body, headers = "[" + ", ".join(_body_text(r, 50) for r in records) + "]", JSON
    status, answer = raw(server, "POST", "/api/documents", body.encode("utf-8", "surrogatepass"), headers)
    assert status < 500, answer[:300]
    if 200 <= status < 300:
        assert sorted(json.loads(answer)["upserted"]) == sorted({r["id"] for r in records})
        for path in paths:
            assert raw(server, "GET", path)[0] == 200
        for page in ("/", "/search?q=%E5%9F%8E%E5%B8%82", "/api/search", "/healthz"):
            assert raw(server, "GET", page)[0] == 200, page
        for path in dict.fromkeys(paths):
            assert raw(server, "DELETE", path, headers=AUTH)[0] == 200
    else:
        assert [raw(server, "GET", path) for path in paths] == before
        assert json.loads(raw(server, "GET", "/api/stats")[1])["documents"] == count


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(record=st.fixed_dictionaries({"id": odd_id, "title": field_value, "body": field_value},
                                    optional={name: field_value for name in ("category", "date", "url", "source")}))
def test_what_ingest_accepts_can_be_stored_and_shown(record):
    """The shared boundary: an accepted article is valid Unicode without control characters
    (the body may keep line breaks), within the id rules; a refused one says why."""
    record = {k: ("[[1]]" if v in (NESTED, HUGE) else v) for k, v in record.items()}
    ingest = Ingest(log_problems=False, allow_untitled=True)
    articles = ingest.validate_records([record])
    if not articles:
        assert ingest.report.problems and ingest.report.problems[0].reason
        return
    article = articles[0]
    assert article.id == record["id"] and 0 < len(article.id) <= 256
    for name, value in article.to_json().items():
        if isinstance(value, str):
            value.encode("utf-8")  # no lone surrogate
            allowed = "\n" if name == "body" else ""
            assert not re.search("[\x00-\x1f\x7f-\x9f]", value.replace(allowed, "") if allowed else value), name


@pytest.mark.parametrize("path, expected", [
    ("/api//search?q=%E5%9F%8E", "/api/search?q=%E5%9F%8E"),  # merged slashes
    ("/api/documents//seed-1", "/api/documents/seed-1"),
])
def test_redirects_never_name_the_host_the_client_sent(server, path, expected):
    # werkzeug builds its routing redirects from the Host header: a link with Host: evil.example
    # redirected readers (and shared caches) off the site.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", path, headers={"Host": "evil.example"})
        response = conn.getresponse()
        body = response.read().decode()
    finally:
        conn.close()
    assert 300 <= response.status < 400, response.status
    location = response.getheader("Location")
    assert "evil.example" not in location
    assert "evil.example" not in body  # nor the page that says where to go
    assert location == expected
