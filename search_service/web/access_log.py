"""One access-log line per request, to stderr, through the ``search_service.access`` logger.

A line is ``key=value`` pairs (logfmt), e.g.::

    method=GET path=/api/search?q=%E5%9B%AD%E5%8C%BA status=200 duration_ms=12.4 results=37

``results`` appears for searches and suggestions (views set ``flask.g.result_count``);
``client=`` only with ``log_client_ip``. Never written: request headers (so never the
``Authorization`` bearer token), request bodies, and the query string of anything but
GET/HEAD. Paths and query strings are logged as sent (percent-encoded), cut at
:data:`MAX_TARGET` characters, with control characters escaped so a request cannot
forge log lines.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from urllib.parse import quote

from flask import Flask, Response, g, request

from ..config import Settings
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


def request_target() -> str:
    """What to log of the URL: the path, plus the raw query string of reads only, percent-encoded."""
    target = quote(request.path, safe=_PATH_SAFE)
    if request.method in ("GET", "HEAD") and request.query_string:
        target += "?" + quote(request.query_string, safe=_QUERY_SAFE)
    return target if len(target) <= MAX_TARGET else target[:MAX_TARGET] + "…"


def access_line(status: int, duration_ms: float, *, client: str | None = None) -> str:
    """The log line of the current request."""
    parts = [f"method={_escape(request.method)[:16]}", f"path={request_target()}", f"status={status}",
             f"duration_ms={duration_ms:.1f}"]
    count = g.get("result_count")
    if count is not None:
        parts.append(f"results={int(count)}")
    if client is not None:
        parts.append(f"client={_escape(client)}")
    return " ".join(parts)


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
            log.info("%s", access_line(response.status_code, duration_ms,
                                       client=(request.remote_addr or "-") if with_ip else None))
        return response
