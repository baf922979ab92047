"""The OpenAPI 3.1 document of the JSON API: the contract the code enforces, built from the same limits.

Every bound a request can break is stated where JSON Schema can state it, from the values the
code checks (:class:`engine.request.Limits`, the settings, the article rules of
:mod:`article`): a request the document declares valid is answered, one it declares invalid
is refused. Parameters are read the way :mod:`engine.request` reads them: surrounding
whitespace is ignored (so a length limit counts the text between it, and a value of only
whitespace is the default), whole numbers are ASCII digits. The few rules JSON Schema cannot
express (they involve two parameters, or the query syntax, or the index) are listed in each
parameter's description; breaking one is a 400 naming the parameter and the limit.

Response objects do not forbid additional properties: new fields may appear in an answer
without a new version of the API.
"""

from __future__ import annotations

from flask import current_app, has_app_context

from .. import __version__
from ..article import MAX_LINE_FIELD_CHARS, MAX_TITLE_CHARS
from ..categories import SITE_CATEGORIES
from ..config import Settings
from ..engine.request import SORTS, Limits
from ..engine.syntax import MAX_QUERY_DEPTH
from ..errors import SearchError
from .auth import CHALLENGE
from .params import similar_default
from .tracking import CLICK_BODY_MAX
from .writes import JSON_TYPES, NDJSON_TYPES

# --------------------------------------------------------------------------- patterns
# Patterns are written for both ECMA-262 (what OpenAPI names) and Python's re: no lookaround,
# no class shorthands whose meaning differs between them.

#: Whitespace as ``str.strip()`` and ``str.isspace()`` see it: what the server ignores around a value.
_WS = r"\t-\r\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
WS = f"[{_WS}]"
NOT_WS = f"[^{_WS}]"
#: C0 and C1 controls and DEL: never in a stored article's single-line fields (see :mod:`article`).
_CONTROL = r"\u0000-\u001f\u007f-\u009f"
# What the body may not hold: the controls but tab, line feed and carriage return.
_BODY_CONTROL = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f"
# Neither whitespace, nor a control, nor a character cleaning removes (zero-width space, word
# joiner, BOM): what makes a title or a body non-empty once cleaned.
_VISIBLE = rf"[^{_WS}{_CONTROL}\u200b\u2060\ufeff]"
#: An ASCII date as the API reads it: YYYY-MM-DD, year 0001 to 9999 (a real day: ``format: date``).
ISO_DATE = r"^(?:[0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})-[0-9]{2}-[0-9]{2}$"


def trimmed(max_chars: int, *, required: bool = False) -> str:
    """A pattern for text of at most ``max_chars`` characters once surrounding whitespace is
    removed (and at least one with ``required``): how every text parameter is measured."""
    core = NOT_WS if max_chars < 2 else f"{NOT_WS}(?:[\\s\\S]{{0,{max_chars - 2}}}{NOT_WS})?"
    return f"^{WS}*{core if required else f'(?:{core})?'}{WS}*$"


def blank() -> dict:
    """Empty, or only whitespace: the parameter's default."""
    return {"type": "string", "pattern": f"^{WS}*$", "description": "empty (or only whitespace): the default"}


def _int_or_blank(low: int, high: int, default: int) -> dict:
    return {"anyOf": [{"type": "integer", "minimum": low, "maximum": high}, blank()], "default": default}


def _param(name: str, description: str, schema: dict, *, required: bool = False, where: str = "query") -> dict:
    return {"name": name, "in": where, "required": required, "description": description, "schema": schema}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/responses/{name}"}


def _json(schema: dict, description: str, **extra) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}, **extra}


#: Response headers of a GET whose answer carries an entity tag (web/caching.py).
def _etag(required: bool = True) -> dict:
    return {"ETag": {"required": required, "schema": {"type": "string"},
                     "description": "weak tag of the answer: send it back as If-None-Match to get 304 until "
                                    "the index, the synonyms or the settings change"},
            "Cache-Control": {"required": required, "schema": {"const": "no-cache"}}}


