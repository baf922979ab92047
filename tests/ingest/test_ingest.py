"""Tests for search_service.ingest: readers, cleaning at ingest, file:line problems."""

from __future__ import annotations

import collections
import datetime as dt
import gzip
import itertools
import json
import re
from pathlib import Path

import pytest

from search_service.article import Article
from search_service.categories import SITE_CATEGORIES
from search_service.ingest import Ingest, IngestProblem, IngestReport, read_articles
from search_service.ingest import jsonl as jsonl_reader

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
PROJECT = Path(__file__).resolve().parents[2]
SAMPLES = PROJECT / "samples"
SHARED = PROJECT.parent / "shared"
SEED = SHARED / "seed" / "achie_article_page.txt"
CORPORA = SHARED / "corpora"

TONE_ANNOTATION = re.compile(r"[(（][a-zü]*[āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜńňǹḿ][a-zü]*[)）]")
DATE_HELP = "write it as YYYY-MM-DD (2025/9/11, 2025.9.11, 2025年9月11日 and ISO datetimes also work)"


def run(*paths: Path | str, **options: object) -> tuple[list[Article], Ingest]:
    """Read ``paths`` with a fresh Ingest; return the articles and the Ingest."""
    ingest = Ingest(log_problems=False, **options)  # type: ignore[arg-type]
    articles = list(ingest.read(list(paths)))
    return articles, ingest


def messages(ingest: Ingest) -> list[str]:
    return [str(problem) for problem in ingest.report.problems]


# -- report types --------------------------------------------------------------


def test_problem_str_is_path_line_reason() -> None:
    assert str(IngestProblem("a/b.jsonl", 7, "bad JSON")) == "a/b.jsonl:7: bad JSON"


def test_report_summary() -> None:
    report = IngestReport(files=3, read=12, accepted=10, rejected=2)
    report.problems.extend(IngestProblem("f", n, "x") for n in range(3))
    report.skipped.append("README.md")
    assert report.summary() == (
        "3 files, 12 records read: 10 accepted, 2 rejected; "
        "1 other problem, 1 file of unsupported type skipped"
    )
    assert IngestReport(files=1, read=1, accepted=1).summary() == (
        "1 file, 1 record read: 1 accepted, 0 rejected"
    )


# -- JSON Lines ------------------------------------------------------------------


def test_good_jsonl_is_cleaned() -> None:
    articles, ingest = run(FIXTURES / "good.jsonl")
    assert messages(ingest) == []
    assert [a.id for a in articles] == ["g1", "g2", "g3"]
    first, second, third = articles
    assert first == Article(
        id="g1",
        title="高新區新聞：園區發展論壇舉行",  # ruby stripped, script kept
        body="第一段，講述園區經濟。\n第二段 繼續。",  # paragraphs kept, spaces collapsed
        category="高新区新闻",  # canonical Simplified site category
        date=dt.date(2024, 3, 5),
        url="http://www.achie.org/news/gxq/1.html",
        source="高新院",
    )
    assert second.title == "智慧城市案例：5G 与 iPhone15 的场景"
    assert second.category == "智慧城市news"
    assert (second.date, second.url, second.source) == (None, "", "")  # nulls
    assert third.category == "新闻联播"
    assert third.date == dt.date(2023, 7, 1)
    # The blank line 3 is not a record.
    assert (ingest.report.read, ingest.report.accepted, ingest.report.rejected) == (3, 3, 0)


def test_broken_jsonl_reports_every_bad_line_and_keeps_the_good_ones() -> None:
    path = FIXTURES / "broken.jsonl"
    articles, ingest = run(path)
    assert [a.id for a in articles] == ["b1", "b10"]
    assert messages(ingest) == [
        f"{path}:2: bad JSON: Expecting ',' delimiter at column 43; "
        "each line must be one complete JSON object",
        f'{path}:3: expected a JSON object like {{"id": …, "title": …, "body": …}}, got an array',
        f'{path}:4: missing "title"; every record needs a non-empty title',
        f'{path}:5: empty "body" (nothing left after cleaning); an article needs text to be found',
        f"{path}:6: impossible date '2025-02-30' (day is out of range for month); {DATE_HELP}",
        f'{path}:7: "title" must be a string, got a number',
        f'{path}:8: duplicate id "b1" (first used at {path}:1); '
        "ids must be unique across all files of one run",
        f'{path}:11: "id" must be a string, got a number; quote it: "11"',
        f'{path}:12: missing "id"; every record needs a unique string id; '
        'missing "title"; every record needs a non-empty title; '
        'missing "body"; an article needs text to be found',
    ]
    report = ingest.report
    assert (report.files, report.read, report.accepted, report.rejected) == (1, 11, 2, 9)
    assert report.accepted + report.rejected == report.read
    assert not report.ok


