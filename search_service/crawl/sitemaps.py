"""Sitemaps (sitemaps.org): XML ``<urlset>``, ``<sitemapindex>``, gzip, and plain-text lists.

Parsed with the standard library's streaming ``xml.etree.ElementTree.iterparse``:
a sitemap is a flat list of ``<loc>`` elements, which needs no library
(ultimate-sitemap-parser fetches by itself, around our robots.txt, delay and
size rules). Expat does not load external entities and, in the Pythons we
support, limits entity expansion (billion laughs); the fetcher bounds the size.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import xml.etree.ElementTree as ET
import zlib

__all__ = ["Sitemap", "parse_sitemap"]

_GZIP_MAGIC = b"\x1f\x8b"
_MAX_UNZIPPED = 50 * 1024 * 1024  # the sitemaps.org limit for one file


@dataclasses.dataclass(slots=True)
class Sitemap:
    """Page URLs and nested sitemap URLs listed in one sitemap file."""

    pages: list[str] = dataclasses.field(default_factory=list)
    sitemaps: list[str] = dataclasses.field(default_factory=list)


def parse_sitemap(data: bytes) -> Sitemap:
    """Read one sitemap file; raise ``ValueError`` with a reason when it is not one."""
    if data.startswith(_GZIP_MAGIC):
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as handle:
                data = handle.read(_MAX_UNZIPPED + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"damaged gzip sitemap ({exc})") from None
        if len(data) > _MAX_UNZIPPED:
            raise ValueError("sitemap larger than 50 MB once unzipped (the sitemaps.org limit)")
    stripped = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    result = Sitemap()
    if not stripped.startswith(b"<"):
        # A text sitemap: one URL per line.
        for line in stripped.decode("utf-8", errors="replace").splitlines():
            if line.strip().startswith(("http://", "https://")):
                result.pages.append(line.strip())
        return result
    try:
        in_index = False
        for event, element in ET.iterparse(io.BytesIO(data), events=("start", "end")):
            name = element.tag.rsplit("}", 1)[-1]
            if event == "start":
                if name == "sitemapindex":
                    in_index = True
                continue
            if name == "loc" and element.text and element.text.strip():
                (result.sitemaps if in_index else result.pages).append(element.text.strip())
            elif name in ("url", "sitemap"):
                element.clear()
    except ET.ParseError as exc:
        raise ValueError(f"not a valid XML sitemap ({exc})") from None
    return result
