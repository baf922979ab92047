"""The HTML pages: results (with facets, filters, paging, sorting), article view, CSV export,
OpenSearch description, syntax help.

Every page renders what :meth:`SearchEngine.search` returns for the validated
:class:`SearchRequest` of ``/api/search`` (same parameter names), so a page URL,
its JSON twin (``Link: rel=alternate``) and its CSV export always agree. The
pages work without JavaScript: filters are links and GET forms; ``app.js`` and
``widget.js`` only add auto-submit and suggestions on top.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import html
import io
import json
import logging
import re
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from urllib.parse import quote

from flask import Blueprint, Response, current_app, g, render_template, request, url_for
from markupsafe import Markup

from ..config import Settings
from ..engine.compiler import CompiledQuery
from ..engine.request import SearchRequest, query_string
from ..engine.results import Hit, SearchResults, facet_toggle, linkable_url, selected_month, selected_year
from ..engine.searcher import SearchEngine
from ..errors import InvalidParameter, SearchError
from ..text.highlight import MARK_SCAN_CHARS, Highlighter
from . import describe_unexpected, engine_of
from .costly import GATE_KEY, costly
from .error_pages import error_view
from .params import checked_categories, limits_of, query_of, search_request
from .routes import article_path, article_route
from .tracking import record_page_search

log = logging.getLogger(__name__)
blueprint = Blueprint("pages", __name__)

SITE_NAME = "高新院"
SORT_LABELS = {"relevance": "相关度", "date_desc": "最新", "date_asc": "最早"}
#: Rows asked of the engine at a time while an export streams (what is held in memory at once).
EXPORT_CHUNK = 1000
#: The CSV's columns, in Chinese like the page; 相关度 only when the order is by relevance.
CSV_COLUMNS = ("排名", "编号", "标题", "分类", "日期", "来源", "原文链接", "相关度", "摘要")
SCORE_COLUMN = "相关度"
#: Facet values listed before 「更多」: the rest fold away (selected values always show).
CATEGORIES_SHOWN = 8
YEARS_SHOWN = 5
# Spreadsheets run cells that start with these as formulas (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_MARK_TAGS = re.compile(r"</?mark>")


def _settings() -> Settings:
    return current_app.config["SETTINGS"]


def safe_url(url: str | None) -> str:
    """``url`` when it is an absolute http(s) URL that may become a link, else ``""``
    (javascript:, data: and relative junk are shown as text)."""
    return linkable_url(url) or ""


def public_base_url() -> str:
    """The base of absolute URLs, ending in ``/``; never taken from the request's Host header.

    The ``public_url`` setting when set; else the host and scheme a trusted proxy forwarded
    (``X-Forwarded-Host``/``-Proto``, applied by ``limits.TrustedProxies`` only for peers in
    ``trusted_proxies``); else the address the server listens on (setting ``host``, with
    ``localhost`` for a wildcard address, and the port it accepted the connection on): right
    for a browser on the same machine, and a reason to set ``public_url`` in production.
    """
    settings = _settings()
    configured = settings.public_url.strip()
    if configured:
        return configured.rstrip("/") + "/"
    environ = request.environ
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("search_service.forwarded_host")
    if not host:
        host = settings.host if settings.host not in ("", "0.0.0.0", "::") else "localhost"
        port = str(environ.get("SERVER_PORT") or settings.port)
        if port and (scheme, port) not in (("http", "80"), ("https", "443")):
            host = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"{scheme}://{host}{request.script_root}/"


def doc_href(doc_id: str, q: str = "", state: list[tuple[str, str]] | None = None) -> str:
    """The article page of ``doc_id`` (the id is one path segment), with the query to mark.

    ``state``: the results page's parameters (``SearchRequest.to_params``), carried along so
    the article's "返回搜索结果" leads back to the same filters, order and page.
    """
    href = article_path(doc_id)
    params = state if state is not None else ([("q", q)] if q else [])
    return href + ("?" + query_string(params) if params else "")


def back_state(settings: Settings) -> list[tuple[str, str]]:
    """The results-page state an article page was opened with (its URL parameters).

    A parameter that would be refused on the results page (a hand-edited link) is dropped
    here rather than making the article itself unreachable: only ``q`` is kept then.
    """
    try:
        return search_request(request, settings).to_params()
    except InvalidParameter:
        q = request.args.get("q", "").strip()
        return [("q", q)] if q else []


def format_ms(took_ms: float) -> str:
    """Milliseconds for people: one decimal below 10 ms, whole numbers above."""
    return f"{took_ms:.1f}" if took_ms < 10 else f"{took_ms:.0f}"


# --------------------------------------------------------------------------- view model


@dataclasses.dataclass(frozen=True)
class Link:
    label: str
    url: str
    current: bool = False


@dataclasses.dataclass(frozen=True)
class Chip:
    label: str
    kind: str
    remove_url: str


@dataclasses.dataclass(frozen=True)
class FacetLink:
    value: str
    label: str
    count: int
    selected: bool
    url: str


@dataclasses.dataclass(frozen=True)
class DropOption:
    """One way out of an empty page: ``label`` (去掉「…」) finds ``count`` results at ``url``."""

    label: str
    url: str
    count: int


@dataclasses.dataclass(frozen=True)
class PageLink:
    label: str
    url: str | None
    current: bool = False
    rel: str | None = None
    gap: bool = False


@dataclasses.dataclass(frozen=True)
class FacetGroup:
    """A facet's values as the panel lists them: ``shown`` first, the rest behind 「更多」."""

    shown: list[FacetLink]
    more: list[FacetLink]


