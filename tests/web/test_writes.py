"""The write API: auth, validation, limits, visibility on return, and a concurrent search load."""

from __future__ import annotations

import json
import threading
import time

import pytest

from search_service.article import Article
from search_service.engine import indexer
from search_service.engine.store import IndexStore, publish_lock
from search_service.web import close_app, create_app, writer_of

from ..helpers import make_settings

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def article(doc_id: str, title: str = "智慧城市试点", body: str = "高新区推进智慧城市建设。") -> dict:
    return {"id": doc_id, "title": title, "body": body, "category": "智慧城市案例", "date": "2025-01-02"}


@pytest.fixture()
def app(tmp_path, jieba_cache):
    indexer.rebuild(IndexStore(tmp_path / "index"), [Article("seed", "种子文章", "园区规划")])
    app = create_app(make_settings(tmp_path / "index", jieba_cache, api_tokens=(TOKEN, "other"),
                                   commit_delay=0.05, write_batch_max=5, write_body_max_mb=1))
    yield app
    close_app(app)


@pytest.fixture()
def client(app):
    return app.test_client()


def total(client, q):
    return client.get("/api/search", query_string={"q": q}).get_json()["total"]


class TestAuth:
    def test_writes_are_off_without_tokens(self, tmp_path, jieba_cache):
        client = create_app(make_settings(tmp_path / "none", jieba_cache)).test_client()
        response = client.put("/api/documents/1", json=article("1"), headers=AUTH)
        assert response.status_code == 403
        assert "SEARCH_SERVICE_API_TOKENS" in response.get_json()["error"]["message"]

    @pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                                         {"Authorization": "Basic " + TOKEN}])
    def test_missing_or_wrong_token_is_401(self, client, headers):
        response = client.put("/api/documents/1", json=article("1"), headers=headers)
        assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"
        assert total(client, "智慧城市") == 0

    def test_a_token_with_non_ascii_characters_matches_the_bytes_sent(self, tmp_path, jieba_cache):
        token = "令牌-tök"
        app = create_app(make_settings(tmp_path / "index", jieba_cache, api_tokens=(token,), commit_delay=0.05))
        try:
            client = app.test_client()
            # As on the wire: the UTF-8 bytes, which the WSGI server hands over decoded as Latin-1.
            sent = ("Bearer " + token).encode("utf-8").decode("latin-1")
            response = client.put("/api/documents/1", json=article("1"), headers={"Authorization": sent})
            assert response.status_code == 200, response.get_json()
            wrong = ("Bearer " + token[:-1] + "o").encode("utf-8").decode("latin-1")
            response = client.put("/api/documents/2", json=article("2"), headers={"Authorization": wrong})
            assert response.status_code == 401
        finally:
            close_app(app)

    def test_search_stays_public(self, client):
        assert client.get("/api/search?q=园区").status_code == 200


