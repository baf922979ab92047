"""Abuse limits: who the client is, per-client rate limits, and bounded work per request.

* **Client address.** :class:`TrustedProxies` is WSGI middleware: when the connection
  comes from one of the ``trusted_proxies`` (addresses or networks), ``REMOTE_ADDR``
  becomes the right-most address in ``X-Forwarded-For`` that is not itself a trusted
  proxy (the client the proxy saw; anything further left was written by the client and
  proves nothing); ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` set the scheme and host
  absolute URLs use (werkzeug ProxyFix semantics, see ``pages.public_base_url``). From any
  other peer, ``X-Forwarded-*`` and ``Forwarded`` are dropped, so nothing downstream can
  believe them by mistake.
* **Rate limit.** One limit (``rate_limit``, e.g. ``60 per 3 seconds``; ``;`` separates
  several; the ``limits`` library's notation and sliding-window counters) shared by every
  public endpoint, counted per client address (IPv6 per /64, the block one subscriber
  gets); costly endpoints have their own on top (``export_rate_limit``,
  ``article_rate_limit``). :class:`RateLimiter` counts before each request. Not counted: views marked
  :func:`rate_limit_exempt` (``/healthz`` and ``/metrics``: monitoring), ``/static/`` (the
  widget and styles), and requests that carry a valid bearer token (see :func:`_is_exempt`).
  Over the limit: 429 with ``Retry-After``, in the API's error shape or as a Chinese page.
* **Bounds.** ``q`` is checked once, where each view reads it
  (:func:`request.query_param`: ``max_query_length``, ``max_suggest_length``,
  ``max_query_terms``, nesting, leading wildcards), before any search work; prefix
  expansion (``max_prefix_terms``) needs the index and is checked by the searcher.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from flask import Flask, Response, current_app, render_template, request
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from ..config import Settings
from ..errors import ConfigError, RateLimited
from .auth import has_valid_token
from .costly import KINDS, costly_kind
from .rate_counters import CounterFileStorage

log = logging.getLogger(__name__)

LIMITER_KEY = "rate_limiter"
WRITE_METHODS = frozenset({"PUT", "POST", "DELETE", "PATCH"})
_PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PROTO",
                  "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_BY", "HTTP_FORWARDED", "HTTP_X_REAL_IP")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

View = TypeVar("View", bound=Callable[..., Any])
#: Attributes the decorators below set on a view function; the limits read them from the
#: matched endpoint, so this module needs to know no blueprint's endpoint names.
_EXEMPT_ATTR = "rate_limit_exempt"


# --------------------------------------------------------------------------- flags on views


def rate_limit_exempt(view: View) -> View:
    """Mark a view as never rate-limited: monitoring must keep working while a client is throttled."""
    setattr(view, _EXEMPT_ATTR, True)
    return view


def _view_flag(name: str) -> Any:
    """The flag ``name`` of the view the request was routed to (None when unrouted or unflagged)."""
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    return getattr(view, name, None)


# --------------------------------------------------------------------------- client address


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``trusted_proxies`` entries (``10.0.0.1``, ``10.0.0.0/8``, ``::1``) as networks."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ConfigError(
                f"trusted_proxies: {value!r} is not an IP address or network (e.g. 10.0.0.1 or 10.0.0.0/8). "
                "Fix: correct or remove it.",
                param="trusted_proxies",
            ) from None
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address, networks: tuple[Network, ...]) -> bool:
    return address is not None and any(address in network for network in networks)


def client_from_forwarded(remote: str, forwarded_for: str, networks: tuple[Network, ...]) -> str:
    """The client's address: ``remote``, or through trusted proxies the right-most untrusted hop."""
    if not networks or not _trusted(_address(remote), networks):
        return remote
    hops = [hop for hop in (part.strip() for part in forwarded_for.split(",")) if hop]
    believed = remote
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # garbage: believe nothing further left
        believed = str(address)
        if not _trusted(address, networks):
            break  # the first hop no trusted proxy vouches for: the client
    return believed


class TrustedProxies:
    """WSGI middleware: the real client in ``REMOTE_ADDR``; proxy headers only from trusted proxies."""

    def __init__(self, wsgi_app, networks: tuple[Network, ...]) -> None:
        self.wsgi_app = wsgi_app
        self.networks = networks

    def __call__(self, environ, start_response):
        remote = environ.get("REMOTE_ADDR", "")
        if self.networks and _trusted(_address(remote), self.networks):
            client = client_from_forwarded(remote, environ.get("HTTP_X_FORWARDED_FOR", ""), self.networks)
            environ["search_service.proxy_addr"] = remote
            environ["REMOTE_ADDR"] = client
            # As werkzeug's ProxyFix(x_proto=1, x_host=1): the value the nearest proxy appended.
            proto = _last(environ.get("HTTP_X_FORWARDED_PROTO", "")).lower()
            if proto in ("http", "https"):
                environ["wsgi.url_scheme"] = proto
            host = _last(environ.get("HTTP_X_FORWARDED_HOST", ""))
            if _HOST.fullmatch(host):
                environ["HTTP_HOST"] = host
                environ["search_service.forwarded_host"] = host
        else:
            for name in _PROXY_HEADERS:
                environ.pop(name, None)
        return self.wsgi_app(environ, start_response)