def stored_id_schema(settings: Settings) -> dict:
    """An id the write API stores (:func:`article.id_problem`): 1 to ``max_id_length`` characters, no
    control characters, no leading or trailing whitespace."""
    edge = rf"[^{_CONTROL}\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    return {"type": "string", "maxLength": settings.max_id_length, "pattern": f"^{edge}(?:[^{_CONTROL}]*{edge})?$"}


def doc_id_schema(settings: Settings, *, storable: bool) -> dict:
    """An article id in a URL path: any id a URL can address (with ``storable``, one the write API
    stores, see :func:`stored_id_schema`).

    A URL cannot address an id that starts with ``/`` (the empty path segment is merged away),
    ends in ``/similar`` (that URL is the related articles of the id before it) or has a ``.``
    or ``..`` segment (clients resolve them).
    """
    schema: dict = stored_id_schema(settings) if storable else {"type": "string", "minLength": 1}
    return {**schema, "not": {"pattern": r"^/|/similar$|(?:^|/)\.\.?(?:/|$)"}}


# --------------------------------------------------------------------------- the document

#: ``url`` means one thing in every response: the article on the source site.
URL_SCHEMA = {"type": "string", "description": "the article on the source site (the institute's own site), as "
                                               "indexed"}
PAGE_URL = {"type": "string", "description": "the article's page on this service: an absolute path on this host "
                                             "(/doc/<id>, under the service's path prefix)"}


def served_categories() -> list[str] | None:
    """The categories a search may filter on when unknown ones are refused: the site's and the
    index's (None outside a request, or without an index)."""
    if not has_app_context():
        return None
    from . import engine_of

    try:
        stats = engine_of(current_app).stats()
    except SearchError:
        return None
    return list(dict.fromkeys([*SITE_CATEGORIES, *(c.value for c in stats.categories)]))


