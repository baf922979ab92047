"""Reading an article out of one HTML page: shared by file ingest and the crawler.

The same bytes must give the same article whether they come from an ``.html``
file (:mod:`search_service.ingest`) or from the website (:mod:`search_service.crawl`),
so both call the two steps here:

:func:`decode_html`
    Bytes to text the way a browser does it: a byte-order mark, else the
    charset of the HTTP ``Content-Type`` header (crawler only), else
    ``<meta charset>`` / ``<meta http-equiv=Content-Type>``, else (crawler
    only) detection, else UTF-8. Labels follow the WHATWG Encoding Standard
    where it matters for Chinese sites: ``gb2312``, ``gbk`` and friends decode
    as GB18030 (the WHATWG GBK decoder), since old DedeCMS sites declare
    ``gb2312`` and still write characters that GB2312 lacks; ``big5`` decodes
    as Big5-HKSCS; ``iso-8859-1``/``ascii`` as windows-1252.
:func:`extract_page`
    Text to :class:`PageFields`: title, body, category, date, source and
    canonical URL of the site's DedeCMS-style article template (see
    ``samples/html/``), the page's links for a crawler, and the signs that the
    page is an article at all (home and list pages are not). Numeric character
    references are decoded by the HTML parser; ruby annotations (``<rt>``,
    ``<rp>``) are dropped before anything is read. :class:`Selectors` (CSS)
    override each field for sites whose template differs.

Nothing here validates or cleans for the index: that stays in ingest
(``Ingest`` turns these fields into an :class:`~search_service.article.Article`).
"""

from __future__ import annotations

import codecs
import dataclasses
import re
from typing import Any, cast

from ..text.cleaning import collapse_to_line, collapse_whitespace, strip_ruby

__all__ = [
    "DecodeProblem",
    "PageFields",
    "Selectors",
    "META_LINE",
    "breadcrumb_category",
    "decode_html",
    "encoding_for_label",
    "extract_page",
    "meta_fields",
]


# --------------------------------------------------------------------------
# Breadcrumb and info line (also used by ingest's page-text reader)
# --------------------------------------------------------------------------

_BREADCRUMB_SPLIT = re.compile(r"\s*[>＞›»]\s*")
_HOME_SEGMENTS = {"主页", "主頁", "首页", "首頁", "网站首页", "網站首頁", "home"}
_LEAF_SEGMENTS = {"正文", "详情", "詳情", "内容", "內容", "文章", "阅读", "閱讀"}

# Labels of the meta line. The value of one label runs up to the next label.
_META_LABELS = (
    "來源|来源|日期|發布時間|发布时间|發布日期|发布日期|時間|时间|作者|點擊|点击|瀏覽|浏览|閱讀|阅读"
)
#: The site's info line: ``来源:高新院 日期:2018-04-28 点击:次``.
META_LINE = re.compile(r"(?:來源|来源|日期|發布時間|发布时间|發布日期|发布日期)\s*[:：]")
_SOURCE_VALUE = re.compile(rf"(?:來源|来源)\s*[:：](.*?)(?=(?:{_META_LABELS})\s*[:：]|$)")
_DATE_VALUE = re.compile(
    rf"(?:日期|發布時間|发布时间|發布日期|发布日期)\s*[:：](.*?)(?=(?:{_META_LABELS})\s*[:：]|$)"
)
# Placeholder the site's CMS prints when a field is unknown.
UNKNOWN_VALUES = frozenset({"未知", "不详", "不詳"})


def breadcrumb_category(text: str, title: str = "") -> str:
    """The category named by a breadcrumb: its last segment that is not the page itself."""
    text = re.sub(r"^(?:当前位置|當前位置|您的位置|你的位置)\s*[:：]", "", text.strip())
    segments = [seg.strip() for seg in _BREADCRUMB_SPLIT.split(text) if seg.strip()]
    while segments and (segments[-1] in _LEAF_SEGMENTS or (title and segments[-1] == title)):
        segments.pop()
    segments = [seg for seg in segments if seg.casefold() not in _HOME_SEGMENTS]
    return segments[-1] if segments else ""


