"""What the reader meant, even when the slip is itself found: the typed text weighed against its
same-sound alternatives on the index's evidence (issue 26), and the did-you-mean that goes with it."""

from __future__ import annotations

import pytest

from search_service.article import Article
from search_service.engine import indexer
from search_service.engine.request import SearchRequest


def many(count: int, title: str, body: str, prefix: str) -> list[Article]:
    return [Article(f"{prefix}{i}", title.format(i=i), body.format(i=i)) for i in range(count)]


ARTICLES = [
    # 一带一路 in 24 articles; 一代 and 一路 meet in two, never side by side: 一代一路 is "found".
    *many(24, "一带一路合作第{i}期", "共建一带一路取得新成果。", "ydyl"),
    Article("g1", "新一代青年一路同行", "新一代青年一路同行，奋斗不止。"),
    Article("g2", "一路走来的新一代", "一路走来，新一代建设者成长起来。"),
    # 现代化 in 24; 现代花 once, by accident (现代花园).
    *many(24, "现代化产业体系第{i}讲", "推进现代化建设。", "xdh"),
    Article("h1", "现代花园里花开了", "现代花园里，花开了。"),
    # 消费者 in 24; 消费 and 这 everywhere else.
    *many(24, "消费者权益保护第{i}号", "保护消费者合法权益。", "xfz"),
    Article("c1", "消费这件事", "消费这件事，人人有话说。"),
    *many(4, "扩大消费第{i}条措施", "促进消费增长。", "xf"),
    # 城市 in 40; 程式 (a real word, Taiwan's 程序) in 3: offered, not answered with.
    *many(40, "城市更新行动第{i}批", "老旧小区改造与城市更新。", "cs"),
    *many(3, "电脑程式设计课程第{i}课", "学习程式设计。", "cx"),
    # 智慧 in 30, 指挥 in 8: a real word not much rarer than its homophone stays as it is.
    *many(30, "智慧社区建设第{i}例", "智慧社区服务居民。", "zh"),
    *many(8, "应急指挥演练第{i}场", "指挥调度顺畅。", "zhh"),
    # A title whose one word (体质) has a commoner homophone (体制): searched as it is, it is found.
    Article("t1", "学生体质健康促进条例", "增强学生体质。"),
    Article("t2", "体质监测报告", "国民体质监测。"),
    *many(30, "体制改革第{i}项", "深化体制改革。", "tz"),
    # Latin: taiwan once as letters, 台湾 in 25 articles; huawei as letters in 12 (a word of the site).
    *many(25, "台湾同胞交流第{i}次", "两岸台湾同胞交流。", "tw"),
    Article("l1", "Taiwan News 报道", "Taiwan News 报道了交流活动。"),
    *many(12, "huawei 新品第{i}代", "huawei 发布新品。", "hw"),
    *many(25, "华为发布第{i}代手机", "华为手机发布。", "hwz"),
    # Two readings of shengji, both common and in titles: answered with one, the other offered.
    *many(30, "系统升级第{i}版", "软件系统升级。", "sj"),
    *many(26, "省级示范区第{i}批", "省级示范区名单。", "sjj"),
    # A title word with the reading yu (与), for the did-you-mean of 豳鬰爨齉.
    Article("y1", "科技与生活", "科技改变生活。"),
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory, jieba_cache):
    from search_service.engine.searcher import EngineOptions, SearchEngine
    from search_service.engine.store import IndexStore

    store = IndexStore(tmp_path_factory.mktemp("real-word-slips"))
    indexer.rebuild(store, ARTICLES, procs=1)
    engine = SearchEngine(store.root, EngineOptions(reload_interval=0))
    yield engine
    engine.close()


def search(engine, q: str, **changes):
    return engine.search(SearchRequest(q=q, **changes))


def hit_ids(results) -> set[str]:
    return {h.id for h in results.hits if h.match != "partial"}


@pytest.mark.parametrize("typed, meant, prefix", [
    ("一代一路", "一带一路", "ydyl"),   # two words that never stand side by side
    ("现代花", "现代化", "xdh"),         # found verbatim once, by accident (现代花园)
    ("消费这", "消费者", "xfz"),         # 消费 AND 这: words that only co-occur
])
def test_a_slip_that_is_found_is_still_answered_with_what_was_meant(engine, typed, meant, prefix):
    as_typed = search(engine, typed, correct=False)
    # Found as typed (by its words, or verbatim): taken at face value before.
    assert as_typed.total > 0 and as_typed.relaxed in (None, "substring")
    results = search(engine, typed)
    assert results.searched == meant
    assert results.correction["typed"] == typed and results.correction["kind"] == "homophone"
    assert results.correction["changes"] == [{"typed": typed, "searched": meant}]
    assert hit_ids(results) and all(i.startswith(prefix) for i in hit_ids(results))
    assert results.request.q == typed


