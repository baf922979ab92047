"""`search-service crawl`: the DedeCMS-shaped site of :mod:`tests.crawl_site`, served on loopback.

A second round changes one article, removes one and makes one fail.
"""

from __future__ import annotations

import datetime as dt

import pytest

from search_service.article import Article
from search_service.cli import main
from search_service.crawl import Crawler, parse_category_map
from search_service.crawl.urls import normalize_url
from search_service.engine.store import IndexStore
from search_service.ingest import Ingest
from search_service.ingest.extract import Selectors, decode_html, extract_page

from .crawl_site import (
    Site,
    article_page,
    build_site,
    crawl,
    expected_articles,
    options,
    stored_articles,
)

# --------------------------------------------------------------------------- fixtures


@pytest.fixture()
def site():
    site = Site()
    build_site(site)
    yield site
    site.close()


# --------------------------------------------------------------------------- tests


def test_first_crawl_indexes_every_article_with_every_field(site, tmp_path, jieba_cache):
    report = crawl(site, tmp_path)
    assert stored_articles(tmp_path / "index") == expected_articles(site.base)
    assert report.added == 8 and report.changed == 0 and report.removed == 0
    problems = {p.url: p.reason for p in report.problems}
    assert set(problems) == {site.base + "/news/hydj/201701010005.html", site.base + "/news/hydj/201702020006.html"}
    assert problems[site.base + "/news/hydj/201701010005.html"].startswith("no body")
    assert problems[site.base + "/news/hydj/201702020006.html"].startswith("undecodable: line ")
    assert "not valid utf-8" in problems[site.base + "/news/hydj/201702020006.html"]
    assert [b.url for b in report.broken_links] == [site.base + "/news/gxy/202201019999.html"]
    assert not report.ok

    paths = site.paths()
    assert not [p for p in paths if p.startswith(("/plus/", "/member/"))], "fetched what robots.txt disallows"
    # /member/login.php, /plus/search.php, /plus/guestbook.php, /plus/view.php?aid=12: once each
    assert report.disallowed == 4
    # Each page once: ?from=home, index.html and the list page's own link fold into one spelling.
    assert len(paths) == len(set(paths))
    assert "/news/zhcsal/202405120001.html?from=home" not in paths
    assert "/news/gxq/index.html" not in paths
    assert "/news/gxq/list_3_2.html" in paths  # pagination followed
    assert "/sitemap.xml" in paths and "/special/2022/park.html" in paths  # sitemap read
    assert paths[0] == "/robots.txt"
    # The User-Agent names the service; Crawl-delay (0.02 s) is honoured though --delay is 0.
    agents = {headers["User-Agent"] for _, _, headers in site.requests}
    assert len(agents) == 1 and agents.pop().startswith("search-service-crawler/")
    times = [t for t, _, _ in site.requests]
    assert min(b - a for a, b in zip(times, times[1:])) >= 0.015


def test_second_round_is_conditional_and_applies_changes(site, tmp_path, jieba_cache):
    crawl(site, tmp_path)
    first = {p for p in site.paths()}
    site.requests.clear()
    base = site.base
    # One article changes, one disappears (and leaves its list), one fails for the whole run.
    site.put("/news/gxq/201805030002.html", article_page(
        title="第二页上的文章（更新）", crumbs='<a href="/news/gxq/">高新区新闻</a>',
        info="来源:高新院 日期:2018-05-04 点击:", paragraphs=["改过的正文。"]))
    del site.pages["/news/gxq/201909120001.html"]
    site.failures["/news/hydj/201612053972.html"] = [503] * 10

    report = crawl(site, tmp_path)

    expected = {a.id: a for a in expected_articles(base)}
    del expected[f"{base}/news/gxq/201909120001.html"]
    changed_id = f"{base}/news/gxq/201805030002.html"
    expected[changed_id] = Article(changed_id, "第二页上的文章（更新）", "改过的正文。", "高新区新闻",
                                   dt.date(2018, 5, 4), changed_id, "高新院")
    assert stored_articles(tmp_path / "index") == sorted(expected.values(), key=lambda a: a.id)
    assert (report.added, report.changed, report.removed, report.kept) == (0, 1, 1, 1)
    assert report.unchanged == 5  # 8 - changed - removed - kept
    assert [p.url for p in report.problems if "503" in p.reason] == [f"{base}/news/hydj/201612053972.html"]
    assert "after 3 attempts" in report.problems[-1].reason or any("after 3 attempts" in p.reason
                                                                      for p in report.problems)

    # Conditional: every page fetched in round one with a validator was asked for with it.
    requests = {path: headers for _, path, headers in site.requests}
    assert requests["/news/zhcsal/202405120001.html"]["If-None-Match"]
    assert requests["/news/cygh/202001010003.html"]["If-Modified-Since"]  # Last-Modified only
    assert "If-None-Match" not in requests["/news/cygh/202001010003.html"]
    assert report.not_modified >= 10
    assert "/news/gxq/201909120001.html" in requests  # no longer linked, re-checked from the state
    assert not [p for p in requests if p.startswith(("/plus/", "/member/"))]
    assert set(requests) <= first | {"/news/gxq/201909120001.html"}


