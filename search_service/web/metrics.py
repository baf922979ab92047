"""``GET /metrics``: Prometheus text format, one registry per app.

Per request: ``search_service_requests_total{endpoint,method,status}`` and the latency
histogram ``search_service_request_duration_seconds{endpoint}`` (``endpoint`` is the
Flask endpoint name such as ``api.search``, so the label set stays small whatever
URLs clients invent). Read at scrape time: index documents, generation and commit,
result-cache hits, misses and hit ratio, the writer's queue depth and background merges, the analytics
recorder's counters (``search_service_analytics_events_dropped_total`` and
``..._failed_total``: events lost to a full queue or a failed database write; rows
written; queue size), and the usual ``process_*`` series (CPU seconds, resident and
virtual memory, open file descriptors, start time) of this process.
"""

from __future__ import annotations

import time

from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from ..errors import SearchError
from .limits import rate_limit_exempt

METRICS_KEY = "metrics"
STARTED_KEY = "search_service.started"
#: Latency buckets in seconds: cached hits take ~1 ms, facetted misses tens of ms, a cold
#: searcher or a write waiting for its commit up to seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Methods counted by name; any other token a client sends is counted as "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})

blueprint = Blueprint("metrics", __name__)


class Metrics:
    """The registry of one app and the per-request series in it."""

    def __init__(self, app: Flask) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("search_service_requests", "HTTP requests by endpoint, method and status.",
                                ("endpoint", "method", "status"), registry=self.registry)
        self.duration = Histogram("search_service_request_duration_seconds",
                                  "Time from the request reaching the app to the response, by endpoint.",
                                  ("endpoint",), buckets=BUCKETS, registry=self.registry)
        self.registry.register(_EngineCollector(app))
        self.registry.register(_AnalyticsCollector(app))
        # process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, ... (Linux /proc).
        ProcessCollector(registry=self.registry)

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, method if method in METHODS else "other", str(status)).inc()
        self.duration.labels(endpoint).observe(seconds)


class _EngineCollector(Collector):
    """Index, cache and writer figures, read when Prometheus scrapes."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def describe(self):
        return []  # read at scrape time only; nothing to check at registration

    def collect(self):
        from . import ENGINE_KEY, WRITER_KEY

        engine = self.app.extensions.get(ENGINE_KEY)
        up = GaugeMetricFamily("search_service_index_up", "1 while an index generation is open, else 0.")
        documents = GaugeMetricFamily("search_service_index_documents", "Live documents in the open index.")
        commit = GaugeMetricFamily("search_service_index_commit", "Whoosh commit number of the open snapshot.")
        info = InfoMetricFamily("search_service_index", "The published generation being searched.")
        snapshot = None
        if engine is not None:
            try:
                snapshot = engine.snapshot()
            except (SearchError, OSError):
                snapshot = None
        up.add_metric([], 1 if snapshot is not None else 0)
        yield up
        if snapshot is not None:
            documents.add_metric([], int(snapshot.arrays.live_docnums.size))
            commit.add_metric([], snapshot.toc_generation)
            info.add_metric([], {"generation": snapshot.generation})
            yield documents
            yield commit
            yield info

        if engine is not None:
            cache = engine.cache
            hits, misses = cache.hits, cache.misses
            yield _counter("search_service_result_cache_hits", "Searches answered from the result cache.", hits)
            yield _counter("search_service_result_cache_misses", "Searches that had to run.", misses)
            ratio = GaugeMetricFamily("search_service_result_cache_hit_ratio",
                                      "hits / (hits + misses) since start; 0 before the first search.")
            ratio.add_metric([], hits / (hits + misses) if hits + misses else 0.0)
            yield ratio

        writer = self.app.extensions.get(WRITER_KEY)
        depth = GaugeMetricFamily("search_service_write_queue_depth",
                                  "Write requests waiting for the index writer (0 before the first write).")
        depth.add_metric([], writer.depth if writer is not None else 0)
        yield depth
        merger = writer.merger if writer is not None else None
        yield _counter("search_service_merges", "Background segment merges completed.",
                       merger.merges if merger else 0)
        yield _counter("search_service_merge_failures", "Background segment merges that failed (see the log).",
                       merger.failures if merger else 0)
        running = GaugeMetricFamily("search_service_merge_running", "1 while a background merge runs.")
        running.add_metric([], 1 if merger is not None and merger.running else 0)
        yield running
        failing = GaugeMetricFamily("search_service_merge_failing",
                                    "1 when the last background merge failed (writes are unaffected).")
        failing.add_metric([], 1 if merger is not None and merger.failing else 0)
        yield failing


class _AnalyticsCollector(Collector):
    """The analytics recorder's counters: events lost must be visible to whoever runs the service."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def describe(self):
        return []

    def collect(self):
        from .tracking import recorder_of

        counters = recorder_of(self.app).counters()
        yield _counter("search_service_analytics_events_dropped",
                       "Analytics events lost because the recorder's queue was full.",
                       counters["analytics_events_dropped_total"])
        yield _counter("search_service_analytics_events_failed",
                       "Analytics events lost because the database write failed.",
                       counters["analytics_events_failed_total"])
        yield _counter("search_service_analytics_rows_written", "Analytics rows written (searches and clicks).",
                       counters["analytics_rows_written_total"])
        queued = GaugeMetricFamily("search_service_analytics_queue_size", "Analytics events waiting to be written.")
        queued.add_metric([], counters["analytics_queue_size"])
        yield queued


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation)
    family.add_metric([], value)
    return family


def install_metrics(app: Flask) -> Metrics:
    """Count every request and serve ``/metrics``."""
    disable_created_metrics()  # no *_created series: they double the output and nothing reads them
    metrics = Metrics(app)
    app.extensions[METRICS_KEY] = metrics
    app.register_blueprint(blueprint)

    @app.after_request
    def count(response: Response) -> Response:
        started = request.environ.get(STARTED_KEY)
        seconds = time.perf_counter() - started if started is not None else 0.0
        metrics.observe(request.endpoint or "unmatched", request.method, response.status_code, seconds)
        return response

    return metrics


@blueprint.get("/metrics")
@rate_limit_exempt
def metrics_view():
    """Prometheus text exposition of this process's figures."""
    body = generate_latest(current_app.extensions[METRICS_KEY].registry)
    response = Response(body, mimetype=None, content_type=CONTENT_TYPE_LATEST)
    response.headers["Cache-Control"] = "no-store"
    return response


class StampStart:
    """WSGI middleware: note when the request arrived, for durations (metrics and access log)."""

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        environ[STARTED_KEY] = time.perf_counter()
        return self.wsgi_app(environ, start_response)
