"""Pinyin: a field of its own for suggestions, fallback and did-you-mean; never in Chinese ranking."""

from __future__ import annotations

import pytest

from search_service.article import Article
from search_service.engine.request import SearchRequest
from search_service.text.pinyin import pinyin_key, query_key, title_pinyin_tokens, words_with_key


@pytest.fixture(autouse=True)
def _segmenter(jieba_cache):
    return jieba_cache


def test_title_tokens_are_full_pinyin_and_initials():
    tokens = {t for t, _, _ in title_pinyin_tokens("智慧城市建设")}
    assert {"zhihuichengshi", "zhcs", "zhihui", "chengshi", "jianshe"} <= tokens


def test_traditional_is_read_after_conversion():
    assert pinyin_key("長沙") == "changsha"  # not zhangsha


def test_query_key_only_for_latin_letters():
    assert query_key("zhihui chengshi") == "zhihuichengshi"
    assert query_key("智慧") is None and query_key("5g") is None and query_key("a") is None


def test_words_with_key_returns_the_original_script():
    assert words_with_key("長沙高新區", "changsha") == ["長沙"]


@pytest.fixture()
def engine(make_engine):
    return make_engine([
        Article("1", "智慧城市建设提速", "城市大脑上线。"),
        Article("2", "经典园区规划案例", "规划案例分享。"),
        Article("3", "景点旅游", "景点介绍。"),
        Article("4", "高新区专精特新企业", "企业培育。"),
    ])


@pytest.mark.parametrize("query", ["zhihuichengshi", "zhihui chengshi", "zhcs"])
def test_pinyin_queries_find_titles(engine, query):
    # correct=0: the title-pinyin fallback alone (with correction, full pinyin is read as 智慧城市
    # across titles and bodies: tests/engine/test_correction.py).
    results = engine.search(SearchRequest(q=query, correct=False))
    assert [h.id for h in results.hits] == ["1"] and results.relaxed == "pinyin"
    assert "<mark>智慧城市</mark>" in results.hits[0].title_html
    assert results.suggestion == "智慧城市"


@pytest.mark.parametrize("query", ["zhihuichengshi", "zhihui chengshi"])
def test_full_pinyin_is_corrected_to_the_characters(engine, query):
    results = engine.search(SearchRequest(q=query))
    assert [h.id for h in results.hits] == ["1"] and results.searched == "智慧城市"
    assert results.correction["kind"] == "pinyin" and results.relaxed is None
    assert "<mark>智慧城市</mark>" in results.hits[0].title_html


def test_initials_are_not_corrected(engine):
    results = engine.search(SearchRequest(q="zhcs"))
    assert results.correction is None and results.relaxed == "pinyin"


def test_pinyin_never_mixes_into_chinese_queries(engine):
    # 景点 and 经典 share the pinyin jingdian; a Chinese query must not cross over.
    assert [h.id for h in engine.search(SearchRequest(q="景点")).hits] == ["3"]
    assert [h.id for h in engine.search(SearchRequest(q="经典")).hits] == ["2"]


def test_did_you_mean_offers_a_same_pinyin_correction(engine):
    # correct=0 (searched as typed): did-you-mean offers the alternative. By default the
    # correction's results are shown instead (tests/engine/test_correction.py).
    results = engine.search(SearchRequest(q="高心区", correct=False))
    assert results.suggestion == "高新区"
    assert engine.search(SearchRequest(q="只会城市", correct=False)).suggestion == "智慧城市"
    assert engine.search(SearchRequest(q="智慧城市")).suggestion is None
    assert engine.search(SearchRequest(q="高心区")).searched == "高新区"


def test_suggest_understands_pinyin_prefixes(engine):
    suggestions = engine.suggest("zhihuic", 5)
    assert [s.id for s in suggestions] == ["1"]
    assert "<mark>智慧城市</mark>" in suggestions[0].title_html
