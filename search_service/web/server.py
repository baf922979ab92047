"""Run the app under waitress (``search-service serve``), with a graceful stop on SIGTERM/SIGINT."""

from __future__ import annotations

import faulthandler
import logging
import signal
import threading
import time

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import create_server

from ..config import Settings
from . import close_app, create_app

log = logging.getLogger(__name__)

#: On SIGTERM, how long requests in flight and queued may take to be answered.
GRACE_SECONDS = 30.0


def serve(settings: Settings) -> None:
    """Build the app (jieba loaded, index opened) and serve until SIGTERM or Ctrl-C.

    On the signal: stop accepting connections; answer every request already
    received -- in flight, waiting for a thread, or waiting for the index writer
    (whose writes are committed) -- and send the answers; then stop the writer
    and any background merge. Waitress' own stop would cancel the requests still
    waiting for a thread, so the loop is run here.
    """
    _clean_stale_files(settings)
    app = create_app(settings)
    # With trusted_proxies set, X-Forwarded-For must reach the app, whose TrustedProxies
    # middleware believes it only from those addresses (and drops it from anyone else).
    server = create_server(app, host=settings.host, port=settings.port, threads=settings.threads,
                           ident="search_service", clear_untrusted_proxy_headers=not settings.trusted_proxies)
    stopping = threading.Event()

    def stop(signum, _frame) -> None:
        log.info("%s: no new connections; answering the requests already received", signal.Signals(signum).name)
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    # `kill -USR1 <pid>` prints every thread's stack to stderr: for diagnosing a stuck server.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    log.info("serving on http://%s:%s/ with %d threads", settings.host, settings.port, settings.threads)
    try:
        run_until(server, stopping)
        drain(server, GRACE_SECONDS)
    finally:
        server.task_dispatcher.shutdown(timeout=5)
        wasyncore.close_all(_socket_map(server))
        close_app(app)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("stopped")


def _socket_map(server) -> dict:
    return getattr(server, "_map", None) or server.map


def run_until(server, stopping: threading.Event) -> None:
    """Waitress' event loop, until ``stopping`` is set (checked at least every half second)."""
    socket_map = _socket_map(server)
    timeout = min(server.adj.asyncore_loop_timeout, 0.5)
    while not stopping.is_set() and socket_map:
        wasyncore.loop(timeout=timeout, map=socket_map, use_poll=server.adj.asyncore_use_poll, count=1)


def drain(server, grace: float) -> bool:
    """Close the listener and run the loop until every received request is answered; False on timeout."""
    socket_map = _socket_map(server)
    # The listening socket(s) only: the trigger that wakes the loop when an answer is ready stays.
    for channel in list(socket_map.values()):
        if getattr(channel, "accepting", False):
            wasyncore.dispatcher.close(channel)
    deadline = time.monotonic() + grace
    while _busy(server):
        if time.monotonic() > deadline:
            log.warning("requests still unanswered after %.0f s; stopping anyway", grace)
            return False
        wasyncore.loop(timeout=0.05, map=socket_map, use_poll=server.adj.asyncore_use_poll, count=1)
    return True


def _busy(server) -> bool:
    dispatcher = server.task_dispatcher
    with dispatcher.lock:
        if dispatcher.queue or dispatcher.active_count > 0:
            return True
    for channel in list(_socket_map(server).values()):
        if isinstance(channel, HTTPChannel) and (channel.requests or channel.total_outbufs_len
                                                 or channel.request is not None):
            return True
    return False


def _clean_stale_files(settings: Settings) -> None:
    """Remove what a killed or failed write or merge left in the live generation (no manual cleanup)."""
    from ..indexer import IndexStore
    from ..merging import clean_stale_files

    live = IndexStore(settings.index_dir).current_path()
    if live is not None and live.is_dir():
        try:
            clean_stale_files(live)
        except OSError as exc:
            log.warning("could not clean %s: %s", live, exc)