def test_allow_untitled_accepts_records_without_title() -> None:
    articles, ingest = run(FIXTURES / "broken.jsonl", allow_untitled=True)
    assert [a.id for a in articles] == ["b1", "b4", "b10"]
    assert articles[1].title == ""
    # Other problems are still reported.
    assert len(ingest.report.problems) == 8


def test_null_and_wrong_typed_optional_fields(tmp_path: Path) -> None:
    path = tmp_path / "types.jsonl"
    lines = [
        {"id": "x1", "title": None, "body": "正文"},
        {"id": "x2", "title": "标题", "body": "正文", "date": 20250911},
        {"id": "x3", "title": "标题", "body": ["正文"], "category": 5},
        {"id": "x4", "title": "标题", "body": "正文", "extra": "ignored", "date": ""},
    ]
    path.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines), "utf-8")
    articles, ingest = run(path)
    assert messages(ingest) == [
        f'{path}:1: "title" is null; every record needs a non-empty title',
        f'{path}:2: "date" must be a string, got a number',
        f'{path}:3: "body" must be a string, got an array; "category" must be a string, got a number',
    ]
    assert [(a.id, a.date) for a in articles] == [("x4", None)]  # "" date means no date


def test_gzip_jsonl() -> None:
    articles, ingest = run(FIXTURES / "good.jsonl.gz")
    assert messages(ingest) == []
    assert [(a.id, a.category, a.date) for a in articles] == [
        ("z1", "政策解读", dt.date(2022, 1, 1)),
        ("z2", "", None),
    ]


def test_truncated_gzip_keeps_what_was_readable() -> None:
    path = FIXTURES / "truncated.jsonl.gz"
    articles, ingest = run(path)
    assert len(articles) == 91
    assert messages(ingest) == [
        f"{path}:92: the gzip file ends early (truncated download or copy?); "
        "records after this point are lost"
    ]


def test_file_with_gz_suffix_that_is_not_gzip() -> None:
    path = FIXTURES / "not_gzip.jsonl.gz"
    articles, ingest = run(path)
    assert articles == []
    assert messages(ingest) == [
        f"{path}:1: cannot decompress (Not a gzipped file (b'{{\"')); the file is damaged "
        "or not gzip-compressed (if it is plain text, drop the .gz suffix)"
    ]


def test_line_that_is_not_utf8() -> None:
    path = FIXTURES / "not_utf8.jsonl"
    articles, ingest = run(path)
    assert [a.id for a in articles] == ["u1", "u3"]
    assert messages(ingest) == [
        f"{path}:2: not valid UTF-8 (byte 0xbb at byte 24 of the line); save the file as UTF-8"
    ]


def test_bom_and_crlf_are_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "bom.ndjson"
    record = json.dumps({"id": "a", "title": "标题", "body": "正文"}, ensure_ascii=False)
    path.write_bytes(b"\xef\xbb\xbf" + record.encode() + b"\r\n\r\n")
    articles, ingest = run(path)
    assert messages(ingest) == []
    assert [a.id for a in articles] == ["a"]


def test_duplicate_ids_across_files() -> None:
    first = FIXTURES / "good.jsonl"
    articles, ingest = run(first, FIXTURES / "tree" / ".." / "good.jsonl")
    second = FIXTURES / "tree" / ".." / "good.jsonl"
    assert [a.id for a in articles] == ["g1", "g2", "g3"]
    assert messages(ingest) == [
        f'{second}:{line}: duplicate id "{article_id}" (first used at {first}:{first_line}); '
        "ids must be unique across all files of one run"
        for line, article_id, first_line in ((1, "g1", 1), (2, "g2", 2), (4, "g3", 4))
    ]


