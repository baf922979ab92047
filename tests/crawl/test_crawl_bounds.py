"""Bounded memory and state whatever the size of the site (issue 23): big sitemaps, pages full of links.

A loopback site whose robots.txt names two gzip sitemaps of 100,000 URLs each (one text, one XML)
and whose home page links to a page of 2,000 links. The crawl keeps at most
``crawl_max_sitemap_urls`` URLs per sitemap and ``crawl_max_links_per_page`` links per page, says
how many it skipped, and its Python memory does not grow with the URLs queued (they wait in SQLite).
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import time
import tracemalloc

import pytest

from search_service.crawl.sitemaps import parse_sitemap

from .crawl_site import Site, crawl

SITEMAP_URLS = 100_000
LINKS = 2_000


def text_sitemap(base: str, count: int) -> bytes:
    return gzip.compress("".join(f"{base}/t/{i}.html\n" for i in range(count)).encode(), compresslevel=1)


def xml_sitemap(base: str, count: int) -> bytes:
    entries = "".join(f"<url><loc>{base}/x/{i}.html</loc><lastmod>2024-01-01</lastmod></url>\n" for i in range(count))
    return gzip.compress(('<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/'
                          f'schemas/sitemap/0.9">\n{entries}</urlset>\n').encode(), compresslevel=1)


@pytest.fixture()
def big_site():
    site = Site()
    base = site.base
    site.put("/robots.txt", f"User-agent: *\nSitemap: {base}/a.txt.gz\nSitemap: {base}/b.xml.gz\n",
             content_type="text/plain")
    site.put("/a.txt.gz", text_sitemap(base, SITEMAP_URLS), content_type="application/gzip")
    site.put("/b.xml.gz", xml_sitemap(base, SITEMAP_URLS), content_type="application/gzip")
    site.put("/", '<html><head><meta charset="utf-8"></head><body><a href="/links.html">链接</a></body></html>')
    farm = "".join(f'<a href="/farm/{i}.html">第{i}页</a> ' for i in range(LINKS))
    site.put("/links.html", f'<html><head><meta charset="utf-8"></head><body>{farm}</body></html>')
    yield site
    site.close()


def test_big_sitemaps_and_link_farms_are_capped_counted_and_kept_out_of_memory(big_site, tmp_path):
    crawl(big_site, tmp_path / "warm-up", max_pages=1, state_path=str(tmp_path / "warm-up.sqlite3"))  # imports
    big_site.requests.clear()
    tracemalloc.start()
    started = time.monotonic()
    try:
        report = crawl(big_site, tmp_path, max_pages=20, max_sitemap_urls=10_000, max_links_per_page=100)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    elapsed = time.monotonic() - started  # traced: slower than a real crawl

    assert report.sitemap_urls_skipped == 2 * (SITEMAP_URLS - 10_000)
    assert report.links_skipped == LINKS - 100
    summary = report.summary()
    assert ("skipped 1,900 links (setting crawl_max_links_per_page), 180,000 sitemap URLs (setting "
            "crawl_max_sitemap_urls)") in summary
    # 20,000 sitemap URLs and 100 links were queued, 20 pages visited: the rest waits on disk.
    assert report.not_visited == 20_000 + 100 + 2 - 20  # + the home and farm pages, - those visited
    assert "with 20,082 URLs not visited" in summary
    # The page full of links keeps 100 in the crawl state, not 5,000.
    with sqlite3.connect(tmp_path / "index" / "crawl.sqlite3") as db:
        (links,) = db.execute("SELECT links FROM pages WHERE url = ?", (big_site.base + "/links.html",)).fetchone()
    assert len(json.loads(links)) == 100
    # Python's own memory: not the 200,000 URLs the sitemaps list, nor the 20,000 queued.
    assert peak < 8_000_000, f"peak {peak / 1e6:.1f} MB of Python memory"
    assert elapsed < 60  # about 5 s here: the 180,000 URLs skipped are counted, not parsed


def test_a_sitemap_is_parsed_up_to_the_limit_and_the_rest_counted():
    base = "http://example.org"
    data = text_sitemap(base, 1_200_000)
    tracemalloc.start()
    try:
        sitemap = parse_sitemap(data, 50_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (len(sitemap.pages), sitemap.skipped) == (50_000, 1_150_000)
    assert sitemap.pages[-1] == f"{base}/t/49999.html"
    assert peak < 10_000_000, f"peak {peak / 1e6:.1f} MB"  # the URLs alone would be over 100 MB

    xml = xml_sitemap(base, 60_000)
    sitemap = parse_sitemap(xml, 50_000)
    assert (len(sitemap.pages), sitemap.skipped) == (50_000, 10_000)
    assert sitemap.pages[-1] == f"{base}/x/49999.html"
    # Whatever the chunk boundaries, kept + skipped is what the file lists.
    for limit in (1, 33_333, 60_000):
        sitemap = parse_sitemap(xml, limit)
        assert (len(sitemap.pages), sitemap.skipped) == (limit, 60_000 - limit)
