"""The OpenAPI 3.1 document of the JSON API, built from the configured limits."""

from __future__ import annotations

from .. import __version__
from ..config import Settings


def _error_ref() -> dict:
    return {"$ref": "#/components/responses/Error"}


def _param(name: str, description: str, schema: dict, *, required: bool = False, where: str = "query") -> dict:
    return {"name": name, "in": where, "required": required, "description": description, "schema": schema}


def openapi_document(settings: Settings) -> dict:
    """The whole document; limits in it are the ones this server enforces."""
    date = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
    nullable_string = {"type": ["string", "null"]}
    facet_value = {
        "type": "object",
        "required": ["value", "count", "selected"],
        "properties": {"value": {"type": "string"}, "count": {"type": "integer", "minimum": 0},
                       "selected": {"type": "boolean"}},
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
            "url": {"type": "string"},
            "source": {"type": "string"},
            "score": {"type": ["number", "null"], "description": "BM25F score; null when sorted by date"},
            "rank": {"type": "integer", "minimum": 1},
        },
    }
    article = {
        "type": "object",
        "required": ["id", "title", "body", "category", "date", "url", "source"],
        "properties": {"id": {"type": "string"}, "title": {"type": "string"}, "body": {"type": "string"},
                       "category": {"type": "string"}, "date": nullable_string, "url": {"type": "string"},
                       "source": {"type": "string"}},
    }
    search_params = [
        _param("q", 'query: words (all must match), "exact phrase", OR, NOT or -word, (groups), title:word',
               {"type": "string", "maxLength": settings.max_query_length}),
        {**_param("category", "only these categories (repeat for several: any of them)",
                  {"type": "array", "items": {"type": "string"}}), "style": "form", "explode": True},
        _param("date_from", "on or after this date (inclusive)", date),
        _param("date_to", "on or before this date (inclusive)", date),
        _param("sort", "result order", {"type": "string", "enum": ["relevance", "date_desc", "date_asc"],
                                        "default": "relevance"}),
        _param("page", f"page number; page × page_size ≤ {settings.max_result_window}",
               {"type": "integer", "minimum": 1, "default": 1}),
        _param("page_size", "results per page",
               {"type": "integer", "minimum": 1, "maximum": settings.max_page_size, "default": 10}),
    ]
    return {
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
                           {"type": "integer", "minimum": 1, "maximum": 50, "default": settings.suggest_limit}),
                ],
                "responses": {
                    "200": {"description": "suggestions", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["query", "suggestions"],
                        "properties": {"query": {"type": "string"}, "suggestions": {"type": "array", "items": {
                            "type": "object", "required": ["id", "title", "title_html", "category", "url"],
                            "properties": {"id": {"type": "string"}, "title": {"type": "string"},
                                           "title_html": {"type": "string"}, "category": {"type": "string"},
                                           "date": nullable_string, "url": {"type": "string"}}}}}}}}},
                    "400": _error_ref(), "503": _error_ref(),
                },
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
                "summary": "Health check: 200 with an open index, 503 without",
                "operationId": "health",
                "responses": {
                    "200": {"description": "healthy", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["status"],
                        "properties": {"status": {"const": "ok"}, "documents": {"type": "integer"},
                                       "generation": {"type": "string"}}}}}},
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
                        "query": {"type": "string"},
                        "total": {"type": "integer", "minimum": 0},
                        "page": {"type": "integer"}, "page_size": {"type": "integer"},
                        "pages": {"type": "integer"}, "sort": {"type": "string"},
                        "took_ms": {"type": "number"},
                        "relaxed": {"enum": [None, "substring", "any_word"],
                                    "description": "set when no article had every word"},
                        "cached": {"type": "boolean"}, "generation": {"type": "string"},
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