def test_each_read_is_a_new_run() -> None:
    ingest = Ingest(log_problems=False)
    assert len(list(ingest.read(FIXTURES / "good.jsonl"))) == 3
    assert len(list(ingest.read(FIXTURES / "good.jsonl"))) == 3  # no duplicates
    assert ingest.report.ok and ingest.report.read == 3


def test_category_options() -> None:
    articles, _ = run(FIXTURES / "good.jsonl", category="園區(qū)規(guī)劃")
    assert {a.category for a in articles} == {"园区规划"}
    articles, _ = run(FIXTURES / "good.jsonl.gz", default_category="行業洞見")
    assert [a.category for a in articles] == ["政策解读", "行业洞见"]


# -- page text ----------------------------------------------------------------


def test_page_text() -> None:
    articles, ingest = run(FIXTURES / "page.txt")
    assert messages(ingest) == []
    assert articles == [
        Article(
            id="page",
            title="某高新區發布產業園區規劃",
            body="6月18日,某高新區發布新一輪產業園區規劃(2024—2030),提出建設智慧城市示範區。\n"
            "規劃明確三大產業方向,並設立專項基金(GDP)。",
            category="园区规划",  # from the breadcrumb line
            date=dt.date(2024, 6, 18),
            url="",
            source="高新院",
        )
    ]


def test_page_text_options() -> None:
    articles, _ = run(FIXTURES / "page.txt", category="科技创新", id_override="p-1")
    assert (articles[0].id, articles[0].category) == ("p-1", "科技创新")
    articles, _ = run(FIXTURES / "tree" / "sub" / "b.txt", default_category="政策解讀")
    assert (articles[0].id, articles[0].category) == ("b", "政策解读")


def test_page_text_simplified_meta_line(tmp_path: Path) -> None:
    path = tmp_path / "简体.txt"
    path.write_text("标题\n来源:未知 日期:2019/3/8 点击:12次\n正文第一段。\n\n正文第二段。\n", "utf-8")
    articles, ingest = run(path)
    assert messages(ingest) == []
    assert (articles[0].title, articles[0].date, articles[0].source) == (
        "标题",
        dt.date(2019, 3, 8),
        "",  # the CMS's 未知 placeholder means no source
    )
    assert articles[0].body == "正文第一段。\n正文第二段。"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("page_no_title.txt", "3: missing title: expected a title line before the 來源/日期 line"),
        ("page_bad_date.txt", f"3: impossible date '2024-13-45' (month must be in 1..12); {DATE_HELP}"),
        ("page_no_body.txt", "3: missing body: no paragraphs after the title and 來源/日期 line"),
    ],
)
def test_page_text_problems(name: str, reason: str) -> None:
    path = FIXTURES / name
    articles, ingest = run(path)
    assert articles == []
    assert messages(ingest) == [f"{path}:{reason}"]
    assert (ingest.report.read, ingest.report.rejected) == (1, 1)


def test_page_text_untitled_allowed() -> None:
    articles, ingest = run(FIXTURES / "page_no_title.txt", allow_untitled=True)
    assert messages(ingest) == []
    assert (articles[0].title, articles[0].body) == ("", "只有正文,沒有標題行。")


def test_page_text_menu_only_and_empty(tmp_path: Path) -> None:
    menu_only = tmp_path / "menu.txt"
    menu_only.write_text("- 高新院新聞\n- 政策解讀\n", "utf-8")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    _, ingest = run(menu_only, empty)
    assert messages(ingest) == [
        f"{menu_only}:2: missing title: the page has no text besides menu lines ('- …'); "
        "missing body: no paragraphs after the title and 來源/日期 line",
        f"{empty}:1: missing title: the page has no text besides menu lines ('- …'); "
        "missing body: no paragraphs after the title and 來源/日期 line",
    ]


def test_page_text_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "gbk.txt"
    path.write_bytes("标题\n".encode() + "正文".encode("gbk") + b"\n")
    _, ingest = run(path)
    assert messages(ingest) == [
        f"{path}:2: not valid UTF-8 (byte 0xd5 at byte 1 of the line); save the file as UTF-8"
    ]


