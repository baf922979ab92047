"""Errors that carry what a person needs: an HTTP status, a stable code, and a hint.

Domain code raises these; the web layer turns them into the one JSON error
shape and the CLI prints their message. Nothing here imports Flask.

One ladder: every error a request can end in is a class here, its HTTP status and
stable ``code`` class attributes (never set on an instance), so a status and its
code cannot drift apart between the places that raise it.
"""

from __future__ import annotations


class SearchError(Exception):
    """Base class: ``status`` is the HTTP status, ``code`` a stable machine code."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, details: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.details = details or {}

    def to_dict(self) -> dict:
        """The body of the API's error shape: ``{"error": {...}}``; ``details`` add keys (e.g. problems)."""
        error = {"status": self.status, "code": self.code, "message": self.message}
        if self.param is not None:
            error["param"] = self.param
        error.update(self.details)
        return {"error": error}


class ConfigError(SearchError):
    """A setting is unknown or has the wrong type; raised at start-up."""

    code = "invalid_config"


class InvalidParameter(SearchError):
    """A request parameter is malformed or out of range."""

    status = 400
    code = "invalid_parameter"


class NotFound(SearchError):
    """An unknown document or route."""

    status = 404
    code = "not_found"


class IndexUnavailable(SearchError):
    """No index has been built yet, or it cannot be opened."""

    status = 503
    code = "index_unavailable"


class Unhealthy(SearchError):
    """The index is open but the home page or a search cannot be served (the health canary failed)."""

    status = 503
    code = "unhealthy"


class AnalyticsUnavailable(SearchError):
    """The analytics file cannot be read (damaged beyond setting aside, or its folder unusable)."""

    status = 503
    code = "analytics_unavailable"


class IndexBusy(SearchError):
    """Another writer holds the index lock."""

    status = 503
    code = "index_busy"


class Unauthorized(SearchError):
    """A write without valid bearer credentials: none, not a bearer token, or not a token of this server.

    The response carries ``WWW-Authenticate: <challenge>`` (RFC 9110 §11.6.1, RFC 6750 §3):
    ``challenge`` names the scheme, and ``error="invalid_token"`` when a token was sent but
    is not one this server knows.
    """

    status = 401
    code = "unauthorized"

    def __init__(self, message: str, *, challenge: str = 'Bearer realm="search_service"', **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.challenge = challenge


class Forbidden(SearchError):
    """Writes are switched off (no token configured): no credentials can be allowed."""

    status = 403
    code = "writes_disabled"


class PayloadTooLarge(SearchError):
    """A request body or batch over the configured limit."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(SearchError):
    """A write body that is not JSON / NDJSON."""

    status = 415
    code = "unsupported_media_type"


class OriginNotAllowed(SearchError):
    """A click reported from a page whose origin is not the service's or in ``cors_origins``."""

    status = 403
    code = "origin_not_allowed"


class MethodNotAllowed(SearchError):
    """An HTTP method the route does not take (the response's ``Allow`` lists those it does)."""

    status = 405
    code = "method_not_allowed"


class RateLimited(SearchError):
    """Too many requests from one client (setting ``rate_limit``)."""

    status = 429
    code = "rate_limited"


class ServerBusy(SearchError):
    """Too many costly requests (exports, article pages) at once in this worker (``costly_concurrency``)."""

    status = 503
    code = "server_busy"


class QueueFull(SearchError):
    """Too many write requests are waiting (setting ``write_queue_max``), or the writer is stopping."""

    status = 503
    code = "write_queue_full"


class WriteFailed(SearchError):
    """The commit failed; nothing of the batch was written."""

    status = 503
    code = "write_failed"


class HttpError(SearchError):
    """Any other HTTP error werkzeug raises (a malformed request, an unsatisfiable range, ...).

    One subclass per status, made by the web layer's error handler: the status is a class
    attribute like everywhere else on this ladder.
    """

    code = "http_error"
