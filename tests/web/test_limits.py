"""Abuse limits: per-client rate limits (429 + Retry-After), X-Forwarded-For from trusted proxies
only, bounded work per request (each limit named in its error), prefix queries, security headers,
and no debug pages or stack traces."""

from __future__ import annotations

import itertools
import os
import threading
import time

import jsonschema
import pytest
from limits import parse as parse_limit

from search_service.engine import query as q
from search_service.engine.compiler import compile_query
from search_service.engine.syntax import Term, check_query, parse
from search_service.errors import InvalidParameter
from search_service.web import close_app, create_app
from search_service.web.limits import (
    SweepingMemoryStorage,
    TrustedProxies,
    client_from_forwarded,
    parse_networks,
    shared_storage_uri,
)
from search_service.web.openapi import openapi_document
from search_service.web.rate_counters import FILE_SIZE, CounterFileStorage

TOKEN = "limits-test-token"
_addresses = (f"198.51.100.{i}" for i in itertools.count(1))


def new_client(app, address: str | None = None):
    """A test client that is its own rate-limit bucket (a fresh address unless given)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address or next(_addresses)
    return client


@pytest.fixture(scope="module")
def limited_app(sample_settings):
    """The sample index behind a small limit (3 per minute), with writes enabled and a trusted proxy."""
    app = create_app(sample_settings.replace(rate_limit="3 per minute", api_tokens=(TOKEN,),
                                             trusted_proxies=("10.0.0.1", "fd00::/8")))
    yield app
    close_app(app)


def error_of(response) -> dict:
    assert response.is_json, response.get_data(as_text=True)[:200]
    body = response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["status"] == response.status_code
    return body["error"]


# --------------------------------------------------------------------------- rate limit


def test_over_the_limit_is_429_in_the_error_shape_with_retry_after(limited_app):
    client = new_client(limited_app)
    for _ in range(3):
        assert client.get("/api/search?q=园区").status_code == 200
    response = client.get("/api/search?q=园区")
    assert response.status_code == 429
    error = error_of(response)
    assert error["code"] == "rate_limited"
    assert "rate_limit" in error["message"] and "3 per 1 minute" in error["message"]
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    # The response is what the OpenAPI document promises for 429.
    document = openapi_document(limited_app.config["SETTINGS"])
    assert document["paths"]["/api/search"]["get"]["responses"]["429"] == {
        "$ref": "#/components/responses/RateLimited"}
    jsonschema.validate(response.get_json(), document["components"]["schemas"]["Error"])


def test_pages_get_a_chinese_429_page(limited_app):
    client = new_client(limited_app)
    for _ in range(3):
        assert client.get("/search?q=园区").status_code == 200
    response = client.get("/search?q=园区")
    assert response.status_code == 429
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "请求过于频繁" in html and "秒后再试" in html
    assert int(response.headers["Retry-After"]) >= 1


def test_the_limit_is_per_client_and_shared_by_the_public_endpoints(limited_app):
    client = new_client(limited_app)
    assert client.get("/api/search?q=园区").status_code == 200
    assert client.get("/api/suggest?q=园区").status_code == 200
    assert client.get("/search").status_code == 200
    assert client.get("/api/suggest?q=园区").status_code == 429  # one budget across endpoints
    assert client.get("/doc/anything").status_code == 429
    assert new_client(limited_app).get("/api/search?q=园区").status_code == 200  # another client


def test_monitoring_and_static_files_are_never_limited(limited_app):
    client = new_client(limited_app)
    for _ in range(4):
        client.get("/api/stats")
    assert client.get("/api/stats").status_code == 429
    for _ in range(5):
        assert client.get("/healthz").status_code == 200
        assert client.get("/metrics").status_code == 200
        with client.get("/static/widget.js") as response:
            assert response.status_code == 200


def test_writes_with_a_valid_token_are_exempt_without_one_they_count(limited_app):
    client = new_client(limited_app)
    for _ in range(3):
        client.get("/api/search?q=x")
    # Valid token: not limited (415 because the body is not JSON, so nothing is written).
    for _ in range(3):
        response = client.put("/api/documents/x", data="not json", content_type="text/plain",
                              headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 415
    # No or a wrong token: counted like any public request, which throttles token guessing.
    response = client.put("/api/documents/x", data="{}", content_type="application/json",
                          headers={"Authorization": "Bearer guess"})
    assert response.status_code == 429
    assert error_of(response)["code"] == "rate_limited"


def test_in_memory_counters_start_no_threads_and_still_expire(limited_app, monkeypatch):
    storage = limited_app.extensions["rate_limiter"].storage
    assert isinstance(storage, SweepingMemoryStorage)
    starts = []
    monkeypatch.setattr(threading.Thread, "start", lambda self: starts.append(self))
    client = new_client(limited_app)
    for _ in range(3):
        assert client.get("/api/search?q=a").status_code == 200
        time.sleep(0.02)  # limits' own storage would start a timer thread for each of these
    assert starts == []
    storage.incr("expiring", 0.01)
    time.sleep(0.02)
    storage._last_sweep = 0.0
    storage.incr("other", 60)
    assert "expiring" not in storage.storage and "other" in storage.storage


def test_an_empty_rate_limit_means_no_limit(app):
    client = new_client(app)
    assert all(client.get("/api/suggest?q=园").status_code == 200 for _ in range(80))


def test_a_bad_rate_limit_setting_stops_start_up_naming_it(sample_settings):
    from search_service.errors import ConfigError

    with pytest.raises(ConfigError, match="rate_limit"):
        create_app(sample_settings.replace(rate_limit="lots per day"))
    with pytest.raises(ConfigError, match="trusted_proxies"):
        create_app(sample_settings.replace(trusted_proxies=("not-an-address",)))


# --------------------------------------------------------------------------- client address


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(limited_app):
    proxy = new_client(limited_app, "10.0.0.1")
    # Through the trusted proxy, each forwarded client has its own budget.
    for _ in range(3):
        assert proxy.get("/api/search?q=a", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 200
    assert proxy.get("/api/search?q=a", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 429
    assert proxy.get("/api/search?q=a", headers={"X-Forwarded-For": "203.0.113.8"}).status_code == 200
    # A client spoofing the left of the chain is still itself (the proxy appends the real address).
    spoofed = "1.2.3.4, 203.0.113.7"
    assert proxy.get("/api/search?q=a", headers={"X-Forwarded-For": spoofed}).status_code == 429

    # From anyone else the header is ignored: rotating it does not buy more requests.
    direct = new_client(limited_app, "192.0.2.55")
    statuses = [direct.get("/api/search?q=a", headers={"X-Forwarded-For": f"203.0.113.{100 + i}"}).status_code
                for i in range(5)]
    assert statuses == [200, 200, 200, 429, 429]


def test_client_from_forwarded_walks_back_through_trusted_hops():
    networks = parse_networks(["10.0.0.0/8", "::1"])
    assert client_from_forwarded("10.0.0.1", "203.0.113.9", networks) == "203.0.113.9"
    assert client_from_forwarded("10.0.0.1", "6.6.6.6, 203.0.113.9, 10.1.2.3", networks) == "203.0.113.9"
    assert client_from_forwarded("10.0.0.1", "", networks) == "10.0.0.1"
    assert client_from_forwarded("10.0.0.1", "garbage, 203.0.113.9", networks) == "203.0.113.9"
    assert client_from_forwarded("10.0.0.1", "203.0.113.9, garbage", networks) == "10.0.0.1"
    assert client_from_forwarded("10.0.0.1", "[2001:db8::1]:443", networks) == "2001:db8::1"
    assert client_from_forwarded("192.0.2.1", "203.0.113.9", networks) == "192.0.2.1"  # untrusted peer
    assert client_from_forwarded("::1", "2001:db8::5", networks) == "2001:db8::5"
    assert client_from_forwarded("10.0.0.1", "203.0.113.9", ()) == "10.0.0.1"


def test_ipv6_clients_share_a_budget_per_64(limited_app):
    one = new_client(limited_app, "2001:db8:1:2::10")
    other_in_same_64 = new_client(limited_app, "2001:db8:1:2:ffff::1")
    for _ in range(3):
        assert one.get("/api/search?q=a").status_code == 200
    assert other_in_same_64.get("/api/search?q=a").status_code == 429
    assert new_client(limited_app, "2001:db8:1:3::10").get("/api/search?q=a").status_code == 200


def test_proxy_headers_from_untrusted_peers_do_not_reach_the_app():
    seen: list[dict] = []

    def inner(environ, start_response):
        seen.append(dict(environ))
        return []

    middleware = TrustedProxies(inner, parse_networks(["10.0.0.1"]))
    headers = {"HTTP_X_FORWARDED_FOR": "1.2.3.4", "HTTP_FORWARDED": "for=1.2.3.4", "HTTP_X_REAL_IP": "1.2.3.4"}
    middleware({"REMOTE_ADDR": "192.0.2.1", **headers}, None)
    middleware({"REMOTE_ADDR": "10.0.0.1", **headers}, None)
    untrusted, trusted = seen
    assert untrusted["REMOTE_ADDR"] == "192.0.2.1" and not set(headers) & set(untrusted)
    assert trusted["REMOTE_ADDR"] == "1.2.3.4" and trusted["search_service.proxy_addr"] == "10.0.0.1"


# --------------------------------------------------------------------------- bounds


@pytest.mark.parametrize(("url", "setting"), [
    ("/api/search?q=" + " ".join(f"w{i}" for i in range(33)), "max_query_terms"),
    ("/api/search?q=" + "园" * 257, "max_query_length"),
    ("/api/suggest?q=" + "园" * 65, "max_suggest_length"),
    ("/search?q=" + " ".join(f"w{i}" for i in range(33)), "max_query_terms"),
])
def test_each_bound_is_a_400_naming_its_setting(client, url, setting):
    response = client.get(url)
    assert response.status_code == 400
    if url.startswith("/search"):  # a page: the message is shown on it
        assert setting in response.get_data(as_text=True)
        return
    error = error_of(response)
    assert error["code"] == "invalid_parameter" and error["param"] == "q"
    assert setting in error["message"]


@pytest.mark.parametrize("path", ["/api/search", "/api/suggest", "/search", "/search.csv", "/doc/seed-1",
                                  "/opensearch/suggest"])
@pytest.mark.parametrize(("q", "words"), [
    (["园区", "规划"], "given 2 times"),  # a repeated q was silently cut to its first value by some
    ("*园区", "leading wildcards"),
    ("(" * 70 + "园区", "the limit is 64"),
    ("园" * 300, "max_query_length"),
])
def test_every_endpoint_taking_q_refuses_the_same_way(client, path, q, words):
    response = client.get(path, query_string={"q": q})
    assert response.status_code == 400
    if path.startswith("/api/"):
        error = error_of(response)
        if path.endswith("suggest") and len(q) > 64:
            words = "max_suggest_length"  # suggestions take shorter text: that limit comes first
        assert error["param"] == "q" and words in error["message"]


def test_bounds_follow_the_settings(sample_settings):
    app = create_app(sample_settings.replace(max_query_terms=2, max_suggest_length=3))
    try:
        client = app.test_client()
        assert client.get("/api/search?q=园区 智慧").status_code == 200
        response = client.get("/api/search?q=园区 智慧 城市")
        assert response.status_code == 400 and "the limit is 2" in error_of(response)["message"]
        assert client.get("/api/suggest?q=园区规").status_code == 200
        assert "max_suggest_length" in error_of(client.get("/api/suggest?q=园区规划"))["message"]
        # Pages refuse the same way, as a page.
        page = client.get("/search?q=园区 智慧 城市")
        assert page.status_code == 400 and page.mimetype == "text/html"
    finally:
        close_app(app)


def test_request_bodies_are_capped(sample_settings):
    app = create_app(sample_settings.replace(api_tokens=(TOKEN,), write_body_max_mb=1))
    try:
        assert app.config["MAX_CONTENT_LENGTH"] == 1024 * 1024
        response = app.test_client().post("/api/documents", data=b"[" + b" " * (1024 * 1024 + 10) + b"]",
                                          content_type="application/json",
                                          headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 413
        assert "write_body_max_mb" in error_of(response)["message"]
    finally:
        close_app(app)


# --------------------------------------------------------------------------- prefix queries


def test_prefix_syntax():
    assert parse("智慧*") == Term("智慧", prefix=True)
    assert parse("title:智慧*") == Term("智慧", field="title", prefix=True)
    assert parse("a*b") == Term("a*b")  # only a trailing * is a wildcard
    assert parse("*abc") == Term("*abc")  # kept, and refused by check_query
    words = compile_query("智慧*").words()
    assert isinstance(words, q.Or) and all(isinstance(child, q.Prefix) for child in words.children)
    assert compile_query("iPhone*").prefixes() == [("title", "iphone"), ("body", "iphone")]
    assert compile_query("-高新* 园区").prefixes() == [("title", "高新"), ("body", "高新")]


@pytest.mark.parametrize("q", ["*abc", "*", "园区 *规划", "-*abc", "title:*abc", "(*abc OR 园区)"])
def test_leading_wildcards_are_refused(client, q):
    with pytest.raises(InvalidParameter, match="leading wildcards"):
        check_query(q, 32)
    response = client.get("/api/search", query_string={"q": q})
    assert response.status_code == 400
    assert "leading wildcards" in error_of(response)["message"]


def test_prefix_queries_match_words_starting_with_the_prefix(client):
    def search(q: str) -> dict:
        response = client.get("/api/search", query_string={"q": q})
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    prefix, word = search("智慧*"), search("智慧")
    assert prefix["relaxed"] is None
    assert prefix["total"] >= word["total"] > 0
    every = {h["id"] for h in client.get("/api/search?q=智慧*&page_size=100").get_json()["hits"]}
    assert {h["id"] for h in client.get("/api/search?q=智慧&page_size=100").get_json()["hits"]} <= every
    assert search("高新*")["total"] >= search("高新区")["total"] > 0
    # Traditional script and upper case fold like every query.
    assert search("高新區*")["total"] == search("高新区*")["total"]
    assert search("IPHONE*")["total"] == search("iphone*")["total"] > 0
    # Under NOT, a prefix removes every article with such a word.
    assert search("园区 -智慧*")["total"] <= search("园区")["total"] - 1


def test_a_prefix_expanding_too_far_is_refused_naming_the_limit(sample_settings):
    app = create_app(sample_settings.replace(max_prefix_terms=3))
    try:
        client = app.test_client()
        for url in ("/api/search?q=高*", "/api/suggest?q=高*", "/api/search?q=园区 OR -高*"):
            response = client.get(url)
            assert response.status_code == 400, url
            error = error_of(response)
            assert error["param"] == "q" and "max_prefix_terms" in error["message"] and "3" in error["message"]
        assert client.get("/api/search?q=智慧城*").status_code == 200
        assert client.get("/search?q=高*").status_code == 400
    finally:
        close_app(app)


# --------------------------------------------------------------------------- headers and errors


@pytest.mark.parametrize("url", ["/api/search?q=园区", "/search?q=园区", "/healthz", "/metrics", "/openapi.json",
                                 "/static/widget.js", "/api/nope", "/nope", "/doc/nope", "/api/search?page=0",
                                 "/help"])
def test_security_headers_on_every_response(client, url):
    with client.get(url) as response:
        response.get_data()
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response.headers["X-Frame-Options"] in ("DENY", "SAMEORIGIN")
    assert "frame-ancestors" in response.headers["Content-Security-Policy"]


def test_security_headers_on_429_and_writes(limited_app):
    client = new_client(limited_app)
    responses = [client.get("/api/search?q=a") for _ in range(4)] + [
        client.put("/api/documents/x", data="{}", content_type="application/json"),
        client.get("/search?q=a")]
    assert [r.status_code for r in responses][-3:] == [429, 429, 429]
    for response in responses:
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors" in response.headers["Content-Security-Policy"]


def test_json_is_never_framed_or_run(client):
    response = client.get("/api/search?q=园区")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_no_debug_mode_and_no_stack_trace_in_any_response(sample_settings, monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    app = create_app(sample_settings)
    try:
        assert not app.debug
        engine = app.extensions["search_engine"]

        def explode(*args, **kwargs):
            raise RuntimeError("secret internal detail /srv/index")

        monkeypatch.setattr(engine, "search", explode)
        monkeypatch.setattr(engine, "suggest", explode)
        client = app.test_client()
        for url in ("/api/search?q=x", "/search?q=x", "/api/suggest?q=x"):
            response = client.get(url)
            assert response.status_code == 500
            text = response.get_data(as_text=True)
            assert "secret internal detail" not in text and "Traceback" not in text and "RuntimeError" not in text
        assert error_of(client.get("/api/search?q=x"))["code"] == "internal_error"
    finally:
        close_app(app)


# --------------------------------------------------------------------------- the shared counter file


def _hit_shared_counter(path: str, hits: int, results) -> None:
    """One worker process: 4 threads hitting the same client's limit."""
    from limits import parse
    from limits.strategies import SlidingWindowCounterRateLimiter

    limiter = SlidingWindowCounterRateLimiter(CounterFileStorage(shared_storage_uri(path)))
    limit = parse("50 per 100 seconds")
    allowed = []

    def hit() -> None:
        allowed.extend(limiter.hit(limit, "client") for _ in range(hits))

    threads = [threading.Thread(target=hit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(sum(allowed))


@pytest.mark.processes
def test_the_shared_counters_let_exactly_the_limit_through_from_processes_and_threads_at_once(tmp_path):
    # 2 processes x 4 threads x 20 hits = 160 hits on one client limited to 50: check and count
    # are one step, so no two hits both see room for the 50th.
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    path = str(tmp_path / "rate-counters")
    workers = [context.Process(target=_hit_shared_counter, args=(path, 20, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    allowed = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)
    assert sum(allowed) == 50
    storage = CounterFileStorage(shared_storage_uri(path))
    key = parse_limit("50 per 100 seconds").key_for("client")
    assert storage.get_sliding_window(key, 100)[2] == 50  # every allowed hit counted, in one file
    assert storage.acquire_sliding_window_entry("other-client", 2, 100)
    assert storage.acquire_sliding_window_entry("other-client", 2, 100)
    assert not storage.acquire_sliding_window_entry("other-client", 2, 100)  # its own count, full
    assert not storage.acquire_sliding_window_entry("third", 1, 100, amount=2)  # more than the limit


def test_the_shared_file_keeps_its_size_and_every_recent_client_however_many_come(tmp_path):
    storage = CounterFileStorage(shared_storage_uri(str(tmp_path / "rate-counters")))
    clients = [f"client-{n}" for n in range(3000)]
    for client in clients:
        assert storage.acquire_sliding_window_entry(client, 5, 60)
    assert storage.acquire_sliding_window_entry(clients[0], 5, 60)
    assert os.path.getsize(tmp_path / "rate-counters") == FILE_SIZE  # fixed: nothing to sweep
    counts = [storage.get_sliding_window(client, 60)[2] for client in clients]
    assert counts[0] == 2 and counts[1:] == [1] * (len(clients) - 1)  # no client lost its count


def test_a_window_of_the_shared_file_slides_like_limits_own(tmp_path, monkeypatch):
    # The weighted count of limits' sliding window: the previous window's count scaled by how
    # much of it still overlaps the last `expiry` seconds, plus the current window's.
    storage = CounterFileStorage(shared_storage_uri(str(tmp_path / "rate-counters")))
    now = [1_000_000.0]  # the start of a 10-second window
    monkeypatch.setattr(time, "time", lambda: now[0])
    assert [storage.acquire_sliding_window_entry("c", 4, 10) for _ in range(5)] == [True] * 4 + [False]
    now[0] += 12.5  # a quarter into the next window: 4 x 0.75 = 3 still count
    assert storage.get_sliding_window("c", 10) == (4, 7.5, 0, 17.5)
    assert [storage.acquire_sliding_window_entry("c", 4, 10) for _ in range(2)] == [True, False]
    now[0] += 20  # two windows on: nothing counts
    assert storage.get_sliding_window("c", 10) == (0, 0.0, 0, 17.5)
    assert storage.acquire_sliding_window_entry("c", 4, 10, amount=4)
    storage.clear_sliding_window("c", 10)
    assert storage.get_sliding_window("c", 10)[2] == 0


def _damage(path: str, how: str) -> None:
    with open(path, "r+b") as handle:
        if how == "truncate":
            handle.truncate(50)
        else:
            handle.write(b"\x5a" * 4096)


@pytest.mark.parametrize("how", ["overwrite", "truncate", "delete"])
def test_a_damaged_counters_file_is_replaced_once_and_counting_goes_on(tmp_path, how, monkeypatch):
    monkeypatch.setattr(CounterFileStorage, "RECHECK_SECONDS", 0.0)  # a deleted file is seen at once
    path = str(tmp_path / "rate-counters")
    first, second = CounterFileStorage(shared_storage_uri(path)), CounterFileStorage(shared_storage_uri(path))  # two workers
    assert first.acquire_sliding_window_entry("client", 5, 60)
    assert second.acquire_sliding_window_entry("client", 5, 60)
    if how == "delete":
        os.unlink(path)
    else:
        _damage(path, how)
    assert first.acquire_sliding_window_entry("client", 5, 60)  # counts restart in the new table
    assert second.acquire_sliding_window_entry("client", 5, 60)  # sees the new table, no second repair
    assert (first.repairs, second.repairs) == ((0, 0) if how == "delete" else (1, 0))
    assert first.problem is None and second.problem is None
    assert first.get_sliding_window("client", 60)[2] == 2  # both counted in the one new table
    assert os.path.getsize(path) == FILE_SIZE
    assert first.check() and second.check()


def test_a_counters_file_that_cannot_be_made_falls_back_to_counting_per_process(tmp_path, sample_settings):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")  # the file would go below a regular file: it can never be created
    settings = sample_settings.replace(rate_limit="3 per minute",
                                       rate_limit_storage=shared_storage_uri(str(blocker / "rate-counters")))
    app = create_app(settings)
    try:
        client = new_client(app)
        statuses = [client.get("/api/search?q=园区").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]  # still limited, in this process's memory
        health = client.get("/healthz")
        assert health.status_code == 200
        body = health.get_json()
        assert body["status"] == "degraded" and "rate_limit" in body["degraded"]
        text = client.get("/metrics").get_data(as_text=True)
        assert 'search_service_degraded{component="rate_limit"} 1.0' in text
        assert 'search_service_degraded{component="analytics"} 0.0' in text
    finally:
        close_app(app)


def test_counting_goes_back_to_the_shared_file_once_it_can_be_made(tmp_path, sample_settings):
    blocker = tmp_path / "run"
    blocker.write_text("x")  # for now the counters file would go below a regular file
    settings = sample_settings.replace(rate_limit="3 per minute",
                                       rate_limit_storage=shared_storage_uri(str(blocker / "rate-counters")))
    app = create_app(settings)
    try:
        limiter = app.extensions["rate_limiter"]
        client = new_client(app)
        assert client.get("/api/search?q=园区").status_code == 200  # counted in memory meanwhile
        blocker.unlink()
        blocker.mkdir()  # the folder can be made now
        limiter.RECHECK_SECONDS = 0.0
        statuses = [client.get("/api/search?q=园区").status_code for _ in range(4)]
        # Back in the file, which starts from nothing: three more, then refused.
        assert statuses == [200, 200, 200, 429]
        assert (blocker / "rate-counters").exists() and limiter.storage.problem is None
        assert client.get("/healthz").get_json()["status"] == "ok"
    finally:
        close_app(app)


# --------------------------------------------------------------------------- costly endpoints


@pytest.fixture()
def costly_app(sample_settings):
    app = create_app(sample_settings.replace(rate_limit="1000 per minute", export_rate_limit="2 per minute",
                                             article_rate_limit="3 per minute", api_tokens=(TOKEN,)))
    yield app
    close_app(app)


def test_exports_have_their_own_lower_limit_per_client(costly_app):
    # /search.csv at 20/s within the public limit moved other clients' median search from 15 to 234 ms.
    client = new_client(costly_app)
    assert [client.get("/search.csv?q=园区").status_code for _ in range(3)] == [200, 200, 429]
    refused = client.get("/search.csv?q=园区")
    assert refused.status_code == 429 and "export_rate_limit" in refused.get_data(as_text=True)
    assert client.get("/api/search?q=园区").status_code == 200  # searches are not held back
    assert new_client(costly_app).get("/search.csv?q=园区").status_code == 200  # another client's own count
    scripted = new_client(costly_app)
    assert all(scripted.get("/search.csv?q=园区", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
               for _ in range(4))  # the site's own scripts are exempt, as from the public limit


def test_article_pages_and_article_json_share_one_limit_that_names_its_setting(costly_app):
    client = new_client(costly_app)
    doc_id = client.get("/api/search?q=园区").get_json()["hits"][0]["id"]
    statuses = [client.get(f"/doc/{doc_id}").status_code, client.get(f"/api/documents/{doc_id}").status_code,
                client.get(f"/api/documents/{doc_id}/similar").status_code]
    assert statuses == [200, 200, 200]
    response = client.get(f"/api/documents/{doc_id}")
    assert response.status_code == 429
    assert "article_rate_limit" in error_of(response)["message"]
    assert client.get("/api/search?q=园区").status_code == 200


def test_at_most_costly_concurrency_costly_requests_run_at_once(sample_settings, monkeypatch):
    from search_service.web import costly

    monkeypatch.setattr(costly, "WAIT_SECONDS", 0.2)
    app = create_app(sample_settings.replace(costly_concurrency=1))
    try:
        client = new_client(app)
        gate = app.extensions[costly.GATE_KEY]
        assert gate.acquire(timeout=1)  # an export already running in this worker
        try:
            busy = client.get("/search.csv?q=园区")
            assert busy.status_code == 503 and busy.headers["Retry-After"]
            assert "导出和文章页面太多" in busy.get_data(as_text=True)
            doc_id = client.get("/api/search?q=园区").get_json()["hits"][0]["id"]
            busy = client.get(f"/api/documents/{doc_id}")
            assert busy.status_code == 503 and error_of(busy)["code"] == "server_busy"
            assert "costly_concurrency" in error_of(busy)["message"] and busy.headers["Retry-After"]
            assert client.get("/api/search?q=园区").status_code == 200  # searches keep their threads
        finally:
            gate.release()
        assert client.get("/search.csv?q=园区").status_code == 200
        assert client.get("/search.csv?q=园区").status_code == 200  # the turn was given back
    finally:
        close_app(app)


def test_the_shared_file_keeps_plain_counters_too(tmp_path, monkeypatch):
    # The rest of limits' Storage interface (fixed windows): counts that expire after `expiry`.
    storage = CounterFileStorage(shared_storage_uri(str(tmp_path / "rate-counters")))
    now = [2_000_000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    assert [storage.incr("plain", 10) for _ in range(3)] == [1, 2, 3]
    assert storage.get("plain") == 3 and storage.get_expiry("plain") == now[0] + 10
    now[0] += 10.5
    assert storage.get("plain") == 0 and storage.incr("plain", 10) == 1  # expired: counted afresh
    storage.clear("plain")
    assert storage.get("plain") == 0 and storage.get("never-counted") == 0
    assert storage.acquire_sliding_window_entry("c", 1, 10)
    storage.reset()
    assert storage.get_sliding_window("c", 10)[2] == 0 and storage.repairs == 0  # a reset is no repair
