"""Regional vocabulary: Taiwan's and the mainland's words for one thing find each other."""

from __future__ import annotations

import pytest

from search_service.article import Article
from search_service.engine.request import SearchRequest
from search_service.text import regional


@pytest.fixture(autouse=True)
def _segmenter(jieba_cache):
    return jieba_cache  # jieba's dictionary (the pairs are checked against its mainland counts)


@pytest.mark.parametrize("text, pairs", [
    ("人工智慧", [("人工智慧", "人工智能")]),      # a phrase of OpenCC's table, not its 智慧 alone
    ("人工智能", [("人工智能", "人工智慧")]),
    ("软体", [("软体", "软件")]),
    ("软件", [("软件", "软体")]),
    ("计程车", [("计程车", "出租车")]),
    ("台湾人工智慧发展", [("人工智慧", "人工智能")]),  # within a longer term
    ("知识产权保护", [("知识产权", "智慧财产权")]),    # counterparts of another length
])
def test_counterparts_of_regional_words(text, pairs):
    assert regional.counterparts(text) == pairs


@pytest.mark.parametrize("text", [
    "智慧",      # Taiwan's 智慧 (smart) is also the mainland's word for wisdom: not 智能
    "数据",      # 資料 is a common mainland word of its own
    "资料",
    "视频",      # 影片 (a film) likewise
    "资讯",      # OpenCC's Taiwan word for 信息, but a mainland word as well (jieba: 561)
    "区域性",    # not 局部
    "程序",      # a chain: 程序 is Taiwan's 进程 and the mainland's 程式
    "进程",
    "程式",
    "经济发展",  # nothing regional
    "",
])
def test_words_that_are_no_regional_pair_are_left_alone(text):
    assert regional.counterparts(text) == []


def test_counterparts_are_whole_words():
    # OpenCC writes 发布会 as 釋出會 (发布 → 釋出), but 发布 inside the word 发布会 is no word of its
    # own: the pair is the whole word, which a search expands only when the index holds 释出会.
    assert regional.counterparts("发布会") == [("发布会", "释出会")]


def test_a_pair_is_checked_both_ways():
    assert regional.is_regional_pair("软件", "软体")
    assert not regional.is_regional_pair("软体", "软件")  # the arguments are (mainland, Taiwan)
    assert not regional.is_regional_pair("智能", "智慧")
    assert not regional.is_regional_pair("软件", "软件")


def test_alternative_replaces_each_regional_word():
    pairs = regional.counterparts("台湾人工智慧与软体")
    assert regional.alternative("台湾人工智慧与软体", pairs) == "台湾人工智能与软件"


# --------------------------------------------------------------------------- searching


ARTICLES = [
    *[Article(f"m{i}", f"人工智能产业发展第{i}期", "人工智能赋能千行百业。") for i in range(6)],
    Article("t1", "人工智慧產業發展條例", "推動人工智慧產業發展。"),
    Article("s1", "计算机软件保护条例", "软件著作权登记。"),
    Article("s2", "電腦軟體著作權", "軟體授權與保護。"),
    Article("p1", "行政程序法", "行政程序公开。"),
    Article("p2", "进程管理", "操作系统进程调度。"),
    Article("x1", "出租车管理办法", "规范出租车经营。"),
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory, jieba_cache):
    from search_service.engine import indexer
    from search_service.engine.searcher import EngineOptions, SearchEngine
    from search_service.engine.store import IndexStore

    store = IndexStore(tmp_path_factory.mktemp("regional"))
    indexer.rebuild(store, ARTICLES, procs=1)
    engine = SearchEngine(store.root, EngineOptions(reload_interval=0))
    yield engine
    engine.close()


def ids(results) -> set[str]:
    return {h.id for h in results.hits if h.match != "partial"}


def test_a_taiwan_word_finds_the_mainland_articles_and_says_so(engine):
    results = engine.search(SearchRequest(q="人工智慧"))
    assert ids(results) == {"t1"} | {f"m{i}" for i in range(6)}
    assert {"term": "人工智慧", "synonyms": ["人工智能"]} in results.expansions
    assert results.correction is None
    marked = " ".join(h.title_html for h in results.hits)
    assert "<mark>人工智能</mark>" in marked and "<mark>人工智慧</mark>" in marked


def test_a_mainland_word_finds_the_taiwan_articles(engine):
    assert ids(engine.search(SearchRequest(q="人工智能"))) == {"t1"} | {f"m{i}" for i in range(6)}
    assert ids(engine.search(SearchRequest(q="软件"))) == {"s1", "s2"}
    assert ids(engine.search(SearchRequest(q="軟體"))) == {"s1", "s2"}  # Traditional typed


def test_a_counterpart_the_index_lacks_is_not_added(engine):
    results = engine.search(SearchRequest(q="出租车"))  # 计程车 occurs nowhere
    assert results.expansions == [] and ids(results) == {"x1"}


def test_quoted_text_and_unrelated_words_stay_as_typed(engine):
    assert ids(engine.search(SearchRequest(q='"人工智慧"'))) == {"t1"}
    for q in ("程序", "进程"):
        assert engine.search(SearchRequest(q=q)).expansions == []
    assert ids(engine.search(SearchRequest(q="程序"))) == {"p1"}


def test_the_regional_vocabulary_can_be_left_out(tmp_path, jieba_cache):
    from search_service.engine import indexer
    from search_service.engine.searcher import EngineOptions, SearchEngine, Strategy
    from search_service.engine.store import IndexStore

    store = IndexStore(tmp_path)
    indexer.rebuild(store, ARTICLES, procs=1)
    engine = SearchEngine(store.root, EngineOptions(reload_interval=0), Strategy(regional=False))
    try:
        results = engine.search(SearchRequest(q="人工智慧"))
        assert ids(results) == {"t1"} and results.expansions == []
    finally:
        engine.close()
