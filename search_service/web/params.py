"""Request parameters to domain requests: one place, shared by the API and the pages."""

from __future__ import annotations

import dataclasses
import difflib
import functools
from typing import TYPE_CHECKING

from flask import Request

from ..categories import SITE_CATEGORIES
from ..config import Settings
from ..engine.request import Limits, SearchRequest, integer_param, query_param
from ..engine.syntax import ParsedQuery
from ..errors import InvalidParameter
from ..text.analysis import normalize

if TYPE_CHECKING:
    from ..engine.searcher import SearchEngine


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


#: Categories an unknown-category error names (the largest first); /api/stats lists them all.
NAMED_CATEGORIES = 20


def _category_key(name: str) -> str:
    """A category name compared blind to script, width, case and spaces (高新區新聞 = 高新区新闻)."""
    return "".join(normalize(name).split())


@functools.lru_cache(maxsize=16)
def _category_keys(names: tuple[str, ...]) -> dict[str, str]:
    keys: dict[str, str] = {}
    for name in names:
        keys.setdefault(_category_key(name), name)
    return keys


def checked_categories(req: SearchRequest, engine: SearchEngine) -> SearchRequest:
    """``req`` with every ``category`` value one this index knows, or :class:`InvalidParameter` (400).

    A value is known when it is a category of the live index (``engine.category_names()``), written in any
    script, width or case (``行政>内政部`` finds the index's ``行政＞內政部``: the request then carries
    the index's spelling), or one of the site's own categories (:data:`SITE_CATEGORIES`: a form may
    pre-select one that has no article yet). Anything else would silently find nothing and keep
    the bogus value in every facet link, so it is refused, naming the index's categories and the
    closest ones. The API calls this after :func:`search_request`; so should the results pages.
    """
    if not req.categories:
        return req
    names = engine.category_names()
    keys = _category_keys(names)
    resolved: list[str] = []
    unknown: list[str] = []
    for value in req.categories:
        known = value if value in names else keys.get(_category_key(value))
        if known is None and value in SITE_CATEGORIES:
            known = value
        if known is None:
            unknown.append(value)
        elif known not in resolved:
            resolved.append(known)
    if unknown:
        raise InvalidParameter(_unknown_categories_message(unknown, names), param="category")
    if tuple(resolved) == req.categories:
        return req
    return dataclasses.replace(req, categories=tuple(resolved))


def _unknown_categories_message(unknown: list[str], names: tuple[str, ...]) -> str:
    shown = ", ".join(repr(u if len(u) <= 40 else u[:40] + "…") for u in unknown)
    word = "category" if len(unknown) == 1 else "categories"
    message = f"unknown {word} {shown}: no article of this index has it."
    close = list(dict.fromkeys(match for u in unknown
                               for match in difflib.get_close_matches(u, names, n=3, cutoff=0.5)))
    if close:
        message += f" Did you mean {', '.join(close)}?"
    if not names:
        return message + " The index has no categories."
    listed = ", ".join(names[:NAMED_CATEGORIES])
    if len(names) > NAMED_CATEGORIES:
        listed += f" … ({len(names)} in all; GET /api/stats lists every one)"
    return message + f" Known categories, largest first: {listed}."
