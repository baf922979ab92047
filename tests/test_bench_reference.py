"""Smoke test of the benchmark's reference engines (bench/reference.py): tantivy and tuned Whoosh
answer the same page for the same articles, and the page is what the benchmark claims it is."""

from __future__ import annotations

import datetime as dt
import warnings

import pytest

from search_service.article import Article

pytest.importorskip("tantivy", reason="tantivy (the bench extra) is not installed")

from bench import reference  # noqa: E402

ARTICLES = [
    Article("a1", "推动高质量发展的若干意见", "各地要坚持高质量发展。\n新质生产力是关键，AI 大模型加快落地。",
            "行政法规", dt.date(2024, 3, 1)),
    Article("a2", "乡村振兴促进法", "第一条 为了全面实施乡村振兴战略，促进高质量发展，制定本法。",
            "经济法", dt.date(2021, 4, 29)),
    Article("a3", "新闻联播：科技创新", "人工智能与科技创新推动高质量发展。" + "会议强调。" * 3000 + "高质量发展再提速。",
            "新闻联播", dt.date(2025, 6, 2)),
    Article("a4", "天气预报", "明天晴转多云，北风二级。", "新闻联播", None),
]
QUERIES = [
    {"q": "高质量发展"},
    {"q": "高质量 发展"},
    {"q": "高质量发展", "category": ["新闻联播"]},
    {"q": "高质量发展", "date_from": "2022-01-01", "date_to": "2024-12-31"},
    {"q": "乡村振兴 战略"},
    {"q": "AI 大模型"},
    {"q": "不存在的词语组合 乡村振兴"},
]


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    with warnings.catch_warnings():
        # jieba.analyse leaves its IDF file to the garbage collector when imported.
        warnings.simplefilter("ignore", ResourceWarning)
        import jieba.analyse  # noqa: F401
    reference.initialize(folder / "jieba-cache")
    reference.build_whoosh(folder / "whoosh", ARTICLES)
    reference.build_tantivy(folder / "tantivy", ARTICLES)
    pair = reference.TunedWhoosh(folder / "whoosh"), reference.TantivyEngine(folder / "tantivy")
    yield pair
    for engine in pair:
        engine.close()


def test_analysis_is_chinese_analyzers(engines):
    from jieba.analyse import ChineseAnalyzer

    analyzer = ChineseAnalyzer()
    for article in ARTICLES:
        for text in (article.title, article.body):
            words, tokens = reference.analyze(text)
            assert "".join(words) == text
            assert tokens == [t.text for t in analyzer(text)]


@pytest.mark.parametrize("params", QUERIES, ids=lambda p: str(p))
def test_same_articles_and_counts(engines, params):
    whoosh, tantivy = engines
    a, b = whoosh.search(params), tantivy.search(params)
    assert a["total"] == b["total"]
    assert sorted(h["id"] for h in a["hits"]) == sorted(h["id"] for h in b["hits"])
    assert dict(a["facets"]["category"]) == dict(b["facets"]["category"])
    assert dict(a["facets"]["year"]) == dict(b["facets"]["year"])


def test_page_has_highlighted_snippets(engines):
    whoosh, tantivy = engines
    for engine in engines:
        page = engine.search({"q": "高质量发展"})
        assert page["total"] == 3
        assert dict(page["facets"]["category"]) == {"行政法规": 1, "经济法": 1, "新闻联播": 1}
        for hit in page["hits"]:
            assert "<mark" in hit["snippet_html"], (engine.name, hit)
    page = tantivy.search({"q": "AI 大模型"})
    (hit,) = page["hits"]
    # jieba's separators are gone, the text's own space and line break are back.
    assert "关键，<mark>AI</mark> <mark>" in hit["snippet_html"] and "模型</mark>加快落地。" in hit["snippet_html"]
    assert "\n" in hit["snippet_html"] and "\x1f" not in hit["snippet_html"]
    # A match only past the first scan bound is still found (the body's last sentence).
    page = tantivy.search({"q": "再提速"})
    assert page["total"] == 1 and "<mark>" in page["hits"][0]["snippet_html"]