# A host name or address with an optional port: nothing that could break out of a URL.
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")


def _last(header: str) -> str:
    """The right-most value of a comma-separated forwarding header (the nearest proxy's)."""
    return header.rsplit(",", 1)[-1].strip()


def client_key() -> str:
    """The rate-limit bucket of this request: the client address, IPv6 by /64."""
    return _bucket(request.remote_addr or "unknown")


@functools.lru_cache(maxsize=4096)
def _bucket(remote: str) -> str:
    # Remembered: a client sends many requests, and parsing its address took 2 µs each time.
    address = _address(remote)
    if address is None:
        return remote
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


# --------------------------------------------------------------------------- rate limit


def _is_exempt(settings: Settings) -> bool:
    """Requests that do not count against the public per-client limit.

    Requests with a valid bearer token are exempt, reads and writes alike: they come from the
    site's own scripts (a staff script running 150 searches must not get 429 for most of them);
    writes stay bounded by the writer queue (``write_queue_max``: 503 Retry-After when full),
    ``write_batch_max`` and ``write_body_max_mb``, and searches by the per-request bounds.
    Requests *without* a valid token (or with a wrong one) count like any public request,
    which also throttles token guessing.
    """
    if _view_flag(_EXEMPT_ATTR) or request.path.startswith("/static/"):
        return True
    # Any request with a valid bearer token is the site's own script (a staff report running
    # a few hundred searches, a bulk import): it is not throttled like an anonymous client.
    return has_valid_token(settings)


class SweepingMemoryStorage(MemoryStorage):
    """``memory://`` without a new timer thread every 10 ms.

    limits' MemoryStorage expires counters from a ``threading.Timer`` that it starts again 10 ms
    after the previous one ended: under steady traffic about 100 thread starts a second, each
    on a request's path (measured: +1 ms per request, a third of a cached search). Counters are
    also expired when read, so the sweep only bounds memory: here it runs inline, at most once
    a second, by whichever request comes first.
    """

    STORAGE_SCHEME = ["search-service-memory"]
    SWEEP_INTERVAL = 1.0

    def __init__(self, uri: str | None = None, **options) -> None:
        super().__init__(uri, **options)
        self._last_sweep = time.monotonic()
        self._sweeping = threading.Lock()

    def _MemoryStorage__schedule_expiry(self) -> None:  # replaces the timer restart
        now = time.monotonic()
        if now - self._last_sweep < self.SWEEP_INTERVAL or not self._sweeping.acquire(blocking=False):
            return
        try:
            self._last_sweep = now
            # limits' private (name-mangled) MemoryStorage method, absent from its type stubs.
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]
        finally:
            self._sweeping.release()


def limit_storage(app: Flask) -> Storage | None:
    """The storage the app's rate limit counts in (None without a limit)."""
    limiter = app.extensions.get(LIMITER_KEY)
    return limiter.storage if limiter is not None else None


def shared_storage_uri(path: str) -> str:
    """The ``rate_limit_storage`` that makes worker processes share counters in ``path``
    (a :class:`rate_counters.CounterFileStorage`)."""
    return f"{CounterFileStorage.STORAGE_SCHEME[0]}://{path}"


def storage_uri(configured: str) -> str:
    """The storage to use for ``rate_limit_storage``: memory:// becomes the sweeping variant."""
    if configured.strip().lower().startswith("memory://") and hasattr(MemoryStorage, "_MemoryStorage__expire_events"):
        return "search-service-memory://"
    return configured


def _parsed_spec(settings: Settings, name: str) -> str:
    """The limit setting ``name``, checked (ConfigError naming it); "" when empty."""
    spec = getattr(settings, name).strip()
    try:
        if spec and parse_many(spec):
            return spec
    except ValueError as exc:
        raise ConfigError(
            f"{name} = {spec!r} is not in rate-limit notation ({exc}). Fix: write e.g. "
            '"60 per 3 seconds" or "20/second; 600/minute", or "" for no limit.',
            param=name,
        ) from None
    return ""


@dataclasses.dataclass(frozen=True)
class LimitRule:
    """One limit setting: its limits, counted per client under ``scope`` (named in a 429)."""

    scope: str
    setting: str
    items: tuple[RateLimitItem, ...]


@dataclasses.dataclass(frozen=True)
class Breach:
    """The limit a request went over: which rule, which of its limits, the counter's identity."""

    rule: LimitRule
    item: RateLimitItem
    identifiers: tuple[str, ...]


