"""Errors that carry what a person needs: an HTTP status, a stable code, and a hint.

Domain code raises these; the web layer turns them into the one JSON error
shape and the CLI prints their message. Nothing here imports Flask.
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


class IndexBusy(SearchError):
    """Another writer holds the index lock."""

    status = 503
    code = "index_busy"


class Unauthorized(SearchError):
    """A write without a valid bearer token."""

    status = 401
    code = "unauthorized"


class Forbidden(SearchError):
    """Writes are switched off (no token configured)."""

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
