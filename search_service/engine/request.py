"""A search request from URL parameters: validation, limits and the way back to parameters.

:class:`SearchRequest` is the validated form of the API's parameters (the HTML pages
use the same names); :func:`query_param` is the one check of ``q`` (once, valid Unicode,
length, and the syntax limits of :func:`syntax.check_query`) for every endpoint that
takes a query; :func:`integer_param` reads whole numbers the same strict way everywhere.
Nothing here knows Flask: parameters arrive as a ``get_list(name)`` callable.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote_plus

from ..categories import canonical_category
from ..errors import InvalidParameter
from .schema import day_number
from .syntax import ParsedQuery, check_query, parsed

SORTS = ("relevance", "date_desc", "date_asc")


@dataclasses.dataclass(frozen=True)
class Limits:
    """Request limits taken from the settings (same names)."""

    max_query_length: int = 256
    max_page_size: int = 100
    max_result_window: int = 10000
    default_page_size: int = 10
    max_categories: int = 20
    max_query_terms: int = 32
    max_suggest_length: int = 64

    @classmethod
    def from_settings(cls, settings) -> Limits:
        """The limits configured in ``settings`` (a :class:`config.Settings`)."""
        return cls(max_query_length=settings.max_query_length, max_page_size=settings.max_page_size,
                   max_result_window=settings.max_result_window, max_categories=settings.max_categories,
                   max_query_terms=settings.max_query_terms, max_suggest_length=settings.max_suggest_length)


@dataclasses.dataclass(frozen=True)
class SearchRequest:
    """A validated search: the same fields as ``/api/search``'s parameters."""

    q: str = ""
    categories: tuple[str, ...] = ()
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    sort: str = "relevance"
    page: int = 1
    page_size: int = 10
    #: False (``correct=0``): search the query exactly as typed, never a homophone/pinyin correction.
    correct: bool = True

    @property
    def syntax(self) -> ParsedQuery:
        """The parsed query (:func:`syntax.parsed`: parsed once, when validated, and shared)."""
        return parsed(self.q)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size

    def cache_key(self) -> tuple:
        return (self.q, tuple(sorted(self.categories)), self.date_from, self.date_to, self.sort,
                self.page, self.page_size, self.correct)

    def to_params(self, **changes) -> list[tuple[str, str]]:
        """URL parameters that reproduce this request (defaults left out), with changes applied.

        ``categories`` may be given as a tuple; ``None`` removes a parameter.
        """
        values: dict[str, Any] = {  # strings, except categories (a tuple); changes are any of these
            "q": self.q,
            "categories": self.categories,
            "date_from": self.date_from.isoformat() if self.date_from else "",
            "date_to": self.date_to.isoformat() if self.date_to else "",
            "sort": self.sort if self.sort != "relevance" else "",
            "page": str(self.page) if self.page != 1 else "",
            "page_size": str(self.page_size) if self.page_size != 10 else "",
            "correct": "" if self.correct else "0",
        }
        for key, value in changes.items():
            if isinstance(value, dt.date):
                value = value.isoformat()
            values[key] = value if value is not None else ("" if key != "categories" else ())
        params: list[tuple[str, str]] = []
        if values["q"]:
            params.append(("q", values["q"]))
        params.extend(("category", c) for c in values["categories"])
        for key in ("date_from", "date_to", "sort", "page", "page_size", "correct"):
            if values[key]:
                params.append((key, str(values[key])))
        return params

    def query_string(self, **changes) -> str:
        """``to_params(**changes)`` as a URL query string (``""`` when every value is a default).

        The same bytes as ``query_string(self.to_params(**changes))``. A results page asks this
        once per facet value (about fifty links, each changing one or two parameters): the
        unchanged parameters' parts are quoted once per request and reused.
        """
        parts = self._query_parts
        for key in changes:
            if key not in parts:
                raise TypeError(f"unknown request parameter {key!r}")
        return "&".join([part for part in (_query_part(key, changes[key]) if key in changes else part
                                           for key, part in parts.items()) if part])

    def query_strings(self, all_changes: Iterable[dict[str, Any]]) -> list[str]:
        """``[self.query_string(**changes) for changes in all_changes]``, the same strings.

        For a facet's links: many changes of the same parameters (``categories`` and ``page``).
        The unchanged parts between the changed ones are joined once per set of changed names,
        so each link joins three pieces or so instead of eight.
        """
        templates: dict[tuple[str, ...], list[str | tuple[str]]] = {}
        strings = []
        for changes in all_changes:
            names = tuple(changes)
            template = templates.get(names)
            if template is None:
                template = templates[names] = self._template(names)
            pieces = []  # a plain loop: a generator per link cost as much as the rest of it
            for item in template:
                if item.__class__ is str:
                    pieces.append(item)  # a run of unchanged parts: never empty
                else:
                    piece = _query_part(item[0], changes[item[0]])
                    if piece:
                        pieces.append(piece)
            strings.append("&".join(pieces))
        return strings

    def _template(self, changed: Sequence[str]) -> list[str | tuple[str]]:
        """The query string's pieces when ``changed`` change: runs of unchanged parts, joined,
        and ``(name,)`` where a changed parameter goes."""
        parts = self._query_parts
        for key in changed:
            if key not in parts:
                raise TypeError(f"unknown request parameter {key!r}")
        template: list[str | tuple[str]] = []
        run: list[str] = []
        for key, part in parts.items():
            if key in changed:
                if run:
                    template.append("&".join(run))
                    run = []
                template.append((key,))
            elif part:
                run.append(part)
        if run:
            template.append("&".join(run))
        return template

    @functools.cached_property
    def _query_parts(self) -> dict[str, str]:
        """Each parameter's part of :meth:`query_string` (``""`` when it is left out), in order."""
        values = {"q": self.q, "categories": self.categories, "date_from": self.date_from,
                  "date_to": self.date_to, "sort": self.sort if self.sort != "relevance" else "",
                  "page": str(self.page) if self.page != 1 else "",
                  "page_size": str(self.page_size) if self.page_size != 10 else "",
                  "correct": "" if self.correct else "0"}
        return {key: _query_part(key, value) for key, value in values.items()}

    @classmethod
    def from_params(cls, get_list: Callable[[str], Sequence[str]], limits: Limits = Limits()) -> SearchRequest:
        """Validate raw parameters; ``get_list(name)`` returns every value given for ``name``.

        Raises :class:`InvalidParameter` naming the parameter, the limit and the fix.
        """
        q = query_param(get_list, limits).text
        given = get_list("category")
        if len(given) > limits.max_categories:
            raise InvalidParameter(
                f"category was given {len(given)} times; the limit is {limits.max_categories} "
                "(setting max_categories). Filter on fewer categories.",
                param="category",
            )
        for value in given:
            _check_unicode("category", value)
        categories = tuple(dict.fromkeys(canonical_category(c) for c in given if c.strip()))
        date_from = _date(get_list, "date_from")
        date_to = _date(get_list, "date_to")
        if date_from and date_to and date_from > date_to:
            raise InvalidParameter(
                f"date_from ({date_from}) is after date_to ({date_to}); swap them or drop one.",
                param="date_from",
            )
        sort = _single(get_list, "sort").strip() or "relevance"  # blanks around it, as every parameter
        if sort not in SORTS:
            raise InvalidParameter(
                f"sort must be one of {', '.join(SORTS)}; got {sort!r}.", param="sort"
            )
        page = integer_param(get_list, "page", 1, 1, None)
        page_size = integer_param(get_list, "page_size", limits.default_page_size, 1, limits.max_page_size,
                             setting="max_page_size")
        if page * page_size > limits.max_result_window:
            raise InvalidParameter(
                f"page {page} with page_size {page_size} reaches result {page * page_size}; results deeper "
                f"than {limits.max_result_window} are not paged (setting max_result_window). Narrow the "
                "search with filters instead.",
                param="page",
            )
        correct = _boolean(get_list, "correct", True)
        return cls(q, categories, date_from, date_to, sort, page, page_size, correct)


