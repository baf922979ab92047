"""HTTP semantics scripts rely on (issue 27): credentials (RFC 9110 §15.5.2/§15.5.4, RFC 6750),
methods a path does not have (405 + Allow, decided before credentials), the limits the document
states being the ones enforced, and public errors that never show where the server keeps its files."""

from __future__ import annotations

import logging

import pytest

from search_service.article import Article
from search_service.engine import indexer
from search_service.engine.store import IndexStore
from search_service.errors import WriteFailed
from search_service.web import close_app, create_app
from search_service.web.openapi import openapi_document

from ..helpers import make_settings

TOKEN = "semantics-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ARTICLE = {"title": "智慧城市试点", "body": "高新区推进智慧城市建设。"}


@pytest.fixture(scope="module")
def writable(tmp_path_factory, jieba_cache):
    index_dir = tmp_path_factory.mktemp("semantics-index")
    indexer.rebuild(IndexStore(index_dir), [Article("seed", "园区规划纲要", "高新区园区规划。", category="园区规划")])
    app = create_app(make_settings(index_dir, jieba_cache, api_tokens=(TOKEN,), commit_delay=0.0))
    yield app
    close_app(app)


@pytest.fixture(scope="module")
def read_only(tmp_path_factory, jieba_cache):
    """No api_tokens: writes are switched off."""
    index_dir = tmp_path_factory.mktemp("read-only-index")
    indexer.rebuild(IndexStore(index_dir), [Article("seed", "园区规划纲要", "高新区园区规划。")])
    app = create_app(make_settings(index_dir, jieba_cache))
    yield app
    close_app(app)


# --------------------------------------------------------------------------- credentials


@pytest.mark.parametrize("headers", [{}, {"Authorization": TOKEN}, {"Authorization": "Bearer"},
                                     {"Authorization": "Basic " + TOKEN}])
def test_missing_or_malformed_credentials_are_401_with_a_bearer_challenge(writable, headers):
    response = writable.test_client().put("/api/documents/a1", json=ARTICLE, headers=headers)
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="search_service"'
    assert "Authorization: Bearer <token>" in response.get_json()["error"]["message"]


