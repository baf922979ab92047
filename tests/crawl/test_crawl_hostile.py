"""Hostile sites (issue 23): what a site can send that must not end, hang or misdirect a crawl.

Each test serves the DedeCMS-shaped site of :mod:`tests.crawl_site` on loopback, made hostile in
one way: charset labels that are no text encoding, redirects off the site, robots.txt files too
large or unreadable, answers trickled a byte at a time, absurd Crawl-delays.
"""

from __future__ import annotations

import gzip
import time

import pytest

from search_service.cli import main
from search_service.engine.store import IndexStore

from .crawl_site import Site, article_page, build_site, crawl, expected_articles, stored_articles


@pytest.fixture()
def site():
    site = Site()
    build_site(site)
    yield site
    site.close()


def link_first(site: Site, *paths: str) -> None:
    """Link ``paths`` from the home page, before anything else: they are the first pages crawled."""
    status, headers, data = site.pages["/"]
    links = "".join(f'<a href="{path}">{path}</a>' for path in paths).encode()
    site.pages["/"] = (status, headers, data.replace(b"<body>", b"<body>" + links, 1))


def charset_page(charset: str) -> str:
    return article_page(title=f"声明{charset}的页面", crumbs='<a href="/news/gxq/">高新区新闻</a>',
                        info="来源:高新院 日期:2021-01-01 点击:", charset=charset, paragraphs=["字符集不对的页面。"])


# --------------------------------------------------------------------------- charsets


def test_a_charset_that_is_no_text_encoding_is_one_problem_and_the_crawl_goes_on(site, tmp_path, jieba_cache):
    # rot13 and hex are Python codecs, but bytes-to-bytes ones: bytes.decode raises LookupError.
    site.put("/news/gxq/rot13.html", charset_page("rot13"), content_type="text/html")
    site.put("/news/gxq/hex.html", charset_page("hex"), content_type="text/html; charset=zlib")
    # An HTTP charset that is no text encoding is ignored, as browsers do: the <meta> (utf-8) decides.
    site.put("/news/gxq/base64.html", charset_page("utf-8"), content_type="text/html; charset=base64")
    link_first(site, "/news/gxq/rot13.html", "/news/gxq/hex.html", "/news/gxq/base64.html")

    report = crawl(site, tmp_path)

    problems = {p.url.removeprefix(site.base): p.reason for p in report.problems}
    assert problems["/news/gxq/rot13.html"] == (
        'undecodable: line 3: charset "rot13" in <meta> is not a text encoding; declare utf-8 '
        "(or save the file as UTF-8)")
    assert problems["/news/gxq/hex.html"].startswith('undecodable: line 3: charset "hex" in <meta> is not a text')
    ids = {a.id.removeprefix(site.base) for a in stored_articles(tmp_path / "index")}
    # Every good article is indexed, those fetched after the bad pages too.
    assert ids == {a.id.removeprefix(site.base) for a in expected_articles(site.base)} | {"/news/gxq/base64.html"}
    # And the next run does not die at the same page either.
    again = crawl(site, tmp_path)
    assert "/news/gxq/rot13.html" in {p.url.removeprefix(site.base) for p in again.problems}


def test_index_reports_a_file_whose_charset_is_no_text_encoding(tmp_path, jieba_cache, capsys):
    bad = tmp_path / "pages" / "rot13.html"
    bad.parent.mkdir()
    bad.write_text(charset_page("base64"), encoding="utf-8")
    (tmp_path / "pages" / "good.html").write_text(charset_page("utf-8"), encoding="utf-8")
    index = ["--index-dir", str(tmp_path / "index"), "index"]

    assert main([*index, "--dry-run", str(bad.parent)]) == 1
    err = capsys.readouterr().err
    assert f'{bad}:3: charset "base64" in <meta> is not a text encoding' in err
    assert "1 would be indexed" in err

    assert main([*index, str(bad.parent)]) == 1
    err = capsys.readouterr().err
    assert "2 records read: 1 accepted, 1 rejected" in err and "indexed 1 into generation" in err


# --------------------------------------------------------------------------- --rebuild and acknowledged writes


