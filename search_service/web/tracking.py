"""Recording searches and result clicks for the staff analytics (see docs/ANALYTICS.md).

The views call :func:`record_page_search`, :func:`record_api_search` and
:func:`record_suggest`; each only puts an event on the recorder's queue, once the answer is
sent (see ``after_send``). Results
pages and the widget report clicks with ``navigator.sendBeacon`` to
``POST /api/click`` (form-encoded or JSON; 204). Nothing identifying a reader
is kept: no IP address, user agent, cookie or session id.

Channels: ``page`` (the results page), ``widget`` (the search-box script's
suggest calls, its "全部结果" navigation, which adds ``ref=widget`` to the URL,
and clicks on its suggestions), ``api`` (``/api/search``), and ``script``: API
calls that carry a valid token (the institute's own scripts) and anything a
headless browser sends. Scripts are shown on their own and counted in no report;
a headless browser's as-you-type calls are not recorded at all.
"""

from __future__ import annotations

import functools
import re
import time
from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, Flask, current_app, request

from ..analytics import AnalyticsRecorder, NullRecorder, database_path, normalize_query, open_recorder
from ..config import Settings
from ..engine.request import Limits, SearchRequest, get_list_from_mapping, integer_param, query_param
from ..errors import InvalidParameter, OriginNotAllowed, PayloadTooLarge
from ..ingest import JsonProblem, decode_json
from .after_send import after_send
from .auth import has_valid_token

blueprint = Blueprint("tracking", __name__)

ANALYTICS_KEY = "analytics"
CLICK_BODY_MAX = 4096
_SID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Crawlers, link previewers and monitors: never recorded.
_CRAWLER = re.compile(r"bot\b|bot/|crawl|spider|slurp|preview|monitor|uptime|facebookexternalhit|embedly|"
                      r"whatsapp|telegram|slack|discord|feedfetcher|feedly", re.IGNORECASE)
# Programs, not people: automated browsers (HeadlessChrome, PhantomJS, ...) and HTTP libraries and
# command-line clients. Recorded on the ``script`` channel, which no report counts.
_SCRIPT = re.compile(
    r"headless|phantomjs|puppeteer|playwright|selenium|webdriver|"
    r"^(?:curl|wget|httpie|python-requests|python-urllib|python-httpx|python/|aiohttp|go-http-client|okhttp|"
    r"java/|apache-httpclient|axios|node-fetch|node|undici|got\b|libwww-perl|lwp|ruby|faraday|"
    r"php|guzzlehttp|postmanruntime|insomnia|powershell|dart|rest-client|reqwest|hyper|"
    r"http\.rb|scrapy|httpclient)",
    re.IGNORECASE)
_TRUE = {"1", "true", "yes"}


# --------------------------------------------------------------------------- the recorder of an app


def open_app_recorder(settings: Settings, engine) -> AnalyticsRecorder | NullRecorder:
    """The recorder ``create_app`` keeps in ``app.extensions["analytics"]``.

    A finished typing session is stored with the number of articles a full search finds
    (counted on the writer thread, not while the reader waits).
    """

    def resolver(query: str) -> tuple[int, str | None]:
        results = engine.count(SearchRequest(q=query))
        return results.total, results.relaxed

    path = database_path(settings.index_dir, settings.analytics_db)
    return open_recorder(path, enabled=settings.analytics, retention_days=settings.analytics_retention_days,
                         resolver=resolver)


def recorder_of(app: Flask) -> AnalyticsRecorder | NullRecorder:
    return app.extensions.get(ANALYTICS_KEY) or NullRecorder()


def close_app_recorder(app: Flask) -> None:
    recorder = app.extensions.pop(ANALYTICS_KEY, None)
    if recorder is not None:
        recorder.close()


# --------------------------------------------------------------------------- what to record


def client_kind() -> str:
    """Who sent this request, for analytics: ``crawler`` (crawlers, link previews, monitors,
    speculative prefetches: never recorded), ``script`` (automated browsers, HTTP libraries and
    command-line clients, no user agent at all: the ``script`` channel) or ``reader``."""
    if request.method != "GET":
        return "crawler"
    purpose = (request.headers.get("Sec-Purpose", "") + request.headers.get("Purpose", "")).lower()
    if "prefetch" in purpose or "prerender" in purpose:
        return "crawler"
    return _agent_kind(request.headers.get("User-Agent", "").strip())


@functools.lru_cache(maxsize=1024)
def _agent_kind(agent: str) -> str:
    # Remembered: a few hundred user agents make nearly all traffic, and the crawler pattern is long.
    if _CRAWLER.search(agent):
        return "crawler"
    if not agent or _SCRIPT.search(agent):
        return "script"
    return "reader"


def _filters(req: SearchRequest) -> dict:
    return {
        "category": list(req.categories),
        "date_from": req.date_from.isoformat() if req.date_from else None,
        "date_to": req.date_to.isoformat() if req.date_to else None,
        "sort": req.sort if req.sort != "relevance" else None,
    }


def _referrer() -> tuple[str, dict] | None:
    """Path and parameters of the referring page when it is on this service, else None."""
    referrer = request.headers.get("Referer", "")
    if not referrer:
        return None
    parts = urlsplit(referrer)
    if parts.netloc != request.host:
        return None
    path = parts.path
    root = request.script_root
    if root and path.startswith(root):
        path = path[len(root):]
    return path or "/", parse_qs(parts.query)