def test_a_maintenance_page_does_not_delete_articles(site, tmp_path, jieba_cache):
    crawl(site, tmp_path)
    notice = "<html><head><meta charset='utf-8'></head><body><h1>系统维护中</h1><p>请稍后访问。</p></body></html>"
    site.put("/news/zhcsal/202405120001.html", notice)
    report = crawl(site, tmp_path)
    url = site.base + "/news/zhcsal/202405120001.html"
    assert url in {a.id for a in stored_articles(tmp_path / "index")}
    assert report.removed == 0 and report.kept >= 1
    assert any(p.url == url and "no article's shape" in p.reason for p in report.problems)


def test_transient_failures_are_retried(site, tmp_path, jieba_cache):
    site.failures["/news/cygh/202001010003.html"] = [503, 500]
    report = crawl(site, tmp_path)
    assert site.paths().count("/news/cygh/202001010003.html") == 3
    assert f"{site.base}/news/cygh/202001010003.html" in {a.id for a in stored_articles(tmp_path / "index")}
    assert f"{site.base}/news/cygh/202001010003.html" not in {p.url for p in report.problems}


def test_rebuild_publishes_a_new_generation(site, tmp_path, jieba_cache):
    crawl(site, tmp_path)
    store = IndexStore(tmp_path / "index")
    first = store.current_name()
    del site.pages["/news/gxq/201909120001.html"]
    report = crawl(site, tmp_path, rebuild=True)
    assert store.current_name() != first and report.generation == store.current_name()
    ids = {a.id for a in stored_articles(tmp_path / "index")}
    assert ids == {a.id for a in expected_articles(site.base)} - {f"{site.base}/news/gxq/201909120001.html"}
    assert report.removed == 1
    # No conditional request in a rebuild: every page is read whole.
    assert not [h for _, _, h in site.requests[-30:] if "If-None-Match" in h]


def test_unreachable_robots_crawls_nothing(site, tmp_path, jieba_cache):
    site.failures["/robots.txt"] = [503] * 10
    report = crawl(site, tmp_path, retries=1)
    assert report.aborted and "robots.txt could not be read" in report.aborted
    assert site.paths() == ["/robots.txt", "/robots.txt"]
    assert IndexStore(tmp_path / "index").current_name() is None


def test_crawled_article_equals_the_same_page_ingested_from_a_file(site, tmp_path, jieba_cache):
    crawl(site, tmp_path)
    crawled = {a.id: a for a in stored_articles(tmp_path / "index")}
    for path in ("/news/zhcsal/202405120001.html", "/news/ydyl/202310180007.html"):
        _, _, data = site.pages[path]
        file = tmp_path / "page.html"
        file.write_bytes(data)
        (from_file,) = list(Ingest().read(file))
        from_site = crawled[site.base + path]
        assert (from_file.title, from_file.body, from_file.category, from_file.date, from_file.url,
                from_file.source) == (from_site.title, from_site.body, from_site.category, from_site.date,
                                      from_site.url, from_site.source)


def test_cli_crawl_summary_and_exit_status(site, tmp_path, jieba_cache, capsys):
    # Only the clean part of the site: no bad pages, so the run succeeds.
    for path in ("/news/hydj/201701010005.html", "/news/hydj/201702020006.html"):
        del site.pages[path]
    site.pages["/news/gxy/202201019999.html"] = site.pages["/news/gxq/201909120001.html"]
    args = ["--index-dir", str(tmp_path / "index"), "crawl", site.base + "/", "--delay", "0", "--max-pages", "100"]
    status = main(args)
    err = capsys.readouterr().err
    assert status == 0, err
    assert "articles: 9 added, 0 changed, 0 unchanged, 0 removed" in err
    assert main(args) == 0
    assert "articles: 0 added, 0 changed, 9 unchanged, 0 removed" in capsys.readouterr().err
    assert main(["--index-dir", str(tmp_path / "index"), "crawl", "ftp://example.org/"]) == 2
    assert "not an http(s) URL" in capsys.readouterr().err
    assert main(["--index-dir", str(tmp_path / "i2"), "crawl", site.base + "/", "--max-pages", "3",
                 "--delay", "0"]) == 0
    assert "stopped at the page limit" in capsys.readouterr().err


