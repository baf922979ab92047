"""The JSON API for scripts and for the widget: search, suggest, documents, stats, health."""

from __future__ import annotations

import time
import uuid
from typing import cast

from flask import Blueprint, Response, current_app, g, jsonify, request, url_for

from ..engine.request import SearchRequest
from ..engine.results import SearchResults, facet_toggle
from ..engine.searcher import SearchEngine
from ..errors import InvalidParameter
from . import engine_of
from .costly import costly
from .health import canary, degradations
from .json_provider import OrjsonProvider
from .limits import rate_limit_exempt
from .openapi import openapi_document
from .params import checked_categories, limit_param, query_of, search_request, similar_default
from .routes import with_page_urls
from .tracking import record_api_search, record_suggest, suggest_session

blueprint = Blueprint("api", __name__)

SEARCH_PARAMS = frozenset({"q", "category", "date_from", "date_to", "sort", "page", "page_size", "correct"})
SUGGEST_PARAMS = frozenset({"q", "limit", "sid", "excerpt"})  # sid: the widget's typing session (analytics)


def _reject_unknown(known: frozenset[str]) -> None:
    # A misspelt parameter would otherwise be ignored without a word.
    for name in request.args:
        if name not in known:
            raise InvalidParameter(
                f"unknown parameter {name!r}; this endpoint takes {', '.join(sorted(known))}.", param=name
            )


@blueprint.get("/api/search")
def search():
    """Faceted, filtered, highlighted search (see /openapi.json)."""
    _reject_unknown(SEARCH_PARAMS)
    settings = current_app.config["SETTINGS"]
    engine = engine_of(current_app)
    req = checked_categories(search_request(request, settings), engine)
    results = engine.search(req)
    g.result_count = results.total  # for the access log
    record_api_search(req, results)
    # A repeated search (the result cache's answer) reuses the JSON written the first time;
    # only what says how this answer was made is new.
    key = ("api", request.script_root, req.categories)  # the URLs and the filters as this request gave them
    answer = results.renderings.get(key)
    if answer is None:
        answer = results.renderings[key] = _Answer(_rendered(req, results), cast(OrjsonProvider, current_app.json))
    return answer.response(results.took_ms, results.cached)


class _Answer:
    """The JSON of one ``/api/search`` answer, written once, with ``took_ms`` and ``cached`` left
    open: a repeated search costs no second serialization (the same bytes ``jsonify`` writes)."""

    # Stand-ins for the two open values while the body is written, then cut out.
    _OPEN = (f"took_ms-{uuid.uuid4().hex}", f"cached-{uuid.uuid4().hex}")

    def __init__(self, data: dict, provider: OrjsonProvider) -> None:
        self._dumps = dumps = provider.dumps_bytes
        self._mimetype = provider.mimetype
        self._data = data
        body = dumps(dict(data, took_ms=self._OPEN[0], cached=self._OPEN[1]))
        head, took, rest = body.partition(dumps(self._OPEN[0]))
        middle, cached, tail = rest.partition(dumps(self._OPEN[1]))
        self._parts = (head, middle, tail + b"\n") if took and cached else None

    def response(self, took_ms: float, cached: bool) -> Response:
        took = round(took_ms, 2)
        if self._parts is None:  # the stand-ins could not be found: written whole, as jsonify would
            return jsonify(dict(self._data, took_ms=took, cached=cached))
        head, middle, tail = self._parts
        body = b"".join((head, self._dumps(took), middle, b"true" if cached else b"false", tail))
        return Response(body, mimetype=self._mimetype)


def _rendered(req: SearchRequest, results: SearchResults) -> dict:
    """The JSON of ``/api/search`` for ``results`` (see :func:`search`)."""
    data = results.to_json()
    # The page links each hit to its article page here; so does its twin.
    data["hits"] = with_page_urls(data["hits"])
    # Like the page's facet links: each value carries the API URL that toggles it.
    base = url_for("api.search")
    for name, values in results.facets.items():
        queries = req.query_strings(facet_toggle(req, name, value) for value in values)
        for item, query in zip(data["facets"][name], queries):
            item["toggle_url"] = base + ("?" + query if query else "")
    return data


