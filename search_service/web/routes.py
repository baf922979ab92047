"""This service's own URLs for what the engine returns by id.

The engine knows articles by id and their ``url`` on the source site; where this service
shows an article is a route of ``web/``, built here and nowhere else.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import request


def article_route(doc_id: str) -> str:
    """The article page below this service's root, ``doc/<id>`` (the id is one path segment)."""
    return "doc/" + quote(doc_id, safe="")


def article_path(doc_id: str) -> str:
    """The article page as an absolute path on this host (under the app's script root)."""
    return f"{request.script_root}/{article_route(doc_id)}"


def with_page_urls(items: list[dict]) -> list[dict]:
    """JSON items of articles (with ``id``), each plus ``page_url``: its page on this service
    (:func:`article_path`, with the script root read once for all items)."""
    root = request.script_root
    return [{**item, "page_url": f"{root}/{article_route(item['id'])}"} for item in items]