def openapi_document(settings: Settings, categories: list[str] | None = None) -> dict:
    """The whole document; every limit in it is the one this server enforces (see the module docstring).

    ``categories``: the values ``category`` may take (the API refuses others); by default those
    of the app serving the document (:func:`served_categories`), or any text outside one.
    """
    limits = Limits.from_settings(settings)
    categories = categories if categories is not None else served_categories()
    category = {"type": "string"} if categories is None else {"anyOf": [{"enum": categories}, blank()]}
    nullable_string = {"type": ["string", "null"]}
    url_schema, page_url = URL_SCHEMA, PAGE_URL
    query_rules = (
        f'Syntax: words (all must match; Chinese is segmented), "exact phrase", OR, NOT word or -word, '
        f"(groups), title:word, word* (words starting with word). Surrounding whitespace is ignored. Rules "
        f"JSON Schema cannot state, each a 400 naming q and the limit: at most {limits.max_query_terms} words "
        f"and phrases (setting max_query_terms); no leading wildcard (*abc); parentheses and negations nested "
        f"at most {MAX_QUERY_DEPTH} deep; a word* matching at most {settings.max_prefix_terms} index words "
        "(setting max_prefix_terms)."
    )
    date = {"anyOf": [{"type": "string", "format": "date", "pattern": ISO_DATE}, blank()]}
    search_params = [
        _param("q", f"the query, at most {limits.max_query_length} characters (setting max_query_length); "
               f"empty lists the newest articles. {query_rules}",
               {"type": "string", "pattern": trimmed(limits.max_query_length)}),
        {**_param("category", "only these categories (repeat for several: any of them; at most "
                              f"{limits.max_categories}, setting max_categories)"
                              + ("" if categories is None else ": the site's categories and those of the index "
                                 "(GET /api/stats), in any script, width or case; another is a 400 naming the "
                                 "known ones (the values listed are those when this document was fetched)")
                              + ". A value of only whitespace is ignored.",
                  {"type": "array", "items": category, "maxItems": limits.max_categories}),
         "style": "form", "explode": True},
        _param("date_from", "on or after this date (inclusive), YYYY-MM-DD; not after date_to (a 400 naming "
               "date_from otherwise)", date),
        _param("date_to", "on or before this date (inclusive), YYYY-MM-DD", date),
        _param("sort", "result order; empty = relevance",
               {"type": "string", "enum": [*SORTS, ""], "default": "relevance"}),
        _param("page", f"page number, from 1. page × page_size must stay within the first "
               f"{limits.max_result_window} results (setting max_result_window; a 400 naming page otherwise): "
               "narrow a deep search with filters instead", _int_or_blank(1, limits.max_result_window, 1)),
        _param("page_size", f"results per page, 1 to {limits.max_page_size} (setting max_page_size)",
               _int_or_blank(1, limits.max_page_size, limits.default_page_size)),
        _param("correct", "1 (default): a query with no exact match is answered with its homophone or pinyin "
               "correction when that has exact matches (智惠城市 → 智慧城市, kepu → 科普; see `correction` in the "
               "response); 0: search the query exactly as typed. Also true/false, yes/no, on/off, in any case.",
               {"type": "string", "pattern": f"^{WS}*(?:[01]|[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|[Yy][Ee][Ss]|"
                                             f"[Nn][Oo]|[Oo][Nn]|[Oo][Ff][Ff])?{WS}*$", "default": "1"}),
    ]
    suggest_length = min(limits.max_suggest_length, limits.max_query_length)
    suggestion = {
        "type": "object", "required": ["id", "title", "title_html", "category", "url", "page_url"],
        "properties": {
            "id": {"type": "string"}, "title": {"type": "string"}, "title_html": {"type": "string"},
            "category": {"type": "string"}, "date": nullable_string, "url": url_schema, "page_url": page_url,
            "source_url": {**nullable_string, "description": "`url` when a browser may follow it (an absolute "
                                                             "http/https URL), else null"},
            "excerpt_html": {"type": "string", "description": "about 60 characters of the body around the "
                                                              "match, escaped HTML with <mark>: with excerpt=1, "
                                                              "or when the title does not show the match"},
            "pinned": {"type": "boolean", "description": "placed first by staff for this text (shown as 推荐)"}},
    }
    paths: dict = {
        "/api/search": {"get": {
            "summary": "Search articles",
            "operationId": "search",
            "parameters": search_params,
            "responses": {
                "200": _json({"$ref": "#/components/schemas/SearchResults"}, "results", headers=_etag()),
                "304": _ref("NotModified"), "400": _ref("Error"), "503": _ref("Unavailable"),
            },
        }},
        "/api/suggest": {"get": {
            "summary": "As-you-type title suggestions",
            "operationId": "suggest",
            "parameters": [
                _param("q", f"text typed so far, at most {suggest_length} characters (setting "
                       f"max_suggest_length); empty answers no suggestions. {query_rules}",
                       {"type": "string", "pattern": trimmed(suggest_length)}),
                _param("limit", f"how many suggestions, 1 to {settings.max_limit} (setting max_limit)",
                       {"type": "integer", "minimum": 1, "maximum": settings.max_limit,
                        "default": min(settings.suggest_limit, settings.max_limit)}),
                _param("sid", "typing session (random, one per page load) so the search analytics keep only "
                       "the text a reader settled on; never stored",
                       {"type": "string", "pattern": "^[A-Za-z0-9_-]{0,64}$"}),
                _param("excerpt", "1: add excerpt_html, a line of each article's text around the match",
                       {"type": "string", "enum": ["0", "1"], "default": "0"}),
            ],
            "responses": {
                "200": _json({"type": "object", "required": ["query", "suggestions"], "properties": {
                    "query": {"type": "string", "description": "q as read (surrounding whitespace removed)"},
                    "searched": {"type": "string", "description": "the text the suggestions are for: `query`, "
                                                                  "its correction or its did-you-mean"},
                    "correction": {"anyOf": [{"$ref": "#/components/schemas/Correction"}, {"type": "null"}],
                                   "description": "set when the results page would show the results of a "
                                                  "correction; the suggestions are the correction's"},
                    "did_you_mean": {**nullable_string, "description": "the results page's did-you-mean"},
                    "total": {"type": ["integer", "null"], "minimum": 0,
                              "description": "how many results the results page finds for q; null when "
                                             "titles showing the text fill the list (not counted)"},
                    "relaxed": {"enum": [None, "substring", "pinyin", "any_word"],
                                "description": "how the results page matched, as in /api/search"},
                    "suggestions": {"type": "array", "items": suggestion}}},
                    "suggestions", headers=_etag()),
                "304": _ref("NotModified"), "400": _ref("Error"), "503": _ref("Unavailable"),
            },
        }},
        "/api/click": {"post": {
            "summary": "Report a click on a result (search analytics; sent with navigator.sendBeacon)",
            "operationId": "click",
            "description": "The form fields the pages and the search box send (no preflight needed). "
            "Accepted from this service's pages and the origins in cors_origins (403 otherwise). No personal "
            f"data is stored. The body is at most {CLICK_BODY_MAX} bytes (413).",
            "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
                "type": "object", "required": ["q", "id", "rank"],
                "properties": {
                    "q": {"type": "string", "pattern": trimmed(limits.max_query_length, required=True),
                          "description": "the query whose result was clicked; the rules of /api/search's q"},
                    "id": {"type": "string", "pattern": trimmed(512, required=True),
                           "description": "article id (1 to 512 characters)"},
                    "rank": {"type": "integer", "minimum": 1, "maximum": limits.max_result_window,
                             "description": "1-based position in the list"},
                    "channel": {"type": "string", "enum": ["page", "widget"], "default": "page"},
                    "first": {"description": "1, true or yes for the first click after the search (the "
                                             "default); anything else for a later one", "default": "1"},
                }}}}},
            "responses": {"204": {"description": "recorded (or analytics switched off)"},
                          "400": _ref("Error"), "403": _ref("Error"), "413": _ref("Error")},
        }},
        "/api/documents/{doc_id}": {"get": {
            "summary": "One stored article",
            "operationId": "getDocument",
            "parameters": [_param("doc_id", "article id", doc_id_schema(settings, storable=False), required=True,
                                  where="path")],
            "responses": {
                "200": _json({"$ref": "#/components/schemas/Article"}, "the article", headers=_etag()),
                "304": _ref("NotModified"), "404": _ref("Error"), "503": _ref("Unavailable"),
            },
        }},
        "/api/documents/{doc_id}/similar": {"get": {
            "summary": "Related articles (sharing this article's key terms)",
            "operationId": "similarDocuments",
            "parameters": [
                _param("doc_id", "article id", doc_id_schema(settings, storable=False), required=True,
                       where="path"),
                _param("limit", f"how many, 1 to {settings.max_limit} (setting max_limit)",
                       {"type": "integer", "minimum": 1, "maximum": settings.max_limit,
                        "default": similar_default(settings)}),
            ],
            "responses": {
                "200": _json({
                    "type": "object", "required": ["id", "terms", "similar"],
                    "properties": {
                        "id": {"type": "string"},
                        "terms": {"type": "array", "items": {"type": "string"}},
                        "similar": {"type": "array", "items": {
                            "type": "object", "required": ["id", "title", "category", "url", "page_url"],
                            "properties": {"id": {"type": "string"}, "title": {"type": "string"},
                                           "category": {"type": "string"}, "date": nullable_string,
                                           "url": url_schema, "page_url": page_url,
                                           "score": {"type": "number"}}}},
                    }}, "related articles", headers=_etag()),
                "304": _ref("NotModified"), "400": _ref("Error"), "404": _ref("Error"),
                "503": _ref("Unavailable"),
            },
        }},
        "/api/stats": {"get": {
            "summary": "Index statistics",
            "operationId": "stats",
            "responses": {
                "200": _json({
                    "type": "object",
                    "required": ["documents", "categories", "date_min", "date_max", "generation"],
                    "properties": {
                        "documents": {"type": "integer"},
                        "categories": {"type": "array", "items": {"type": "object", "properties": {
                            "value": {"type": "string"}, "count": {"type": "integer"}}}},
                        "date_min": nullable_string, "date_max": nullable_string,
                        "undated": {"type": "integer"}, "generation": {"type": "string"},
                        "commit": {"type": "integer"}, "index_bytes": {"type": "integer"},
                        "build": {"type": "object"},
                    }}, "statistics", headers=_etag()),
                "304": _ref("NotModified"), "503": _ref("Unavailable"),
            },
        }},
        "/healthz": {"get": {
            "summary": "Health check, for monitoring: 200 when the index is open and the home page and a search "
                       "can be served (a canary re-run at most every 2 s), with status degraded and the reasons "
                       "when a safety feature works at reduced strength; 503 with the reason otherwise (server "
                       "folders named by their setting, e.g. <index_dir>; the log has the full detail)",
            "operationId": "health",
            "responses": {
                "200": _json({
                    "type": "object", "required": ["status"],
                    "properties": {"status": {"enum": ["ok", "degraded"]}, "documents": {"type": "integer"},
                                   "generation": {"type": "string"},
                                   "degraded": {"type": "object", "description": "component -> what is wrong",
                                                "additionalProperties": {"type": "string"}}}}, "serving"),
                "503": _ref("Unavailable"),
            },
        }},
        "/openapi.json": {"get": {
            "summary": "This document",
            "operationId": "openapi",
            "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1 document", headers=_etag(required=False)),
                          "304": _ref("NotModified")},
        }},
        "/metrics": {"get": {
            "summary": "Prometheus metrics: requests, latency, index, cache, write queue (text exposition format)",
            "operationId": "metrics",
            "responses": {"200": {"description": "metrics",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}}},
        }},
    }
    _add_writes(paths, settings)
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "search_service API",
            "version": __version__,
            "description": (
                "Chinese full-text search over the institute's articles. Every error has the shape "
                '{"error": {"status", "code", "message", "param"}}; a 400 names the parameter (`param`) and, '
                "when a limit was reached, the limit and its setting. A method a path does not have is 405 "
                "with `Allow`. Writes need `Authorization: Bearer <token>`: without it (or with another "
                "scheme, or a token this server does not know) the answer is 401 with `WWW-Authenticate: "
                "Bearer`; 403 when writes are switched off (no token configured). GET answers carry an ETag: "
                "send it as If-None-Match for a 304 until the index changes. A 503 carries Retry-After."
                + (" Public endpoints are rate-limited per client (setting rate_limit): over the limit the "
                   "answer is 429 with Retry-After, in the same shape." if settings.rate_limit.strip() else "")
            ),
        },
        "paths": paths,
        "components": {"schemas": _schemas(settings, url_schema, nullable_string),
                       "responses": _responses(),
                       "securitySchemes": {"bearer": {
                           "type": "http", "scheme": "bearer",
                           "description": "a token from the server's api_tokens setting (SEARCH_SERVICE_API_TOKENS)"}}},
    }
    if has_app_context() and "desk" in current_app.blueprints:
        from . import desk  # the staff desk's API and GET /api/hot, when the app serves them

        desk.add_openapi(document, settings)
    if settings.rate_limit.strip():
        for path, operations in paths.items():
            if path in UNLIMITED_PATHS:
                continue
            for operation in operations.values():
                operation["responses"].setdefault("429", _ref("RateLimited"))
    return document


