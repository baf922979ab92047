"""What the engine returns, as typed plain data (no Flask): a search's hits, facet values and
whole result; suggestions; related articles; index statistics.

``url`` always means the article's address on the source site, as indexed. The engine knows
no routes of this service: ``web/`` adds them to the JSON (``page_url``, see ``web/routes.py``).
"""

from __future__ import annotations

import calendar
import dataclasses
import re

from .request import SearchRequest


@dataclasses.dataclass
class Hit:
    """One result, ready to render: ``title_html`` and ``snippet`` are escaped HTML."""

    id: str
    title: str
    title_html: str
    snippet: str
    category: str
    date: str | None
    url: str
    source: str
    score: float | None
    rank: int
    match: str | None = None  # "all_words", "substring", "pinyin", "partial", "pinned"; None when listing
    #: Placed first by staff for this query (rules/curations.py); shown to readers as 「推荐」.
    pinned: bool = False

    def to_json(self) -> dict:
        # Written out: dataclasses.asdict deep-copies every value, a quarter of a cached search.
        return {"id": self.id, "title": self.title, "title_html": self.title_html, "snippet": self.snippet,
                "category": self.category, "date": self.date, "url": self.url, "source": self.source,
                "score": self.score, "rank": self.rank, "match": self.match, "pinned": self.pinned}


# An article's address is a link only when it is an absolute http(s) URL.
_HTTP_URL = re.compile(r"https?://[^\s\x00-\x1f\x7f]+", re.IGNORECASE)


def linkable_url(url: str | None) -> str | None:
    """``url`` when it is an absolute http(s) URL a browser may follow, else None."""
    return url if url and _HTTP_URL.fullmatch(url) else None


@dataclasses.dataclass
class Suggestion:
    """One as-you-type suggestion: an article's title with the typed text marked (escaped HTML)."""

    id: str
    title: str
    title_html: str
    category: str
    date: str | None
    #: The article on the source site, as indexed (as in :class:`Hit`).
    url: str
    #: With ``excerpt``: a line of the body around the match, escaped HTML with ``<mark>``.
    excerpt_html: str | None = None
    #: Placed first by staff for this text (rules/curations.py); the box shows 「推荐」.
    pinned: bool = False

    @property
    def source_url(self) -> str | None:
        """``url`` when a browser may follow it (absolute http/https), else None: the widget's
        "open on the institute's site" option (docs/SEARCH_BOX.md)."""
        return linkable_url(self.url)

    def to_json(self) -> dict:
        data = {"id": self.id, "title": self.title, "title_html": self.title_html, "category": self.category,
                "date": self.date, "url": self.url, "source_url": self.source_url, "pinned": self.pinned}
        if self.excerpt_html is not None:
            data["excerpt_html"] = self.excerpt_html  # asked for with excerpt=1 only
        return data


@dataclasses.dataclass
class SimilarArticle:
    """An article related to another one (see :class:`Similar`)."""

    id: str
    title: str
    category: str
    date: str | None
    #: The article on the source site, as indexed.
    url: str
    score: float

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Similar:
    """The articles related to ``id``: those sharing its key ``terms``, best first."""

    id: str
    terms: list[str]
    similar: list[SimilarArticle]

    def to_json(self) -> dict:
        return {"id": self.id, "terms": list(self.terms), "similar": [a.to_json() for a in self.similar]}


@dataclasses.dataclass
class CategoryCount:
    """A category and how many live articles it has."""

    value: str
    count: int


@dataclasses.dataclass
class IndexStats:
    """What the live index holds: counts, categories, date range, generation and build."""

    documents: int
    categories: list[CategoryCount]
    date_min: str | None
    date_max: str | None
    undated: int
    generation: str
    commit: int
    index_bytes: int
    build: dict

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class FacetValue:
    """One facet entry: its value, how many results have it, and whether it is selected."""

    value: str
    count: int
    selected: bool

    def to_json(self) -> dict:
        return {"value": self.value, "count": self.count, "selected": self.selected}


