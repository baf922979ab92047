"""`search-service crawl`: a DedeCMS-shaped site served on loopback by the test itself.

The site: a home page with the 13-category menu, list pages with pagination,
article pages (UTF-8, GBK declared only in <meta> as gb2312, Traditional, with
ruby), a sitemap listing only part of them, a robots.txt that disallows /plus/
and /member/ (pages link there), a 301 from an old URL, a broken link, an
article reachable under a second, dynamic URL with a canonical link, a page
with an article's shape but no body, and a page whose bytes do not match its
charset. A second round changes one article, removes one and makes one fail.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.server
import threading
import time
from email.utils import formatdate
from pathlib import Path

import pytest

from search_service import indexer
from search_service.article import Article
from search_service.cli import main
from search_service.crawl import Crawler, CrawlOptions, parse_category_map
from search_service.crawl.urls import normalize_url
from search_service.extract import Selectors, decode_html, extract_page
from search_service.ingest import Ingest
from search_service.schema import from_stored
from search_service.store import IndexStore

MENU = [("gxy", "高新院新闻"), ("zcjd", "政策解读"), ("gxq", "高新区新闻"), ("qyjj", "区域经济研究"),
        ("jjkfq", "经济开发区新闻"), ("kjcx", "科技创新"), ("zlxxxcy", "战略性新兴产业研究"), ("hydj", "行业洞见"),
        ("ydyl", "一带一路新闻"), ("zhcsal", "智慧城市案例"), ("cygh", "产业规划"), ("yqgh", "园区规划"),
        ("zhcsnews", "智慧城市news")]


def menu_html() -> str:
    items = "".join(f'<li><a href="/news/{slug}/">{name}</a></li>' for slug, name in MENU)
    return (f'<div class="header"><div class="logo"><a href="/">高新院</a></div><ul class="nav">'
            f'<li><a href="/">首页</a></li>{items}</ul>'
            '<a href="/member/login.php">会员登录</a> <a href="/plus/search.php?q=">搜索</a></div>')


FOOTER = '<div class="footer">Copyright &copy; 2026 高新院 版权所有 <a href="/plus/guestbook.php">留言</a></div>'


def article_page(*, title: str, crumbs: str, info: str, paragraphs: list[str], charset: str = "utf-8",
                 head_extra: str = "", prenext: str = "", traditional: bool = False) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    here = "當前位置" if traditional else "当前位置"
    return f"""<!DOCTYPE html>
<html><head>
<meta http-equiv="Content-Type" content="text/html; charset={charset}">
<title>{title}_高新院</title>
{head_extra}
</head><body>
{menu_html()}
<div class="position">{here}：<a href="/">主页</a> &gt; <a href="/news/">新闻中心</a> &gt; {crumbs} &gt; </div>
<div class="main"><div class="title"><h2>{title}</h2></div>
<div class="info">{info}<script src="/plus/count.php?view=yes&aid=1"></script>次</div>
<div class="content">{body}</div>
<div class="prenext">{prenext}</div>
</div>
{FOOTER}
</body></html>"""


def list_page(slug: str, name: str, items: list[tuple[str, str, str]], pages: list[str]) -> str:
    rows = "".join(f'<li><a href="{href}">{title}</a><span>{date}</span></li>' for href, title, date in items)
    pager = "".join(f'<a href="{href}">{label}</a>' for label, href in pages)
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>{name}_高新院</title></head><body>
{menu_html()}
<div class="position">当前位置：<a href="/">主页</a> &gt; <a href="/news/">新闻中心</a> &gt; <a href="/news/{slug}/">{name}</a></div>
<div class="list"><ul>{rows}</ul></div><div class="dede_pages">{pager}</div>
{FOOTER}</body></html>"""


