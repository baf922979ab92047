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

With ``serve --workers N`` a scrape reaches one worker, yet every counter and histogram
covers all of them: the supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` to a folder of its
run, each worker's series are kept there (prometheus_client's multiprocess mode, one
memory-mapped file per process and kind) and the answering worker sums them with
``MultiProcessCollector``. Counters the domain objects keep (cache hits, merges, analytics
rows) are copied into such counters by difference on every request and scrape. Gauges
describe the process that answered and say so in their help text ("Per process").
"""

from __future__ import annotations

import functools
import glob
import logging
import os
import threading
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
from prometheus_client import values as prometheus_values
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from ..errors import SearchError
from .after_send import after_send
from .limits import limit_storage, rate_limit_exempt

log = logging.getLogger(__name__)

METRICS_KEY = "metrics"
STARTED_KEY = "search_service.started"
#: Latency buckets in seconds: cached hits take ~1 ms, facetted misses tens of ms, a cold
#: searcher or a write waiting for its commit up to seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Methods counted by name; any other token a client sends is counted as "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
#: The environment variable that turns on prometheus_client's multiprocess mode (set by the supervisor).
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Appended to the help of figures that describe one process, not the whole group of workers.
PER_PROCESS = " Per process: with several workers, the worker that answered this scrape."

blueprint = Blueprint("metrics", __name__)


class _WorkerFilesCollector(MultiProcessCollector):
    """Every worker's counters and histograms, summed from the files of the shared folder.

    A worker starting creates its files empty and sizes them a moment later; read in
    between, a file is 0 bytes and prometheus_client fails to unpack it. Files not yet
    sized are skipped (they hold nothing yet), and registering reads no file at all
    (``describe`` is empty): the scrape of another worker's first moment, or this worker's
    own start, would otherwise raise (a worker died at start so, and was replaced).
    """

    def __init__(self, path: str) -> None:
        super().__init__(None, path=path)

    def describe(self) -> list:
        return []

    def collect(self):
        files = []
        for path in glob.glob(os.path.join(self._path, "*.db")):
            try:
                if os.path.getsize(path) >= 8:  # the header: how much of the file is used
                    files.append(path)
            except OSError:
                continue  # gone between listing and looking
        return self.merge(files, accumulate=True)


class Metrics:
    """The registry of one app and the per-request series in it.

    In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set: the workers of one supervisor)
    the counters and the histogram are written to that folder instead of the registry, and
    the registry reads every worker's files back, summed, at scrape time.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.registry = CollectorRegistry(auto_describe=True)
        shared_dir = os.environ.get(MULTIPROCESS_DIR_ENV, "")
        if shared_dir and not os.path.isdir(shared_dir):
            log.warning("%s=%s is not a folder: /metrics counts this process only", MULTIPROCESS_DIR_ENV, shared_dir)
            shared_dir = ""
        self.multiprocess = bool(shared_dir)
        own: CollectorRegistry | None = self.registry
        if self.multiprocess:
            _use_multiprocess_values()
            self.registry.register(_WorkerFilesCollector(shared_dir))
            own = None  # kept in the folder, collected from there
        self.requests = Counter("search_service_requests", "HTTP requests by endpoint, method and status.",
                                ("endpoint", "method", "status"), registry=own)
        self.duration = Histogram("search_service_request_duration_seconds",
                                  "Time from the request reaching the app to the response, by endpoint.",
                                  ("endpoint",), buckets=BUCKETS, registry=own)
        self.kept = {name: Counter(name, documentation, registry=own) for name, documentation in KEPT_COUNTERS}
        self._copied: dict[str, float] = dict.fromkeys(self.kept, 0.0)
        self._copy_lock = threading.Lock()  # request threads copy at once: each difference added once
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.registry.register(_EngineCollector(app))
        self.registry.register(_AnalyticsCollector(app))
        self.registry.register(_DegradedCollector(app))
        # process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, ... (Linux /proc).
        ProcessCollector(registry=self.registry)

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        # The labelled series, looked up once each (endpoints, methods and statuses are few).
        key = (endpoint, method, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (
                self.requests.labels(endpoint, method if method in METHODS else "other", str(status)),
                self.duration.labels(endpoint))
        series[0].inc()
        series[1].observe(seconds)
        self.copy_kept_counters()

    def copy_kept_counters(self) -> None:
        """Add to each kept counter what its source counted since the last copy.

        A source that went down (a new result cache after a reload) started again from 0:
        all of its value is new.
        """
        with self._copy_lock:
            for name, value in _kept_values(self.app).items():
                last = self._copied[name]
                delta = value - last if value >= last else value
                if delta > 0:
                    self.kept[name].inc(delta)
                self._copied[name] = value


#: Counters whose source is a count kept by a domain object: (name without _total, help).
KEPT_COUNTERS = (
    ("search_service_result_cache_hits", "Searches answered from the result cache."),
    ("search_service_result_cache_misses", "Searches that had to run."),
    ("search_service_merges", "Background segment merges completed."),
    ("search_service_merge_failures", "Background segment merges that failed (see the log)."),
    ("search_service_analytics_events_dropped", "Analytics events lost because the recorder's queue was full."),
    ("search_service_analytics_events_failed", "Analytics events lost because the database write failed."),
    ("search_service_analytics_rows_written", "Analytics rows written (searches and clicks)."),
    ("search_service_rate_limit_storage_repairs", "Damaged rate-limit counter files replaced by a new one."),
)


def _kept_values(app: Flask) -> dict[str, float]:
    """This process's current value of each kept counter's source."""
    from . import ENGINE_KEY, WRITER_KEY
    from .tracking import recorder_of

    engine = app.extensions.get(ENGINE_KEY)
    writer = app.extensions.get(WRITER_KEY)
    merger = writer.merger if writer is not None else None
    analytics = recorder_of(app).counters()
    return {
        "search_service_result_cache_hits": engine.cache.hits if engine is not None else 0,
        "search_service_result_cache_misses": engine.cache.misses if engine is not None else 0,
        "search_service_merges": merger.merges if merger else 0,
        "search_service_merge_failures": merger.failures if merger else 0,
        "search_service_analytics_events_dropped": analytics["analytics_events_dropped_total"],
        "search_service_analytics_events_failed": analytics["analytics_events_failed_total"],
        "search_service_analytics_rows_written": analytics["analytics_rows_written_total"],
        "search_service_rate_limit_storage_repairs": getattr(limit_storage(app), "repairs", 0),
    }


def _use_multiprocess_values() -> None:
    """Make new prometheus_client metrics keep their values in ``PROMETHEUS_MULTIPROC_DIR``.

    prometheus_client picks its value class once, when first imported; a worker forked by
    the supervisor imported it before the supervisor set the variable, so it is picked again.
    """
    if prometheus_values.ValueClass.__name__ != "MmapedValue":
        prometheus_values.ValueClass = prometheus_values.MultiProcessValue()


class _EngineCollector(Collector):
    """Index, cache and writer figures, read when Prometheus scrapes."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def describe(self):
        return []  # read at scrape time only; nothing to check at registration

    def collect(self):
        from . import ENGINE_KEY, WRITER_KEY

        engine = self.app.extensions.get(ENGINE_KEY)
        up = GaugeMetricFamily("search_service_index_up", "1 while an index generation is open, else 0." + PER_PROCESS)
        documents = GaugeMetricFamily("search_service_index_documents",
                                      "Live documents in the open index." + PER_PROCESS)
        commit = GaugeMetricFamily("search_service_index_commit",
                                   "Whoosh commit number of the open snapshot." + PER_PROCESS)
        info = InfoMetricFamily("search_service_index", "The published generation being searched." + PER_PROCESS)
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
            ratio = GaugeMetricFamily("search_service_result_cache_hit_ratio",
                                      "hits / (hits + misses) since start; 0 before the first search." + PER_PROCESS)
            ratio.add_metric([], hits / (hits + misses) if hits + misses else 0.0)
            yield ratio

        writer = self.app.extensions.get(WRITER_KEY)
        depth = GaugeMetricFamily("search_service_write_queue_depth",
                                  "Write requests waiting for the index writer (0 before the first write)."
                                  + PER_PROCESS)
        depth.add_metric([], writer.depth if writer is not None else 0)
        yield depth
        merger = writer.merger if writer is not None else None
        running = GaugeMetricFamily("search_service_merge_running", "1 while a background merge runs." + PER_PROCESS)
        running.add_metric([], 1 if merger is not None and merger.running else 0)
        yield running
        failing = GaugeMetricFamily("search_service_merge_failing",
                                    "1 when the last background merge failed (writes are unaffected)." + PER_PROCESS)
        failing.add_metric([], 1 if merger is not None and merger.failing else 0)
        yield failing


class _AnalyticsCollector(Collector):
    """The analytics recorder's queue (its counters are kept counters, see :data:`KEPT_COUNTERS`)."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def describe(self):
        return []

    def collect(self):
        from .tracking import recorder_of

        counters = recorder_of(self.app).counters()
        queued = GaugeMetricFamily("search_service_analytics_queue_size",
                                   "Analytics events waiting to be written." + PER_PROCESS)
        queued.add_metric([], counters["analytics_queue_size"])
        yield queued


class _DegradedCollector(Collector):
    """1 per component working at reduced strength (see ``health.degradations``), else 0."""

    COMPONENTS = ("rate_limit", "analytics")

    def __init__(self, app: Flask) -> None:
        self.app = app

    def describe(self):
        return []

    def collect(self):
        from .health import degradations

        found = degradations(self.app)
        gauge = GaugeMetricFamily("search_service_degraded",
                                  "1 while a component works at reduced strength (rate_limit: counters not "
                                  "shared between workers; analytics: searches not recorded); /healthz says why."
                                  + PER_PROCESS, labels=("component",))
        for component in self.COMPONENTS:
            gauge.add_metric([component], 1 if component in found else 0)
        yield gauge


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
        after_send(functools.partial(metrics.observe, request.endpoint or "unmatched", request.method,
                                     response.status_code, seconds))
        return response

    return metrics


@blueprint.get("/metrics")
@rate_limit_exempt
def metrics_view():
    """Prometheus text exposition: counters and histograms of every worker, gauges of this one."""
    metrics = current_app.extensions[METRICS_KEY]
    metrics.copy_kept_counters()
    body = generate_latest(metrics.registry)
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