@dataclasses.dataclass
class SearchResults:
    """Everything a page or the API shows for one request."""

    request: SearchRequest
    total: int
    hits: list[Hit]
    facets: dict[str, list[FacetValue]]
    took_ms: float
    relaxed: str | None = None
    generation: str = ""
    cached: bool = False
    highlight_terms: list[str] = dataclasses.field(default_factory=list)
    expansions: list[dict] = dataclasses.field(default_factory=list)
    suggestion: str | None = None
    #: The query whose results these are: the typed one, or its correction (see ``correction``).
    searched: str | None = None
    #: When the typed query had no exact match and a correction did: {"typed", "searched", "kind", "changes"}.
    correction: dict | None = None
    #: Words of the query no article contains (named by the partial-match notice).
    unmatched: list[str] = dataclasses.field(default_factory=list)
    #: What presenters made of these results (the API's JSON), by presenter: one dict shared by
    #: every copy the result cache hands out, so a repeated search is not rendered again.
    renderings: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.request.page_size))

    def to_json(self) -> dict:
        req = self.request
        return {
            "query": req.q,
            "searched": self.searched if self.searched is not None else req.q,
            "correction": self.correction,
            "unmatched": self.unmatched,
            "total": self.total,
            "page": req.page,
            "page_size": req.page_size,
            "pages": self.pages,
            "sort": req.sort,
            "took_ms": round(self.took_ms, 2),
            "relaxed": self.relaxed,
            "expansions": self.expansions,
            "suggestion": self.suggestion,
            "cached": self.cached,
            "generation": self.generation,
            "filters": {
                "category": list(req.categories),
                "date_from": req.date_from.isoformat() if req.date_from else None,
                "date_to": req.date_to.isoformat() if req.date_to else None,
            },
            "hits": [hit.to_json() for hit in self.hits],
            "facets": {name: [v.to_json() for v in values] for name, values in self.facets.items()},
        }


def selected_year(request: SearchRequest) -> int | None:
    """The year the date filter selects exactly (Jan 1 to Dec 31 of one year, or a month in it)."""
    low, high = request.date_from, request.date_to
    if low is None or high is None or low.year != high.year:
        return None
    if (low.month, low.day) == (1, 1) and (high.month, high.day) == (12, 31):
        return low.year
    return low.year if selected_month(request) else None


def selected_month(request: SearchRequest) -> int | None:
    """The month the date filter selects exactly, or None."""
    low, high = request.date_from, request.date_to
    if low is None or high is None or (low.year, low.month) != (high.year, high.month) or low.day != 1:
        return None
    # The month's last day, without computing the next month (which December 9999 has not).
    last_day = calendar.monthrange(low.year, low.month)[1]
    return low.month if high.day == last_day else None


def facet_toggle(request: SearchRequest, facet: str, value: FacetValue) -> dict:
    """The request changes that select ``value`` of ``facet``, or unselect it when selected.

    Keys and values are those of :meth:`SearchRequest.to_params` (``categories`` a tuple,
    dates ISO strings, ``None`` to remove); the page goes back to 1. One rule for the
    HTML facet links and the JSON API's ``toggle_url``.
    """
    if facet == "category":
        if value.selected:
            return {"categories": tuple(c for c in request.categories if c != value.value), "page": None}
        return {"categories": request.categories + (value.value,), "page": None}
    if facet == "year":
        year = int(value.value)
        if value.selected and not selected_month(request):
            return {"date_from": None, "date_to": None, "page": None}
        return {"date_from": f"{year:04d}-01-01", "date_to": f"{year:04d}-12-31", "page": None}
    if facet == "month":
        year, month = (int(part) for part in value.value.split("-"))
        if value.selected:  # back to the whole year
            return {"date_from": f"{year:04d}-01-01", "date_to": f"{year:04d}-12-31", "page": None}
        last = calendar.monthrange(year, month)[1]
        return {"date_from": f"{year:04d}-{month:02d}-01", "date_to": f"{year:04d}-{month:02d}-{last:02d}",
                "page": None}
    raise ValueError(f"unknown facet {facet!r}")