def test_a_token_the_server_does_not_know_is_401_invalid_token(writable):
    response = writable.test_client().delete("/api/documents/seed", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="search_service"') and 'error="invalid_token"' in challenge
    assert writable.test_client().get("/api/documents/seed").status_code == 200  # nothing was deleted


def test_the_write_token_writes(writable):
    client = writable.test_client()
    assert client.put("/api/documents/a2", json=ARTICLE, headers=AUTH).status_code == 200
    assert client.get("/api/documents/a2").get_json()["title"] == ARTICLE["title"]


def test_writes_switched_off_ask_for_credentials_then_refuse_them(read_only):
    client = read_only.test_client()
    asked = client.put("/api/documents/a3", json=ARTICLE)
    assert asked.status_code == 401 and asked.headers["WWW-Authenticate"].startswith("Bearer")
    assert "disabled" in asked.get_json()["error"]["message"]
    refused = client.put("/api/documents/a3", json=ARTICLE, headers=AUTH)
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "writes_disabled"
    assert "WWW-Authenticate" not in refused.headers


# --------------------------------------------------------------------------- methods


@pytest.mark.parametrize("method", ["PUT", "DELETE", "POST", "PATCH"])
@pytest.mark.parametrize("headers", [{}, AUTH], ids=["no credentials", "write token"])
def test_a_method_the_related_articles_url_lacks_is_405_before_credentials(writable, method, headers):
    response = writable.test_client().open("/api/documents/seed/similar", method=method, json=ARTICLE,
                                           headers=headers)
    assert response.status_code == 405, response.get_json()
    assert response.get_json()["error"]["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    assert "WWW-Authenticate" not in response.headers
    assert writable.test_client().get("/api/documents/seed/similar").status_code == 200
    assert writable.test_client().get("/api/documents/seed").status_code == 200  # not overwritten, not deleted


def test_options_lists_exactly_the_documented_methods(writable):
    document = openapi_document(writable.config["SETTINGS"])
    client = writable.test_client()
    for path, url in (("/api/documents/{doc_id}", "/api/documents/seed"),
                      ("/api/documents/{doc_id}/similar", "/api/documents/seed/similar"),
                      ("/api/documents", "/api/documents"), ("/api/search", "/api/search")):
        allowed = set(client.options(url).headers["Allow"].split(", ")) - {"HEAD", "OPTIONS"}
        assert allowed == {method.upper() for method in document["paths"][path]}, path


def test_an_id_with_similar_inside_it_is_still_an_id(writable):
    client = writable.test_client()
    assert client.put("/api/documents/a/similar/b", json=ARTICLE, headers=AUTH).status_code == 200
    assert client.get("/api/documents/a/similar/b").get_json()["id"] == "a/similar/b"
    assert client.delete("/api/documents/a/similar/b", headers=AUTH).status_code == 200


# --------------------------------------------------------------------------- the documented limits are enforced


def _schema(document: dict, path: str, name: str) -> dict:
    return next(p["schema"] for p in document["paths"][path]["get"]["parameters"] if p["name"] == name)


def _bound(schema: dict) -> int:
    return next(s for s in schema.get("anyOf", [schema]) if s.get("type") == "integer")["maximum"]


@pytest.mark.parametrize(("path", "name", "fixed", "setting"), [
    ("/api/search", "page_size", {}, "max_page_size"),
    ("/api/search", "page", {"page_size": "1"}, "max_result_window"),
    ("/api/suggest", "limit", {}, "max_limit"),
    ("/api/documents/{doc_id}/similar", "limit", {}, "max_limit"),
])
def test_every_documented_maximum_is_the_enforced_one(writable, path, name, fixed, setting):
    document = openapi_document(writable.config["SETTINGS"])
    top = _bound(_schema(document, path, name))
    url = path.replace("{doc_id}", "seed")
    client = writable.test_client()
    assert client.get(url, query_string={**fixed, name: str(top)}).status_code == 200
    over = client.get(url, query_string={**fixed, name: str(top + 1)})
    error = over.get_json()["error"]
    assert over.status_code == 400 and error["param"] == name and setting in error["message"]


def test_parameters_the_document_says_may_be_empty_are_accepted_empty(writable):
    document = openapi_document(writable.config["SETTINGS"])
    blank_ok = [p["name"] for p in document["paths"]["/api/search"]["get"]["parameters"]
                if any(s.get("pattern", "").endswith("*$") and s.get("type") == "string"
                       for s in p["schema"].get("anyOf", [p["schema"]]))
                or "" in p["schema"].get("enum", [])]
    assert {"page", "page_size", "date_from", "date_to", "sort", "correct"} <= set(blank_ok)
    client = writable.test_client()
    for name in blank_ok:
        response = client.get("/api/search", query_string={name: ""})
        assert response.status_code == 200, (name, response.get_json())


def test_query_length_counts_the_text_between_surrounding_whitespace(writable):
    settings = writable.config["SETTINGS"]
    client = writable.test_client()
    longest = "园" * settings.max_query_length
    assert client.get("/api/search", query_string={"q": f"  {longest}\t"}).status_code == 200
    refused = client.get("/api/search", query_string={"q": longest + "区"})
    assert refused.status_code == 400 and "max_query_length" in refused.get_json()["error"]["message"]


def test_a_click_is_documented_as_the_form_the_pages_send(writable):
    document = openapi_document(writable.config["SETTINGS"])
    body = document["paths"]["/api/click"]["post"]["requestBody"]["content"]
    assert list(body) == ["application/x-www-form-urlencoded"]
    client = writable.test_client()
    assert client.post("/api/click", data={"q": "园区", "id": "seed", "rank": "1"}).status_code == 204
    blank = client.post("/api/click", data={"q": "  ", "id": "seed", "rank": "1"})
    assert blank.status_code == 400 and blank.get_json()["error"]["param"] == "q"


# --------------------------------------------------------------------------- no server paths in public errors


def test_without_an_index_the_public_hears_unavailable_and_healthz_hears_why(tmp_path, jieba_cache, caplog):
    folder = tmp_path / "no-index-here"
    app = create_app(make_settings(folder, jieba_cache))
    try:
        client = app.test_client()
        with caplog.at_level(logging.WARNING):
            for url in ("/api/search?q=园区", "/api/suggest?q=园", "/api/stats", "/api/documents/x"):
                response = client.get(url)
                error = response.get_json()["error"]
                assert response.status_code == 503 and error["code"] == "index_unavailable", url
                assert str(tmp_path) not in response.get_data(as_text=True), url
                assert "not available" in error["message"] and response.headers["Retry-After"]
            page = client.get("/search?q=园区")
            assert page.status_code == 503 and str(tmp_path) not in page.get_data(as_text=True)
            assert "搜索服务暂时不可用" in page.get_data(as_text=True)
            health = client.get("/healthz")
        reason = health.get_json()["error"]["message"]
        assert health.status_code == 503 and "No index in <index_dir>" in reason and str(tmp_path) not in reason
        assert any(str(folder) in record.getMessage() for record in caplog.records)  # the operator's log has it
    finally:
        close_app(app)


def test_a_server_error_never_shows_a_server_path(tmp_path, jieba_cache):
    index_dir = tmp_path / "index"
    indexer.rebuild(IndexStore(index_dir), [Article("seed", "园区规划纲要", "高新区园区规划。")])
    app = create_app(make_settings(index_dir, jieba_cache))

    @app.get("/api/test-write-failure")
    def fail():  # what the writer says when the disk refuses a commit
        raise WriteFailed(f"Could not write the index (No space left on device); nothing of this request was "
                          f"written. Check free disk space and the permissions of {index_dir.resolve()}. "
                          "Details in /var/log/search/x.log.")

    try:
        response = app.test_client().get("/api/test-write-failure")
        message = response.get_json()["error"]["message"]
        assert response.status_code == 503 and "nothing of this request was written" in message
        assert "permissions of <index_dir>" in message and "in <path>." in message
        assert str(tmp_path) not in message and "/var/log" not in message
    finally:
        close_app(app)


def test_client_errors_keep_the_clients_own_words(writable):
    """A 4xx quotes what the client sent (a path it asked for), never rewritten."""
    response = writable.test_client().get("/api/tmp/x/y")
    assert response.status_code == 404 and "/api/tmp/x/y" in response.get_json()["error"]["message"]
