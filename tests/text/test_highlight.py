"""Marks and snippets are found on normalized text but cut from the original."""

from __future__ import annotations

import pytest

from search_service.text.highlight import Highlighter


@pytest.fixture(autouse=True)
def _segmenter(jieba_cache):
    return jieba_cache


def test_marks_traditional_text_with_simplified_terms():
    assert Highlighter(["发展"]).mark("經濟發展") == "經濟<mark>發展</mark>"


def test_everything_else_is_escaped():
    marked = Highlighter(["集群"]).mark("<script>集群</script>")
    assert marked == "&lt;script&gt;<mark>集群</mark>&lt;/script&gt;"


def test_latin_terms_match_whole_words_only():
    assert Highlighter(["5g"]).mark("15G 5G") == "15G <mark>5G</mark>"


def test_longest_term_wins():
    assert Highlighter(["高新", "高新区"]).mark("高新区") == "<mark>高新区</mark>"


def test_snippet_centres_the_densest_cluster():
    text = "无关内容。" * 60 + "这里讲智慧城市和高新区的建设。" + "其他内容。" * 60
    snippet = Highlighter(["智慧城市", "高新区"]).snippet(text, 60)
    assert "<mark>智慧城市</mark>" in snippet and "<mark>高新区</mark>" in snippet
    assert snippet.startswith("…") and snippet.endswith("…")
    plain = snippet.replace("<mark>", "").replace("</mark>", "").strip("…")
    assert len(plain) <= 60


def test_snippet_without_match_is_the_start():
    assert Highlighter(["不存在"]).snippet("甲" * 200, 50) == "甲" * 50 + "…"


def test_short_text_is_whole():
    assert Highlighter(["城市"]).snippet("智慧城市", 50) == "智慧<mark>城市</mark>"