def fold_facet(values: list[FacetLink], shown: int) -> FacetGroup:
    """The first ``shown`` values (and every selected one) in view, the rest folded away.

    Folding away fewer than three values saves nothing: then every value is shown.
    """
    if len(values) <= shown + 2:
        return FacetGroup(values, [])
    return FacetGroup([v for i, v in enumerate(values) if i < shown or v.selected],
                      [v for i, v in enumerate(values) if i >= shown and not v.selected])


@dataclasses.dataclass(frozen=True)
class DateSwap:
    """A date range given backwards (``date_from`` after ``date_to``), searched the right way round."""

    given_from: str
    given_to: str


class ResultsView:
    """Everything ``search.html`` needs beyond the results: URLs for every control."""

    def __init__(self, req: SearchRequest, results: SearchResults, settings: Settings, engine=None,
                 date_swap: DateSwap | None = None, date_range: tuple[str | None, str | None] = (None, None)) -> None:
        self.req = req
        self.results = results
        self.settings = settings
        self.engine = engine
        self.date_swap = date_swap
        #: The index's first and last article dates (ISO), the date inputs' min and max.
        self.date_min, self.date_max = date_range
        self.base = url_for("pages.search")
        self._counts: dict[tuple, int] = {}
        self._chips: list[Chip] | None = None
        self._categories: list[FacetLink] | None = None
        self._years: list[FacetLink] | None = None

    # -- URLs --------------------------------------------------------------------------

    def url(self, **changes) -> str:
        """This page's URL with ``changes`` (page back to 1 unless given)."""
        if changes.get("page", 1) == 1:
            changes["page"] = None  # page 1 is the default: leave it out of the URL
        query = self.req.query_string(**changes)
        return self.base + ("?" + query if query else "")

    def hidden(self, **changes) -> list[tuple[str, str]]:
        """Hidden form fields that carry the rest of the state into a GET form."""
        changes.setdefault("page", None)
        return self.req.to_params(**changes)

    @property
    def api_url(self) -> str:
        params = self.req.to_params()
        return url_for("api.search") + ("?" + query_string(params) if params else "")

    @property
    def csv_url(self) -> str:
        params = self.req.to_params(page=None, page_size=None)
        return url_for("pages.search_csv") + ("?" + query_string(params) if params else "")

    def doc_url(self, hit: Hit) -> str:
        return doc_href(hit.id, state=self.req.to_params())

    # -- state -------------------------------------------------------------------------

    @property
    def has_filters(self) -> bool:
        return bool(self.req.categories or self.req.date_from or self.req.date_to)

    @property
    def is_landing(self) -> bool:
        """No query and no filter: the page lists the latest articles."""
        return not self.req.q and not self.has_filters

    @property
    def took(self) -> str:
        return format_ms(self.results.took_ms)

    @property
    def date_label(self) -> str:
        req = self.req
        year, month = selected_year(req), selected_month(req)
        if month:
            return f"{year}年{month}月"
        if year:
            return f"{year}年"
        if req.date_from and req.date_to:
            return f"{req.date_from.isoformat()} 至 {req.date_to.isoformat()}"
        if req.date_from:
            return f"{req.date_from.isoformat()} 起"
        if req.date_to:
            return f"{req.date_to.isoformat()} 止"
        return ""

    def _removals(self) -> list[tuple[str, str, dict]]:
        """(label, kind, changes) for each selected filter: the request changes that remove it."""
        req = self.req
        out: list[tuple[str, str, dict]] = [
            (f"分类：{c}", "category", {"categories": tuple(x for x in req.categories if x != c)})
            for c in req.categories]
        if req.date_from or req.date_to:
            out.append((f"日期：{self.date_label}", "date", {"date_from": None, "date_to": None}))
        return out

    def chips(self) -> list[Chip]:
        """The selected filters, each with the URL that removes it (built once: the page shows them twice).

        Each removal URL carries the other categories, so the page grows with the square of
        their number: ``max_categories`` (a 400 beyond it) is what keeps that small.
        """
        if self._chips is None:
            self._chips = [Chip(label, kind, self.url(**changes)) for label, kind, changes in self._removals()]
        return self._chips

    @property
    def clear_all_url(self) -> str:
        return self.url(categories=(), date_from=None, date_to=None)

    @property
    def filter_count(self) -> int:
        """How many filters are selected (the number on the phone's "筛选 (n)" button)."""
        return len(self.req.categories) + (1 if self.req.date_from or self.req.date_to else 0)

    def count_with(self, **changes) -> int:
        """How many results this request finds with ``changes`` (a filter removed, say).

        Only asked on an empty page, for a handful of variants; each is an ordinary search
        (result cache included) for one hit.
        """
        key = tuple(sorted((k, str(v)) for k, v in changes.items()))
        if key not in self._counts:
            fields = {"categories": changes.get("categories", self.req.categories),
                      "date_from": changes.get("date_from", self.req.date_from),
                      "date_to": changes.get("date_to", self.req.date_to)}
            variant = dataclasses.replace(self.req, page=1, page_size=1, **fields)
            self._counts[key] = self.engine.search(variant).total if self.engine is not None else 0
        return self._counts[key]

    @property
    def unfiltered_total(self) -> int:
        """Results of the same query without any filter."""
        if not self.has_filters:
            return self.results.total
        return self.count_with(categories=(), date_from=None, date_to=None)

    def drop_options(self) -> list[DropOption]:
        """On an empty page: what removing each filter (then all of them) would find."""
        options = [DropOption(f"去掉「{label}」", self.url(**changes), self.count_with(**changes))
                   for label, _, changes in self._removals()]
        if len(options) > 1:
            options.append(DropOption("清除全部筛选条件", self.clear_all_url, self.unfiltered_total))
        return options

    def sort_links(self) -> list[Link]:
        req = self.req
        if not req.q:
            # Without a query there is no relevance: the list is by date (newest first by default).
            current = "date_asc" if req.sort == "date_asc" else "date_desc"
            return [Link(SORT_LABELS[s], self.url(sort=s if s != "relevance" else None), s == current)
                    for s in ("date_desc", "date_asc")]
        return [Link(SORT_LABELS[s], self.url(sort=s if s != "relevance" else None), s == req.sort)
                for s in ("relevance", "date_desc", "date_asc")]

    def categories(self) -> list[FacetLink]:
        if self._categories is None:
            self._categories = [FacetLink(value.value, value.value or "（未分类）", value.count, value.selected,
                                          self.url(**facet_toggle(self.req, "category", value)))
                                for value in self.results.facets.get("category", [])]
        return self._categories

    def years(self) -> list[FacetLink]:
        if self._years is None:
            self._years = [FacetLink(value.value, f"{int(value.value)}年", value.count, value.selected,
                                     self.url(**facet_toggle(self.req, "year", value)))
                           for value in self.results.facets.get("year", [])]
        return self._years

    def category_group(self) -> FacetGroup:
        """Categories, the largest :data:`CATEGORIES_SHOWN` in view (the site has two dozen)."""
        return fold_facet(self.categories(), CATEGORIES_SHOWN)

    def year_group(self) -> FacetGroup:
        """Years, the latest :data:`YEARS_SHOWN` in view (laws go back decades)."""
        return fold_facet(self.years(), YEARS_SHOWN)

    @property
    def show_dates(self) -> bool:
        """The date section: on an empty page only when it holds a filter to change or years to pick."""
        return bool(self.years() or self.results.total or self.req.date_from or self.req.date_to)

    @property
    def show_filters(self) -> bool:
        """The filter panel: not when the query finds nothing even unfiltered (no filter could help)."""
        return bool((self.categories() or self.show_dates) and (self.results.total or self.unfiltered_total))

    @property
    def export_limited(self) -> bool:
        """The CSV export stops short of the results (setting ``csv_max_rows``)."""
        return self.results.total > self.settings.csv_max_rows

    def months(self) -> list[FacetLink]:
        return [FacetLink(value.value, f"{int(value.value.split('-')[1])}月", value.count, value.selected,
                          self.url(**facet_toggle(self.req, "month", value)))
                for value in self.results.facets.get("month", [])]

    @property
    def last_page(self) -> int:
        """The deepest page that may be requested (results pages, capped by the result window)."""
        window_pages = max(1, self.settings.max_result_window // self.req.page_size)
        return max(1, min(self.results.pages, window_pages))

    def pagination(self) -> list[PageLink]:
        page, last = self.req.page, self.last_page
        if last <= 1 and page == 1:
            return []
        items: list[PageLink] = []
        if page > 1:
            items.append(PageLink("上一页", self.url(page=min(page - 1, last)), rel="prev"))
        shown = sorted({1, last} | set(range(max(1, page - 2), min(last, page + 2) + 1)))
        previous = 0
        for number in shown:
            if number - previous > 1:
                items.append(PageLink("…", None, gap=True))
            items.append(PageLink(str(number), self.url(page=number), current=number == page))
            previous = number
        if page < last:
            items.append(PageLink("下一页", self.url(page=page + 1), rel="next"))
        return items

    @property
    def first_rank(self) -> int:
        return self.req.offset + 1


# --------------------------------------------------------------------------- pages


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date(raw: str) -> dt.date | None:
    """``raw`` as a date when it is one written YYYY-MM-DD (as :class:`SearchRequest` reads dates)."""
    if not _ISO_DATE.fullmatch(raw):
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        return None


def dates_in_order(get_list: Callable[[str], Sequence[str]]) -> tuple[Callable[[str], Sequence[str]], DateSwap | None]:
    """The page's parameters with a backwards date range swapped, and what was swapped.

    The form's two date fields are easily filled the wrong way round; the JSON API refuses
    that (400), but a results page that threw away the query and the other filters for it
    would be a dead end: the page searches the range the right way round and says so.
    Anything else wrong with the dates is left for :class:`SearchRequest` to refuse.
    """
    froms, tos = get_list("date_from"), get_list("date_to")
    if len(froms) != 1 or len(tos) != 1:
        return get_list, None
    given_from, given_to = froms[0].strip(), tos[0].strip()
    low, high = _iso_date(given_from), _iso_date(given_to)
    if low is None or high is None or low <= high:
        return get_list, None
    swapped = {"date_from": [given_to], "date_to": [given_from]}

    def in_order(name: str) -> Sequence[str]:
        return swapped[name] if name in swapped else get_list(name)

    return in_order, DateSwap(given_from, given_to)


_date_ranges: weakref.WeakKeyDictionary[SearchEngine, tuple[tuple, tuple[str | None, str | None]]] = (
    weakref.WeakKeyDictionary())
_date_ranges_lock = threading.Lock()


def index_date_range(engine: SearchEngine) -> tuple[str | None, str | None]:
    """The first and last dates of the live index's articles (ISO), from its stats, once per commit."""
    try:
        snap = engine.snapshot()
    except (SearchError, OSError):
        return None, None
    key = (snap.generation, snap.toc_generation)
    with _date_ranges_lock:
        known = _date_ranges.get(engine)
    if known is not None and known[0] == key:
        return known[1]
    stats = engine.stats()
    found = (stats.date_min, stats.date_max)
    with _date_ranges_lock:
        _date_ranges[engine] = (key, found)
    return found


@blueprint.get("/")
@blueprint.get("/search")
def search():
    """The results page (and, without a query, the latest articles)."""
    settings = _settings()
    get_list, date_swap = dates_in_order(request.args.getlist)
    req = checked_categories(SearchRequest.from_params(get_list, limits_of(settings)), engine_of(current_app))
    engine = engine_of(current_app)
    results = engine.search(req)
    g.result_count = results.total  # for the access log
    view = ResultsView(req, results, settings, engine, date_swap=date_swap, date_range=index_date_range(engine))
    # analytics: queued, never waited on; an empty page with filters says whether the
    # query alone finds something (then it was the filters, not the query, that found nothing).
    filtered_out = results.total == 0 and view.has_filters and view.unfiltered_total > 0
    record_page_search(req, results, filtered_out=filtered_out)
    response = Response(render_template("search.html", req=req, results=results, view=view))
    response.headers["Link"] = f'<{view.api_url}>; rel="alternate"; type="application/json"'
    return response


@blueprint.get("/search.csv")
@costly("export")
def search_csv():
    """Every result of the current search as CSV (UTF-8 with BOM for Excel), streamed.

    The engine is asked :data:`EXPORT_CHUNK` rows at a time and each chunk is sent as it
    is written, so memory stays bounded however many rows there are; the request keeps its
    costly-endpoint turn (``web/costly.py``) until the last row is sent. At most
    ``csv_max_rows`` rows (setting; 100,000 by default, far above the site's largest result
    set): past that, the file's last line says how many were left out
    (and the results page says so beside the button). Columns are in Chinese like the page;
    相关度 (the score) only when the results are ordered by relevance.
    """
    settings = _settings()
    engine = engine_of(current_app)
    req = checked_categories(search_request(request, settings), engine)
    # The first chunk before the answer starts: a search that fails still gets its error page.
    first = engine.search(dataclasses.replace(req, page=1, page_size=EXPORT_CHUNK))
    g.result_count = first.total  # for the access log
    with_score = bool(req.q) and req.sort == "relevance"
    give_back = hold_costly_turn()
    lines = csv_lines(engine, req, first, with_score, request.method, request.path, done=give_back,
                      limit=settings.csv_max_rows)
    response = Response(lines, mimetype="text/csv")
    response.call_on_close(give_back)  # a body closed before it was read to the end
    name = "搜索结果" + (f"-{req.q}" if req.q else "") + ".csv"
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"search-results.csv\"; filename*=UTF-8''{quote(name, safe='')}"
    )
    response.headers["X-Total-Count"] = str(first.total)
    response.headers["X-Export-Rows"] = str(min(first.total, settings.csv_max_rows))
    return response