def test_rebuild_refuses_to_drop_live_articles_the_crawl_did_not_find_gone(site, tmp_path, jieba_cache, capsys):
    index_dir = tmp_path / "index"
    crawl_args = ["--index-dir", str(index_dir), "crawl", site.base + "/", "--delay", "0"]
    assert main(crawl_args) == 1  # the site's two bad pages
    # Acknowledged writes that are no page of the site: `index` from a file (the write API commits the same way).
    (tmp_path / "more.jsonl").write_text(
        '{"id": "api-1", "title": "接口写入的文章", "body": "通过写入接口提交的正文。"}\n'
        '{"id": "api-2", "title": "另一篇", "body": "也是接口写入的。"}\n', encoding="utf-8")
    assert main(["--index-dir", str(index_dir), "index", str(tmp_path / "more.jsonl")]) == 0
    del site.pages["/news/gxq/201909120001.html"]  # gone from the site: legitimately removed
    before = {a.id for a in stored_articles(index_dir)}
    capsys.readouterr()

    assert main([*crawl_args, "--rebuild"]) == 2
    err = capsys.readouterr().err
    assert ("search-service: error: --rebuild would drop 2 live article(s) that this crawl did not find gone "
            "(api-1, api-2)") in err
    assert "Nothing was published" in err and "--drop-missing" in err
    assert {a.id for a in stored_articles(index_dir)} == before  # nothing lost, nothing published

    # Live articles a crawl cut short by --max-pages did not reach would be dropped too.
    assert main([*crawl_args, "--rebuild", "--max-pages", "22"]) == 2
    assert "this crawl did not find gone" in capsys.readouterr().err
    assert {a.id for a in stored_articles(index_dir)} == before

    assert main([*crawl_args, "--rebuild", "--drop-missing"]) == 1
    err = capsys.readouterr().err
    assert "1 removed, 2 dropped (--drop-missing)" in err
    gone = f"{site.base}/news/gxq/201909120001.html"
    assert {a.id for a in stored_articles(index_dir)} == before - {"api-1", "api-2", gone}


def test_drop_missing_needs_rebuild(site, tmp_path, capsys):
    assert main(["--index-dir", str(tmp_path / "index"), "crawl", site.base + "/", "--drop-missing"]) == 2
    assert "--drop-missing only applies with --rebuild" in capsys.readouterr().err
    assert site.paths() == []


# --------------------------------------------------------------------------- the site's hosts


def test_a_start_url_redirecting_off_the_site_stops_the_crawl(site, tmp_path, jieba_cache, capsys, monkeypatch):
    door = Site()  # its / redirects to the site, on another port: another host
    door.put("/", "", status=302, content_type="", headers={"Location": site.base + "/"})
    try:
        args = ["--index-dir", str(tmp_path / "index"), "crawl", door.base + "/", "--delay", "0"]
        assert main(args) == 2
        err = capsys.readouterr().err
        host = site.base.removeprefix("http://")
        assert f"the start URL {door.base}/ redirects to {site.base}/, off the site" in err
        assert f'add "{host}" to the setting crawl_allowed_hosts' in err
        assert site.paths() == []  # not one request to the other host
        assert IndexStore(tmp_path / "index").current_name() is None  # nothing indexed

        # Allowed by the setting, the other host is the site.
        monkeypatch.setenv("SEARCH_SERVICE_CRAWL_ALLOWED_HOSTS", host)
        assert main(args) == 1  # the site's two bad pages
        ids = {a.id for a in stored_articles(tmp_path / "index")}
        assert ids == {a.id for a in expected_articles(site.base)}
    finally:
        door.close()


def test_the_site_is_the_start_host_its_www_twin_and_the_allowed_hosts():
    from search_service.crawl.urls import site_hosts

    assert site_hosts("http://achie.org/", include_www_twin=True) == {"achie.org", "www.achie.org"}
    assert site_hosts("https://www.achie.org:8443/", include_www_twin=True) == {"www.achie.org:8443",
                                                                                  "achie.org:8443"}
    assert site_hosts("http://achie.org/", include_www_twin=False) == {"achie.org"}
    assert site_hosts("http://127.0.0.1:8080/", include_www_twin=True) == {"127.0.0.1:8080"}
    assert site_hosts("http://achie.org/", include_www_twin=False,
                      allowed=["News.Achie.org", "cdn.achie.org:8080"]) == {"achie.org", "news.achie.org",
                                                                            "cdn.achie.org:8080"}
    with pytest.raises(ValueError, match="setting crawl_allowed_hosts: 'achie.org/news' is not a host"):
        site_hosts("http://achie.org/", include_www_twin=True, allowed=["achie.org/news"])


# --------------------------------------------------------------------------- robots.txt


ROBOTS_RULES = "User-agent: *\nDisallow: /plus/\nDisallow: /member/\nDisallow: /news/hydj/\n"


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_a_robots_txt_over_500_kib_is_read_up_to_there(site, tmp_path, jieba_cache, gzipped):
    padding = ("# " + "填充" * 300 + "\n") * 600  # about 1 MB of comments
    text = ROBOTS_RULES + padding + "Disallow: /news/gxq/\n"  # past 500 KiB: ignored, as Google does
    data = text.encode("utf-8")
    if gzipped:  # small on the wire, over the limit once inflated
        site.put("/robots.txt", gzip.compress(data), content_type="text/plain", headers={"Content-Encoding": "gzip"})
    else:
        site.put("/robots.txt", data, content_type="text/plain")

    report = crawl(site, tmp_path)

    paths = site.paths()
    assert not [p for p in paths if p.startswith(("/news/hydj/", "/plus/", "/member/"))], "robots.txt was ignored"
    assert "/news/gxq/201909120001.html" in paths  # the rule after 500 KiB was not read
    assert any("robots.txt is larger than 500 KiB: only its first 500 KiB were read" in n for n in report.notes)
    assert report.aborted is None


