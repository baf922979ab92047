"""Request parameters to domain requests: one place, shared by the API and the pages."""

from __future__ import annotations

from flask import Request

from ..config import Settings
from ..request import Limits, SearchRequest, query_param
from ..syntax import ParsedQuery


def limits_of(settings: Settings) -> Limits:
    """The request limits configured in ``settings``."""
    return Limits.from_settings(settings)


def search_request(request: Request, settings: Settings) -> SearchRequest:
    """Validate ``/api/search``-style parameters (raises :class:`InvalidParameter`)."""
    return SearchRequest.from_params(request.args.getlist, limits_of(settings))


def query_of(request: Request, settings: Settings, *, suggest: bool = False) -> ParsedQuery:
    """The checked ``q`` of an endpoint that takes only a query (suggestions, the article page)."""
    return query_param(request.args.getlist, limits_of(settings), suggest=suggest)