def meta_fields(line: str) -> tuple[str, str | None]:
    """Source and raw date value from a meta line such as
    ``來源:高新院 achie.org 日期:2025-09-11 點擊:次``.

    The source is the first word after 來源: (``高新院``); the CMS's ``未知``
    placeholder means no source. The date is None when the line has no 日期.
    """
    source = ""
    match = _SOURCE_VALUE.search(line)
    if match and match.group(1).split():
        source = match.group(1).split()[0]
        if source in UNKNOWN_VALUES:
            source = ""
    date: str | None = None
    match = _DATE_VALUE.search(line)
    if match:
        date = match.group(1).strip()
    return source, date


# --------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------


class DecodeProblem(ValueError):
    """The bytes cannot be read as text; ``line`` (1-based) and ``reason`` say where and why."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.-]+)""", re.IGNORECASE)
# WHATWG Encoding Standard labels whose Python codec differs from the label.
# The WHATWG "GBK" decoder is the GB18030 decoder: browsers read a page that
# says gb2312 as GB18030, and so must we (Traditional characters on old GBK
# sites are not in GB2312).
_WHATWG_LABELS = {
    **dict.fromkeys(
        ("gb2312", "gbk", "x-gbk", "gb_2312-80", "gb_2312", "chinese", "csgb2312", "csiso58gb231280",
         "iso-ir-58", "gb18030"),
        "gb18030",
    ),
    **dict.fromkeys(("big5", "big5-hkscs", "cn-big5", "csbig5", "x-x-big5"), "big5hkscs"),
    **dict.fromkeys(
        ("iso-8859-1", "iso8859-1", "latin1", "l1", "ascii", "us-ascii", "ansi_x3.4-1968",
         "windows-1252", "cp1252", "cp819", "ibm819", "iso_8859-1"),
        "cp1252",
    ),
    # A page cannot really be UTF-16 once its <meta> was readable as ASCII.
    **dict.fromkeys(("utf-16", "utf-16le", "utf-16be"), "utf-8"),
    "unicode-1-1-utf-8": "utf-8",
    "utf8": "utf-8",
}


# Python codecs that decode bytes to str but are no document's character encoding: a page that
# names them is as unreadable as one naming an unknown charset.
_NOT_DOCUMENT_CODECS = frozenset({"undefined", "idna", "punycode", "unicode-escape", "raw-unicode-escape"})


def encoding_for_label(label: str) -> str | None:
    """The Python codec for a charset label as a browser reads it, or None if it names no text encoding.

    None for unknown labels and for codecs Python has under that name that are
    not text encodings (``rot13``, ``base64``, ``hex``, ``zlib``, ``uu``,
    ``bz2``, ``quopri``: bytes-to-bytes transforms that ``bytes.decode`` refuses
    with LookupError), nor a document's encoding (``idna``, ``undefined`` …).
    """
    return _lookup_label(label)[0]


def _lookup_label(label: str) -> tuple[str | None, bool]:
    """``(codec name or None, whether Python knows the label at all)``."""
    key = label.strip().strip("\"'").lower()
    encoding = _WHATWG_LABELS.get(key, key)
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        return None, False
    # CodecInfo marks bytes-to-bytes codecs (rot13, base64 …) with _is_text_encoding = False.
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_DOCUMENT_CODECS:
        return None, True
    return info.name, True