@pytest.mark.parametrize("hostile", ["damaged gzip", "cut short"])
def test_an_unreadable_robots_txt_allows_nothing(site, tmp_path, jieba_cache, hostile):
    if hostile == "damaged gzip":
        site.put("/robots.txt", b"\x1f\x8bnot really gzip", content_type="text/plain",
                 headers={"Content-Encoding": "gzip"})
    else:
        site.put("/robots.txt", ROBOTS_RULES * 100, content_type="text/plain")
        site.cut["/robots.txt"] = 100  # Content-Length promises more; the connection closes

    report = crawl(site, tmp_path, retries=1)

    assert report.aborted and report.aborted.startswith("robots.txt could not be read (")
    assert [p.url for p in report.problems] == [site.base + "/robots.txt"]
    assert set(site.paths()) == {"/robots.txt"}
    assert IndexStore(tmp_path / "index").current_name() is None


# --------------------------------------------------------------------------- trickled answers


@pytest.mark.parametrize("mode", ["headers", "body"])
def test_a_trickled_page_is_too_slow_and_the_crawl_goes_on(site, tmp_path, jieba_cache, mode):
    # One byte every 50 ms: each read is well within the 0.5 s read timeout; the page would take minutes.
    site.trickle["/news/gxq/201909120001.html"] = (mode, 0.05)
    started = time.monotonic()
    report = crawl(site, tmp_path, timeout=0.5, retries=0)
    elapsed = time.monotonic() - started

    problems = {p.url.removeprefix(site.base): p.reason for p in report.problems}
    assert problems["/news/gxq/201909120001.html"] == (
        "too slow: no complete answer in 1.5 s (setting crawl_timeout)")
    assert elapsed < 10, f"the crawl took {elapsed:.1f} s"
    ids = {a.id for a in stored_articles(tmp_path / "index")}
    assert ids == {a.id for a in expected_articles(site.base)} - {f"{site.base}/news/gxq/201909120001.html"}


def test_a_trickled_robots_txt_stops_the_crawl_in_time(site, tmp_path, jieba_cache):
    site.trickle["/robots.txt"] = ("headers", 0.05)
    started = time.monotonic()
    report = crawl(site, tmp_path, timeout=0.5, retries=1)
    assert time.monotonic() - started < 8
    assert report.aborted == ("robots.txt could not be read (too slow: no complete answer in 1.5 s (setting "
                              "crawl_timeout)); nothing was crawled, as RFC 9309 asks. Try again when the site answers.")
    assert site.paths() == ["/robots.txt", "/robots.txt"]


# --------------------------------------------------------------------------- Crawl-delay


@pytest.mark.parametrize("asked", ["1e300", "10000"])
def test_an_absurd_crawl_delay_is_capped_with_a_note(site, tmp_path, jieba_cache, capsys, monkeypatch, asked):
    from search_service.crawl import crawler as crawler_module
    from search_service.crawl.fetch import Fetcher

    for path in ("/news/hydj/201701010005.html", "/news/hydj/201702020006.html"):
        del site.pages[path]  # a clean site: the run succeeds, the note is no failure
    site.put("/robots.txt", f"User-agent: *\nDisallow: /plus/\nDisallow: /member/\nCrawl-delay: {asked}\n",
             content_type="text/plain")
    waits: list[float] = []

    class RecordingFetcher(Fetcher):  # the waits are recorded, not slept: an hour a page is the point
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, sleep=waits.append, **kwargs)

    monkeypatch.setattr(crawler_module, "Fetcher", RecordingFetcher)
    status = main(["--index-dir", str(tmp_path / "index"), "crawl", site.base + "/", "--delay", "0",
                   "--max-pages", "5"])
    err = capsys.readouterr().err
    assert status == 0, err
    assert waits and max(waits) <= 3600 and max(waits) > 3590
    host = site.base.removeprefix("http://")
    assert (f"note: robots.txt of {host}: Crawl-delay {float(asked):g} s capped at 3600 s (the longest delay "
            "setting crawl_delay allows)") in err


@pytest.mark.parametrize(("written", "applied"), [
    (1e300, 3600.0), (float("inf"), 3600.0), (5.0, 5.0), (float("nan"), None), (-2.0, None),
])
def test_crawl_delay_bounds(written, applied):
    from search_service.crawl.robots import RobotsRules

    class Parser:  # Protego itself drops nan, inf and negative values; another parser might not
        def crawl_delay(self, agent):
            return written

    delay, note = RobotsRules("agent", Parser()).bounded_crawl_delay(3600)  # type: ignore[arg-type]
    assert delay == applied
    assert (note is None) == (written == 5.0)
