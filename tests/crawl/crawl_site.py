"""A DedeCMS-shaped site served on loopback by the crawl tests themselves, and helpers to crawl it.

The site (:func:`build_site`): a home page with the 13-category menu, list pages with pagination,
article pages (UTF-8, GBK declared only in <meta> as gb2312, Traditional, with ruby), a sitemap
listing only part of them, a robots.txt that disallows /plus/ and /member/ (pages link there), a
301 from an old URL, a broken link, an article reachable under a second, dynamic URL with a
canonical link, a page with an article's shape but no body, and a page whose bytes do not match
its charset. :class:`Site` serves any pages a test puts, also hostile ones: slow, trickled byte by
byte (headers or body), or cut short.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.server
import threading
import time
from email.utils import formatdate
from pathlib import Path

from search_service.article import Article
from search_service.crawl import Crawler, CrawlOptions, parse_category_map
from search_service.engine.store import IndexStore

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


#: A trickled answer stops after this many seconds even when nobody hung up (a crawler without a
#: deadline then fails its test in half a minute instead of hanging for hours).
TRICKLE_LIMIT = 30.0


class Site:
    """Pages by path, served with ETag/Last-Modified and conditional answers; every request recorded.

    Hostile answers by path: ``failures`` (statuses to answer first), ``slow`` (seconds before
    answering), ``trickle`` (``("headers" | "body", seconds per byte)``: the whole answer, or only its
    body, sent one byte at a time, each byte well within a read timeout) and ``cut`` (bytes of the
    body sent before the connection is closed, though Content-Length promised all of it).
    """

    def __init__(self) -> None:
        self.pages: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[tuple[float, str, dict[str, str]]] = []
        self.failures: dict[str, list[int]] = {}  # path -> statuses to answer before the page
        self.slow: dict[str, float] = {}  # path -> seconds to wait before answering
        self.trickle: dict[str, tuple[str, float]] = {}
        self.cut: dict[str, int] = {}
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        handler = self._handler()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stopping.set()
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
                if self.path in site.trickle or self.path in site.cut:
                    self._hostile(status, headers, data)
                    return
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _hostile(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.close_connection = True
                head = "".join(f"{key}: {value}\r\n" for key, value in headers.items())
                head = f"HTTP/1.1 {status} {self.responses[status][0]}\r\n{head}Content-Length: {len(data)}\r\n\r\n"
                if self.path in site.cut:
                    self.wfile.write(head.encode("latin-1") + data[: site.cut[self.path]])
                    return
                mode, pause = site.trickle[self.path]
                slow = head.encode("latin-1") + data if mode == "headers" else data
                if mode == "body":
                    self.wfile.write(head.encode("latin-1"))
                stop = time.monotonic() + TRICKLE_LIMIT
                try:
                    for byte in slow:
                        if site.stopping.is_set() or time.monotonic() > stop:
                            return
                        self.wfile.write(bytes((byte,)))
                        time.sleep(pause)
                except OSError:  # the crawler hung up: what a deadline is for
                    return

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


# --------------------------------------------------------------------------- crawling it


def options(site: Site, tmp_path: Path, **changes) -> CrawlOptions:
    values = dict(start_url=site.base + "/", delay=0.0, retries=2, retry_backoff=0.01, timeout=5.0,
                  category_map=parse_category_map(["/special/=园区规划"]), default_category="",
                  state_path=str(tmp_path / "index" / "crawl.sqlite3"), batch_size=3)
    values.update(changes)
    return CrawlOptions(**values)


def stored_articles(index_dir: Path) -> list[Article]:
    return sorted(IndexStore(index_dir).stored_articles(), key=lambda a: a.id)


def crawl(site: Site, tmp_path: Path, **changes):
    return Crawler(IndexStore(tmp_path / "index"), options(site, tmp_path, **changes),
                   show_progress=False).run()