def test_bounds_on_size_and_time_are_reported_by_url(site, tmp_path, jieba_cache):
    huge = article_page(title="很长的页面", crumbs='<a href="/news/gxq/">高新区新闻</a>',
                        info="来源:高新院 日期:2020-01-01 点击:", paragraphs=["很长的段落。" * 20000])
    site.put("/news/gxq/201909127966.html", huge)  # about 400 KB, linked from the gxq list
    site.slow["/news/gxq/201805030002.html"] = 1.0
    report = crawl(site, tmp_path, max_page_bytes=200_000, timeout=0.3, retries=1)
    problems = {p.url.removeprefix(site.base): p.reason for p in report.problems}
    assert problems["/news/gxq/201909127966.html"] == (
        "page larger than 200,000 bytes (setting crawl_max_page_bytes); not read")
    assert problems["/news/gxq/201805030002.html"].startswith("timed out after 0.3 s (setting crawl_timeout)")
    assert problems["/news/gxq/201805030002.html"].endswith("(after 2 attempts)")
    ids = {a.id.removeprefix(site.base) for a in stored_articles(tmp_path / "index")}
    assert "/news/gxq/201909127966.html" not in ids and "/news/gxq/201805030002.html" not in ids
    assert "/news/hydj/201612053972.html" in ids  # the rest of the site is indexed


def test_kill_during_a_crawl_leaves_state_no_ahead_of_the_index(site, tmp_path, jieba_cache):
    """An interrupted crawl (here: an exception after the first batch) is picked up by the next run."""
    crawler = Crawler(IndexStore(tmp_path / "index"), options(site, tmp_path, batch_size=2),
                      show_progress=False)
    visits = 0
    original = crawler._visit

    def visit_then_die(url):
        nonlocal visits
        visits += 1
        if visits == 20:
            raise KeyboardInterrupt
        yield from original(url)

    crawler._visit = visit_then_die
    with pytest.raises(KeyboardInterrupt):
        crawler.run()
    report = crawl(site, tmp_path)
    assert stored_articles(tmp_path / "index") == expected_articles(site.base)
    assert report.added + report.unchanged == 8


# --------------------------------------------------------------------------- units


@pytest.mark.parametrize(("url", "normal"), [
    ("HTTP://Example.ORG:80/a/../news/Index.html#top", "http://example.org/news/"),
    ("http://example.org/news/x.html?from=home&utm_source=t", "http://example.org/news/x.html"),
    ("http://example.org/view.php?b=2&a=1&utm_medium=x", "http://example.org/view.php?a=1&b=2"),
    ("https://example.org:8443/新闻/列表 1.html", "https://example.org:8443/%E6%96%B0%E9%97%BB/%E5%88%97%E8%A1%A8%201.html"),
    ("mailto:a@b.c", None),
    ("javascript:void(0)", None),
    ("http://[::1", None),
])
def test_normalize_url(url, normal):
    assert normalize_url(url) == normal


def test_gb2312_label_decodes_as_gbk_and_header_beats_meta():
    text = '<meta charset="gb2312"><p>高新區 &#x9AD8;&#26032;</p>'
    assert "高新區" in decode_html(text.encode("gbk"))
    # The HTTP header wins over <meta>; without either, detection reads GBK.
    assert "高新區" in decode_html(text.replace("gb2312", "utf-8").encode("gbk"), http_charset="GB2312")
    plain = ("<p>" + "高新区的经济开发区新闻，园区规划与产业规划。" * 20 + "</p>").encode("gbk")
    assert "高新区的经济开发区新闻" in decode_html(plain, detect=True)
    fields = extract_page("<h1>标题</h1><div class='info'>日期:2020-01-02</div><div class='content'>"
                          "<p>&#x9AD8;&#26032;&amp;</p></div>")
    assert fields.body == "高新&"


def test_selectors_override_each_field():
    html = """<html><body><div id="t">选择器标题</div><h1>别的标题</h1>
    <span class="d" data-x="1">发布于 日期:2021-03-04</span><div class="cat">主页 > 科技創新</div>
    <div id="c"><p>正文一</p><div class="share">分享到</div></div><div class="content"><p>错的</p></div></body></html>"""
    fields = extract_page(html, Selectors(title="#t", body="#c", date=".d", category=".cat", remove=".share"))
    assert (fields.title, fields.body, fields.date, fields.category) == ("选择器标题", "正文一", "2021-03-04", "科技創新")
    with pytest.raises(ValueError, match="crawl_title_selector"):
        extract_page(html, Selectors(title="##"))


def test_category_map_setting_is_checked():
    assert parse_category_map(["/a/=甲", "/a/b/=乙"]) == (("/a/b/", "乙"), ("/a/", "甲"))
    with pytest.raises(ValueError, match="crawl_category_map"):
        parse_category_map(["/a/"])