@pytest.mark.shared
def test_seed_page() -> None:
    if not SEED.exists():
        pytest.skip(f"shared data not available: {SEED}")
    articles, ingest = run(SEED)
    assert messages(ingest) == []
    (article,) = articles
    # The page writes 制 (not 製) in 先進制造業.
    assert "先進制造業集群發展大會" in article.title
    assert article.title.startswith("我院受邀參加2025先進制造業集群發展大會")
    for text in (article.title, article.body):
        assert TONE_ANNOTATION.search(text) is None
        assert "(qū)" not in text
    assert "智慧城市案例" not in article.body  # the menu is not body text
    assert "來源" not in article.body
    assert article.date == dt.date(2025, 9, 11)
    assert article.source == "高新院"
    assert article.id == "achie_article_page"
    assert "段錚" in article.body and "粵港澳" in article.body
    assert "集群發展促進機構" in article.body
    assert "先進制造業集群發展大會(2025)" in article.body
    assert len(article.body.split("\n")) == 4  # four paragraphs


# -- HTML ---------------------------------------------------------------------------


def test_html_page() -> None:
    articles, ingest = run(FIXTURES / "article.html")
    assert messages(ingest) == []
    assert articles == [
        Article(
            id="article",
            title="智慧城市建设观察",  # <rt>/<rp> dropped, logo <h1> in the site header ignored
            body="第一段：某高新区推进智慧城市建设。\n第二段：經濟数据\n按月更新。",
            category="智慧城市案例",  # from the breadcrumb
            date=dt.date(2024, 5, 12),
            url="http://www.achie.org/news/zhcs/202405120001.html",
            source="高新院",
        )
    ]


def test_html_page_without_body() -> None:
    path = FIXTURES / "article_no_body.html"
    _, ingest = run(path)
    assert messages(ingest) == [
        f'{path}:6: missing body: no text in the ".content" / <article> / <main> / <body> element'
    ]


def test_html_fallbacks_and_gbk(tmp_path: Path) -> None:
    path = tmp_path / "legacy.htm"
    html = """<html><head>
<meta http-equiv="Content-Type" content="text/html; charset=gb2312">
<title>园区规划新思路_高新院</title>
<meta name="category" content="園區規劃">
<meta name="date" content="2020-08-01 09:30:00">
</head><body>
<div class="nav">导航</div>
<main><p>园区规划正文。</p><ul><li>要点一</li><li>要点二</li></ul>
<table><tr><td>指标</td><td>数值</td></tr></table></main>
</body></html>"""
    path.write_bytes(html.encode("gbk"))
    articles, ingest = run(path)
    assert messages(ingest) == []
    (article,) = articles
    assert article.title == "园区规划新思路"  # from <title>, site name cut
    assert article.category == "园区规划"
    assert article.date == dt.date(2020, 8, 1)
    assert article.body == "园区规划正文。\n要点一\n要点二\n指标 数值"


def test_html_bad_date_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.html"
    path.write_text(
        "<html><body>\n<h1>标题</h1>\n<p class='info'>来源:高新院 日期:2020-02-31</p>\n"
        "<div class='content'><p>正文</p></div>\n</body></html>",
        "utf-8",
    )
    _, ingest = run(path)
    assert messages(ingest) == [
        f"{path}:3: impossible date '2020-02-31' (day is out of range for month); {DATE_HELP}"
    ]


# -- paths, folders, files --------------------------------------------------------


def test_missing_path_and_unknown_type() -> None:
    missing = FIXTURES / "nope.jsonl"
    csv = FIXTURES / "notes.csv"
    articles, ingest = run(missing, csv, FIXTURES / "good.jsonl")
    assert len(articles) == 3  # good input keeps flowing
    assert messages(ingest) == [
        f"{missing}:1: no such file or directory; check the path",
        f'{csv}:1: unknown file type ".csv"; supported: .jsonl.gz, .ndjson.gz, .jsonl, '
        ".ndjson, .txt, .html, .htm (rename the file or convert it)",
    ]
    assert ingest.report.rejected == 0 and ingest.report.files == 1


