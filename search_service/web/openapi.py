"""The OpenAPI 3.1 document of the JSON API, built from the configured limits."""

from __future__ import annotations

from .. import __version__
from ..config import Settings
from .params import similar_default


def _error_ref() -> dict:
    return {"$ref": "#/components/responses/Error"}


def _param(name: str, description: str, schema: dict, *, required: bool = False, where: str = "query") -> dict:
    return {"name": name, "in": where, "required": required, "description": description, "schema": schema}


def openapi_document(settings: Settings) -> dict:
    """The whole document; limits in it are the ones this server enforces."""
    # A real calendar date, or empty (= no bound), as the server reads it.
    date = {"anyOf": [{"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
                      {"type": "string", "maxLength": 0}]}
    nullable_string = {"type": ["string", "null"]}
    facet_value = {
        "type": "object",
        "required": ["value", "count", "selected", "toggle_url"],
        "properties": {"value": {"type": "string"}, "count": {"type": "integer", "minimum": 0},
                       "selected": {"type": "boolean"},
                       "toggle_url": {"type": "string", "description":
                                      "This search with the value selected (or unselected when it is), "
                                      "back to page 1: what the results page's facet link does."}},
    }
    # `url` means one thing in every response: the article on the source site.
    url_schema = {"type": "string", "description": "the article on the source site (the institute's own "
                                                   "site), as indexed"}
    page_url = {"type": "string", "description": "the article's page on this service: an absolute path on "
                                                 "this host (/doc/<id>, under the service's path prefix)"}
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
            "source": {"type": "string"},
            "score": {"type": ["number", "null"], "description": "BM25F score; null when sorted by date"},
            "rank": {"type": "integer", "minimum": 1},
            "match": {"enum": [None, "all_words", "substring", "pinyin", "partial"],
                      "description": "how the hit matched: every word, the text verbatim, by pinyin, or only "
                      "some words/characters (partial matches fill a page after the last exact match and are "
                      "not counted in total); null when listing without a query"},
        },
    }
    article = {
        "type": "object",
        "required": ["id", "title", "body", "category", "date", "url", "source"],
        "properties": {"id": {"type": "string"}, "title": {"type": "string"}, "body": {"type": "string"},
                       "category": {"type": "string"}, "date": nullable_string, "url": url_schema,
                       "source": {"type": "string"}},
    }
    search_params = [
        _param("q", 'query: words (all must match), "exact phrase", OR, NOT or -word, (groups), title:word',
               {"type": "string", "maxLength": settings.max_query_length}),
        {**_param("category", "only these categories (repeat for several: any of them; at most "
                              f"{settings.max_categories}, setting max_categories)",
                  {"type": "array", "items": {"type": "string"}, "maxItems": settings.max_categories}),
         "style": "form", "explode": True},
        _param("date_from", "on or after this date (inclusive)", date),
        _param("date_to", "on or before this date (inclusive)", date),
        # An empty value means the default, as for every parameter here.
        _param("sort", "result order (empty = relevance)",
               {"type": "string", "enum": ["relevance", "date_desc", "date_asc", ""], "default": "relevance"}),
        _param("page", f"page number; page × page_size ≤ {settings.max_result_window}",
               {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "maxLength": 0}], "default": 1}),
        _param("page_size", "results per page",
               {"anyOf": [{"type": "integer", "minimum": 1, "maximum": settings.max_page_size},
                          {"type": "string", "maxLength": 0}], "default": 10}),
        _param("correct", "1 (default): a query with no exact match is answered with its homophone or pinyin "
               "correction when that has exact matches (智惠城市 → 智慧城市, kepu → 科普; see `correction` in the "
               "response); 0: search the query exactly as typed",
               {"type": "string", "enum": ["1", "0", "true", "false", ""], "default": "1"}),
    ]
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "search_service API",
            "version": __version__,
            "description": "Chinese full-text search over the institute's articles. Every error has the shape "
            '{"error": {"status", "code", "message", "param"}}.',
        },
        "paths": {
            "/api/search": {"get": {
                "summary": "Search articles",
                "operationId": "search",
                "parameters": search_params,
                "responses": {
                    "200": {"description": "results", "content": {"application/json": {"schema": {
                        "$ref": "#/components/schemas/SearchResults"}}}},
                    "400": _error_ref(), "503": _error_ref(),
                },
            }},
            "/api/suggest": {"get": {
                "summary": "As-you-type title suggestions",
                "operationId": "suggest",
                "parameters": [
                    _param("q", "text typed so far", {"type": "string", "maxLength": settings.max_query_length}),
                    _param("limit", "how many suggestions",
                           {"type": "integer", "minimum": 1, "maximum": settings.max_limit,
                            "default": settings.suggest_limit}),
                    _param("sid", "typing session (random, one per page load) so the search analytics keep only "
                           "the text a reader settled on; never stored",
                           {"type": "string", "pattern": "^[A-Za-z0-9_-]{0,64}$"}),
                    _param("excerpt", "1: add excerpt_html, a line of each article's text around the match",
                           {"type": "integer", "enum": [0, 1], "default": 0}),
                ],
                "responses": {
                    "200": {"description": "suggestions", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["query", "suggestions"],
                        "properties": {"query": {"type": "string"}, "suggestions": {"type": "array", "items": {
                            "type": "object",
                            "required": ["id", "title", "title_html", "category", "url", "page_url"],
                            "properties": {"id": {"type": "string"}, "title": {"type": "string"},
                                           "title_html": {"type": "string"}, "category": {"type": "string"},
                                           "date": nullable_string,
                                           "url": url_schema,
                                           "page_url": page_url,
                                           "source_url": {**nullable_string, "description":
                                                          "`url` when a browser may follow it (an absolute "
                                                          "http/https URL), else null"},
                                           "excerpt_html": {"type": "string", "description":
                                                            "with excerpt=1: about 60 characters of the body "
                                                            "around the match, escaped HTML with <mark>"}}}}}}}}},
                    "400": _error_ref(), "503": _error_ref(),
                },
            }},
            "/api/click": {"post": {
                "summary": "Report a click on a result (search analytics; send with navigator.sendBeacon)",
                "operationId": "click",
                "description": "Form-encoded (or JSON) fields; no preflight needed. Accepted from this "
                "service's pages and the origins in cors_origins. No personal data is stored.",
                "requestBody": {"required": True, "content": {
                    media: {"schema": {
                        "type": "object", "required": ["q", "id", "rank"],
                        "properties": {
                            "q": {"type": "string", "maxLength": settings.max_query_length,
                                  "description": "the query whose result was clicked"},
                            "id": {"type": "string", "description": "article id"},
                            "rank": {"type": "integer", "minimum": 1, "maximum": settings.max_result_window,
                                     "description": "1-based position in the list"},
                            "channel": {"type": "string", "enum": ["page", "widget"], "default": "page"},
                            "first": {"type": "integer", "enum": [0, 1], "default": 1,
                                      "description": "1 for the first click after the search"},
                        }}}
                    for media in ("application/x-www-form-urlencoded", "application/json", "text/plain")}},
                "responses": {"204": {"description": "recorded (or analytics switched off)"},
                              "400": _error_ref(), "403": _error_ref(), "413": _error_ref()},
            }},
            "/api/documents/{doc_id}": {"get": {
                "summary": "One stored article",
                "operationId": "getDocument",
                "parameters": [_param("doc_id", "article id", {"type": "string"}, required=True, where="path")],
                "responses": {
                    "200": {"description": "the article", "content": {"application/json": {"schema": article}}},
                    "404": _error_ref(), "503": _error_ref(),
                },
            }},
            "/api/documents/{doc_id}/similar": {"get": {
                "summary": "Related articles (sharing this article's key terms)",
                "operationId": "similarDocuments",
                "parameters": [
                    _param("doc_id", "article id", {"type": "string"}, required=True, where="path"),
                    _param("limit", "how many", {"type": "integer", "minimum": 1, "maximum": settings.max_limit,
                                                 "default": similar_default(settings)}),
                ],
                "responses": {
                    "200": {"description": "related articles", "content": {"application/json": {"schema": {
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
                        }}}}},
                    "400": _error_ref(), "404": _error_ref(), "503": _error_ref(),
                },
            }},
            "/api/stats": {"get": {
                "summary": "Index statistics",
                "operationId": "stats",
                "responses": {
                    "200": {"description": "statistics", "content": {"application/json": {"schema": {
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
                        }}}}},
                    "503": _error_ref(),
                },
            }},
            "/healthz": {"get": {
                "summary": "Health check: 200 when the index is open and the home page and a search can be "
                           "served (a canary re-run at most every 2 s), with status degraded and the reasons "
                           "when a safety feature works at reduced strength; 503 with the reason otherwise",
                "operationId": "health",
                "responses": {
                    "200": {"description": "serving", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["status"],
                        "properties": {"status": {"enum": ["ok", "degraded"]}, "documents": {"type": "integer"},
                                       "generation": {"type": "string"},
                                       "degraded": {"type": "object", "description": "component -> what is wrong",
                                                    "additionalProperties": {"type": "string"}}}}}}},
                    "503": _error_ref(),
                },
            }},
            "/openapi.json": {"get": {
                "summary": "This document",
                "operationId": "openapi",
                "responses": {"200": {"description": "OpenAPI 3.1 document",
                                      "content": {"application/json": {"schema": {"type": "object"}}}}},
            }},
        },
        "components": {
            "schemas": {
                "Hit": hit,
                "FacetValue": facet_value,
                "SearchResults": {
                    "type": "object",
                    "required": ["total", "page", "page_size", "took_ms", "hits", "facets", "relaxed"],
                    "properties": {
                        "query": {"type": "string", "description": "the query as typed"},
                        "searched": {"type": "string",
                                     "description": "the query whose results these are: `query`, or its correction"},
                        "correction": {
                            "type": ["object", "null"],
                            "description": "set when the typed query had no exact match and these are the results "
                                           "of its correction; repeat the request with correct=0 for the typed query",
                            "required": ["typed", "searched", "kind", "changes"],
                            "properties": {
                                "typed": {"type": "string"}, "searched": {"type": "string"},
                                "kind": {"enum": ["homophone", "pinyin"]},
                                "changes": {"type": "array", "items": {
                                    "type": "object", "required": ["typed", "searched"],
                                    "properties": {"typed": {"type": "string"}, "searched": {"type": "string"}}}}}},
                        "unmatched": {"type": "array", "items": {"type": "string"},
                                      "description": "words of the query no article contains (partial matches)"},
                        "total": {"type": "integer", "minimum": 0},
                        "page": {"type": "integer"}, "page_size": {"type": "integer"},
                        "pages": {"type": "integer"}, "sort": {"type": "string"},
                        "took_ms": {"type": "number"},
                        "relaxed": {"enum": [None, "substring", "pinyin", "any_word"],
                                    "description": "set when no article had every word"},
                        "cached": {"type": "boolean"}, "generation": {"type": "string"},
                        "expansions": {"type": "array", "description": "synonym expansions applied",
                                       "items": {"type": "object", "required": ["term", "synonyms"],
                                                 "properties": {"term": {"type": "string"},
                                                                "synonyms": {"type": "array",
                                                                             "items": {"type": "string"}}}}},
                        "suggestion": {"type": ["string", "null"],
                                       "description": "did-you-mean: a same-pinyin correction from titles"},
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
                                       "message": {"type": "string"}, "param": {"type": "string"}}}},
                },
            },
            "responses": {
                "Error": {"description": "an error, in the one error shape",
                          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        },
    }
    return _with_limits(document, settings)