#: Paths no rate limit applies to (monitoring).
UNLIMITED_PATHS = frozenset({"/healthz", "/metrics"})


def _add_writes(paths: dict, settings: Settings) -> None:
    """PUT and DELETE /api/documents/{doc_id}, POST /api/documents: behind the bearer token."""
    secured: list[dict[str, list[str]]] = [{"bearer": []}]
    auth = {"401": _ref("Unauthorized"), "403": _ref("Error")}
    write_result = _json({"$ref": "#/components/schemas/WriteResult"}, "committed and visible to searches")
    doc_id = _param("doc_id", f"article id, stored exactly as sent: 1 to {settings.max_id_length} characters "
                    "(setting max_id_length), no control characters, no leading or trailing whitespace, "
                    "valid UTF-8; a URL cannot carry an id that starts with /, ends with /similar or has a . or "
                    ".. segment (write those with POST /api/documents)",
                    doc_id_schema(settings, storable=True), required=True, where="path")
    article_input = {"$ref": "#/components/schemas/ArticleInput"}
    article_fields = {"$ref": "#/components/schemas/ArticleFields"}
    paths["/api/documents/{doc_id}"]["put"] = {
        "summary": "Create or replace one article (committed and visible on return)",
        "operationId": "putDocument", "security": secured, "parameters": [doc_id],
        "requestBody": {"required": True, "content": {"application/json": {"schema": article_fields}}},
        # 404: an id the URL cannot carry (a line break, say) matches no route.
        "responses": {"200": write_result, "400": _ref("Error"), **auth, "404": _ref("Error"),
                      "413": _ref("Error"), "415": _ref("Error"), "503": _ref("Unavailable")},
    }
    paths["/api/documents/{doc_id}"]["delete"] = {
        "summary": "Delete one article",
        "operationId": "deleteDocument", "security": secured, "parameters": [doc_id],
        "responses": {"200": write_result,
                      "404": _json({"anyOf": [{"$ref": "#/components/schemas/WriteResult"},
                                              {"$ref": "#/components/schemas/Error"}]},
                                   "no such article (a WriteResult listing it in not_found), or no such URL"),
                      "400": _ref("Error"), **auth, "503": _ref("Unavailable")},
    }
    batch = {"type": "array", "minItems": 1, "maxItems": settings.write_batch_max, "uniqueItems": True,
             "items": {**article_input},
             "description": "every article with its id; ids unique in the batch (a 400 naming the records "
                            f"otherwise); more than {settings.write_batch_max} articles is a 413"}
    paths["/api/documents"] = {"post": {
        "summary": f"Create or replace a batch (1 to {settings.write_batch_max} articles, setting write_batch_max; "
                   f"at most {settings.write_body_max_mb} MB, setting write_body_max_mb); all or nothing",
        "operationId": "postDocuments", "security": secured,
        "requestBody": {"required": True, "content": {
            **{media: {"schema": batch} for media in sorted(JSON_TYPES)},
            **{media: {"schema": {"type": "string", "description": "NDJSON: one article object per line, "
                                                                   "each with its id"}}
               for media in sorted(NDJSON_TYPES)},
        }},
        "responses": {"200": write_result, "400": _ref("Error"), **auth, "413": _ref("Error"),
                      "415": _ref("Error"), "503": _ref("Unavailable")},
    }}


