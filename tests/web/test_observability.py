"""Observability: access-log lines (no client IPs by default, never a token), /metrics content,
the log level setting."""

from __future__ import annotations

import logging
import re
import threading

import pytest

from search_service.web import ENGINE_KEY, access_log, close_app, create_app, writer_of
from search_service.web.access_log import ACCESS_LOGGER

TOKEN = "s3cret-observability-token"
LINE = re.compile(r"^method=(?P<method>\S+) path=(?P<path>\S+) status=(?P<status>\d{3}) "
                  r"duration_ms=(?P<ms>\d+\.\d)(?: results=(?P<results>\d+))?(?: client=(?P<client>\S+))?$")


@pytest.fixture()
def access_lines(caplog):
    """The access-log lines of the requests this test made (in its own thread, through the test
    client), parsed. A server another test left running in this worker process may log a late
    request (a browser's favicon) meanwhile: that line is another thread's."""
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    own_thread = threading.get_ident()

    def lines() -> list[dict]:
        parsed = []
        for record in caplog.records:
            if record.name == ACCESS_LOGGER and record.thread == own_thread:
                match = LINE.match(record.getMessage())
                assert match, record.getMessage()
                parsed.append(match.groupdict())
        return parsed

    return lines


def test_a_search_logs_method_path_status_duration_and_result_count(client, access_lines):
    body = client.get("/api/search?q=园区").get_json()
    (line,) = access_lines()
    assert line["method"] == "GET"
    assert line["path"] == "/api/search?q=%E5%9B%AD%E5%8C%BA"
    assert line["status"] == "200"
    assert float(line["ms"]) >= 0
    assert int(line["results"]) == body["total"] > 0
    assert line["client"] is None


def test_suggestions_and_pages_log_their_result_counts(client, access_lines):
    suggestions = client.get("/api/suggest?q=园区").get_json()["suggestions"]
    client.get("/search?q=园区")
    client.get("/api/stats")
    client.get("/api/search?page=0")
    suggest, page, stats, bad = access_lines()
    assert int(suggest["results"]) == len(suggestions) > 0
    assert int(page["results"]) > 0
    assert stats["results"] is None and stats["status"] == "200"
    assert bad["status"] == "400" and bad["results"] is None


def test_no_client_address_unless_asked(app, sample_settings, caplog, access_lines):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "203.0.113.77"
    client.get("/api/search?q=园区")
    assert access_lines()[-1]["client"] is None
    assert "203.0.113.77" not in caplog.text
    logging_app = create_app(sample_settings.replace(log_client_ip=True))
    try:
        client = logging_app.test_client()
        client.environ_base["REMOTE_ADDR"] = "203.0.113.78"
        client.get("/healthz")
        assert access_lines()[-1]["client"] == "203.0.113.78"
    finally:
        close_app(logging_app)


def test_rate_limiting_logs_no_client_address(sample_settings, caplog, access_lines):
    caplog.set_level(logging.DEBUG)  # every logger: nothing may name the client
    app = create_app(sample_settings.replace(rate_limit="1 per minute"))
    try:
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = "203.0.113.99"
        assert [client.get("/api/search?q=园区").status_code for _ in range(2)] == [200, 429]
        assert "203.0.113.99" not in caplog.text
        assert [line["status"] for line in access_lines()] == ["200", "429"]
    finally:
        close_app(app)