def query_param(get_list: Callable[[str], Sequence[str]], limits: Limits, *, suggest: bool = False,
                required: bool = False) -> ParsedQuery:
    """The query given once as ``q``, stripped, checked and parsed: the one check of ``q``.

    Refused with :class:`InvalidParameter` naming the limit: a repeated ``q``, invalid
    Unicode, more than ``max_query_length`` characters (``max_suggest_length`` too with
    ``suggest``), and what :func:`syntax.check_query` refuses (nesting, terms, leading
    wildcards); an empty ``q`` too when ``required``.
    """
    q = _single(get_list, "q").strip()
    _check_unicode("q", q)
    if required and not q:
        raise InvalidParameter(f"q is required: the query, 1 to {limits.max_query_length} characters.", param="q")
    if suggest and len(q) > limits.max_suggest_length:
        raise InvalidParameter(
            f"q is {len(q)} characters long; suggestions take at most {limits.max_suggest_length} "
            "(setting max_suggest_length). Search instead, or shorten the text.",
            param="q",
        )
    if len(q) > limits.max_query_length:
        raise InvalidParameter(
            f"q is {len(q)} characters long; the limit is {limits.max_query_length} "
            "(setting max_query_length). Shorten the query.",
            param="q",
        )
    return check_query(q, limits.max_query_terms)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_unicode(name: str, value: str) -> None:
    """Refuse lone surrogates (invalid Unicode: from a command line's undecodable bytes, say)."""
    match = _SURROGATE.search(value)
    if match:
        raise InvalidParameter(f"{name} contains invalid Unicode (a lone surrogate U+{ord(match.group()):04X}); "
                               "send UTF-8 text.", param=name)