def _nothing() -> None:
    return None


def hold_costly_turn() -> Callable[[], None]:
    """Keep this request's turn at the costly gate (``web/costly.py``) until the streamed body is
    done, not only until the view returns: an export's work happens while it streams, and the
    cap on exports running at once must count it. Returns the function that gives the turn
    back (once, however often it is called); call it when the body has been sent or closed.

    The gate gives the turn back when the request is torn down, which for a streamed body is
    before the body is sent; so the turn is taken over here.
    """
    if not g.pop("costly_turn", False):
        return _nothing
    gate = current_app.extensions[GATE_KEY]
    lock = threading.Lock()
    held = [True]

    def give_back() -> None:
        with lock:
            if not held[0]:
                return
            held[0] = False
        gate.release()

    return give_back


def csv_lines(engine: SearchEngine, req: SearchRequest, first: SearchResults, with_score: bool,
              method: str = "GET", path: str = "/search.csv", done: Callable[[], None] = _nothing,
              limit: int = 100_000) -> Iterator[bytes]:
    """The export's bytes, one chunk of rows at a time: BOM and header, rows, and a last line
    when the file is not every result (the limit, an index changed meanwhile, an error).
    ``done`` is called once the last chunk is out, or when the body is closed early."""
    try:
        yield from _csv_chunks(engine, req, first, with_score, method, path, limit)
    finally:
        done()