def record_page_search(req: SearchRequest, results, filtered_out: bool = False) -> None:
    """The results page: channel ``widget`` after the widget's "全部结果", else ``page``
    (``script`` from a headless browser). ``filtered_out``: the page was empty only because
    of its filters.

    Not recorded: no query, crawlers, pages opened from the analytics page itself.
    A refinement (a later page, or the same query again from a results page: another
    order or filter) is stored with ``refine`` and not counted as a new search.
    """
    recorder = recorder_of(current_app)
    kind = client_kind()
    if not recorder.enabled or not req.q or kind == "crawler":
        return
    referrer = _referrer()
    if referrer is not None and referrer[0].startswith("/admin/"):
        return  # staff checking a query from the analytics page
    refine = req.page > 1
    previous: str | None = None
    if referrer is not None and referrer[0] in ("/", "/search"):
        previous = (referrer[1].get("q") or [""])[0]
        refine = refine or normalize_query(previous) == normalize_query(req.q)
    channel = "widget" if request.args.get("ref") == "widget" else "page"
    if kind == "script":
        channel = "script"
    after_send(functools.partial(
        recorder.record_search, req.q, channel=channel, results=results.total, took_ms=results.took_ms,
        relaxed=results.relaxed, filters=_filters(req), page=req.page, refine=refine, filtered_out=filtered_out,
        searched=_searched(results), ts=recorder.clock(),
        # Slips for staff: the did-you-mean offered, and the query this one rewrote.
        suggested=getattr(results, "suggestion", None), previous=previous or None))


def record_api_search(req: SearchRequest, results) -> None:
    """``/api/search``: channel ``api`` (``script`` with a valid token or from a program, see
    :func:`client_kind`; crawlers not at all); later pages are refinements."""
    recorder = recorder_of(current_app)
    kind = client_kind()
    if not recorder.enabled or not req.q or kind == "crawler":
        return
    channel = "script" if kind == "script" or has_valid_token(current_app.config["SETTINGS"]) else "api"
    after_send(functools.partial(
        recorder.record_search, req.q, channel=channel, results=results.total, took_ms=results.took_ms,
        relaxed=results.relaxed, filters=_filters(req), page=req.page, refine=req.page > 1,
        searched=_searched(results), suggested=getattr(results, "suggestion", None), ts=recorder.clock()))


def _searched(results) -> str | None:
    """The correction searched instead of the typed query (智惠城市 → 智慧城市), or None."""
    return results.searched if getattr(results, "correction", None) else None


def suggest_session(raw: str | None) -> str | None:
    """The widget's ``sid`` parameter (random, per page load), validated; None when absent."""
    if raw is None or raw == "":
        return None
    if not _SID.fullmatch(raw):
        raise InvalidParameter(f"sid must be 1 to 64 letters, digits, - or _; got {raw[:80]!r}.", param="sid")
    return raw


def record_suggest(q: str, sid: str | None, suggestions: int, started: float) -> None:
    """``/api/suggest``: channel ``widget``, folded into one query per typing session."""
    recorder = recorder_of(current_app)
    if not recorder.enabled or not q or client_kind() != "reader":
        return  # a crawler's or a program's calls are nobody typing
    after_send(functools.partial(recorder.record_suggest, q, sid=sid, suggestions=suggestions,
                                 took_ms=(time.perf_counter() - started) * 1000, ts=recorder.clock()))


# --------------------------------------------------------------------------- POST /api/click


def _origin_allowed(settings: Settings) -> bool:
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        # Not sent by a browser (or a sandboxed page): the same-site check below decides.
        return request.headers.get("Sec-Fetch-Site", "same-origin") in ("same-origin", "none")
    if urlsplit(origin).netloc == request.host:
        return True
    allowed = set(settings.cors_origins)
    return origin in allowed or "*" in allowed


def _click_fields() -> dict[str, str]:
    if request.content_length is not None and request.content_length > CLICK_BODY_MAX:
        raise PayloadTooLarge(f"A click report is at most {CLICK_BODY_MAX} bytes.", param="body")
    data = request.stream.read(CLICK_BODY_MAX + 1)
    if len(data) > CLICK_BODY_MAX:
        raise PayloadTooLarge(f"A click report is at most {CLICK_BODY_MAX} bytes.", param="body")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidParameter("The body is not UTF-8 text.", param="body") from None
    if request.mimetype in ("application/json", "text/plain") and text.lstrip().startswith("{"):
        try:
            body = decode_json(text)
        except JsonProblem as exc:
            raise InvalidParameter(f"The body is not valid JSON: {exc}.", param="body") from None
        return {str(k): "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
                for k, v in body.items()}
    return {key: values[0] for key, values in parse_qs(text, keep_blank_values=True).items()}


@blueprint.post("/api/click")
def click():
    """A reader opened a result: ``q``, ``id``, ``rank`` (from 1), ``channel`` (page|widget),
    ``first`` (1 for the first click after the search). Answers 204 with no body."""
    settings = current_app.config["SETTINGS"]
    if not _origin_allowed(settings):
        raise OriginNotAllowed("Clicks are accepted from this service's pages and the origins in "
                               "cors_origins only.")
    fields = _click_fields()
    q = query_param(get_list_from_mapping(fields), Limits.from_settings(settings), required=True).text
    doc_id = fields.get("id", "").strip()
    if not doc_id or len(doc_id) > 512:
        raise InvalidParameter("id must be the article id (1 to 512 characters).", param="id")
    if not str(fields.get("rank", "")).strip():
        raise InvalidParameter(f"rank must be a whole number between 1 and {settings.max_result_window}.",
                               param="rank")
    rank = integer_param(get_list_from_mapping(fields), "rank", 0, 1, settings.max_result_window,
                         setting="max_result_window")
    channel = fields.get("channel", "page")
    if channel not in ("page", "widget"):
        raise InvalidParameter(f"channel must be page or widget; got {channel[:20]!r}.", param="channel")
    first = fields.get("first", "1").lower() in _TRUE
    recorder_of(current_app).record_click(q, doc_id, rank, channel=channel, first=first)
    return "", 204
