"""Searching a real index: semantics, facets, tiers, snippets and the seed page's checks."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pytest

from search_service.article import Article
from search_service.engine import indexer
from search_service.engine.request import SearchRequest, get_list_from_mapping
from search_service.engine.searcher import EngineOptions, SearchEngine, Strategy, Tier
from search_service.engine.store import IndexStore

from ..helpers import build_index

FIXTURE = Path(__file__).parents[1] / "fixtures" / "search" / "articles.jsonl"
ARTICLES = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def engine(tmp_path_factory, jieba_cache) -> SearchEngine:
    index_dir = tmp_path_factory.mktemp("search-index")
    build_index(index_dir, [FIXTURE])
    return SearchEngine(index_dir, EngineOptions(reload_interval=0))


def search(engine: SearchEngine, **params):
    return engine.search(SearchRequest.from_params(get_list_from_mapping(params)))


def ids(results) -> list[str]:
    """Ids of the exact matches (every word, or the text verbatim); partial matches that fill
    the rest of a page are left out (see test_partial_matches_fill_the_page)."""
    return [hit.id for hit in results.hits if hit.match != "partial"]


class TestSemantics:
    def test_simplified_finds_traditional_and_back(self, engine):
        assert set(ids(search(engine, q="习近平"))) == {"a1", "a2"}
        assert set(ids(search(engine, q="習近平"))) == {"a1", "a2"}

    def test_words_are_anded(self, engine):
        results = search(engine, q="习近平 高新区")
        assert ids(results) == ["a1"] and results.total == 1

    def test_partial_matches_fill_the_page_after_the_exact_ones(self, engine):
        results = search(engine, q="习近平 高新区")
        matches = [hit.match for hit in results.hits]
        assert matches[0] == "all_words" and set(matches[1:]) == {"partial"} and len(matches) > 1
        assert {"a2", "a11"} <= {hit.id for hit in results.hits}  # one of the two words each
        assert results.relaxed is None and results.total == 1  # totals and facets count exact matches
        assert [h.id for h in search(engine, q="习近平 高新区", sort="date_desc").hits] == ["a1"]

    def test_phrase_is_an_exact_substring(self, engine):
        # a4 has 农业 and 发展, but never 农业发展 as one string.
        assert set(ids(search(engine, q='"农业发展"'))) == {"a1", "a12"}

    def test_single_character_finds_words_containing_it(self, engine):
        assert "a3" in ids(search(engine, q="华"))

    def test_substring_inside_a_jieba_word(self, engine):
        results = search(engine, q="装简")  # inside 安装简单, not a word of its own
        assert ids(results) == ["a3"] and results.relaxed == "substring"

    def test_mixed_latin_digits(self, engine):
        assert ids(search(engine, q="iphone15")) == ["a3"]
        assert ids(search(engine, q="5G")) == ["a3"]

    def test_or_not_and_title(self, engine):
        assert set(ids(search(engine, q="杭州 OR 深圳"))) == {"a5", "a6"}
        assert ids(search(engine, q="智慧城市 -杭州 -深圳")) == ["a11"]
        assert set(ids(search(engine, q="title:智慧城市"))) == {"a5", "a6"}

    def test_malformed_query_is_searched_as_words(self, engine):
        assert ids(search(engine, q='"杭州')) == ["a5"]
        assert ids(search(engine, q="(杭州")) == ["a5"]

    def test_any_word_fallback_says_so(self, engine):
        results = search(engine, q="杭州 火星基地")
        assert [h.id for h in results.hits] == ["a5"] and results.relaxed == "any_word"
        assert results.hits[0].match == "partial"

    def test_title_matches_rank_first(self, engine):
        assert ids(search(engine, q="园区规划"))[0] == "a7"

    def test_word_matches_rank_before_substring_matches(self, tmp_path, jieba_cache):
        # 老城市场 segments as 老城 / 市场: it holds the characters 城市 but not the word,
        # and says them three times, so by term frequency alone it would come first.
        articles = [
            {"id": "word", "title": "治理", "body": "城市治理的经验。", "category": "产业规划", "date": "2024-01-01"},
            {"id": "chars", "title": "改造", "body": "老城市场，老城市场，老城市场改造。", "category": "产业规划",
             "date": "2024-02-01"},
        ]
        source = tmp_path / "articles.jsonl"
        source.write_text("\n".join(json.dumps(a, ensure_ascii=False) for a in articles), encoding="utf-8")
        build_index(tmp_path / "index", [source])
        results = search(SearchEngine(tmp_path / "index", EngineOptions(reload_interval=0)), q="城市")
        assert [(h.id, h.match) for h in results.hits] == [("word", "all_words"), ("chars", "substring")]


@pytest.mark.parametrize("params", [
    {"q": "智慧城市"}, {"q": "装简"}, {"q": "杭州 火星基地"}, {"q": "火星基地"}, {"q": "杭州 OR 深圳"},
    {"q": "智慧城市 -杭州 -深圳"}, {"q": "-杭州"}, {"q": ""}, {"q": "zhihui"}, {"q": "園區"},
    {"q": "智慧城市", "category": "政策解读"}, {"q": "园区", "from": "2024-01-01"},
])
def test_count_agrees_with_the_search_it_stands_for(engine, params):
    request = SearchRequest.from_params(get_list_from_mapping(params))
    full = engine.search(request)
    counted = engine.count(request)
    assert (counted.total, counted.relaxed, counted.correction) == (full.total, full.relaxed, full.correction)
    assert counted.hits == [] and counted.facets == {}
    again = engine.count(request)  # cached, apart from the search's own entry
    assert again.cached and (again.total, again.relaxed) == (counted.total, counted.relaxed)


class TestStrategySeam:
    """``Strategy(retrieval=...)``: another way to choose the tiers; the engine does the rest."""

    class SubstringOnly:
        """Only documents with the text verbatim, ranked by BM25 of the substring query."""

        def __init__(self) -> None:
            self.seen: list[str] = []

        def tiers(self, m):
            self.seen.append(m.request.q)
            query = m.compiled.substring()
            docs = m.docs(query)
            assert m.in_filters(docs).size <= docs.size and m.live[docs].all()
            return [Tier("substring", docs, lambda d: m.scores(query, d))], (None if docs.size else "any_word")

    def test_the_engine_ranks_and_pages_the_strategy_s_tiers(self, engine):
        retrieval = self.SubstringOnly()
        custom = SearchEngine(engine.store.root, EngineOptions(reload_interval=0, cache_entries=0),
                              Strategy(retrieval=retrieval))
        try:
            own = custom.search(SearchRequest(q="装简"))
            assert ids(own) == ids(search(engine, q="装简")) == ["a3"]
            assert [h.match for h in own.hits] == ["substring"] and own.relaxed is None
            # The tiers are the strategy's: every hit is labelled by its tier, ranked by its score.
            default, theirs = search(engine, q="习近平"), custom.search(SearchRequest(q="习近平"))
            assert {h.match for h in default.hits} == {"all_words"} and {h.match for h in theirs.hits} == {"substring"}
            assert sorted(h.id for h in theirs.hits) == sorted(ids(default))
            assert [h.score for h in theirs.hits] == sorted((h.score for h in theirs.hits), reverse=True)
            # A query without positive terms, or sorted by date, is the engine's own.
            assert custom.search(SearchRequest(q="", page_size=3)).total == search(engine, q="").total
            assert retrieval.seen == ["装简", "习近平"]
            assert custom.search(SearchRequest(q="装简", sort="date_desc")).total == 1
            assert retrieval.seen == ["装简", "习近平"]
        finally:
            custom.close()


class TestFiltersAndFacets:
    def test_empty_query_lists_by_date(self, engine):
        results = search(engine, page_size="100")
        dates = [h.date for h in results.hits if h.date]
        assert dates == sorted(dates, reverse=True) and results.total == len(ARTICLES)

    def test_category_filter_is_disjunctive_in_facets(self, engine):
        results = search(engine, q="智慧城市", category="产业规划")
        assert ids(results) == ["a11"]
        counts = {f.value: (f.count, f.selected) for f in results.facets["category"]}
        assert counts["产业规划"] == (1, True) and counts["智慧城市案例"] == (2, False)

    def test_facet_counts_match_an_independent_count(self, engine):
        results = search(engine, page_size="100")
        expected = Counter(a["category"] for a in ARTICLES)
        assert {f.value: f.count for f in results.facets["category"]} == expected
        years = Counter(a["date"][:4] for a in ARTICLES if a["date"])
        assert {f.value: f.count for f in results.facets["year"]} == years

    def test_year_selection_shows_months(self, engine):
        results = search(engine, date_from="2025-01-01", date_to="2025-12-31")
        assert [f.value for f in results.facets["year"] if f.selected] == ["2025"]
        assert {f.value: f.count for f in results.facets["month"]} == {"2025-01": 1, "2025-09": 2}

    def test_date_range_is_inclusive(self, engine):
        results = search(engine, date_from="2025-09-11", date_to="2025-09-30")
        assert set(ids(results)) == {"a1", "a12"}

    def test_sorting(self, engine):
        asc = [h.date for h in search(engine, q="智慧城市", sort="date_asc").hits]
        assert asc == sorted(asc)
        assert all(h.score is None for h in search(engine, q="智慧城市", sort="date_desc").hits)

    def test_paging(self, engine):
        first = ids(search(engine, page_size="5"))
        second = ids(search(engine, page_size="5", page="2"))
        assert len(first) == 5 and not set(first) & set(second)


class TestHits:
    def test_hit_fields_and_marks(self, engine):
        hit = search(engine, q="發展").hits[0]
        assert "<mark>" in hit.snippet
        assert hit.url.startswith("https://example.org/") and hit.date and hit.category and hit.score > 0

    def test_highlight_on_traditional_text(self, engine):
        hit = next(h for h in search(engine, q="经济发展").hits if h.id == "a2")
        assert "<mark>經濟發展</mark>" in hit.snippet or "<mark>發展</mark>" in hit.snippet

    def test_cache_answers_repeats_and_is_invalidated_on_change(self, tmp_path, jieba_cache):
        build_index(tmp_path, [FIXTURE])
        engine = SearchEngine(tmp_path, EngineOptions(reload_interval=0))
        first = search(engine, q="高新区")
        again = search(engine, q="高新区")
        assert not first.cached and again.cached and ids(again) == ids(first)
        added = Article("new1", "高新区新闻", "高新区又一篇文章。", "高新院新闻", dt.date(2026, 1, 1))
        indexer.update(IndexStore(tmp_path), [added])
        engine.refresh()
        after = search(engine, q="高新区")
        assert not after.cached and "new1" in ids(after) and after.total == first.total + 1

    def test_category_names_are_the_stats_categories_and_follow_a_write(self, tmp_path, jieba_cache):
        build_index(tmp_path, [FIXTURE])
        engine = SearchEngine(tmp_path, EngineOptions(reload_interval=0))
        assert engine.category_names() == tuple(c.value for c in engine.stats().categories)
        assert "新开的栏目" not in engine.category_names()
        added = Article("new2", "高新区新闻", "高新区又一篇文章。", "新开的栏目", dt.date(2026, 1, 1))
        indexer.update(IndexStore(tmp_path), [added])
        engine.refresh()
        assert "新开的栏目" in engine.category_names()
        assert engine.category_names() == tuple(c.value for c in engine.stats().categories)

    def test_document_and_stats(self, engine):
        assert engine.document("a2").title == "習近平會見外賓"
        stats = engine.stats()
        assert stats.documents == len(ARTICLES) and stats.undated == 1
        assert stats.date_min == "2020-05-18" and stats.date_max == "2025-09-30"

    def test_suggest_prefers_titles(self, engine):
        suggestions = engine.suggest("智慧城", 5)
        assert {s.id for s in suggestions[:2]} == {"a5", "a6"}
        assert "<mark>智慧城</mark>" in suggestions[0].title_html

    def test_suggest_explains_only_titles_without_the_match(self, engine):
        # 发展 is in titles and in bodies whose titles lack it: only the latter get their line of
        # text, the very line excerpt=True gives, and only when it shows the match.
        explained = engine.suggest("发展", 8, explain=True)
        full = {s.id: s.excerpt_html for s in engine.suggest("发展", 8, True)}
        assert [s.id for s in explained] == list(full)
        assert any("<mark>" in s.title_html for s in explained)
        unmarked = [s for s in explained if "<mark>" not in s.title_html]
        assert unmarked and all(s.excerpt_html == full[s.id] and "<mark>" in s.excerpt_html for s in unmarked)
        assert all(s.excerpt_html is None for s in explained if "<mark>" in s.title_html)
        assert all(s.excerpt_html is None for s in engine.suggest("发展", 8))


@pytest.fixture(scope="module")
def seed_engine(shared_dir, tmp_path_factory, jieba_cache) -> SearchEngine:
    """The real scraped seed page indexed beside the fixture articles."""
    index_dir = tmp_path_factory.mktemp("seed-index")
    build_index(index_dir, [shared_dir / "seed" / "achie_article_page.txt", FIXTURE],
                default_category="高新院新闻")
    return SearchEngine(index_dir, EngineOptions(reload_interval=0))


class TestSeedPage:
    """The checks of the foundation issue, on the real scraped page."""

    @pytest.mark.parametrize("query", ["先进制造业集群", "集群发展促进机构", "段铮", "段錚", "粤港澳", '"世界级集群"'])
    def test_found_by(self, seed_engine, query):
        assert "achie_article_page" in ids(search(seed_engine, q=query))

    def test_menu_is_not_body(self, seed_engine):
        assert "achie_article_page" not in ids(search(seed_engine, q="智慧城市案例"))

    def test_stored_fields_are_clean(self, seed_engine):
        article = seed_engine.document("achie_article_page")
        assert "(qū)" not in article.title + article.body and "(jīng)" not in article.body
        assert article.date == dt.date(2025, 9, 11) and article.source == "高新院"
