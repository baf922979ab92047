"""Synonym groups: parsing, query expansion, reporting, and reload without a rebuild."""

from __future__ import annotations

import os
import time

import pytest

from search_service.article import Article
from search_service.engine.compiler import compile_query
from search_service.engine.request import SearchRequest
from search_service.engine.searcher import SearchEngine, Strategy
from search_service.text.synonyms import SynonymSource, parse_synonyms


@pytest.fixture(autouse=True)
def _segmenter(jieba_cache):
    return jieba_cache


def test_parse_groups_normalizes_and_skips_bad_lines(caplog):
    table = parse_synonyms("# comment\n高新區 = 高新技术产业开发区\nlonely\n自贸区，自由贸易试验区\n", "syn.txt")
    assert table.alternatives("高新区") == ("高新技术产业开发区",)
    assert table.alternatives("自由贸易试验区") == ("自贸区",)
    assert "syn.txt:3" in caplog.text


def test_builtin_list_covers_the_site_domain():
    table = SynonymSource().table()
    for term, expected in [("高新区", "高新技术产业开发区"), ("经开区", "经济技术开发区"), ("自贸区", "自由贸易试验区"),
                           ("发改委", "国家发展和改革委员会"), ("双碳", "碳达峰碳中和")]:
        assert expected in table.alternatives(term)
    assert "共建一带一路" in table.alternatives("一带一路")


def test_expansions_are_reported_and_highlighted():
    compiled = compile_query("经开区 招商", synonyms=SynonymSource().table())
    assert compiled.expansions()[0]["term"] == "经开区"
    assert "经济技术开发区" in compiled.highlight_terms()


@pytest.fixture()
def engine(make_engine, tmp_path):
    synonyms_file = tmp_path / "synonyms.txt"
    synonyms_file.write_text("示范区 = 先行区\n", encoding="utf-8")
    return make_engine([
        Article("1", "经济技术开发区招商引资", "某经济技术开发区今年招商引资成果显著。"),
        Article("2", "碳达峰碳中和行动方案", "推进碳达峰碳中和，建设绿色园区。"),
        Article("3", "自贸区新政", "自贸区发布新政策。"),
    ], synonyms_file=str(synonyms_file)), synonyms_file


def test_abbreviations_find_the_full_names(engine):
    engine, _ = engine
    results = engine.search(SearchRequest(q="经开区"))
    assert [h.id for h in results.hits] == ["1"]
    assert results.expansions == [{"term": "经开区", "synonyms": ["经济技术开发区", "经济开发区"]}]
    assert "<mark>经济技术开发区</mark>" in results.hits[0].title_html
    assert [h.id for h in engine.search(SearchRequest(q="双碳")).hits] == ["2"]
    assert [h.id for h in engine.search(SearchRequest(q="自由贸易试验区")).hits] == ["3"]


def test_a_strategy_without_synonyms_searches_the_words_as_typed(engine):
    engine, _ = engine
    bare = SearchEngine(engine.store.root, engine.options, Strategy(synonyms=False))
    try:
        results = bare.search(SearchRequest(q="经开区", correct=False))
        assert results.expansions == [] and "1" not in [h.id for h in results.hits if h.match != "partial"]
    finally:
        bare.close()


def test_the_synonym_file_reloads_without_a_rebuild(engine):
    engine, synonyms_file = engine
    before = engine.search(SearchRequest(q="零碳园区"))
    assert before.expansions == [] and before.relaxed == "any_word"  # only the word 园区 matched
    synonyms_file.write_text("零碳园区 = 绿色园区\n", encoding="utf-8")
    stamp = time.time() + 5
    os.utime(synonyms_file, (stamp, stamp))
    engine.synonyms._checked = 0.0  # skip the check interval
    results = engine.search(SearchRequest(q="零碳园区"))
    assert [h.id for h in results.hits] == ["2"] and results.expansions and results.relaxed is None