#: Paths no rate limit applies to (monitoring).
UNLIMITED_PATHS = frozenset({"/healthz", "/metrics"})


def _with_limits(document: dict, settings: Settings) -> dict:
    """Add what production hardening adds: the limits on ``q``, ``/metrics``, the write API and 429s."""
    paths = document["paths"]
    components = document["components"]
    search_q = next(p for p in paths["/api/search"]["get"]["parameters"] if p["name"] == "q")
    search_q["description"] += (
        f"; word* matches words starting with word (at most {settings.max_prefix_terms} index words, "
        f"setting max_prefix_terms; no leading *). At most {settings.max_query_terms} words and phrases "
        f"(max_query_terms) and {settings.max_query_length} characters (max_query_length)."
    )
    suggest_q = next(p for p in paths["/api/suggest"]["get"]["parameters"] if p["name"] == "q")
    suggest_q["schema"]["maxLength"] = min(settings.max_suggest_length, settings.max_query_length)
    suggest_q["description"] += f" (at most {settings.max_suggest_length} characters, max_suggest_length)"
    document["info"]["description"] += (
        " Public endpoints are rate-limited per client (setting rate_limit): over the limit the answer is "
        "429 with Retry-After, in the same shape."
    )

    components.setdefault("securitySchemes", {})["bearer"] = {
        "type": "http", "scheme": "bearer",
        "description": "a token from the server's api_tokens setting (SEARCH_SERVICE_API_TOKENS)",
    }
    write_errors = {code: {"$ref": "#/components/responses/Error"}
                    for code in ("400", "401", "403", "413", "415", "503")}
    write_result = {"description": "committed and visible to searches", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/WriteResult"}}}}
    components["schemas"]["ArticleInput"] = {
        "type": "object", "required": ["title", "body"],
        "description": f"Text must be valid Unicode without control characters (the body may hold line breaks "
                       f"and tabs); title + body at most {settings.max_article_kb} KB of UTF-8 (setting "
                       "max_article_kb); JSON nested at most 32 levels, integers at most 32 digits.",
        "properties": {"id": {"type": "string"}, "title": {"type": "string"}, "body": {"type": "string"},
                       "category": {"type": "string"}, "date": {"type": ["string", "null"]},
                       "url": {"type": "string"}, "source": {"type": "string"}},
    }
    components["schemas"]["WriteResult"] = {
        "type": "object", "required": ["status", "visible", "upserted", "deleted", "generation", "commit"],
        "properties": {"status": {"const": "committed"}, "visible": {"type": "boolean"},
                       "upserted": {"type": "array", "items": {"type": "string"}},
                       "deleted": {"type": "array", "items": {"type": "string"}},
                       "not_found": {"type": "array", "items": {"type": "string"}},
                       "generation": {"type": "string"}, "commit": {"type": "integer"},
                       "batch_size": {"type": "integer"}, "took_ms": {"type": "number"}},
    }
    doc_id = {"name": "doc_id", "in": "path", "required": True,
              "description": f"article id: at most {settings.max_id_length} characters (setting max_id_length), "
                             "valid UTF-8, no control characters, no leading or trailing whitespace (stored "
                             "exactly as sent; a PUT with an id breaking a rule is a 400 naming it)",
              "schema": {"type": "string", "maxLength": settings.max_id_length}}
    secured: list[dict[str, list[str]]] = [{"bearer": []}]
    paths["/api/documents/{doc_id}"]["put"] = {
        "summary": "Create or replace one article (committed and visible on return)",
        "operationId": "putDocument", "security": secured, "parameters": [doc_id],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/ArticleInput"}}}},
        # 404: an id the URL cannot carry (a line break, say) matches no route.
        "responses": {"200": write_result, "404": {"$ref": "#/components/responses/Error"}, **write_errors},
    }
    paths["/api/documents/{doc_id}"]["delete"] = {
        "summary": "Delete one article",
        "operationId": "deleteDocument", "security": secured, "parameters": [doc_id],
        "responses": {"200": write_result, "404": {"description": "no such article (or no such URL)", "content": {
            "application/json": {"schema": {"anyOf": [{"$ref": "#/components/schemas/WriteResult"},
                                                      {"$ref": "#/components/schemas/Error"}]}}}},
            **{k: v for k, v in write_errors.items() if k not in ("413", "415")}},
    }
    paths.setdefault("/api/documents", {})["post"] = {
        "summary": f"Create or replace a batch (at most {settings.write_batch_max} articles, "
                   f"{settings.write_body_max_mb} MB); all or nothing",
        "operationId": "postDocuments", "security": secured,
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"type": "array",
                                            "items": {"$ref": "#/components/schemas/ArticleInput"}}},
            "application/x-ndjson": {"schema": {"type": "string", "description": "one article object per line"}},
        }},
        "responses": {"200": write_result, **write_errors},
    }

    paths["/metrics"] = {"get": {
        "summary": "Prometheus metrics: requests, latency, index, cache, write queue (text exposition format)",
        "operationId": "metrics",
        "responses": {"200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}},
    }}

    components["responses"]["RateLimited"] = {
        "description": "too many requests from this client (setting rate_limit); retry after Retry-After seconds",
        "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if settings.rate_limit.strip():
        for path, operations in paths.items():
            if path in UNLIMITED_PATHS:
                continue
            for operation in operations.values():
                operation["responses"].setdefault("429", {"$ref": "#/components/responses/RateLimited"})
    return document
