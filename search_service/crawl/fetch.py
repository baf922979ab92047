"""Polite HTTP for the crawler: one connection pool, a delay between requests,
bounded size and time per page, retries with back-off for transient failures.

Built on urllib3 directly (measured against requests and httpx on the same local
pages: see docs/CRAWLING.md): the crawler needs exactly its pieces — keep-alive
pools, connect/read timeouts, streamed reads that stop at a size limit,
redirects left to the caller (every hop must be checked against robots.txt and
the host) — and nothing above them. What urllib3 lacks, a deadline for a whole
answer (its read timeout is per read: a server trickling one byte a second
would hold a page forever), comes from :mod:`.deadline`.
"""

from __future__ import annotations

import dataclasses
import email.utils
import time
from collections.abc import Callable, Mapping

import urllib3

from .deadline import Watchdog, watched_pool_manager

__all__ = ["Fetcher", "Response", "TRANSIENT_STATUSES"]

#: Statuses worth trying again later: the server is busy or broken right now.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: A whole answer must be complete within this many times ``timeout``.
DEADLINE_FACTOR = 3
_CHUNK = 64 * 1024
_MAX_RETRY_AFTER = 120.0


@dataclasses.dataclass(slots=True)
class Response:
    """One answer (or the lack of one).

    ``status`` is 0 when no HTTP answer came (timeout, refused connection …);
    ``problem`` then says why, as it does for a body over the size limit.
    ``headers`` keys are lower-case. ``truncated``: the body is the first
    ``max_bytes`` of a longer one (asked for with ``truncate=True``).
    """

    url: str
    status: int
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    body: bytes = b""
    problem: str | None = None
    attempts: int = 1
    truncated: bool = False

    @property
    def transient(self) -> bool:
        """True when trying again later may succeed (no answer, 5xx, 429 …)."""
        return self.status == 0 or self.status in TRANSIENT_STATUSES

    @property
    def charset(self) -> str | None:
        """The ``charset`` parameter of ``Content-Type``, if any."""
        for param in self.headers.get("content-type", "").split(";")[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset" and value.strip():
                return value.strip().strip("\"'")
        return None

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


class Fetcher:
    """GET with a User-Agent, a minimum ``delay`` between requests and retries.

    ``timeout`` bounds the connect and each read; a whole answer, headers and
    body, must be complete within three times that (:data:`DEADLINE_FACTOR`),
    or it is "too slow". ``retries`` extra attempts are made for transient
    failures, waiting ``backoff × 2^n`` seconds (or the server's
    ``Retry-After``, up to two minutes) before attempt n+1. ``sleep`` and
    ``clock`` are injectable for tests of the timing rules.
    """

    def __init__(
        self,
        user_agent: str,
        *,
        delay: float = 1.0,
        timeout: float = 20.0,
        max_bytes: int = 5_000_000,
        retries: int = 2,
        backoff: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.user_agent = user_agent
        self.delay = delay
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self._clock = clock
        self._last: float | None = None
        self.requests = 0
        self._watchdog = Watchdog()
        self._pool = watched_pool_manager(
            self._watchdog,
            num_pools=4,
            maxsize=1,
            retries=False,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
        )
        # Headers given to a request replace the pool's, so every request carries these itself.
        self._headers = {
            "User-Agent": user_agent,
            "Accept-Encoding": "gzip, deflate",
            "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
        }

    def close(self) -> None:
        self._pool.clear()
        self._watchdog.close()

    def get(self, url: str, headers: Mapping[str, str] | None = None, *, max_bytes: int | None = None,
            truncate: bool = False, too_big: str | None = None) -> Response:
        """GET ``url`` once, plus retries for transient failures; never follows redirects.

        A body over ``max_bytes`` (default: the fetcher's, setting
        ``crawl_max_page_bytes``) is not read: the problem is ``too_big`` (or
        says the page is too large); with ``truncate`` its first ``max_bytes``
        are the body instead (``Response.truncated``).
        """
        limit = self.max_bytes if max_bytes is None else max_bytes
        too_big = too_big or f"page larger than {limit:,} bytes (setting crawl_max_page_bytes); not read"
        attempt = 0
        while True:
            response = self._get_once(url, headers or {}, limit, truncate, too_big)
            response.attempts = attempt + 1
            if not response.transient or attempt >= self.retries:
                return response
            wait = self.backoff * (2**attempt)
            retry_after = _retry_after(response.headers.get("retry-after", ""))
            if retry_after is not None:
                wait = max(wait, min(retry_after, _MAX_RETRY_AFTER))
            self._sleep(wait)
            attempt += 1

    def _polite_wait(self) -> None:
        # The delay runs from the end of the previous answer: a slow server gets more rest, not less.
        if self._last is not None:
            wait = self._last + self.delay - self._clock()
            if wait > 0:
                self._sleep(wait)

    def _get_once(self, url: str, headers: Mapping[str, str], limit: int, truncate: bool, too_big: str) -> Response:
        self._polite_wait()
        try:
            return self._request(url, headers, limit, truncate, too_big)
        finally:
            self._last = self._clock()

    def _request(self, url: str, headers: Mapping[str, str], limit: int, truncate: bool,
                 too_big: str) -> Response:
        self.requests += 1
        budget = DEADLINE_FACTOR * self.timeout
        self._watchdog.arm(budget)
        raw = None
        reusable = False  # the connection may carry the next request: the answer was read to its end
        found: dict[str, str] = {}
        try:
            raw = self._pool.request(
                "GET", url, headers={**self._headers, **headers},
                preload_content=False, redirect=False,
            )
            found = {key.lower(): value for key, value in raw.headers.items()}
            declared = found.get("content-length", "")
            if declared.isdigit() and int(declared) > limit and not truncate:
                return Response(url, raw.status, found, problem=too_big)
            chunks: list[bytes] = []
            size = 0
            truncated = False
            while True:
                chunk = raw.read(_CHUNK)
                if not chunk:
                    break
                if size + len(chunk) > limit:
                    if not truncate:
                        return Response(url, raw.status, found, problem=too_big)
                    chunks.append(chunk[: limit - size])
                    truncated = True
                    break
                chunks.append(chunk)
                size += len(chunk)
            # Checked after the last read too: an answer without Content-Length ends when the
            # socket does, and the watchdog ending it must not pass for its end.
            if self._watchdog.fired:
                return Response(url, 0, found, problem=_too_slow(budget))
            reusable = not truncated
            return Response(url, raw.status, found, b"".join(chunks), truncated=truncated)
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            if self._watchdog.fired:
                return Response(url, 0, found, problem=_too_slow(budget))
            return Response(url, 0, problem=_network_reason(exc, self.timeout))
        finally:
            self._watchdog.disarm()
            if raw is not None:
                if not reusable:
                    raw.close()  # unread bytes (or a dead socket) on it: never hand it to the next request
                raw.release_conn()


def _too_slow(budget: float) -> str:
    return f"too slow: no complete answer in {budget:g} s (setting crawl_timeout)"


def _retry_after(value: str) -> float | None:
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _network_reason(exc: BaseException, timeout: float) -> str:
    # Most specific first: urllib3's NewConnectionError derives from its TimeoutError.
    if isinstance(exc, urllib3.exceptions.NameResolutionError):
        return "host name not found"
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return "connection refused or host unreachable"
    if isinstance(exc, (urllib3.exceptions.TimeoutError, TimeoutError)):
        return f"timed out after {timeout:g} s (setting crawl_timeout)"
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return "connection broken before the answer was complete"
    if isinstance(exc, urllib3.exceptions.DecodeError):
        return "the answer's Content-Encoding could not be decoded"
    return f"request failed ({type(exc).__name__}: {exc})"
