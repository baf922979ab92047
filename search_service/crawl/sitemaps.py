"""Sitemaps (sitemaps.org): XML ``<urlset>``, ``<sitemapindex>``, gzip, and plain-text lists.

Parsed with the standard library's incremental ``xml.etree.ElementTree.XMLPullParser``:
a sitemap is a flat list of ``<loc>`` elements, which needs no library
(ultimate-sitemap-parser fetches by itself, around our robots.txt, delay and
size rules). Expat does not load external entities and, in the Pythons we
support, limits entity expansion (billion laughs); the fetcher bounds the size.

Bounded memory: the file is inflated and parsed in chunks, at most ``max_urls``
URLs are kept (setting ``crawl_max_sitemap_urls``; 50,000 is the sitemaps.org
limit for one file), and the entries beyond are counted without being parsed;
inflating stops at 50 MB (the sitemaps.org size limit), so a gzip bomb cannot
grow either. A sitemap of 1.2 M URLs costs what one of 50,000 does.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import re
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from typing import cast

__all__ = ["MAX_SITEMAP_URLS", "Sitemap", "parse_sitemap"]

#: sitemaps.org: at most 50,000 URLs and 50 MB (uncompressed) per sitemap file.
MAX_SITEMAP_URLS = 50_000
_MAX_UNZIPPED = 50 * 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 64 * 1024
# End tags of the entries of a sitemap (any namespace prefix): counted, not parsed, past the limit.
_ENTRY_END = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?(?:url|sitemap)\s*>")
_ENTRY_END_MAX = 64  # longer than any end tag _ENTRY_END matches in practice
_TEXT_URL = re.compile(rb"^[ \t]*https?://", re.MULTILINE | re.IGNORECASE)


@dataclasses.dataclass(slots=True)
class Sitemap:
    """Page URLs and nested sitemap URLs listed in one sitemap file.

    ``skipped`` counts the URLs listed beyond ``max_urls``; ``problem`` says why
    the file was read only in part (larger than 50 MB once unzipped).
    """

    pages: list[str] = dataclasses.field(default_factory=list)
    sitemaps: list[str] = dataclasses.field(default_factory=list)
    skipped: int = 0
    problem: str | None = None


def parse_sitemap(data: bytes, max_urls: int = MAX_SITEMAP_URLS) -> Sitemap:
    """Read one sitemap file, keeping at most ``max_urls`` URLs; ``ValueError`` with a reason when it is none."""
    result = Sitemap()
    chunks = _chunks(data, result)
    first = b""
    for chunk in chunks:  # the first bytes that are not a BOM or blank decide the format
        first = chunk.lstrip(b"\xef\xbb\xbf \t\r\n")
        if first:
            break
    if not first.startswith(b"<"):
        _read_text(first, chunks, result, max_urls)
    else:
        _read_xml(first, chunks, result, max_urls)
    return result


def _chunks(data: bytes, result: Sitemap) -> Iterator[bytes]:
    """``data`` in pieces of about 64 KiB, inflated first when gzip; stops at 50 MB (``result.problem``)."""
    if not data.startswith(_GZIP_MAGIC):
        for start in range(0, len(data), _CHUNK):
            yield data[start:start + _CHUNK]
        return
    size = 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as handle:
            while chunk := handle.read(_CHUNK):
                size += len(chunk)
                if size > _MAX_UNZIPPED:
                    result.problem = ("larger than 50 MB once unzipped (the sitemaps.org limit); "
                                      "only its first 50 MB were read")
                    return
                yield chunk
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"damaged gzip sitemap ({exc})") from None


def _read_text(first: bytes, chunks: Iterator[bytes], result: Sitemap, max_urls: int) -> None:
    """A text sitemap: one URL per line."""
    rest = b""
    for chunk in _then(first, chunks):
        block = rest + chunk
        cut = block.rfind(b"\n") + 1
        block, rest = block[:cut], block[cut:]  # the last line may go on in the next chunk
        if len(result.pages) < max_urls:
            for line in block.split(b"\n"):
                _take_text_line(line, result, max_urls)
        else:  # full: only count the rest, at the regular expression engine's speed
            result.skipped += len(_TEXT_URL.findall(block))
    _take_text_line(rest, result, max_urls)


def _take_text_line(line: bytes, result: Sitemap, max_urls: int) -> None:
    line = line.strip()
    if not _TEXT_URL.match(line):
        return
    if len(result.pages) < max_urls:
        result.pages.append(line.decode("utf-8", errors="replace"))
    else:
        result.skipped += 1


def _then(first: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from chunks


def _read_xml(first: bytes, chunks: Iterator[bytes], result: Sitemap, max_urls: int) -> None:
    """An XML sitemap or sitemap index: the ``<loc>`` of each ``<url>`` / ``<sitemap>`` entry."""
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
    path: list[str] = []  # names of the open elements, namespaces stripped
    root = None
    in_index = False
    fed = b""
    try:
        for chunk in _then(first, chunks):
            parser.feed(chunk)
            fed = chunk
            for event, element in _events(parser):
                name = element.tag.rsplit("}", 1)[-1]
                if event == "start":
                    if root is None:
                        root, in_index = element, name == "sitemapindex"
                    path.append(name)
                    continue
                path.pop()
                # Only an entry's own <loc>: not <image:loc> and the like inside it.
                if name == "loc" and path and path[-1] in ("url", "sitemap") and element.text and element.text.strip():
                    if len(result.pages) + len(result.sitemaps) >= max_urls:
                        result.skipped += _count_rest(parser, fed, chunks)  # this entry's end tag included
                        return
                    (result.sitemaps if in_index else result.pages).append(element.text.strip())
                elif name in ("url", "sitemap") and root is not None:
                    root.clear()  # the entry is read: drop it (iterparse keeps every element otherwise)
        parser.close()
    except ET.ParseError as exc:
        raise ValueError(f"not a valid XML sitemap ({exc})") from None


def _events(parser: ET.XMLPullParser[ET.Element]) -> Iterator[tuple[str, ET.Element]]:
    # With only "start" and "end" asked for, every event carries an element.
    return cast(Iterator[tuple[str, ET.Element]], parser.read_events())


def _count_rest(parser: ET.XMLPullParser[ET.Element], fed: bytes, chunks: Iterator[bytes]) -> int:
    """Entries not ended yet (the one being read included), counted by their end tags, not parsed."""
    count = 0
    for event, element in _events(parser):  # already parsed: the rest of the last chunk fed
        if event == "end" and element.tag.rsplit("}", 1)[-1] in ("url", "sitemap"):
            count += 1
    # A tag cut between the last chunk fed and the next is not an event yet: match it from the tail.
    tail = fed[-_ENTRY_END_MAX:]
    for chunk in chunks:
        text = tail + chunk
        count += sum(1 for match in _ENTRY_END.finditer(text) if match.end() > len(tail))
        tail = text[-_ENTRY_END_MAX:]
    return count