def test_the_write_token_and_write_query_strings_are_never_logged(sample_settings, tmp_path, caplog, access_lines):
    caplog.set_level(logging.DEBUG)  # every logger, every level
    from tests.helpers import SAMPLES, build_index, make_settings

    build_index(tmp_path / "index", [SAMPLES], default_category="高新院新闻")
    app = create_app(make_settings(tmp_path / "index", sample_settings.cache_dir, api_tokens=(TOKEN,),
                                   commit_delay=0.0))
    try:
        client = app.test_client()
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert client.put(f"/api/documents/obs-1?token={TOKEN}", json={"title": "观测", "body": "日志测试"},
                          headers=auth).status_code == 200
        assert client.put("/api/documents/obs-2", json={"title": "观测"}, headers=auth).status_code == 400
        assert client.put("/api/documents/obs-3", json={"title": "观测", "body": "x"},
                          headers={"Authorization": "Bearer wrong-" + TOKEN}).status_code == 401
        assert client.delete("/api/documents/obs-1", headers=auth).status_code == 200
        assert TOKEN not in caplog.text
        lines = access_lines()
        assert [(line["method"], line["path"], line["status"]) for line in lines] == [
            ("PUT", "/api/documents/obs-1", "200"), ("PUT", "/api/documents/obs-2", "400"),
            ("PUT", "/api/documents/obs-3", "401"), ("DELETE", "/api/documents/obs-1", "200")]
    finally:
        close_app(app)


def test_a_request_cannot_forge_log_lines(client, caplog, access_lines):
    client.get("/api/search?q=a%0Amethod=GET%20path=/admin%20status=200")
    client.get("/no\nsuch path")
    messages = [r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER]
    assert len(messages) == 2 and all("\n" not in m and " path=/admin" not in m for m in messages)
    assert len(access_lines()) == 2


def test_access_log_can_be_switched_off(sample_settings, access_lines):
    app = create_app(sample_settings.replace(access_log=False))
    try:
        app.test_client().get("/api/search?q=园区")
        assert access_lines() == []
    finally:
        close_app(app)


def test_log_level_comes_from_the_settings(sample_settings, access_lines):
    service = logging.getLogger("search_service")
    access = logging.getLogger(ACCESS_LOGGER)
    saved = service.level, access.level
    app = create_app(sample_settings.replace(log_level="WARNING"))
    try:
        access.setLevel(logging.NOTSET)  # inherit, as in production (the fixture had set INFO)
        assert service.level == logging.WARNING
        app.test_client().get("/api/search?q=园区")
        assert access_lines() == []
    finally:
        close_app(app)
        service.setLevel(saved[0])
        access.setLevel(saved[1])


# --------------------------------------------------------------------------- /metrics


def metric(text: str, name: str, **labels) -> float | None:
    """The value of one sample in Prometheus text format, or None."""
    label_text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = "^" + re.escape(name) + (r"\{" + re.escape(label_text) + r"\}" if labels else "") + r" (\S+)$"
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else None


def test_metrics_in_prometheus_text_format(sample_settings):
    app = create_app(sample_settings)
    try:
        client = app.test_client()
        client.get("/api/search?q=园区")
        client.get("/api/search?q=园区")  # from the result cache
        client.get("/api/search?page=0")
        client.get("/search?q=智慧")
        client.get("/nope")
        response = client.get("/metrics")
        assert response.status_code == 200
        assert response.mimetype == "text/plain" and "version=" in response.headers["Content-Type"]
        text = response.get_data(as_text=True)
        requests = "search_service_requests_total"
        assert metric(text, requests, endpoint="api.search", method="GET", status="200") == 2
        assert metric(text, requests, endpoint="api.search", method="GET", status="400") == 1
        assert metric(text, requests, endpoint="pages.search", method="GET", status="200") == 1
        assert metric(text, requests, endpoint="unmatched", method="GET", status="404") == 1
        assert metric(text, "search_service_request_duration_seconds_count", endpoint="api.search") == 3
        assert metric(text, "search_service_request_duration_seconds_bucket", endpoint="api.search",
                      le="+Inf") == 3
        stats = client.get("/api/stats").get_json()
        assert metric(text, "search_service_index_up") == 1
        assert metric(text, "search_service_index_documents") == stats["documents"]
        assert metric(text, "search_service_index_info", generation=stats["generation"]) == 1
        assert metric(text, "search_service_index_commit") == stats["commit"]
        hits = metric(text, "search_service_result_cache_hits_total")
        misses = metric(text, "search_service_result_cache_misses_total")
        assert hits >= 1 and misses >= 2
        assert metric(text, "search_service_result_cache_hit_ratio") == pytest.approx(hits / (hits + misses))
        assert metric(text, "search_service_write_queue_depth") == 0
        assert "_created" not in text
    finally:
        close_app(app)


