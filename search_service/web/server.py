"""Run the app under waitress (``search-service serve``), with a graceful stop on SIGTERM/SIGINT.

With ``workers`` = 1, one process. With more, a supervisor process binds the listening
socket, then forks the workers; each builds its own app (index opened and warmed before
it accepts) and serves the same socket with waitress (``sockets=[sock]``), so the kernel
hands each connection to one idle worker. The supervisor holds no app: it replaces a
worker that dies, and on SIGTERM/SIGINT passes the signal on and waits for every worker
to finish its requests and commit its queued writes.

What the workers share goes through the disk: the index (each write takes Whoosh's lock
and the publish lock; every search compares the on-disk commit first, see
``SearchEngine.snapshot``), the analytics database (SQLite, WAL) and the rate-limit
counters (a file of fixed size, see ``rate_counters``), the open typing sessions of analytics
(``analytics.AnalyticsRecorder``) and the counters and histograms of ``/metrics`` (files in a
folder of the run, see ``metrics``).
"""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import logging
import os
import resource
import select
import shutil
import signal
import socket
import tempfile
import threading
import time

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import create_server

from ..config import Settings
from ..text import analysis
from . import close_app, create_app
from .access_log import written_off_the_request_path
from .after_send import RunAfterSend
from .connections import ConnectionLimits, guard, server_options
from .event_loop import ChannelMap, EventLoop
from .metrics import MULTIPROCESS_DIR_ENV

log = logging.getLogger(__name__)

#: On SIGTERM, how long requests in flight and queued may take to be answered.
GRACE_SECONDS = 30.0
#: Connections the kernel queues while every worker is busy.
BACKLOG = 1024
#: A worker that exits sooner than this after starting is restarted only after a pause.
CRASH_LOOP_SECONDS = 2.0
#: How long the supervisor waits for workers to stop before killing them.
STOP_TIMEOUT = 60.0


def worker_count(settings: Settings) -> int:
    """Processes to run: the ``workers`` setting, 0 meaning one per CPU core."""
    if settings.workers > 0:
        return settings.workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def serve(settings: Settings) -> None:
    """Serve until SIGTERM or Ctrl-C: one process, or a supervisor and ``workers`` processes."""
    raise_open_file_limit()
    workers = worker_count(settings)
    if workers <= 1:
        _serve_process(settings, sock=None)
    else:
        Supervisor(settings, workers).run()