def _csv_chunks(engine: SearchEngine, req: SearchRequest, first: SearchResults, with_score: bool,
                method: str, path: str, limit: int) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def taken() -> bytes:
        data = buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
        return data

    buffer.write("\ufeff")
    writer.writerow([c for c in CSV_COLUMNS if with_score or c != SCORE_COLUMN])
    total = first.total
    wanted = min(total, limit)
    results, page, written, changed = first, 1, 0, False
    try:
        while True:
            # Partial matches that fill the last page are not results: the file stops at the total.
            for hit in results.hits[:max(0, wanted - written)]:
                writer.writerow([csv_cell(value) for value in csv_row(hit, with_score)])
                written += 1
            yield taken()
            if written >= wanted or not results.hits:
                break
            page += 1
            results = engine.search(dataclasses.replace(req, page=page, page_size=EXPORT_CHUNK))
            changed = changed or results.total != total or results.generation != first.generation
    except Exception as error:  # noqa: BLE001 - the answer has started: say so in the file itself
        log.error("%s", describe_unexpected(error, method, path))
        writer.writerow([f"（导出中断：服务器出错，只导出了前 {written} 条，共 {total} 条结果。请稍后重新导出。）"])
        yield taken()
        return
    if total > limit:
        writer.writerow([f"（共 {total} 条结果，超过导出上限 {limit} 条，只导出了前 {written} 条。"
                         "请用分类或日期筛选缩小范围后分批导出。）"])
    if changed or written < wanted:
        writer.writerow(["（导出期间索引有更新，部分结果可能重复或遗漏；请重新导出。）"])
    yield taken()