def decode_html(
    data: bytes,
    *,
    http_charset: str | None = None,
    detect: bool = False,
    fix_hint: str = "fix the <meta charset> or save the file as UTF-8",
) -> str:
    """Decode an HTML page: BOM, else ``http_charset``, else ``<meta>``, else detection, else UTF-8.

    ``detect`` guesses the encoding with charset-normalizer when neither the
    header nor the page names one (a browser sniffs too). An ``http_charset``
    that names no text encoding (unknown, or ``base64`` …) is ignored, as
    browsers ignore it. Raises :class:`DecodeProblem` when the ``<meta>``
    charset names no text encoding, or the bytes are not valid in the chosen
    encoding; ``fix_hint`` ends that message (ingest talks about files, the
    crawler about pages). Never LookupError, whatever the labels say.
    """
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="strict")
        except UnicodeDecodeError as exc:
            raise _decode_problem(data, exc, "utf-8", fix_hint) from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise _decode_problem(data, exc, "utf-16", fix_hint) from None
    encoding: str | None = None
    if http_charset:
        encoding = encoding_for_label(http_charset)
    line = 1
    if encoding is None:
        # The WHATWG prescan looks at the first 1024 bytes; pages with long
        # <head>s before the <meta> are common enough to look a little further.
        match = _CHARSET.search(data[:4096])
        if match:
            label = match.group(1).decode("ascii").lower()
            line = data.count(b"\n", 0, match.start()) + 1
            encoding, known = _lookup_label(label)
            if encoding is None:
                what = (f'charset "{label}" in <meta> is not a text encoding' if known
                        else f'unknown charset "{label}" in <meta>')
                raise DecodeProblem(line, f"{what}; declare utf-8 (or save the file as UTF-8)")
    if encoding is None:
        encoding = "utf-8"
        if detect:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                encoding = _detect(data) or "utf-8"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise _decode_problem(data, exc, encoding, fix_hint) from None
    except UnicodeError as exc:  # a codec that fails without a position (utf-7's, say)
        raise DecodeProblem(line, f"not valid {encoding} ({exc}); {fix_hint}") from None


def _detect(data: bytes) -> str | None:
    """The most likely encoding of ``data`` by charset-normalizer (mapped as a browser would)."""
    from charset_normalizer import from_bytes

    best = from_bytes(data[:65536]).best()
    if best is None:
        return None
    # Only a label we would accept from a page: the detector's name for it may differ.
    return encoding_for_label(best.encoding)


def _decode_problem(data: bytes, exc: UnicodeDecodeError, encoding: str, fix_hint: str) -> DecodeProblem:
    line = data.count(b"\n", 0, exc.start) + 1
    line_start = data.rfind(b"\n", 0, exc.start) + 1
    return DecodeProblem(
        line,
        f"not valid {encoding} (byte 0x{data[exc.start]:02x} at byte "
        f"{exc.start - line_start + 1} of the line); {fix_hint}",
    )


# --------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------

# Elements whose text is never article content. <rt>/<rp> are ruby
# annotations: <ruby>高<rt>gāo</rt></ruby> must read as 高.
_DROP_FIRST = ("script", "style", "noscript", "template", "rt", "rp", "iframe", "svg")
# Page furniture, dropped after title/meta/category have been read from it.
_DROP_FURNITURE = ("nav", "header", "footer", "aside", "form", "button", "select")
_BREADCRUMB_SELECTORS = (
    ".breadcrumb, .breadcrumbs, .crumbs, .position, .place, .location, "
    "[aria-label=breadcrumb], [aria-label=Breadcrumb]"
)
_TITLE_SELECTORS = ("article h1", "main h1", "h1.title", ".article-title", ".title", "h1")
_BODY_SELECTORS = (".content", ".article-content", "#content", "article", "main", "body")
_INFO_SELECTORS = ".info, .meta, .article-meta, .article-info, .pubtime"
_FURNITURE_NAMES = frozenset(("nav", "footer", "aside"))
# "上一篇：… 下一篇：…" links between articles (DedeCMS's {dede:prenext}), and
# the page links of an article split over several pages.
_PRENEXT_SELECTORS = ".prenext, .pre-next, .pre_next, .dede_pages, .pagebreak"
_PRENEXT_TEXT = re.compile(r"^\s*(?:上一篇|下一篇|上一條|下一條|上一条|下一条|上一頁|下一頁)\s*[:：]?")

