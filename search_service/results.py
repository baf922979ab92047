"""What a search returns: hits, facet values and the whole result, as plain data (no Flask)."""

from __future__ import annotations

import calendar
import dataclasses

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
    match: str | None = None  # "all_words", "substring", "pinyin", "partial"; None when listing

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class FacetValue:
    """One facet entry: its value, how many results have it, and whether it is selected."""

    value: str
    count: int
    selected: bool

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


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