def test_folder_walk_sorted_recursive_skipping_hidden() -> None:
    tree = FIXTURES / "tree"
    articles, ingest = run(tree)
    assert messages(ingest) == []
    assert [a.id for a in articles] == ["t1", "b"]  # a.jsonl, then sub/b.txt
    assert ingest.report.skipped == [str(tree / "README.md")]
    assert ingest.report.summary() == (
        "2 files, 2 records read: 2 accepted, 0 rejected; 1 file of unsupported type skipped"
    )


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("x", "utf-8")
    _, ingest = run(tmp_path)
    assert messages(ingest) == [
        f"{tmp_path}:1: no article files in this folder (looked for .jsonl.gz, .ndjson.gz, "
        ".jsonl, .ndjson, .txt, .html, .htm)"
    ]


def test_unreadable_files(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    monkeypatch.setattr(jsonl_reader, "open", refuse, raising=False)
    page, jsonl = FIXTURES / "page.txt", FIXTURES / "good.jsonl"
    _, ingest = run(page, jsonl)
    assert messages(ingest) == [
        f"{page}:1: cannot read file (Permission denied)",
        f"{jsonl}:1: cannot read file (Permission denied)",
    ]


def test_reading_is_lazy() -> None:
    ingest = Ingest(log_problems=False)
    articles = ingest.read([FIXTURES / "good.jsonl", FIXTURES / "nope.jsonl"])
    assert next(articles).id == "g1"
    assert ingest.report.problems == []  # the missing file is not reached yet
    rest = list(articles)
    assert len(rest) == 2 and len(ingest.report.problems) == 1


def test_read_articles_function_fills_a_report() -> None:
    report = IngestReport()
    articles = list(read_articles(FIXTURES / "broken.jsonl", report=report))
    assert [a.id for a in articles] == ["b1", "b10"]
    assert report.rejected == 9 and len(report.problems) == 9


def test_problems_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="search_service.ingest"):
        list(read_articles(FIXTURES / "nope.jsonl"))
    assert "nope.jsonl:1: no such file or directory" in caplog.text


# -- the project's own demo corpus ------------------------------------------------------


def test_samples_corpus() -> None:
    articles, ingest = run(SAMPLES)
    assert messages(ingest) == []
    assert ingest.report.skipped == [str(SAMPLES / "README.md")]
    assert 36 <= len(articles) <= 45
    by_category = collections.Counter(a.category for a in articles)
    assert all(by_category[name] >= 2 for name in SITE_CATEGORIES), by_category
    years = {a.date.year for a in articles if a.date}
    assert set(range(2019, 2026)) <= years
    assert all(a.date is not None for a in articles)
    for article in articles:
        assert TONE_ANNOTATION.search(article.title + article.body) is None, article.id
    kinds = collections.Counter(Path(a.url).suffix for a in articles)
    assert kinds[".html"] >= 30  # every sample carries a (fictional) page URL
    shared_words = ("智慧城市", "高新区", "专精特新", "新质生产力")
    for word in shared_words:
        assert sum(word in a.title + a.body for a in articles) >= 3, word


# -- the shared corpora (skipped when ../shared is absent) ---------------------------------


def _corpus_files() -> list[Path]:
    if not CORPORA.is_dir():
        return []
    return sorted(p for p in CORPORA.iterdir() if p.name.endswith((".jsonl", ".jsonl.gz")))


@pytest.mark.shared
@pytest.mark.parametrize("path", _corpus_files() or [None], ids=lambda p: p.name if p else "absent")
def test_first_200_records_of_each_corpus(path: Path | None) -> None:
    if path is None:
        pytest.skip(f"shared corpora not available: {CORPORA}")
    ingest = Ingest(log_problems=False)
    articles = list(itertools.islice(ingest.read(path), 200))
    assert messages(ingest) == []
    assert len(articles) == min(200, _count_lines(path))
    assert all(a.id and a.title and a.body for a in articles)


def _count_lines(path: Path) -> int:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:  # type: ignore[operator]
        return sum(1 for line in itertools.islice(handle, 200) if line.strip())