# Block elements: each starts and ends a line of text.
_BLOCKS = frozenset(
    "address article aside blockquote center dd details dialog div dl dt fieldset figcaption "
    "figure h1 h2 h3 h4 h5 h6 hr li main ol p pre section summary table tbody thead tfoot tr ul "
    "caption".split()
)
_CELLS = frozenset(("td", "th"))
# A private-use character marks block breaks while inline whitespace is folded
# (it is not whitespace, so the folding leaves it alone).
_BREAK = "\ue000"
# East Asian wide characters (CJK ideographs, CJK punctuation, full-width forms):
# a line break between two of them in HTML source is not a space (CSS Text
# segment-break rules), so "高新\n区" reads 高新区, not 高新 区.
_WIDE = "\u3001-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff01-\uff60\U00020000-\U0003134f"
_CJK_SEGMENT_BREAK = re.compile(rf"(?<=[{_WIDE}])[^\S\n{_BREAK}]*\n\s*(?=[{_WIDE}])")
_HTML_SPACES = re.compile(r"\s+")


@dataclasses.dataclass(frozen=True, slots=True)
class Selectors:
    """CSS selectors that replace the built-in rules for one field each ("" = built-in).

    ``remove`` lists elements dropped from the body (share buttons, ads …).
    """

    title: str = ""
    body: str = ""
    date: str = ""
    category: str = ""
    remove: str = ""


@dataclasses.dataclass(slots=True)
class PageFields:
    """What one HTML page says, before cleaning and validation.

    Text is uncleaned (ingest cleans it); ``None`` means "not found". The
    ``*_line`` values are source lines of the element a field came from.
    ``links`` are the raw ``href`` values of the page (crawler only).
    ``article_signs`` names what makes the page look like an article (an info
    line, a publication time, an ``<article>`` element …); ``link_share`` is
    the share of the body's text that sits inside links (a list page is
    mostly links, an article is not).
    """

    title: str | None = None
    title_line: int | None = None
    body: str | None = None
    body_line: int | None = None
    category: str = ""
    date: str | None = None
    date_line: int | None = None
    source: str = ""
    url: str = ""
    links: list[str] = dataclasses.field(default_factory=list)
    article_signs: list[str] = dataclasses.field(default_factory=list)
    link_share: float = 0.0


class UnparsableHTML(ValueError):
    """The HTML parser gave up on the text (it is probably not HTML)."""


def html_text(element: Any, *, blocks: bool) -> str:
    """The visible text of ``element``, one line per block element.

    Whitespace inside text runs is folded the way a browser renders it; with
    ``blocks`` each block element (``p``, ``div``, ``li``, ``br`` …) becomes a line
    break, ``<pre>`` keeps its line breaks. Iterative, so deeply nested markup
    cannot exhaust the recursion limit.
    """
    from bs4 import NavigableString
    from bs4.element import Comment, Declaration, Doctype, ProcessingInstruction

    skipped_strings = (Comment, Declaration, Doctype, ProcessingInstruction)
    parts: list[str] = []
    pre_depth = 0
    # Stack items: a node to visit, or a string marker to emit on the way out.
    stack: list[Any] = [element]
    while stack:
        node = stack.pop()
        if isinstance(node, tuple):  # ("exit", tag name)
            name = node[1]
            if name == "pre":
                pre_depth -= 1
            parts.append(_BREAK if (blocks and name in _BLOCKS) else " " if name in _CELLS else "")
            continue
        if isinstance(node, NavigableString):
            if isinstance(node, skipped_strings):
                continue
            text = str(node)
            if pre_depth and blocks:
                text = text.replace("\n", _BREAK)
            parts.append(text)
            continue
        name = node.name
        if name == "br":
            parts.append(_BREAK if blocks else " ")
            continue
        if name in _BLOCKS:
            parts.append(_BREAK if blocks else " ")
        elif name in _CELLS:
            parts.append(" ")
        if name == "pre":
            pre_depth += 1
        stack.append(("exit", name))
        stack.extend(reversed(list(node.children)))

    text = "".join(parts)
    text = _CJK_SEGMENT_BREAK.sub("", text)
    text = _HTML_SPACES.sub(" ", text)
    text = strip_ruby(text)
    if not blocks:
        return collapse_to_line(text)
    return collapse_whitespace(text.replace(_BREAK, "\n"))