@blueprint.get("/api/suggest")
def suggest():
    """As-you-type suggestions: article titles containing the typed text, matches marked.

    The box knows what the results page knows: unless titles showing the text fill the list, the
    answer says how many results the page finds for ``q`` (``total``); when the page would show
    the results of a correction (智惠城市 → 智慧城市), the suggestions are the correction's and
    ``correction`` says so; the page's did-you-mean is ``did_you_mean`` (and the suggestions are
    its own when the page finds nothing as typed). A suggestion whose title does not show the
    match carries ``excerpt_html`` (the match in the text) even without ``excerpt=1``.
    """
    started = time.perf_counter()
    _reject_unknown(SUGGEST_PARAMS)
    settings = current_app.config["SETTINGS"]
    q = query_of(request, settings, suggest=True).text
    limit = limit_param(request, settings, settings.suggest_limit)
    raw_excerpt = request.args.get("excerpt", "0")
    if raw_excerpt not in ("0", "1"):
        raise InvalidParameter(f"excerpt must be 0 or 1; got {raw_excerpt[:20]!r}.", param="excerpt")
    sid = suggest_session(request.args.get("sid"))
    answer = suggest_answer(engine_of(current_app), q, limit, raw_excerpt == "1")
    g.result_count = len(answer["suggestions"])  # for the access log
    record_suggest(q, sid, len(answer["suggestions"]), started)
    return jsonify(answer)


def suggest_answer(engine: SearchEngine, q: str, limit: int, excerpt: bool) -> dict:
    """The JSON of ``/api/suggest`` for ``q`` (see :func:`suggest`)."""
    answer: dict = {"query": q, "searched": q, "correction": None, "did_you_mean": None, "total": None,
                    "relaxed": None, "suggestions": []}
    if not q:
        return answer
    # Without ``excerpt``, a suggestion whose title does not show the match (the article matched in
    # its text) still gets the line of text that does: the reader must see why it is there. Asked
    # of the same suggestion run (``explain``), not of a second run with every excerpt.
    explain = not excerpt
    suggestions = engine.suggest(q, limit, excerpt, explain)
    searched = q
    if sum("<mark>" in s.title_html for s in suggestions) < limit:
        # Titles showing the text do not fill the list: ask the results page's own search what it
        # finds, corrects or offers. Only then: a list of such titles means the page finds plenty
        # as typed, and a search for one common character costs hundreds of milliseconds on a
        # large index, too much for every keystroke. The count, the correction and the
        # did-you-mean are the page's; its facets, ranking and hits are not needed.
        page = engine.count(SearchRequest(q=q))
        answer["total"], answer["relaxed"] = page.total, page.relaxed
        if page.correction and page.searched:
            answer["correction"] = page.correction
            searched = page.searched
        elif page.suggestion:
            answer["did_you_mean"] = page.suggestion
            if page.total == 0:  # nothing as typed: the suggestions are the did-you-mean's
                searched = page.suggestion
        if searched != q:
            suggestions = engine.suggest(searched, limit, excerpt, explain)
    answer["searched"] = searched
    answer["suggestions"] = with_page_urls([s.to_json() for s in suggestions])
    return answer


@blueprint.get("/api/documents/<path:doc_id>")
@costly("article")
def document(doc_id: str):
    """One stored article as JSON."""
    return jsonify(engine_of(current_app).document(doc_id).to_json())


@blueprint.get("/api/documents/<path:doc_id>/similar")
@costly("article")
def similar(doc_id: str):
    """Related articles: the ones sharing this article's key terms (itself excluded)."""
    _reject_unknown(frozenset({"limit"}))
    settings = current_app.config["SETTINGS"]
    limit = limit_param(request, settings, similar_default(settings))
    related = engine_of(current_app).similar(doc_id, limit).to_json()
    related["similar"] = with_page_urls(related["similar"])
    return jsonify(related)


@blueprint.get("/api/stats")
def stats():
    """Document count, categories, date range, generation and build time."""
    return jsonify(engine_of(current_app).stats().to_json())


@blueprint.get("/healthz")
@rate_limit_exempt
def healthz():
    """200 when the home page and a search can be served (a cached canary), else 503 with the reason."""
    stats = engine_of(current_app).stats()  # raises IndexUnavailable -> 503
    canary(current_app)  # raises Unhealthy -> 503
    degraded = degradations(current_app)
    body: dict = {"status": "degraded" if degraded else "ok", "documents": stats.documents,
                  "generation": stats.generation}
    if degraded:
        body["degraded"] = degraded  # still 200: every request is answered; an operator should look
    return jsonify(body)


@blueprint.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 description of every endpoint."""
    return jsonify(openapi_document(current_app.config["SETTINGS"]))