@pytest.mark.parametrize("typed, meant", [("一代一路", "一带一路"), ("现代花", "现代化"), ("taiwan", "台湾")])
def test_correct_0_offers_what_the_page_would_have_answered_with(engine, typed, meant):
    results = search(engine, typed, correct=False)
    assert results.correction is None and results.searched is None
    assert results.suggestion == meant


def test_a_plausible_alternative_is_offered_with_the_typed_results(engine):
    # 程式 is a word of the index (3 articles); 城市 is in 40: offered, not answered with.
    results = search(engine, "程式")
    assert results.correction is None and results.searched is None
    assert results.suggestion == "城市"
    assert hit_ids(results) == {"cx0", "cx1", "cx2"}


@pytest.mark.parametrize("typed", ["指挥", "智慧", "城市", "一带一路", "现代化", "消费者", "消费", "台湾"])
def test_real_words_with_many_matches_are_neither_corrected_nor_offered_another(engine, typed):
    results = search(engine, typed)
    assert results.correction is None and results.suggestion is None and results.total > 0


def test_a_title_searched_as_it_is_is_left_alone(engine):
    # 体质 alone is offered 体制 (1 article against 30), but the title is found as typed.
    assert search(engine, "体质").suggestion == "体制"
    results = search(engine, "学生体质健康促进条例")
    assert results.correction is None and results.suggestion is None
    assert "t1" in hit_ids(results)


def test_latin_pinyin_rare_in_the_index_is_answered_with_the_chinese_word(engine):
    results = search(engine, "taiwan")
    assert results.searched == "台湾" and results.correction["kind"] == "pinyin"
    assert hit_ids(results) and all(i.startswith("tw") for i in hit_ids(results))


def test_latin_words_common_in_the_index_stay(engine):
    # huawei reads as 华为 (25 articles), but the site writes huawei itself in 12.
    results = search(engine, "huawei")
    assert results.correction is None and results.suggestion is None
    assert results.total == 12 and hit_ids(results) <= {f"hw{i}" for i in range(12)}


def test_two_close_readings_answer_with_one_and_offer_the_other(engine):
    results = search(engine, "shengji")
    assert results.correction is not None and results.correction["kind"] == "pinyin"
    assert {results.searched, results.suggestion} == {"升级", "省级"}


def test_did_you_mean_never_offers_what_nothing_matches(engine):
    # The titles' pinyin reads 鬰 as 与 (科技与生活), and 豳与爨齉 matches nothing either.
    results = search(engine, "豳鬰爨齉")
    assert results.suggestion is None and results.correction is None


def test_did_you_mean_of_correct_0_agrees_with_the_correction(engine):
    # The homophone correction of a slip found nowhere: correct=0 offers the same text.
    corrected = search(engine, "智会社区")
    assert corrected.searched == "智慧社区"
    assert search(engine, "智会社区", correct=False).suggestion == "智慧社区"


def test_the_evidence_follows_the_index(tmp_path, jieba_cache):
    from search_service.engine.searcher import EngineOptions, SearchEngine
    from search_service.engine.store import IndexStore

    store = IndexStore(tmp_path / "index")
    indexer.rebuild(store, ARTICLES, procs=1)
    engine = SearchEngine(store.root, EngineOptions(reload_interval=0))
    try:
        assert search(engine, "一代一路").searched == "一带一路"
        # Once 一代一路 is a phrase of the site in its own right, it is searched as typed.
        indexer.update(store, many(6, "一代一路展览第{i}场", "一代一路主题展览。", "new"))
        engine.refresh()
        results = search(engine, "一代一路")
        assert results.correction is None and results.suggestion is None
        assert {f"new{i}" for i in range(6)} <= hit_ids(results)
    finally:
        engine.close()


def test_did_you_mean_of_words_each_found_where_a_typed_word_is_found_nowhere(tmp_path, jieba_cache):
    from search_service.engine.searcher import EngineOptions, SearchEngine
    from search_service.engine.store import IndexStore

    store = IndexStore(tmp_path / "index")
    indexer.rebuild(store, ARTICLES, procs=1)
    engine = SearchEngine(store.root, EngineOptions(reload_interval=0, correction=False))  # titles' pinyin only
    try:
        # 城市 and 智慧 are in no article together, but each is found, and 只会 nowhere: offered.
        assert search(engine, "城市 只会").suggestion == "城市 智慧"
        # 豳与爨齉 has words found nowhere, like what was typed: nothing offered.
        assert search(engine, "豳鬰爨齉").suggestion is None
    finally:
        engine.close()