def _inside(element: Any, names: frozenset[str]) -> bool:
    return any(parent.name in names for parent in element.parents)


def _is_site_header(element: Any) -> bool:
    """A ``<header>`` (or an element inside one) that is not part of an ``<article>``."""
    names = [parent.name for parent in element.parents]
    if element.name == "header":
        names.insert(0, "header")
    return "header" in names and "article" not in names[names.index("header") :]


def _meta_content(soup: Any, *keys: str) -> tuple[str, int | None]:
    """The ``content`` of the first ``<meta name|property=key>`` found, and its line."""
    for key in keys:
        tag = soup.find("meta", attrs={"name": key}) or soup.find("meta", attrs={"property": key})
        if tag is not None and tag.get("content", "").strip():
            return tag["content"].strip(), tag.sourceline
    return "", None


def _select_one(soup: Any, selector: str, setting: str) -> Any:
    """``soup.select_one(selector)``; a selector soupsieve cannot parse names its setting."""
    from soupsieve import SelectorSyntaxError

    try:
        return soup.select_one(selector)
    except SelectorSyntaxError as exc:
        raise ValueError(f"setting {setting}: invalid CSS selector {selector!r} ({exc.args[0]})") from None


def _link_share(container: Any) -> float:
    """Share of the container's visible characters that are inside ``<a>`` elements."""
    total = len("".join(container.get_text("").split()))
    if not total:
        return 0.0
    linked = sum(len("".join(a.get_text("").split())) for a in container.find_all("a"))
    return min(1.0, linked / total)


def extract_page(text: str, selectors: Selectors | None = None, *, collect_links: bool = False) -> PageFields:
    """Read an article page of the site's template.

    The template (see ``samples/html/``)::

        <head>
          <meta charset="utf-8">
          <meta name="category" content="智慧城市案例">      optional
          <meta name="date" content="2024-05-12">           optional
          <link rel="canonical" href="http://www.achie.org/…">
        </head>
        <body>
          <header><nav>…site menu…</nav></header>
          <div class="position">当前位置：<a>主页</a> &gt; <a>新闻中心</a> &gt; <a>智慧城市案例</a></div>
          <article>
            <h1 class="title">…</h1>
            <div class="info">来源:高新院 日期:2024-05-12 点击:<script>…</script>次</div>
            <div class="content"><p>…</p><p>…</p></div>
            <div class="prenext">上一篇：<a>…</a> 下一篇：<a>…</a></div>
          </article>
          <footer>…</footer>
        </body>

    Found by fallbacks: title from ``article h1``, ``h1.title``, ``.title``, any
    ``h1``, ``og:title``, ``<title>``; category from ``<meta name=category>``,
    ``.category``, the breadcrumb; date from ``<meta name=date>``,
    ``article:published_time``, ``<time datetime>``, the 日期 of the info line;
    body from ``.content``, ``article``, ``main``, ``<body>``, without the
    breadcrumb, info line, menu, footer and 上一篇/下一篇 links. Each field's
    :class:`Selectors` entry, when set and found, wins over these rules.
    Raises :class:`UnparsableHTML` when the parser rejects the text and
    ``ValueError`` for an invalid selector.
    """
    selectors = selectors or Selectors()
    soup = _parse(text)
    fields = PageFields()
    if collect_links:
        # Before anything is dropped: the menu and the pagination are links too.
        fields.links = _links(soup)
    for tag in soup.find_all(_DROP_FIRST):
        tag.decompose()
    title_el = _read_title(soup, selectors, fields)
    crumbs = _read_category(soup, selectors, fields)
    info_el = _read_date_and_source(soup, selectors, fields)
    fields.url = _canonical_url(soup)
    _read_body(soup, selectors, fields, already_read=(title_el, info_el, crumbs))
    return fields