class RateLimiter:
    """Counts requests per client against the rules that apply to them, in ``storage`` (shared
    by the workers), or in this process's memory while that storage fails.

    A limit is a safety feature, not a gate: when the storage fails, the request is counted
    here in memory instead of answered with a 500, and the storage is tried again every
    :attr:`RECHECK_SECONDS`. (Flask-Limiter did this job with a resolution of decorators,
    blueprints and scopes for every request: a quarter of a cached search's time.)
    """

    #: Seconds between two tries of a storage that failed.
    RECHECK_SECONDS = 10.0
    KEY_PREFIX = "search_service"

    def __init__(self, storage: Storage, public: LimitRule | None, costly: dict[str, LimitRule]) -> None:
        self.storage = storage
        self.public = public
        self.costly = costly
        self._shared = SlidingWindowCounterRateLimiter(storage)
        self._memory = SlidingWindowCounterRateLimiter(SweepingMemoryStorage())
        self._failed_at: float | None = None

    def rules_for(self, kind: str | None) -> list[LimitRule]:
        """The public rule, and the costly ``kind``'s own when it has one."""
        rules = [self.public] if self.public is not None else []
        if kind is not None and kind in self.costly:
            rules.append(self.costly[kind])
        return rules

    def hit(self, rules: Iterable[LimitRule], client: str) -> Breach | None:
        """Count one request of ``client`` under every limit of ``rules`` in turn; the first
        limit it goes over (counting stops there), or None."""
        for rule in rules:
            identifiers = (self.KEY_PREFIX, rule.scope, client)
            for item in rule.items:
                if not self._count(item, identifiers):
                    return Breach(rule, item, identifiers)
        return None

    def retry_after(self, breach: Breach) -> int:
        """Whole seconds until ``breach``'s limit lets the client in again (at least 1)."""
        try:
            stats = self._strategy().get_window_stats(breach.item, *breach.identifiers)
        except Exception:  # noqa: BLE001 - a storage hiccup must not turn a 429 into a 500
            return 1
        # A sliding window's reset can lie a moment past one window (the current window's
        # counter lives two): never tell a client to wait longer than the limit's window.
        return max(1, min(math.ceil(stats.reset_time - time.time()), breach.item.get_expiry()))

    def _strategy(self) -> SlidingWindowCounterRateLimiter:
        failed_at = self._failed_at
        if failed_at is None:
            return self._shared
        if time.monotonic() - failed_at < self.RECHECK_SECONDS:
            return self._memory
        self._failed_at = time.monotonic()  # one request tries; the others keep counting in memory
        try:
            works = bool(self.storage.check())
        except Exception:  # noqa: BLE001 - still failing
            works = False
        if not works:
            return self._memory
        log.info("rate-limit storage works again; counting in it")
        self._failed_at = None
        return self._shared

    def _count(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> bool:
        if self._strategy() is self._shared:
            try:
                return self._shared.hit(item, *identifiers)
            except Exception as exc:  # noqa: BLE001 - any storage failure: count in memory instead
                if self._failed_at is None:
                    log.warning("rate-limit storage failed (%s); counting in this process's memory until it works",
                                " ".join(str(exc).split())[:200])
                self._failed_at = time.monotonic()
        return self._memory.hit(item, *identifiers)


def install_rate_limit(app: Flask, settings: Settings) -> RateLimiter | None:
    """Apply ``rate_limit`` to the public endpoints, and ``export_rate_limit`` and
    ``article_rate_limit`` to the costly ones (see ``costly``) on top of it; None when all
    are empty."""
    spec = _parsed_spec(settings, "rate_limit")
    public = LimitRule("public", "rate_limit", tuple(parse_many(spec))) if spec else None
    costly_rules = {kind: LimitRule(kind, setting, tuple(parse_many(kind_spec)))
                    for kind, setting in KINDS.items() if (kind_spec := _parsed_spec(settings, setting))}
    if public is None and not costly_rules:
        return None
    try:
        storage = storage_from_string(storage_uri(settings.rate_limit_storage))
        if not isinstance(storage, Storage):
            raise ValueError("an asynchronous storage (async+...) needs an async server")
    except Exception as exc:  # the storage URI names an unknown scheme or a missing driver
        raise ConfigError(
            f"rate_limit_storage = {settings.rate_limit_storage!r} cannot be used: {exc}. Fix: use "
            "memory:// or a reachable shared store such as redis://host:6379 (with its Python driver installed).",
            param="rate_limit_storage",
        ) from None
    limiter = RateLimiter(storage, public, costly_rules)
    app.extensions[LIMITER_KEY] = limiter

    @app.before_request
    def count_request() -> Response | None:
        endpoint = request.endpoint
        if endpoint is None or _is_exempt(settings):
            return None  # unrouted (a 404), monitoring, static files, the site's own scripts
        rules = limiter.rules_for(costly_kind(app.view_functions.get(endpoint)))
        breach = limiter.hit(rules, client_key()) if rules else None
        return None if breach is None else _refusal(limiter, breach)

    return limiter


def _refusal(limiter: RateLimiter, breach: Breach) -> Response:
    """The 429 for ``breach``: in the API's error shape or as a Chinese page, with Retry-After."""
    from . import error_response, wants_json

    retry = limiter.retry_after(breach)
    problem = RateLimited(
        f"Too many requests from this client: the limit is {breach.item} (setting {breach.rule.setting}). "
        f"Retry after {retry} seconds."
    )
    if wants_json():
        response = error_response(problem)
    else:
        response = Response(render_template("rate_limited.html", error=problem, retry_after=retry),
                            status=429, mimetype="text/html")
    response.headers["Retry-After"] = str(retry)
    return response