def _single(get_list: Callable[[str], Sequence[str]], name: str) -> str:
    values = get_list(name)
    if len(values) > 1:
        raise InvalidParameter(f"{name} was given {len(values)} times; give it once.", param=name)
    return values[0] if values else ""


def integer_param(get_list, name: str, default: int, low: int, high: int | None, setting: str = "",
                  empty_is_default: bool = True) -> int:
    """The whole number given once as ``name`` (``default`` when absent), within ``low``..``high``.

    An empty value means the default too, unless ``empty_is_default`` is false (then it is refused).

    Only ASCII digits, at most 9 of them: ``int()`` would also take ``٣`` or ``１`` (and
    ``str.isdigit`` even ``²``, which ``int()`` then refuses), and a 5,000-digit value
    is an error of its own in Python. Raises :class:`InvalidParameter` naming ``name``.
    """
    raw = _single(get_list, name).strip()
    if not raw and (empty_is_default or not get_list(name)):
        return default
    if not re.fullmatch(r"[0-9]{1,9}", raw, re.ASCII):
        shown = raw if len(raw) <= 40 else raw[:40] + f"…({len(raw)} characters)"
        bound = f" between {low} and {high}" if high is not None else f" of at least {low}"
        raise InvalidParameter(f"{name} must be a whole number{bound}, written in ASCII digits 0-9; "
                               f"got {shown!r}.", param=name)
    value = int(raw)
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        where = f" (setting {setting})" if setting and high is not None and value > high else ""
        raise InvalidParameter(f"{name} must be {bound}{where}; got {value}.", param=name)
    return value


def _boolean(get_list, name: str, default: bool) -> bool:
    raw = _single(get_list, name).strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise InvalidParameter(f"{name} must be 1 or 0 (true or false); got {raw[:40]!r}.", param=name)


def _date(get_list, name: str) -> dt.date | None:
    raw = _single(get_list, name).strip()
    if not raw:
        return None
    problem = f"{name} must be a date written YYYY-MM-DD, e.g. 2025-09-11; got {raw!r}."
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        raise InvalidParameter(problem, param=name)
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:  # well-formed but impossible, e.g. 2024-02-30
        raise InvalidParameter(problem, param=name) from None


def date_bounds(request: SearchRequest) -> tuple[int, int]:
    """The request's date filter as inclusive YYYYMMDD bounds (0 / 99999999 when open)."""
    low = day_number(request.date_from) if request.date_from else 0
    high = day_number(request.date_to) if request.date_to else 99_999_999
    return low, high


def get_list_from_mapping(params: Mapping[str, object]) -> Callable[[str], list[str]]:
    """Adapter: a plain dict of str or list values as a ``get_list`` callable (CLI, tests)."""

    def get_list(name: str) -> list[str]:
        value = params.get(name)
        if value is None:
            return []
        if isinstance(value, (list, tuple)):
            return [str(v) for v in value]
        return [str(value)]

    return get_list


@functools.lru_cache(maxsize=8192)
def _quoted(value: str) -> str:
    # The same few values (the query, category names, dates) are quoted for every facet
    # link of every page: remembering them makes a results page's links nearly free.
    return quote_plus(value)


@functools.lru_cache(maxsize=8192)
def _query_part(key: str, value: Any) -> str:
    """One parameter of :meth:`SearchRequest.to_params` as it appears in the query string
    (remembered: a results page's facet links change the same few values again and again)."""
    if key == "categories":
        return "&".join([f"category={_quoted(category)}" for category in value or ()])
    if isinstance(value, dt.date):
        value = value.isoformat()
    return f"{key}={_quoted(str(value))}" if value else ""


def query_string(params: Sequence[tuple[str, str]]) -> str:
    """``urllib.parse.urlencode(params)``, the same bytes, with each value quoted once per process."""
    return "&".join(f"{_quoted(name)}={_quoted(value)}" for name, value in params)