def csv_row(hit: Hit, with_score: bool) -> list[str]:
    """One result as the CSV's cells (:data:`CSV_COLUMNS`), snippet as plain text."""
    snippet = " ".join(html.unescape(_MARK_TAGS.sub("", hit.snippet)).split())
    row = [str(hit.rank), hit.id, hit.title, hit.category, hit.date or "", hit.source or "", hit.url or ""]
    if with_score:
        row.append("" if hit.score is None else f"{hit.score:g}")
    row.append(snippet)
    return row


def csv_cell(value: str) -> str:
    """A cell a spreadsheet will not run as a formula: a leading ``'`` before = + - @ tab CR."""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


@blueprint.get("/doc/<path:doc_id>")
@costly("article")
def doc(doc_id: str):
    """One article in full; with ``?q=`` the query's matches are marked."""
    settings = _settings()
    query = query_of(request, settings)
    q = query.text
    engine = engine_of(current_app)
    article = engine.document(doc_id)
    highlighter = Highlighter(CompiledQuery(query.node, synonyms=engine.synonyms.table()).highlight_terms())
    related = engine.similar(article.id, 5).similar
    title_html = Markup(highlighter.mark(article.title))
    paragraphs = marked_paragraphs(highlighter, article.body)
    state = back_state(settings)
    back = url_for("pages.search") + ("?" + query_string(state) if state else "")
    response = Response(render_template(
        "doc.html", article=article, title_html=title_html, paragraphs=paragraphs, q=q, back_url=back,
        original_url=safe_url(article.url), related=related,
    ))
    api = f"{request.script_root}/api/documents/{quote(article.id, safe='')}"
    response.headers["Link"] = f'<{api}>; rel="alternate"; type="application/json"'
    return response


