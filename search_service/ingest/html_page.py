"""HTML pages (``.html``, ``.htm``): an article page of the site's template."""

from __future__ import annotations

from .extract import DecodeProblem, UnparsableHTML, decode_html, extract_page
from .raw import RawRecord, Rejected


def parse_page(data: bytes, page_id: str) -> RawRecord:
    """Read an article page of the site's template (see :func:`search_service.ingest.extract.extract_page`).

    The crawler reads pages with the same two steps, so a page gives the same
    article from a file and from the website.
    """
    try:
        fields = extract_page(decode_html(data))
    except DecodeProblem as problem:
        raise Rejected(problem.line, problem.reason) from None
    except UnparsableHTML as exc:
        raise Rejected(1, str(exc)) from None
    return RawRecord(
        line=fields.title_line or 1,
        id=page_id,
        title=fields.title,
        body=fields.body,
        category=fields.category,
        date=fields.date,
        url=fields.url,
        source=fields.source,
        title_line=fields.title_line or 1,
        body_line=fields.body_line or 1,
        date_line=fields.date_line,
        missing_title_reason='missing title: no <h1>, ".title", og:title or <title> in the page',
        missing_body_reason=(
            'missing body: no text in the ".content" / <article> / <main> / <body> element'
        ),
    )