def _parse(text: str) -> Any:
    """The page's element tree; :class:`UnparsableHTML` when the parser rejects the text."""
    # Imported lazily: only HTML reading needs bs4.
    from bs4 import BeautifulSoup
    from bs4.builder import ParserRejectedMarkup

    try:
        return BeautifulSoup(text, "html.parser")
    except ParserRejectedMarkup as exc:
        raise UnparsableHTML(f"cannot parse HTML ({exc}); is this really an HTML page?") from None


def _links(soup: Any) -> list[str]:
    """Every link target of the page: ``<a>``/``<area>`` and ``<link rel=next|prev>``."""
    # href is a single-valued attribute (a str); rel is multi-valued (a list of str) in bs4.
    links = [cast(str, a["href"]) for a in soup.find_all(("a", "area"), href=True)]
    links += [
        cast(str, link["href"]) for link in soup.find_all("link", href=True)
        if {"next", "prev"} & {value.lower() for value in cast(list[str], link.get("rel") or [])}
    ]
    return links


def _read_title(soup: Any, selectors: Selectors, fields: PageFields) -> Any:
    """Set the title and its line; returns its element (None when it came from ``<meta>``/``<title>``)."""
    # The article's heading, not the site logo in the page header.
    title_el = _select_one(soup, selectors.title, "crawl_title_selector") if selectors.title else None
    if title_el is not None and not html_text(title_el, blocks=False):
        title_el = None
    for selector in _TITLE_SELECTORS if title_el is None else ():
        for candidate in soup.select(selector):
            if candidate.name == "title" or _inside(candidate, _FURNITURE_NAMES):
                continue
            if _is_site_header(candidate):
                continue
            if html_text(candidate, blocks=False):
                title_el = candidate
                break
        if title_el is not None:
            break
    if title_el is not None:
        fields.title, fields.title_line = html_text(title_el, blocks=False), title_el.sourceline
    else:
        og_title, og_line = _meta_content(soup, "og:title")
        if og_title:
            fields.title, fields.title_line = og_title, og_line
        elif soup.title is not None and soup.title.get_text(strip=True):
            # "标题 - 高新院" / "标题_高新院": keep the part before the site name.
            full = soup.title.get_text(" ", strip=True)
            fields.title = re.split(r"\s+[-|–—]\s+|_", full)[0].strip()
            fields.title_line = soup.title.sourceline
    return title_el


def _read_category(soup: Any, selectors: Selectors, fields: PageFields) -> Any:
    """Set the category: a selector, explicit meta, a .category element, then the breadcrumb.

    Returns the breadcrumb's element (None without one): it is not body text.
    """
    category = ""
    if selectors.category:
        category_el = _select_one(soup, selectors.category, "crawl_category_selector")
        if category_el is not None:
            text_value = html_text(category_el, blocks=False)
            category = breadcrumb_category(text_value, fields.title or "") or text_value
    if not category:
        category, _ = _meta_content(soup, "category", "article:section")
    crumbs = soup.select_one(_BREADCRUMB_SELECTORS)
    if crumbs is None:
        position = soup.find(string=re.compile(r"^\s*(?:当前位置|當前位置|您的位置|你的位置)\s*[:：]"))
        crumbs = position.parent if position is not None else None
    if not category:
        category_el = soup.select_one(".category")
        if category_el is not None:
            category = html_text(category_el, blocks=False)
    if not category and crumbs is not None:
        category = breadcrumb_category(html_text(crumbs, blocks=False), fields.title or "")
    fields.category = category
    return crumbs