def raise_open_file_limit() -> None:
    """Soft limit on open files up to the hard one: every thread's searcher maps each file of
    each (non-compound) segment, and a mapping holds a descriptor; 1024 can run out."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _serve_process(settings: Settings, sock: socket.socket | None, parent: int | None = None) -> None:
    """Build the app (jieba loaded, index opened and warmed) and serve until SIGTERM or Ctrl-C.

    On the signal: stop accepting connections; answer every request already
    received -- in flight, waiting for a thread, or waiting for the index writer
    (whose writes are committed) -- and send the answers; then stop the writer
    and any background merge. Waitress' own stop would cancel the requests still
    waiting for a thread, so the loop is run here. ``sock`` is a socket already
    bound and listening (a worker of a supervisor); ``parent`` the supervisor's pid (the
    worker stops when the supervisor is gone, rather than serve orphaned).
    """
    _clean_stale_files(settings)
    app = create_app(settings)
    # Each request thread's first search (and the analytics writer's first event) would
    # otherwise load its own converter (ms).
    analysis.prepare_converters(settings.threads + 1)
    # Everything built so far (jieba's dictionary, the index's arrays, the warmed caches) lives as
    # long as the process: frozen, the collector's full passes no longer walk its ~400,000 objects
    # (76 ms each at 42k articles, landing on whichever search allocated last).
    gc.collect()
    gc.freeze()
    # With trusted_proxies set, X-Forwarded-For must reach the app, whose TrustedProxies
    # middleware believes it only from those addresses (and drops it from anyone else).
    where = {"sockets": [sock]} if sock is not None else {"host": settings.host, "port": settings.port}
    # epoll (web/event_loop.py), else poll(), never select(): select() fails on descriptors above
    # 1024, and a generation with many segments (writes faster than merges) maps more files than that.
    limits = ConnectionLimits.from_settings(settings)
    # The access log, the metrics and analytics run once an answer is sent (web/after_send.py).
    server = guard(create_server(RunAfterSend(app), map=ChannelMap(), threads=settings.threads, ident="search_service",
                                 asyncore_use_poll=True, clear_untrusted_proxy_headers=not settings.trusted_proxies,
                                 **server_options(limits), **where), limits)
    loop = EventLoop(_socket_map(server), server)
    stopping = threading.Event()

    def stop(signum, _frame) -> None:
        log.info("%s: no new connections; answering the requests already received", signal.Signals(signum).name)
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    # `kill -USR1 <pid>` prints every thread's stack to stderr: for diagnosing a stuck server.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    if parent is not None:
        threading.Thread(target=_stop_when_orphaned, args=(parent, stopping), daemon=True,
                         name="orphan-watch").start()
        log.info("worker %d serving on http://%s:%s/ with %d threads", os.getpid(), settings.host,
                 settings.port, settings.threads)
    else:
        log.info("serving on http://%s:%s/ with %d threads", settings.host, settings.port, settings.threads)
    try:
        with written_off_the_request_path():  # a request only queues its access-log line
            try:
                run_until(server, stopping, loop)
                drain(server, GRACE_SECONDS, loop)
            finally:
                server.task_dispatcher.shutdown(timeout=5)
                wasyncore.close_all(_socket_map(server))
                loop.close()
    finally:
        close_app(app)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("stopped")


def _socket_map(server) -> dict:
    return getattr(server, "_map", None) or server.map


def run_until(server, stopping: threading.Event, loop: EventLoop | None = None) -> None:
    """Waitress' event loop (:class:`EventLoop`), until ``stopping`` is set (checked at least every
    half second)."""
    socket_map = _socket_map(server)
    loop = loop or EventLoop(socket_map, server)
    timeout = min(server.adj.asyncore_loop_timeout, 0.5)
    while not stopping.is_set() and socket_map:
        loop.once(timeout)


def drain(server, grace: float, loop: EventLoop | None = None) -> bool:
    """Close the listener and run the loop until every received request is answered; False on timeout.

    Connections the kernel completed before the listener closed, still waiting in its backlog,
    are accepted first: their clients have sent their requests and would otherwise get a reset.
    """
    socket_map = _socket_map(server)
    loop = loop or EventLoop(socket_map, server)
    # The listening socket(s) only: the trigger that wakes the loop when an answer is ready stays.
    listeners = [channel for channel in socket_map.values() if getattr(channel, "accepting", False)]
    for listener in listeners:
        for _ in range(server.adj.connection_limit):  # bounded: clients may keep connecting meanwhile
            if not _waiting(listener):
                break
            listener.handle_accept()
        wasyncore.dispatcher.close(listener)
    if listeners:
        # One turn of the loop reads what those connections have sent (their requests then count
        # as received below).
        loop.once(0.05)
    deadline = time.monotonic() + grace
    while _busy(server):
        if time.monotonic() > deadline:
            log.warning("requests still unanswered after %.0f s; stopping anyway", grace)
            return False
        loop.once(0.05)
    return True


def _waiting(listener) -> bool:
    """Whether a connection waits in the listening socket's backlog (it polls readable)."""
    poller = select.poll()
    poller.register(listener.socket.fileno(), select.POLLIN)
    return bool(poller.poll(0))


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
    from ..engine.merging import clean_live_generation
    from ..engine.store import IndexStore

    clean_live_generation(IndexStore(settings.index_dir))