def marked_paragraphs(highlighter: Highlighter, body: str, budget: int = MARK_SCAN_CHARS) -> list[Markup]:
    """The body's paragraphs, escaped, with matches marked in the first ``budget`` characters.

    Bounded so that a query on the largest allowed article costs about what the page's
    bytes cost; the rest of a very long article is shown unmarked.
    """
    paragraphs = []
    for line in body.splitlines():
        line = line.strip()
        if not line:
            continue
        if budget > 0:
            paragraphs.append(Markup(highlighter.mark(line, limit=budget)))
            budget -= len(line)
        else:
            paragraphs.append(Markup(html.escape(line)))
    return paragraphs


@blueprint.get("/help")
def help_page():
    """The query syntax, with examples."""
    return render_template("help.html")


@blueprint.get("/opensearch.xml")
def opensearch():
    """OpenSearch 1.1 description so browsers can add the site search."""
    body = render_template("opensearch.xml", host=public_base_url())
    return Response(body, mimetype="application/opensearchdescription+xml")


@blueprint.get("/opensearch/suggest")
def opensearch_suggest():
    """Suggestions in the OpenSearch format browsers read: ``[query, [titles], [descriptions], [urls]]``."""
    settings = _settings()
    q = query_of(request, settings, suggest=True).text
    suggestions = engine_of(current_app).suggest(q, settings.suggest_limit) if q else []
    base = public_base_url()
    body = [
        q,
        [s.title for s in suggestions],
        [" · ".join(part for part in (s.category, s.date) if part) for s in suggestions],
        [base + article_route(s.id) for s in suggestions],
    ]
    return Response(json.dumps(body, ensure_ascii=False), mimetype="application/x-suggestions+json")


# --------------------------------------------------------------------------- templates

@blueprint.app_context_processor
def _template_globals() -> dict:
    return {"site_name": SITE_NAME, "error_view": error_view, "doc_href": doc_href,
            "export_max_rows": current_app.config["SETTINGS"].csv_max_rows}


@blueprint.app_template_filter("safe_url")
def _safe_url_filter(url: str | None) -> str:
    return safe_url(url)
