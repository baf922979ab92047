"""Request parameters to domain requests: one place, shared by the API and the pages."""

from __future__ import annotations

from flask import Request

from ..config import Settings
from ..query import Limits, SearchRequest


def limits_of(settings: Settings) -> Limits:
    """The request limits configured in ``settings``."""
    return Limits(settings.max_query_length, settings.max_page_size, settings.max_result_window,
                  max_categories=settings.max_categories)


def search_request(request: Request, settings: Settings) -> SearchRequest:
    """Validate ``/api/search``-style parameters (raises :class:`InvalidParameter`)."""
    return SearchRequest.from_params(request.args.getlist, limits_of(settings))