class TestWrites:
    def test_put_is_visible_when_it_returns(self, client):
        response = client.put("/api/documents/n1", json=article("n1"), headers=AUTH)
        body = response.get_json()
        assert response.status_code == 200 and body["status"] == "committed" and body["visible"] is True
        assert total(client, "智慧城市") == 1
        client.put("/api/documents/n1", json=article("n1", title="园区规划新篇", body="园区规划"), headers=AUTH)
        assert total(client, "智慧城市") == 0
        assert client.get("/api/documents/n1").get_json()["title"] == "园区规划新篇"

    def test_delete(self, client):
        client.put("/api/documents/n2", json=article("n2"), headers=AUTH)
        response = client.delete("/api/documents/n2", headers=AUTH)
        assert response.status_code == 200 and response.get_json()["deleted"] == ["n2"]
        assert client.get("/api/documents/n2").status_code == 404
        assert client.delete("/api/documents/n2", headers=AUTH).status_code == 404

    def test_batch_json_and_ndjson(self, client):
        response = client.post("/api/documents", json=[article("b1"), article("b2")], headers=AUTH)
        assert response.status_code == 200 and response.get_json()["upserted"] == ["b1", "b2"]
        ndjson = "\n".join(json.dumps(article(f"c{i}"), ensure_ascii=False) for i in range(3))
        response = client.post("/api/documents", data=ndjson.encode(), headers={**AUTH,
                               "Content-Type": "application/x-ndjson"})
        assert response.status_code == 200
        assert total(client, "智慧城市") == 5

    def test_invalid_batch_is_rejected_whole(self, client):
        bad = [article("ok"), {"id": "x", "title": "", "body": "正文"}, {"id": "y", "title": "t", "body": "b",
               "date": "2025-13-01"}, "not an object", article("ok")]
        response = client.post("/api/documents", json=bad, headers=AUTH)
        error = response.get_json()["error"]
        assert response.status_code == 400 and error["code"] == "invalid_parameter"
        assert [p["index"] for p in error["problems"]] == [1, 2, 3, 4]
        assert "duplicate" in error["problems"][-1]["reason"]
        assert total(client, "智慧城市") == 0

    def test_limits(self, client):
        too_many = client.post("/api/documents", json=[article(str(i)) for i in range(6)], headers=AUTH)
        assert too_many.status_code == 413 and "write_batch_max" in too_many.get_json()["error"]["message"]
        huge = client.put("/api/documents/h", json=article("h", body="字" * 400_000), headers=AUTH)
        assert huge.status_code == 413
        wrong_type = client.put("/api/documents/t", data="title=x", headers={**AUTH,
                                "Content-Type": "application/x-www-form-urlencoded"})
        assert wrong_type.status_code == 415
        mismatch = client.put("/api/documents/a", json=article("b"), headers=AUTH)
        assert mismatch.status_code == 400 and mismatch.get_json()["error"]["param"] == "id"
        not_json = client.put("/api/documents/a", data=b"{", headers={**AUTH, "Content-Type": "application/json"})
        assert not_json.status_code == 400

    def test_concurrent_writes_are_grouped_and_searches_never_fail(self, app, client):
        errors: list[str] = []
        stop = threading.Event()

        def search_loop():
            local = app.test_client()
            while not stop.is_set():
                response = local.get("/api/search?q=智慧城市")
                if response.status_code != 200:
                    errors.append(response.get_data(as_text=True))

        def write(i: int):
            response = app.test_client().put(f"/api/documents/w{i}", json=article(f"w{i}"), headers=AUTH)
            if response.status_code != 200:
                errors.append(response.get_data(as_text=True))

        searchers = [threading.Thread(target=search_loop) for _ in range(3)]
        writers = [threading.Thread(target=write, args=(i,)) for i in range(20)]
        for thread in searchers + writers:
            thread.start()
        for thread in writers:
            thread.join()
        stop.set()
        for thread in searchers:
            thread.join()
        assert errors == []
        assert total(client, "智慧城市") == 20
        assert writer_of(app).commits < 20  # grouped into fewer commits

    def test_full_queue_is_503_with_retry_after(self, tmp_path, jieba_cache):
        store = IndexStore(tmp_path / "busy")
        indexer.rebuild(store, [Article("seed", "种子", "正文")])
        app = create_app(make_settings(store.root, jieba_cache, api_tokens=(TOKEN,), write_queue_max=1,
                                       commit_delay=0))
        writer = writer_of(app)
        results: list[int] = []

        def put(doc_id: str):
            results.append(app.test_client().put(f"/api/documents/{doc_id}", json=article(doc_id),
                                                 headers=AUTH).status_code)

        try:
            # Holding the publish lock exclusively stalls the writer inside its commit.
            with publish_lock(store, shared=False):
                first = threading.Thread(target=put, args=("1",))
                first.start()
                _wait_for(lambda: writer.depth == 0 and first.is_alive())  # taken by the writer
                time.sleep(0.2)
                second = threading.Thread(target=put, args=("2",))
                second.start()
                _wait_for(lambda: writer.depth == 1)  # waits in the queue's only slot
                response = app.test_client().put("/api/documents/3", json=article("3"), headers=AUTH)
            first.join()
            second.join()
        finally:
            writer.close()
        assert response.status_code == 503 and response.headers["Retry-After"]
        assert response.get_json()["error"]["code"] == "write_queue_full"
        assert results == [200, 200]


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)