def test_counters_kept_by_the_engine_match_it_under_concurrent_requests(sample_settings):
    app = create_app(sample_settings)
    try:
        def search(n: int) -> None:
            client = app.test_client()
            for i in range(30):
                client.get(f"/api/search?q=园区&page={1 + (n + i) % 3}")

        threads = [threading.Thread(target=search, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        text = app.test_client().get("/metrics").get_data(as_text=True)
        cache = app.extensions[ENGINE_KEY].cache
        # Each difference is added once, however many request threads copy it at the same time.
        assert metric(text, "search_service_result_cache_hits_total") == cache.hits
        assert metric(text, "search_service_result_cache_misses_total") == cache.misses
        assert cache.hits + cache.misses >= 180
    finally:
        close_app(app)


def test_each_app_has_its_own_registry(sample_settings):
    first, second = create_app(sample_settings), create_app(sample_settings)
    try:
        first.test_client().get("/healthz")
        text = second.test_client().get("/metrics").get_data(as_text=True)
        assert metric(text, "search_service_requests_total", endpoint="api.healthz", method="GET",
                      status="200") is None
    finally:
        close_app(first)
        close_app(second)


def test_metrics_without_an_index_and_with_a_writer(tmp_path, jieba_cache):
    from tests.helpers import make_settings

    app = create_app(make_settings(tmp_path / "empty", jieba_cache, api_tokens=(TOKEN,)))
    try:
        writer_of(app)  # started: its queue is reported
        text = app.test_client().get("/metrics").get_data(as_text=True)
        assert metric(text, "search_service_index_up") == 0
        assert metric(text, "search_service_index_documents") is None
        assert metric(text, "search_service_write_queue_depth") == 0
    finally:
        close_app(app)


def test_unknown_methods_do_not_grow_the_label_set(client):
    client.open("/api/search", method="BREW")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'method="BREW"' not in text and 'method="other"' in text


@pytest.mark.processes
def test_worker_files_not_yet_sized_are_skipped_not_a_failure(tmp_path):
    # A worker starting creates its metrics file empty and sizes it a moment later; a scrape, or
    # another worker registering its collector, in between must not fail (a worker died so).
    import subprocess
    import sys

    from prometheus_client import CollectorRegistry, generate_latest

    from search_service.web.metrics import _WorkerFilesCollector

    script = ("from prometheus_client import Counter; "
              "Counter('search_service_probe', 'probe').inc(3)")
    subprocess.run([sys.executable, "-c", script], check=True,
                   env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    (tmp_path / "counter_99999.db").write_bytes(b"")  # a worker between creating and sizing it
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_WorkerFilesCollector(str(tmp_path)))
    assert "search_service_probe_total 3.0" in generate_latest(registry).decode()


def test_lines_written_off_the_request_path_reach_the_same_handlers_in_order(monkeypatch):
    # Under serve a request only queues its access line; a thread writes the queue. While the log
    # cannot be written, at most MAX_QUEUED lines wait: the rest are counted in a line of their own.
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    keep = Keep()
    parent = logging.getLogger("search_service")
    parent.addHandler(keep)
    monkeypatch.setattr(access_log, "MAX_QUEUED", 5)
    monkeypatch.setattr(access_log, "WRITE_EVERY", 3600.0)  # nothing written before the end
    try:
        with access_log.written_off_the_request_path():
            logger = logging.getLogger(ACCESS_LOGGER)
            assert not logger.propagate
            for n in range(8):
                logger.warning("line %d", n)
            assert seen == []  # queued, not written on the caller's thread
        assert logging.getLogger(ACCESS_LOGGER).propagate  # as it was
        assert seen == [f"line {n}" for n in range(5)] + [
            "3 access-log lines were not written: more than 5 waited while the log could not be written"]
    finally:
        parent.removeHandler(keep)