class Site:
    """Pages by path, served with ETag/Last-Modified and conditional answers; every request recorded."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[tuple[float, str, dict[str, str]]] = []
        self.failures: dict[str, list[int]] = {}  # path -> statuses to answer before the page
        self.slow: dict[str, float] = {}  # path -> seconds to wait before answering
        self.lock = threading.Lock()
        handler = self._handler()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def put(self, path: str, body: str | bytes, *, content_type: str = "text/html; charset=utf-8",
            status: int = 200, etag: bool = True, last_modified: bool = True, headers: dict | None = None) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        extra = dict(headers or {})
        if content_type:
            extra["Content-Type"] = content_type
        if etag and status == 200:
            extra["ETag"] = '"' + hashlib.sha1(data).hexdigest()[:16] + '"'
        if last_modified and status == 200:
            extra["Last-Modified"] = formatdate(1_700_000_000 + len(data), usegmt=True)
        self.pages[path] = (status, extra, data)

    def paths(self) -> list[str]:
        return [path for _, path, _ in self.requests]

    def _handler(self):
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                with site.lock:
                    site.requests.append((time.monotonic(), self.path, dict(self.headers.items())))
                    queue = site.failures.get(self.path)
                    failure = queue.pop(0) if queue else None
                if self.path in site.slow:
                    time.sleep(site.slow[self.path])
                if failure is not None:
                    self._answer(failure, {"Content-Type": "text/html"}, b"<h1>Server Error</h1>")
                    return
                status, headers, data = site.pages.get(
                    self.path, (404, {"Content-Type": "text/html; charset=utf-8"}, "<h1>404 页面不存在</h1>".encode())
                )
                if status == 200:
                    etag = headers.get("ETag")
                    if etag and self.headers.get("If-None-Match") == etag:
                        self._answer(304, {"ETag": etag}, b"")
                        return
                    if (not etag and headers.get("Last-Modified")
                            and self.headers.get("If-Modified-Since") == headers["Last-Modified"]):
                        self._answer(304, {}, b"")
                        return
                self._answer(status, headers, data)

            def _answer(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


# --------------------------------------------------------------------------- the site's content

GXQ_BODY_1 = "摘要︰黨的“十九大”指出我國經濟已由高速增長階段全面邁向高質量發展階段。"
GXQ_BODY_2 = "國家高新區作為我國高新技術產業發展的主戰場，帶動地區經濟發展的火車頭。"
HYDJ_BODY = ["2016年12月3日，由同济大学发展研究院主办的“2016中国产业园区持续发展论坛”取得圆满成功。",
             "蓝皮书提出新时期国家级产业园区发展的特点，高新區與園區的經驗。"]


def build_site(site: Site) -> None:
    base = site.base
    site.put("/robots.txt", "User-agent: *\nDisallow: /plus/\nDisallow: /member/\nCrawl-delay: 0.02\n"
             f"Sitemap: {base}/sitemap.xml\n", content_type="text/plain")
    site.put("/sitemap.xml", f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<url><loc>{base}/news/gxq/201909127966.html</loc><lastmod>2019-12-02</lastmod></url>
<url><loc>{base}/special/2022/park.html</loc></url>
</urlset>""", content_type="application/xml")
    latest = "".join(f'<li><a href="{href}">{text}</a></li>' for href, text in [
        ("/news/zhcsal/202405120001.html?from=home", "青岚新区城市运行管理中心"),
        ("/news/old-article.html", "旧地址的文章"),
        ("/news/gxy/202201019999.html", "已删除的文章"),
        ("/plus/view.php?aid=12", "动态页面"),
    ])
    site.put("/", f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>高新院</title></head><body>
{menu_html()}<div class="latest"><h3>最新动态</h3><ul>{latest}</ul></div>{FOOTER}</body></html>""")
    site.put("/news/", list_page("", "新闻中心", [], []))
    # Every category has a list page; gxq has two pages.
    for slug, name in MENU:
        site.put(f"/news/{slug}/", list_page(slug, name, [], []))
    site.put("/news/gxq/", list_page("gxq", "高新区新闻", [
        ("/news/gxq/201909127966.html", "國家高新區高質量發展的評價體系研究", "2019-12-02"),
        ("/news/gxq/201909120001.html", "高新区动态", "2019-09-12"),
    ], [("1", "/news/gxq/"), ("2", "/news/gxq/list_3_2.html"), ("下一页", "/news/gxq/list_3_2.html")]))
    site.put("/news/gxq/list_3_2.html", list_page("gxq", "高新区新闻", [
        ("/news/gxq/201805030002.html", "第二页上的文章", "2018-05-03"),
    ], [("1", "/news/gxq/index.html"), ("2", "/news/gxq/list_3_2.html")]))
    site.put("/news/hydj/", list_page("hydj", "行业洞见", [
        ("/news/hydj/201612053972.html", "2016中国产业园区持续发展论坛顺利举行", "2018-04-28"),
        ("/news/hydj/201701010005.html", "没有正文的页面", "2017-01-01"),
        ("/news/hydj/201702020006.html", "编码错误的页面", "2017-02-02"),
    ], []))
    site.put("/news/ydyl/", list_page("ydyl", "一带一路新闻", [
        ("/a/view.php?aid=7", "一带一路合作园区", "2023-10-18"),
        ("/news/ydyl/202310180007.html", "一带一路合作园区", "2023-10-18"),
    ], []))

    # 1. Traditional, ruby, UTF-8 (the cdsnjd copy of the site's template); date from the 日期 line.
    site.put("/news/gxq/201909127966.html", article_page(
        title="國家高新<ruby>區<rp>(</rp><rt>qū</rt><rp>)</rp></ruby>高質量發展的評價體系研究",
        crumbs='<a href="/news/gxq/">高新區新聞</a>', traditional=True,
        info="來源:未知 日期:2019-12-02 點擊:",
        paragraphs=[GXQ_BODY_1, "國家高新<ruby>區<rt>qū</rt></ruby>作為我國高新技術產業發展的主戰場，帶動地區經濟發展的火車頭。"],
        prenext='上一篇：<a href="/news/gxq/201909120001.html">高新区动态</a> 下一篇：没有了'))
    # 2. GBK declared only in <meta> as gb2312, Traditional characters GB2312 lacks, character references.
    page = article_page(
        title="2016中国产业园区持续发展论坛顺利举行", crumbs='<a href="/news/hydj/">行业洞见</a>',
        info="来源:未知 日期:2018-04-28 点击:", charset="gb2312",
        paragraphs=["2016年12月3日，由同济大学发展研究院主办的&ldquo;2016中国产业园区持续发展论坛&#8221;取得圆满成功。",
                    "蓝皮书提出新时期国家级产业园区发展的特点，&#39640;&#x65B0;區與園區的經驗。"])
    site.put("/news/hydj/201612053972.html", page.encode("gbk"), content_type="text/html")
    # 3. Published time in <meta property>, <time>, a canonical link; reached with ?from=home.
    site.put("/news/zhcsal/202405120001.html", article_page(
        title="青岚新区城市运行管理中心建设实践", crumbs='<a href="/news/zhcsal/">智慧城市案例</a>',
        info='来源:高新院智慧城市研究中心 日期:2024-05-12 点击:',
        head_extra=(f'<meta property="article:published_time" content="2024-05-11T08:00:00+08:00">'
                    f'<link rel="canonical" href="{base}/news/zhcsal/202405120001.html">'),
        paragraphs=["青岚新区城市运行管理中心于2023年底投入运行。", "中心汇聚了交通、水务、能源等领域的实时数据。"]))
    # 4. The same article under a dynamic URL (canonical names the static one).
    ydyl = article_page(
        title="一带一路合作园区建设观察", crumbs='<a href="/news/ydyl/">一带一路新闻</a>',
        info="来源:高新院 日期:2023-10-18 点击:",
        head_extra=f'<link rel="canonical" href="{base}/news/ydyl/202310180007.html">',
        paragraphs=["合作园区成为一带一路建设的重要平台。"])
    site.put("/news/ydyl/202310180007.html", ydyl)
    site.put("/a/view.php?aid=7", ydyl)
    # 5. An old URL that moved for good.
    site.put("/news/old-article.html", "", status=301, content_type="",
             headers={"Location": "/news/cygh/202001010003.html"})
    site.put("/news/cygh/202001010003.html", article_page(
        title="产业规划的新思路", crumbs='<a href="/news/cygh/">产业规划</a>',
        info="来源:高新院 点击:", head_extra='<time datetime="2020-01-01">2020年1月1日</time>',
        paragraphs=["产业规划要从区域资源禀赋出发。"]), etag=False)  # Last-Modified only
    # 6. Reached only through the list's second page; 7. only through the sitemap (no breadcrumb:
    # category from the URL-prefix setting).
    site.put("/news/gxq/201805030002.html", article_page(
        title="第二页上的文章", crumbs='<a href="/news/gxq/">高新区新闻</a>', info="来源:高新院 日期:2018-05-03 点击:",
        paragraphs=["分页之后的文章也要被找到。"]))
    site.put("/special/2022/park.html", """<!DOCTYPE html><html><head><meta charset="utf-8">
<meta property="og:type" content="article"><title>园区专题_高新院</title></head><body>
<h1>园区专题：智慧园区</h1><div class="content"><p>专题页面只在站点地图里。</p></div></body></html>""")
    site.put("/news/gxq/201909120001.html", article_page(
        title="高新区动态", crumbs='<a href="/news/gxq/">高新区新闻</a>', info="来源:高新院 日期:2019-09-12 点击:",
        paragraphs=["高新区动态正文。"]))
    # Bad pages: an article's shape without a body; bytes that are not the declared charset.
    site.put("/news/hydj/201701010005.html", article_page(
        title="没有正文的页面", crumbs='<a href="/news/hydj/">行业洞见</a>', info="来源:高新院 日期:2017-01-01 点击:",
        paragraphs=[]))
    site.put("/news/hydj/201702020006.html", article_page(
        title="编码错误的页面", crumbs='<a href="/news/hydj/">行业洞见</a>', info="来源:高新院 日期:2017-02-02 点击:",
        paragraphs=["正文"]).encode("gbk"), content_type="text/html; charset=utf-8")
    # Disallowed pages exist (a crawler that ignored robots.txt would index this one).
    site.put("/plus/view.php?aid=12", article_page(
        title="不该被抓取", crumbs='<a href="/news/gxy/">高新院新闻</a>', info="来源:高新院 日期:2020-01-01 点击:",
        paragraphs=["robots.txt 不允许。"]))


def expected_articles(base: str) -> list[Article]:
    return sorted([
        Article(f"{base}/news/gxq/201909127966.html", "國家高新區高質量發展的評價體系研究",
                f"{GXQ_BODY_1}\n{GXQ_BODY_2}", "高新区新闻", dt.date(2019, 12, 2),
                f"{base}/news/gxq/201909127966.html", ""),
        Article(f"{base}/news/hydj/201612053972.html", "2016中国产业园区持续发展论坛顺利举行",
                "\n".join(HYDJ_BODY), "行业洞见", dt.date(2018, 4, 28), f"{base}/news/hydj/201612053972.html", ""),
        Article(f"{base}/news/zhcsal/202405120001.html", "青岚新区城市运行管理中心建设实践",
                "青岚新区城市运行管理中心于2023年底投入运行。\n中心汇聚了交通、水务、能源等领域的实时数据。",
                "智慧城市案例", dt.date(2024, 5, 11), f"{base}/news/zhcsal/202405120001.html", "高新院智慧城市研究中心"),
        Article(f"{base}/news/ydyl/202310180007.html", "一带一路合作园区建设观察", "合作园区成为一带一路建设的重要平台。",
                "一带一路新闻", dt.date(2023, 10, 18), f"{base}/news/ydyl/202310180007.html", "高新院"),
        Article(f"{base}/news/cygh/202001010003.html", "产业规划的新思路", "产业规划要从区域资源禀赋出发。",
                "产业规划", dt.date(2020, 1, 1), f"{base}/news/cygh/202001010003.html", "高新院"),
        Article(f"{base}/news/gxq/201805030002.html", "第二页上的文章", "分页之后的文章也要被找到。",
                "高新区新闻", dt.date(2018, 5, 3), f"{base}/news/gxq/201805030002.html", "高新院"),
        Article(f"{base}/special/2022/park.html", "园区专题：智慧园区", "专题页面只在站点地图里。",
                "园区规划", None, f"{base}/special/2022/park.html", ""),
        Article(f"{base}/news/gxq/201909120001.html", "高新区动态", "高新区动态正文。",
                "高新区新闻", dt.date(2019, 9, 12), f"{base}/news/gxq/201909120001.html", "高新院"),
    ], key=lambda a: a.id)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture()
def site():
    site = Site()
    build_site(site)
    yield site
    site.close()


def options(site: Site, tmp_path: Path, **changes) -> CrawlOptions:
    values = dict(start_url=site.base + "/", delay=0.0, retries=2, retry_backoff=0.01, timeout=5.0,
                  category_map=parse_category_map(["/special/=园区规划"]), default_category="",
                  state_path=str(tmp_path / "index" / "crawl.sqlite3"), batch_size=3)
    values.update(changes)
    return CrawlOptions(**values)


def stored_articles(index_dir: Path) -> list[Article]:
    ix = IndexStore(index_dir).open_current()
    return sorted((from_stored(doc) for doc in indexer.iter_stored(ix)), key=lambda a: a.id)


def crawl(site: Site, tmp_path: Path, **changes):
    return Crawler(IndexStore(tmp_path / "index"), options(site, tmp_path, **changes),
                   show_progress=False).run()


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