def _schemas(settings: Settings, url_schema: dict, nullable_string: dict) -> dict:
    facet_value = {
        "type": "object",
        "required": ["value", "count", "selected", "toggle_url"],
        "properties": {"value": {"type": "string"}, "count": {"type": "integer", "minimum": 0},
                       "selected": {"type": "boolean"},
                       "toggle_url": {"type": "string", "description":
                                      "This search with the value selected (or unselected when it is), "
                                      "back to page 1: what the results page's facet link does."}},
    }
    hit = {
        "type": "object",
        "required": ["id", "title", "title_html", "snippet", "category", "date", "url", "score", "rank"],
        "properties": {
            "id": {"type": "string"},
            "title": {"type": "string", "description": "title in its original script"},
            "title_html": {"type": "string", "description": "escaped HTML, matches in <mark>"},
            "snippet": {"type": "string",
                        "description": "escaped HTML passage around the best cluster of matches; … where cut"},
            "category": {"type": "string"},
            "date": {**nullable_string, "description": "YYYY-MM-DD or null"},
            "url": url_schema,
            "page_url": PAGE_URL,
            "source": {"type": "string"},
            "score": {"type": ["number", "null"], "description": "BM25F score; null when sorted by date"},
            "rank": {"type": "integer", "minimum": 1},
            "match": {"enum": [None, "all_words", "substring", "pinyin", "partial", "pinned"],
                      "description": "how the hit matched: every word, the text verbatim, by pinyin, or only "
                      "some words/characters (partial matches fill a page after the last exact match and are "
                      "not counted in total); pinned: placed first by staff for this query; null when listing "
                      "without a query"},
            "pinned": {"type": "boolean", "description": "placed first by staff for this query (shown to readers "
                                                         "as 推荐); its score is null"},
        },
    }
    article = {
        "type": "object",
        "required": ["id", "title", "body", "category", "date", "url", "source"],
        "properties": {"id": {"type": "string"}, "title": {"type": "string"}, "body": {"type": "string"},
                       "category": {"type": "string"}, "date": nullable_string, "url": url_schema,
                       "source": {"type": "string"}},
    }
    line = {"type": ["string", "null"], "maxLength": MAX_LINE_FIELD_CHARS, "pattern": f"^[^{_CONTROL}]*$"}
    blank_line = r"^[\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    title: dict = {"type": "string", "maxLength": MAX_TITLE_CHARS,
                   "pattern": (f"^[^{_CONTROL}]*$" if settings.allow_untitled
                               else f"^[^{_CONTROL}]*{_VISIBLE}[^{_CONTROL}]*$"),
                   "description": f"one line, at most {MAX_TITLE_CHARS} characters, no control characters"
                                  + ("" if settings.allow_untitled else "; not empty once cleaned")}
    rules = (f"Text must be valid Unicode without control characters (the body may hold line breaks and tabs); "
             f"title + body at most {settings.max_article_kb} KB of UTF-8 (setting max_article_kb); JSON nested at "
             "most 32 levels, integers at most 32 digits. Each broken rule is a 400 whose `problems` name the "
             "record and the rule.")
    fields = {
        "title": title,
        "body": {"type": "string", "pattern": f"^[^{_BODY_CONTROL}]*{_VISIBLE}[^{_BODY_CONTROL}]*$",
                 "description": "the text; line breaks and tabs allowed, not empty once cleaned"},
        "category": {**line, "description": "a site category (any script) or any other name; null or empty: "
                                            "the server's default_category"},
        "date": {"anyOf": [{"type": "null"}, {"type": "string", "pattern": blank_line},
                           {"type": "string", "format": "date", "pattern": ISO_DATE}],
                 "description": "YYYY-MM-DD (2025/9/11, 2025.9.11, 2025年9月11日 and ISO datetimes are read too); "
                                "null or empty: undated"},
        "url": {**line, "description": "the article on the source site"},
        "source": {**line, "description": "where it was published"},
    }
    article_fields = {"type": "object", "required": ["title", "body"], "properties": fields,
                      "description": "One article; the id is the URL's (an `id` in the body must equal it, a 400 "
                                     "naming id otherwise). " + rules}
    article_input = {"type": "object", "required": ["id", "title", "body"],
                     "properties": {"id": {**stored_id_schema(settings), "description":
                                           f"1 to {settings.max_id_length} characters (setting max_id_length), "
                                           "no control characters, no leading or trailing whitespace"}, **fields},
                     "description": "One article of a batch, with its id. " + rules}
    correction = {
        "type": "object", "required": ["typed", "searched", "kind", "changes"],
        "properties": {
            "typed": {"type": "string"}, "searched": {"type": "string"},
            "kind": {"enum": ["homophone", "pinyin"]},
            "changes": {"type": "array", "items": {
                "type": "object", "required": ["typed", "searched"],
                "properties": {"typed": {"type": "string"}, "searched": {"type": "string"}}}}},
    }
    return {
        "Correction": correction,
        "Hit": hit,
        "FacetValue": facet_value,
        "Article": article,
        "ArticleFields": article_fields,
        "ArticleInput": article_input,
        "WriteResult": {
            "type": "object", "required": ["status", "visible", "upserted", "deleted", "generation", "commit"],
            "properties": {"status": {"const": "committed"}, "visible": {"type": "boolean"},
                           "upserted": {"type": "array", "items": {"type": "string"}},
                           "deleted": {"type": "array", "items": {"type": "string"}},
                           "not_found": {"type": "array", "items": {"type": "string"}},
                           "generation": {"type": "string"}, "commit": {"type": "integer"},
                           "batch_size": {"type": "integer"}, "took_ms": {"type": "number"}},
        },
        "SearchResults": {
            "type": "object",
            "required": ["total", "page", "page_size", "took_ms", "hits", "facets", "relaxed"],
            "properties": {
                "query": {"type": "string", "description": "the query as typed"},
                "searched": {"type": "string",
                             "description": "the query whose results these are: `query`, or its correction"},
                "correction": {
                    "anyOf": [{"$ref": "#/components/schemas/Correction"}, {"type": "null"}],
                    "description": "set when the typed query had no exact match and these are the results "
                                   "of its correction; repeat the request with correct=0 for the typed query"},
                "unmatched": {"type": "array", "items": {"type": "string"},
                              "description": "words of the query no article contains (partial matches)"},
                "total": {"type": "integer", "minimum": 0},
                "page": {"type": "integer"}, "page_size": {"type": "integer"},
                "pages": {"type": "integer"}, "sort": {"type": "string"},
                "took_ms": {"type": "number"},
                "relaxed": {"enum": [None, "substring", "pinyin", "any_word"],
                            "description": "set when no article had every word"},
                "cached": {"type": "boolean"}, "generation": {"type": "string"},
                "expansions": {"type": "array", "description": "expansions applied to query words: synonym "
                                                              "groups (the file's and the staff desk's) and "
                                                              "Taiwan/mainland words for the same thing "
                                                              "(人工智慧 = 人工智能)",
                               "items": {"type": "object", "required": ["term", "synonyms"],
                                         "properties": {"term": {"type": "string"},
                                                        "synonyms": {"type": "array",
                                                                     "items": {"type": "string"}}}}},
                "suggestion": {"type": ["string", "null"],
                               "description": "did-you-mean (「您是不是要找」): a same-sound reading the index "
                                              "supports better than what was typed, offered while the results "
                                              "are those of the query as typed (or of `searched`); with "
                                              "correct=0 (or a staff-curated query), the correction the page "
                                              "would otherwise have answered with. Never text weaker than "
                                              "what was typed."},
                "filters": {"type": "object"},
                "hits": {"type": "array", "items": {"$ref": "#/components/schemas/Hit"}},
                "facets": {"type": "object", "properties": {
                    name: {"type": "array", "items": {"$ref": "#/components/schemas/FacetValue"}}
                    for name in ("category", "year", "month")}},
            },
        },
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {
                "type": "object", "required": ["status", "code", "message"],
                "properties": {"status": {"type": "integer"}, "code": {"type": "string"},
                               "message": {"type": "string", "description": "what is wrong and how to fix it"},
                               "param": {"type": "string", "description": "the parameter (or body field) at "
                                                                          "fault"},
                               "problems": {"type": "array", "description": "write API: one entry per refused "
                                                                           "record", "items": {
                                   "type": "object", "required": ["index", "reason"],
                                   "properties": {"index": {"type": "integer"}, "reason": {"type": "string"}}}}}}},
        },
    }


def _responses() -> dict:
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    retry_after = {"Retry-After": {"required": True, "description": "seconds to wait",
                                   "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
    return {
        "Error": {"description": "an error, in the one error shape", "content": error},
        "Unauthorized": {
            "description": "no bearer credentials, or not a token of this server (RFC 9110 §15.5.2, RFC 6750)",
            "headers": {"WWW-Authenticate": {"required": True, "schema": {"type": "string", "pattern": "^Bearer"},
                                             "description": f"the challenge: {CHALLENGE}, with "
                                                            'error="invalid_token" when a token was sent'}},
            "content": error},
        "Unavailable": {"description": "the service cannot answer now (no index, the writer busy, too many at "
                                       "once); retry after Retry-After seconds", "headers": retry_after,
                        "content": error},
        "RateLimited": {"description": "too many requests from this client (setting rate_limit); retry after "
                                       "Retry-After seconds", "headers": retry_after, "content": error},
        "NotModified": {"description": "If-None-Match named the current ETag: the answer has not changed",
                        "headers": {"ETag": {"required": True, "schema": {"type": "string"}}}},
    }