def _stop_when_orphaned(parent: int, closing: threading.Event) -> None:
    while not closing.wait(1.0):
        if os.getppid() != parent:
            log.warning("the supervisor (pid %d) is gone: stopping", parent)
            os.kill(os.getpid(), signal.SIGTERM)
            return


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port, for the workers to share."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                          flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class Supervisor:
    """Binds the socket, forks ``workers`` serving processes, replaces those that die."""

    def __init__(self, settings: Settings, workers: int) -> None:
        self.settings = settings
        self.workers = workers
        self.children: dict[int, float] = {}  # pid -> start time
        self.stopping = False

    def run(self) -> None:
        settings = self.settings
        sock = bind(settings.host, settings.port)
        remove_stale_run_folders()
        shared_dir = tempfile.mkdtemp(prefix=RUN_FOLDER_PREFIX)
        _write_owner(shared_dir)
        if settings.rate_limit.strip() and settings.rate_limit_storage.strip().lower().startswith("memory://"):
            from .limits import shared_storage_uri

            # Counted once across workers, not once per process.
            counters = os.path.join(shared_dir, "rate-counters")
            settings = settings.replace(rate_limit_storage=shared_storage_uri(counters))
        self.settings = settings
        # Counters and histograms of every worker in one /metrics (prometheus_client's multiprocess
        # mode): each worker keeps its series in files here; the folder goes when the run ends.
        metrics_dir = os.path.join(shared_dir, "metrics")
        os.mkdir(metrics_dir)
        previous_metrics_dir = os.environ.get(MULTIPROCESS_DIR_ENV)
        os.environ[MULTIPROCESS_DIR_ENV] = metrics_dir
        # jieba's dictionary is loaded once here and shared by the workers after the fork
        # (copy-on-write); gc.freeze keeps the collector from touching (copying) its pages.
        from ..text import analysis

        analysis.initialize(settings.cache_dir, settings.user_dict or None)
        gc.freeze()
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        log.info("serving on http://%s:%s/ with %d workers of %d threads", settings.host, settings.port,
                 self.workers, settings.threads)
        try:
            for _ in range(self.workers):
                self._spawn(sock)
            self._supervise(sock)
        finally:
            for pid in list(self.children):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            sock.close()
            shutil.rmtree(shared_dir, ignore_errors=True)
            if previous_metrics_dir is None:
                os.environ.pop(MULTIPROCESS_DIR_ENV, None)
            else:
                os.environ[MULTIPROCESS_DIR_ENV] = previous_metrics_dir
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            log.info("stopped")

    def _stop(self, signum, _frame) -> None:
        if not self.stopping:
            log.info("%s: stopping %d workers", signal.Signals(signum).name, len(self.children))
        self.stopping = True
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def _spawn(self, sock: socket.socket) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, signal.SIG_DFL)
                gc.unfreeze()
                _serve_process(self.settings, sock, parent=parent)
            except BaseException:  # noqa: BLE001 - a worker must never return into the supervisor's loop
                log.exception("worker %d failed", os.getpid())
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = time.monotonic()

    def _supervise(self, sock: socket.socket) -> None:
        deadline = None
        while self.children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                if self.stopping and deadline is None:
                    deadline = time.monotonic() + STOP_TIMEOUT
                if deadline is not None and time.monotonic() > deadline:
                    log.error("workers %s did not stop within %.0f s: killing them", sorted(self.children),
                              STOP_TIMEOUT)
                    return  # run() kills what is left
                time.sleep(0.2)
                continue
            started = self.children.pop(pid, None)
            if started is None or self.stopping:
                continue
            log.warning("worker %d exited (%s); starting another", pid, _describe(status))
            if time.monotonic() - started < CRASH_LOOP_SECONDS:
                time.sleep(CRASH_LOOP_SECONDS)  # failing at start: do not spin
            if not self.stopping:
                self._spawn(sock)


#: The supervisor's folder for what its workers share (rate-limit counters, metrics files).
RUN_FOLDER_PREFIX = "search-service-"
_OWNER_FILE = "supervisor"


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, /proc), None when there is no such process.

    With the pid, this names one process for good: a pid alone may be reused by another.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _write_owner(folder: str) -> None:
    pid = os.getpid()
    with open(os.path.join(folder, _OWNER_FILE), "w", encoding="ascii") as handle:
        handle.write(f"{pid} {_process_start(pid) or ''}\n")


def remove_stale_run_folders(parent: str | None = None) -> list[str]:
    """Remove the run folders of supervisors that are gone (killed with -9: nothing cleaned up).

    A folder is stale when the process its owner file names (pid and start time) no longer
    runs. Folders without an owner file are left alone (another program's, or a version
    before this one). Returns the folders removed.
    """
    parent = parent or tempfile.gettempdir()
    removed: list[str] = []
    try:
        names = [name for name in os.listdir(parent) if name.startswith(RUN_FOLDER_PREFIX)]
    except OSError:
        return removed
    for name in names:
        folder = os.path.join(parent, name)
        try:
            with open(os.path.join(folder, _OWNER_FILE), encoding="ascii") as handle:
                pid_text, _, started = handle.read().strip().partition(" ")
            pid = int(pid_text)
        except (OSError, ValueError):
            continue
        running_since = _process_start(pid)
        if running_since is None or (started and running_since != started):  # gone, or the pid reused
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    if removed:
        log.info("removed %d run folder(s) of supervisors that were killed: %s", len(removed), ", ".join(removed))
    return removed


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
