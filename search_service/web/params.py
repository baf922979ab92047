"""Request parameters to domain requests: one place, shared by the API and the pages."""

from __future__ import annotations

from flask import Request

from ..config import Settings
from ..engine.request import Limits, SearchRequest, integer_param, query_param
from ..engine.syntax import ParsedQuery


def limits_of(settings: Settings) -> Limits:
    """The request limits configured in ``settings``."""
    return Limits.from_settings(settings)


def search_request(request: Request, settings: Settings) -> SearchRequest:
    """Validate ``/api/search``-style parameters (raises :class:`InvalidParameter`)."""
    return SearchRequest.from_params(request.args.getlist, limits_of(settings))


#: Related articles ``/api/documents/<id>/similar`` returns when no ``limit`` is given.
SIMILAR_DEFAULT = 5


def similar_default(settings: Settings) -> int:
    """The default ``limit`` of ``similar``: :data:`SIMILAR_DEFAULT`, or ``max_limit`` when that is lower."""
    return min(SIMILAR_DEFAULT, settings.max_limit)


def limit_param(request: Request, settings: Settings, default: int) -> int:
    """The ``limit`` of suggest and similar: 1 to ``max_limit``, ``default`` when absent.

    An empty value is refused (400) like any other malformed one; the error names the
    parameter, the bounds and, over the top, the setting ``max_limit``.
    """
    return integer_param(request.args.getlist, "limit", default, 1, settings.max_limit, setting="max_limit",
                         empty_is_default=False)


def query_of(request: Request, settings: Settings, *, suggest: bool = False) -> ParsedQuery:
    """The checked ``q`` of an endpoint that takes only a query (suggestions, the article page)."""
    return query_param(request.args.getlist, limits_of(settings), suggest=suggest)
