"""One access-log line per request, to stderr, through the ``search_service.access`` logger.

A line is ``key=value`` pairs (logfmt), e.g.::

    method=GET path=/api/search?q=%E5%9B%AD%E5%8C%BA status=200 duration_ms=12.4 results=37

``results`` appears for searches and suggestions (views set ``flask.g.result_count``);
``client=`` only with ``log_client_ip``. Never written: request headers (so never the
``Authorization`` bearer token), request bodies, and the query string of anything but
GET/HEAD. Paths and query strings are logged as sent (percent-encoded), cut at
:data:`MAX_TARGET` characters, with control characters escaped so a request cannot
forge log lines.

Under ``serve`` the lines are written by a thread of their own (:func:`written_off_the_request_path`):
a request only queues its line. Written on the request's thread, a line cost the request the
formatting and a ``write`` to stderr, and when that write waited on the file system (a journal
commit of the log file's disk) the answer waited with it: served, the access log made the
median search 0.1 ms slower and 5% of repeated searches 5 to 9 ms slower. The line is also
formatted and queued only once the answer is sent (``after_send``), as nginx logs a request
after its response: the lines of back-to-back requests may come a moment out of order.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import re
import sys
import threading
import time
from collections.abc import Iterator
from urllib.parse import quote

from flask import Flask, Response, g, request

from ..config import Settings
from .after_send import after_send
from .metrics import STARTED_KEY

ACCESS_LOGGER = "search_service.access"
MAX_TARGET = 400
# Kept as they are in a logged URL; everything else (spaces, quotes, control and
# non-ASCII characters) is percent-encoded, so one request is always one line.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?%[]"
_UNSAFE = re.compile(r"[\x00-\x20\x7f-\x9f\"\\\u2028\u2029]")

log = logging.getLogger(ACCESS_LOGGER)


def configure_logging(settings: Settings) -> None:
    """``log_level`` for the service's loggers; stderr when nothing else set up logging.

    The CLI configures the root logger itself; under ``waitress-serve --call`` nothing
    has, and the lines would otherwise vanish.
    """
    logging.getLogger("search_service").setLevel(settings.log_level)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=settings.log_level, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _escape(text: str) -> str:
    return _UNSAFE.sub(lambda m: f"%{ord(m.group()):02X}" if ord(m.group()) < 256
                       else f"\\u{ord(m.group()):04x}", text)


def request_target(method: str, path: str, query_string: bytes) -> str:
    """What to log of the URL: the path, plus the raw query string of reads only, percent-encoded."""
    target = quote(path, safe=_PATH_SAFE)
    if method in ("GET", "HEAD") and query_string:
        target += "?" + quote(query_string, safe=_QUERY_SAFE)
    return target if len(target) <= MAX_TARGET else target[:MAX_TARGET] + "…"


def access_line(method: str, path: str, query_string: bytes, status: int, duration_ms: float, *,
                results: int | None = None, client: str | None = None) -> str:
    """The log line of one request."""
    parts = [f"method={_escape(method)[:16]}", f"path={request_target(method, path, query_string)}",
             f"status={status}", f"duration_ms={duration_ms:.1f}"]
    if results is not None:
        parts.append(f"results={int(results)}")
    if client is not None:
        parts.append(f"client={_escape(client)}")
    return " ".join(parts)


def _write(*line_args, **line_options) -> None:
    log.info("%s", access_line(*line_args, **line_options))


def install_access_log(app: Flask, settings: Settings) -> None:
    """Log each request after its response is made (``access_log`` setting)."""
    if not settings.access_log:
        return
    with_ip = settings.log_client_ip

    @app.after_request
    def write_line(response: Response) -> Response:
        if log.isEnabledFor(logging.INFO):
            started = request.environ.get(STARTED_KEY)
            duration_ms = (time.perf_counter() - started) * 1000 if started is not None else 0.0
            count = g.get("result_count")
            # Formatted once the answer is sent (after_send): what the line needs is read now.
            after_send(functools.partial(_write, request.method, request.path, request.query_string,
                                         response.status_code, duration_ms,
                                         results=None if count is None else int(count),
                                         client=(request.remote_addr or "-") if with_ip else None))
        return response


@contextlib.contextmanager
def written_off_the_request_path() -> Iterator[None]:
    """Within: access-log lines reach the handlers they would reach anyway (the ``search_service``
    and root loggers' handlers: stderr under the CLI), in order, from a thread that writes what
    was queued every :data:`WRITE_EVERY` seconds; on leaving, every queued line is written. Other
    loggers are untouched: a warning is written at once. (A process killed with ``kill -9``
    loses the lines of its last moments.)"""
    logger = logging.getLogger(ACCESS_LOGGER)
    handlers = _handlers_reached(logger.parent) if logger.propagate and not logger.handlers else []
    if not handlers:  # configured otherwise (by an embedding program): left as it is
        yield
        return
    writer = _LineWriter(handlers)
    handler = _Enqueue(writer.lines)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.propagate = True
        logger.removeHandler(handler)
        writer.stop()


#: How often the access log's thread writes the queued lines.
WRITE_EVERY = 0.05
#: Lines queued at most while the log cannot be written (a stalled disk): beyond, lines are
#: counted, not kept, and the count is written once writing works again.
MAX_QUEUED = 100_000


class _LineWriter:
    """A thread that hands the queued records to ``handlers`` every :data:`WRITE_EVERY` seconds.

    Not ``logging.handlers.QueueListener``: it blocks on the queue, so every line woke its
    thread, which then took the interpreter from the request still being answered (measured:
    0.1 ms of every served search). A request's ``put`` here wakes nobody.
    """

    def __init__(self, handlers: list[logging.Handler]) -> None:
        self.lines = _BoundedLines(MAX_QUEUED)
        self._handlers = handlers
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(WRITE_EVERY):
            self._write_queued()
        self._write_queued()

    def _write_queued(self) -> None:
        for record in self.lines.take():
            for handler in self._handlers:
                if record.levelno >= handler.level:
                    handler.handle(record)  # a failing write is the handler's to report (handleError)

    def stop(self) -> None:
        """Write what is queued and end the thread."""
        self._stopping.set()
        self._thread.join()


class _Enqueue(logging.Handler):
    """Puts each record on the writer's queue as it is, formatted later by the writer's handlers.

    Not ``QueueHandler``, which formats and copies every record on the caller's thread so that it
    can cross to another process; an access-log record's arguments are one finished string.
    """

    def __init__(self, lines: _BoundedLines) -> None:
        super().__init__()
        self._lines = lines

    def handle(self, record: logging.LogRecord) -> bool:  # no filters, no lock: the queue is thread-safe
        self._lines.put_nowait(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self._lines.put_nowait(record)


class _BoundedLines:
    """The queue between requests and :class:`_LineWriter`."""

    def __init__(self, limit: int) -> None:
        self._lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self._limit = limit
        self._dropped = 0

    def put_nowait(self, record: logging.LogRecord) -> None:
        if self._lines.qsize() >= self._limit:
            self._dropped += 1  # an int's += under the GIL: a count off by one at worst
            return
        self._lines.put_nowait(record)

    def take(self) -> Iterator[logging.LogRecord]:
        """The queued records in order, then a line counting those not kept (if any)."""
        while True:
            try:
                yield self._lines.get_nowait()
            except queue.Empty:
                break
        dropped, self._dropped = self._dropped, 0
        if dropped:
            yield logging.LogRecord(ACCESS_LOGGER, logging.WARNING, __file__, 0,
                                    "%d access-log lines were not written: more than %d waited while the "
                                    "log could not be written", (dropped, self._limit), None)


def _handlers_reached(logger: logging.Logger | None) -> list[logging.Handler]:
    """The handlers a record of ``logger`` reaches by propagation (its own included)."""
    found: list[logging.Handler] = []
    current = logger
    while current is not None:
        found.extend(current.handlers)
        if not current.propagate:
            break
        current = current.parent
    return found
