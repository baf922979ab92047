"""The JSON API for scripts and for the widget: search, suggest, documents, stats, health."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, g, jsonify, request, url_for

from ..engine.results import facet_toggle
from ..errors import InvalidParameter
from . import engine_of
from .costly import costly
from .health import canary, degradations
from .limits import rate_limit_exempt
from .openapi import openapi_document
from .params import limit_param, query_of, search_request, similar_default
from .routes import with_page_url
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
    req = search_request(request, settings)
    results = engine_of(current_app).search(req)
    g.result_count = results.total  # for the access log
    record_api_search(req, results)
    data = results.to_json()
    # Like the page's facet links: each value carries the API URL that toggles it.
    base = url_for("api.search")
    for name, values in results.facets.items():
        for item, value in zip(data["facets"][name], values):
            query = req.query_string(**facet_toggle(req, name, value))
            item["toggle_url"] = base + ("?" + query if query else "")
    return jsonify(data)


@blueprint.get("/api/suggest")
def suggest():
    """As-you-type suggestions: article titles containing the typed text, matches marked."""
    started = time.perf_counter()
    _reject_unknown(SUGGEST_PARAMS)
    settings = current_app.config["SETTINGS"]
    q = query_of(request, settings, suggest=True).text
    limit = limit_param(request, settings, settings.suggest_limit)
    raw_excerpt = request.args.get("excerpt", "0")
    if raw_excerpt not in ("0", "1"):
        raise InvalidParameter(f"excerpt must be 0 or 1; got {raw_excerpt[:20]!r}.", param="excerpt")
    sid = suggest_session(request.args.get("sid"))
    suggestions = engine_of(current_app).suggest(q, limit, raw_excerpt == "1") if q else []
    g.result_count = len(suggestions)  # for the access log
    record_suggest(q, sid, len(suggestions), started)
    return jsonify({"query": q, "suggestions": [with_page_url(s.to_json()) for s in suggestions]})


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
    related["similar"] = [with_page_url(item) for item in related["similar"]]
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
