"""Page text (``.txt``) as scraped from the site, the layout of ``../shared/seed/achie_article_page.txt``.

Menu lines starting with ``- ``, an optional breadcrumb line (``主页 > 新闻中心 > 行业洞见``),
the title line, a meta line ``來源:高新院 achie.org 日期:2025-09-11 點擊:次``, then one
body paragraph per line.
"""

from __future__ import annotations

import re

from ..text.cleaning import strip_ruby
from .extract import META_LINE, breadcrumb_category, meta_fields
from .raw import RawRecord, Rejected


def parse_page(data: bytes, page_id: str) -> RawRecord:
    """The fields of a page file; raises :class:`Rejected` when it is not UTF-8."""
    return _parse(_decode_utf8(data), page_id)


# Menu items as flattened by the scraper: "- 高新院新聞".
_MENU_LINE = re.compile(r"^[-*•]\s")
# "主页 > 新闻中心 > 行业洞见", optionally after "当前位置：".
_BREADCRUMB_LINE = re.compile(
    r"^(?:(?:当前位置|當前位置|您的位置|你的位置)\s*[:：]\s*)?"
    r"(?:主页|主頁|首页|首頁|网站首页|網站首頁|Home)\s*[>＞›»]",
    re.IGNORECASE,
)
# The breadcrumb and 來源/日期 line are read as in HTML pages (search_service.ingest.extract).
_META_LINE = META_LINE
_breadcrumb_category = breadcrumb_category
_meta_fields = meta_fields


def _decode_utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        raise Rejected(
            line,
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at byte {exc.start - line_start + 1} "
            "of the line); save the file as UTF-8",
        ) from None


def _parse(text: str, page_id: str) -> RawRecord:
    """Split a scraped page's text into title, meta and body."""
    text = strip_ruby(text)  # before parsing, so "來(lái)源:" is found too
    lines = [line.strip() for line in text.split("\n")]

    category = ""
    title: str | None = None
    title_line: int | None = None
    meta_line: int | None = None
    source = ""
    date: str | None = None
    body: list[str] = []
    body_line: int | None = None
    state = "header"  # header -> (title seen) after_title -> body

    for number, line in enumerate(lines, start=1):
        if not line:
            continue
        if state == "header":
            if _MENU_LINE.match(line):
                continue
            if _BREADCRUMB_LINE.match(line):
                category = _breadcrumb_category(line) or category
                continue
            if _META_LINE.search(line):
                # The meta line came first: the page has no title line.
                meta_line = number
                source, date = _meta_fields(line)
                state = "body"
                continue
            title, title_line = line, number
            state = "after_title"
        elif state == "after_title" and _META_LINE.search(line):
            meta_line = number
            source, date = _meta_fields(line)
            state = "body"
        else:
            state = "body"
            if body_line is None:
                body_line = number
            body.append(line)

    last_line = max(1, len(lines) - (1 if lines and lines[-1] == "" else 0))
    return RawRecord(
        line=title_line or meta_line or 1,
        id=page_id,
        title=title,
        body="\n".join(body) if body else None,
        category=category,
        date=date,
        source=source,
        title_line=title_line or meta_line or last_line,
        body_line=body_line or meta_line or title_line or last_line,
        date_line=meta_line,
        missing_title_reason=(
            "missing title: expected a title line before the 來源/日期 line"
            if meta_line is not None and title is None
            else "missing title: the page has no text besides menu lines ('- …')"
        ),
        missing_body_reason="missing body: no paragraphs after the title and 來源/日期 line",
    )