def _read_date_and_source(soup: Any, selectors: Selectors, fields: PageFields) -> Any:
    """Set date, source and the signs of an article: a selector, machine-readable data, the info line.

    Returns the info line's element (None without one): it is not body text.
    """
    date, date_line = "", None
    if selectors.date:
        date_el = _select_one(soup, selectors.date, "crawl_date_selector")
        if date_el is not None:
            value = date_el.get("datetime") or date_el.get("content") or html_text(date_el, blocks=False)
            _, info_date = meta_fields(value)
            date, date_line = (info_date or value).strip(), date_el.sourceline
    if not date:
        date, date_line = _meta_content(soup, "date", "pubdate", "publishdate", "article:published_time")
        if date:
            fields.article_signs.append("publication date in <meta>")
    time_el = soup.find("time", attrs={"datetime": True})
    if time_el is not None:
        fields.article_signs.append("<time>")
        if not date:
            # datetime is a single-valued attribute: bs4 gives a str.
            date, date_line = cast(str, time_el["datetime"]).strip(), time_el.sourceline
    source, _ = _meta_content(soup, "source", "author")
    info_el = soup.select_one(_INFO_SELECTORS)
    if info_el is None or not META_LINE.search(info_el.get_text(" ")):
        text_node = soup.find(string=META_LINE)
        info_el = text_node.parent if text_node is not None else None
    if info_el is not None:
        fields.article_signs.append("来源/日期 line")
        info_source, info_date = meta_fields(html_text(info_el, blocks=False))
        source = source or info_source
        if not date and info_date is not None:
            date, date_line = info_date, info_el.sourceline
    fields.date, fields.date_line = date or None, date_line
    fields.source = source if source not in UNKNOWN_VALUES else ""
    og_type, _ = _meta_content(soup, "og:type")
    if og_type.lower() == "article":
        fields.article_signs.append("og:type article")
    return info_el


def _canonical_url(soup: Any) -> str:
    """The page's own address: ``<link rel=canonical>``, else ``og:url``."""
    url, _ = _meta_content(soup, "og:url")
    canonical = soup.find("link", attrs={"rel": "canonical", "href": True})
    if canonical is not None:
        url = cast(str, canonical["href"]).strip()  # href is single-valued: a str
    return url


def _read_body(soup: Any, selectors: Selectors, fields: PageFields, already_read: tuple[Any, ...]) -> None:
    """Set the body: the content container, minus the elements ``already_read`` and the furniture."""
    container = _select_one(soup, selectors.body, "crawl_body_selector") if selectors.body else None
    if container is not None:
        fields.article_signs.append("crawl_body_selector")
    for selector in _BODY_SELECTORS if container is None else ():
        container = soup.select_one(selector)
        if container is not None:
            break
    if soup.find("article") is not None:
        fields.article_signs.append("<article>")
    container_line = container.sourceline if container is not None else None
    for element in already_read:
        if element is not None and element.parent is not None:
            element.decompose()
    for tag in soup.find_all(_DROP_FURNITURE):
        if tag.parent is not None:  # may already be gone with an ancestor
            tag.decompose()
    for tag in soup.select(".category"):
        tag.decompose()
    removals = _PRENEXT_SELECTORS + (f", {selectors.remove}" if selectors.remove else "")
    try:
        removed = soup.select(removals)
    except Exception as exc:  # soupsieve's SelectorSyntaxError
        raise ValueError(f"setting crawl_remove_selector: invalid CSS selector ({exc})") from None
    for tag in removed:
        if tag.parent is not None and tag is not container:
            tag.decompose()
    if container is not None and container.parent is not None:
        _drop_prenext_lines(container)
        fields.link_share = _link_share(container)
        body = html_text(container, blocks=True)
    else:
        body = ""
    fields.body, fields.body_line = body or None, container_line


def _drop_prenext_lines(container: Any) -> None:
    """Drop the block that holds a ``上一篇：…`` / ``下一篇：…`` link (templates without a class for it)."""
    for string in container.find_all(string=_PRENEXT_TEXT):
        block = string.parent
        while block is not None and block is not container and block.name not in _BLOCKS:
            block = block.parent
        if block is not None and block is not container and block.parent is not None:
            block.decompose()
