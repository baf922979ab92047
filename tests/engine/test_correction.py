"""Homophone slips and toneless pinyin, corrected from the index's own vocabulary and said so."""

from __future__ import annotations

import re

import pytest

from search_service.article import Article
from search_service.engine import correction, indexer
from search_service.engine.request import SearchRequest
from search_service.engine.searcher import EngineOptions, SearchEngine
from search_service.engine.store import IndexStore

ARTICLES = [
    Article("1", "智慧城市建设提速", "城市大脑上线，智慧城市平台建设全面提速。"),
    Article("2", "智慧城市数据开放", "多地推进智慧城市数据开放与共享。"),
    Article("3", "应急指挥中心演练", "应急指挥中心开展联合演练，指挥调度顺畅。"),
    Article("4", "科普活动走进社区", "科普讲座受到居民欢迎。"),
    Article("5", "科普基地开放日", "青少年科普教育基地向公众开放。"),
    Article("6", "企业信用信息公示", "企业信用体系建设取得进展，信用修复有序开展。"),
    Article("7", "商业银行法修订", "银行法修订草案提请审议。"),
    Article("8", "景点旅游推荐", "热门景点介绍。"),
    Article("9", "经典园区规划案例", "园区规划经典案例分享。"),
    Article("10", "城市更新行动", "老旧小区改造与城市更新。"),
]


@pytest.fixture(autouse=True)
def _segmenter(jieba_cache):
    return jieba_cache


def make_engine(root, articles=ARTICLES, **options) -> SearchEngine:
    store = IndexStore(root)
    indexer.rebuild(store, articles, procs=1)
    return SearchEngine(store.root, EngineOptions(reload_interval=0, **options))


@pytest.fixture(scope="module")
def engine(tmp_path_factory, jieba_cache) -> SearchEngine:
    return make_engine(tmp_path_factory.mktemp("correction-index"))


def search(engine: SearchEngine, q: str, **changes):
    return engine.search(SearchRequest(q=q, **changes))


def hit_ids(results) -> set[str]:
    return {h.id for h in results.hits if h.match != "partial"}


# --------------------------------------------------------------------------- pinyin helpers


def test_char_readings_are_toneless_and_list_heteronyms():
    assert correction.char_readings("行")[:2] == ("xing", "hang")
    assert correction.char_readings("女") == ("nv", "ru")
    assert correction.char_readings("a") == ()


def test_word_keys_prefer_the_phrase_reading():
    assert correction.word_keys("银行")[0] == "yinhang"
    assert "changsha" in correction.word_keys("长沙")


def test_fuzzy_folds_southern_confusions():
    assert correction.fuzzy("zhihuichengshi") == correction.fuzzy("zihuicensi")
    assert correction.fuzzy("lanzhou") == correction.fuzzy("nanzou")
    assert correction.fuzzy("xinyong") == correction.fuzzy("xingyon")


@pytest.mark.parametrize("text, expected", [
    ("kepu", True), ("zhihuichengshi", True), ("qiye xinyong", True), ("xi'an", True),
    ("zhcs", False),   # initials: suggestions, not correction
    ("xian", False),   # one syllable is too ambiguous to read
    ("hm", False), ("iphone", False), ("5g", False), ("智慧", False), ("", False),
])
def test_looks_like_pinyin(text, expected):
    assert correction.looks_like_pinyin(text) is expected


def test_syllabify_backtracks():
    assert correction.syllabify("zhihuichengshi") == ["zhi", "hui", "cheng", "shi"]
    assert correction.syllabify("xinyong") == ["xin", "yong"]
    assert correction.syllabify("qwrt") is None


# --------------------------------------------------------------------------- the corrector on its own


def test_vocabulary_has_title_and_body_words_with_frequencies(engine):
    vocabulary = engine.vocabulary()
    assert vocabulary.frequency("智慧城市") >= 2
    assert vocabulary.frequency("指挥") >= 1
    assert vocabulary.frequency("智惠") == 0
    assert "智慧" in vocabulary.words("zhihui") and "指挥" in vocabulary.words("zhihui")
    assert vocabulary.words("zhihui")["智慧"] > vocabulary.words("zhihui")["指挥"]


def test_term_table_read_directly_agrees_with_whoosh(engine):
    commit = engine.snapshot().commit
    for segment in commit.segments:
        reader = segment._reader  # Whoosh's own reader: the oracle
        for field in ("title", "body"):
            fast = dict(segment.term_frequencies(field, "\u3400"))
            slow = {(t.decode("utf-8") if isinstance(t, bytes) else t): info.doc_frequency()
                    for t, info in reader.iter_field(field, "\u3400")}
            assert fast == slow and "城市" in fast


def test_corrector_checks_candidates_against_the_index(engine):
    corrector = correction.Corrector(engine.vocabulary())
    asked = []

    def nothing_matches(text, verbatim):
        asked.append(text)
        return 0

    assert corrector.correct("智惠城市", nothing_matches) is None
    assert asked and asked[0] == "智慧城市"  # the best candidate is tried first, and refused
    found = corrector.correct("智惠城市", lambda text, verbatim: 5 if text == "智慧城市" else 0)
    assert found == correction.Correction("智慧城市", "homophone", (("智惠城市", "智慧城市"),), 5)


# --------------------------------------------------------------------------- searching


@pytest.mark.parametrize("typed, searched, kind, expected", [
    ("智惠城市", "智慧城市", "homophone", {"1", "2"}),
    ("可普", "科普", "homophone", {"4", "5"}),
    ("企业新用", "企业信用", "homophone", {"6"}),   # jieba: 企业/新/用, found nowhere verbatim
    ("智惠城市 建设", "智慧城市 建设", "homophone", {"1"}),  # a slip beside a correct word
    ("zhihuichengshi", "智慧城市", "pinyin", {"1", "2"}),
    ("kepu", "科普", "pinyin", {"4", "5"}),
    ("qiye xinyong", "企业信用", "pinyin", {"6"}),
    ("yinhangfa", "银行法", "pinyin", {"7"}),
])
def test_slips_and_pinyin_are_answered_with_the_meant_words_results(engine, typed, searched, kind, expected):
    results = search(engine, typed)
    assert results.searched == searched
    assert results.correction == {"typed": typed, "searched": searched, "kind": kind,
                                  "changes": results.correction["changes"]}
    assert results.correction["changes"]
    assert hit_ids(results) == expected
    assert results.relaxed is None and results.suggestion is None
    assert results.request.q == typed  # paging and the search box keep what was typed
    as_json = results.to_json()
    assert as_json["query"] == typed and as_json["searched"] == searched and as_json["correction"]["kind"] == kind


@pytest.mark.parametrize("typed, correct", [
    ("智惠城市", True), ("智惠城市", False), ("zhihuichengshi", True), ("智惠城市 建设", True), ("智慧城市", True),
    ("智慧城市 火星基地", True), ("只会城市", True), ("豳鬰爨齉", True), ("城市 指挥", True), ("zhcs", True),
])
def test_a_count_says_what_the_search_says_about_its_query(engine, typed, correct):
    # The search box asks engine.count, not a search, for the results page's count, correction
    # and did-you-mean: they must be the page's.
    page = search(engine, typed, correct=correct)
    count = engine.count(SearchRequest(q=typed, correct=correct))
    said = ("total", "relaxed", "searched", "correction", "suggestion")
    assert {k: getattr(count, k) for k in said} == {k: getattr(page, k) for k in said}
    assert count.hits == [] and count.facets == {}


def test_correct_0_searches_as_typed(engine):
    results = search(engine, "智惠城市", correct=False)
    assert results.correction is None and results.searched is None
    assert results.relaxed == "any_word"
    assert results.suggestion == "智慧城市"  # did-you-mean still offers it
    assert results.to_json()["searched"] == "智惠城市"


def test_correction_marks_the_corrected_words(engine):
    results = search(engine, "智惠城市")
    assert "<mark>智慧城市</mark>" in results.hits[0].title_html


@pytest.mark.parametrize("typed", ["指挥", "智慧", "景点", "经典", "银行法", "城市 指挥"])
def test_a_query_with_exact_matches_is_never_corrected(engine, typed):
    # 指挥 and 智慧 sound alike and both have matches: nothing to correct.
    results = search(engine, typed)
    assert results.correction is None and results.total > 0


def test_homophones_are_chosen_by_evidence(engine):
    # zhihui reads as 智慧 (4 documents) or 指挥 (1): the index decides, not a list.
    assert search(engine, "zhihui").searched == "智慧"
    assert search(engine, "zhihui zhongxin").searched == "指挥中心"  # only 指挥中心 occurs


@pytest.mark.parametrize("typed", ["zhcs", "zh"])
def test_initials_keep_serving_title_pinyin(engine, typed):
    results = search(engine, typed)
    assert results.correction is None


def test_latin_words_that_are_not_pinyin_are_left_alone(engine):
    for typed in ("china", "iphone", "hello world"):
        assert search(engine, typed).correction is None


def test_correct_words_that_occur_nowhere_together_are_not_corrected(engine):
    results = search(engine, "智慧城市 银行法")
    assert results.correction is None and results.relaxed == "any_word"


def test_partial_match_names_the_words_that_found_nothing(engine):
    results = search(engine, "智慧城市 火星基地")
    # 火星基地 is 火星 + 基地; 基地 is in article 5, 火星 in none.
    assert results.relaxed == "any_word" and results.unmatched == ["火星"]
    assert results.to_json()["unmatched"] == ["火星"]


def test_a_split_word_found_verbatim_is_not_corrected(tmp_path):
    # 企业新用 occurs verbatim in article 13 (which also has 企业, 新, 用 as words): an exact match.
    engine = make_engine(tmp_path / "verbatim", ARTICLES + [Article("13", "企业新用工登记办法", "企业新用工须登记。")])
    results = search(engine, "企业新用")
    assert results.correction is None and "13" in hit_ids(results)


def test_correction_setting_off(tmp_path):
    engine = make_engine(tmp_path / "off", correction=False)
    assert search(engine, "智惠城市").correction is None


def test_fuzzy_pinyin_is_a_setting(tmp_path):
    strict = make_engine(tmp_path / "strict")
    fuzzy = make_engine(tmp_path / "fuzzy", fuzzy_pinyin=True)
    assert search(strict, "zihuicensi").correction is None
    assert search(fuzzy, "zihuicensi").searched == "智慧城市"


def test_vocabulary_follows_new_generations_and_commits(tmp_path):
    engine = make_engine(tmp_path / "gen")
    assert search(engine, "量子通心").correction is None
    store = engine.store
    indexer.rebuild(store, ARTICLES + [Article("11", "量子通信网络建成", "量子通信干线开通。")], procs=1)
    assert search(engine, "量子通心").searched == "量子通信"
    indexer.update(store, [Article("12", "碳达峰行动方案", "实现碳达峰目标。")])
    engine.refresh()
    assert search(engine, "碳达丰").searched == "碳达峰"


# (typed, the words corrected to or None): noise around a slip does not hide it, and noise alone,
# negations and queries still matching something are answered as typed, never "corrected".
ODD_INPUTS = [
    ("智" * 200, None),
    ("zhi" * 80, None),
    ("'''", None),
    ("智惠\u200b城市", "智慧城市"),  # an invisible character inside the slip
    ("ｚｈｉｈｕｉ", "智慧"),  # full-width pinyin: an IME in full-width mode
    ("-智惠城市", None),  # only a negation: every article matches, nothing to correct
    ("智惠城市 -城市", None),  # the correction would find nothing either
    ("𠀀𠀁城市", None),  # characters outside the BMP
    ("智惠城市" + "a" * 50, None),
]


@pytest.mark.parametrize(("typed", "corrected_to"), ODD_INPUTS)
def test_odd_input_does_not_break_correction(engine, typed, corrected_to):
    results = search(engine, typed)
    answer = results.to_json()
    if corrected_to is None:
        assert results.correction is None and results.searched is None
        assert answer["searched"] == typed
    else:
        # Said so, consistently, and answered with the corrected words' articles.
        assert results.correction is not None and results.correction["typed"] == typed
        assert results.searched == results.correction["searched"] == answer["searched"]
        assert results.searched.replace("\u200b", "") == corrected_to
        assert {"1", "2"} <= hit_ids(results) and results.total >= 2
    assert len(hit_ids(results)) <= results.total  # partial matches are listed after, not counted


# --------------------------------------------------------------------------- the API


class TestApi:
    """``/api/search`` over the sample app: ``correct``, ``searched``, ``correction``, OpenAPI."""

    def test_a_slip_is_answered_with_the_correction(self, client):
        data = client.get("/api/search?q=智惠城市").get_json()
        assert data["query"] == "智惠城市" and data["searched"] == "智慧城市"
        assert data["correction"]["kind"] == "homophone" and data["correction"]["typed"] == "智惠城市"
        assert data["total"] > 0 and data["relaxed"] is None
        assert all("智慧城市" in h["title"] + h["snippet"].replace("<mark>", "").replace("</mark>", "")
                   for h in data["hits"][:3])

    def test_correct_0_searches_as_typed(self, client):
        data = client.get("/api/search?q=智惠城市&correct=0").get_json()
        assert data["correction"] is None and data["searched"] == "智惠城市"
        assert data["relaxed"] == "any_word" and data["suggestion"] == "智慧城市"
        assert data["unmatched"] == ["智惠"]

    def test_pinyin_over_the_api(self, client):
        data = client.get("/api/search?q=zhihuichengshi").get_json()
        assert data["searched"] == "智慧城市" and data["correction"]["kind"] == "pinyin"

    @pytest.mark.parametrize("url", ["/api/search?q=智惠城市&correct=maybe",
                                     "/api/search?q=智惠城市&correct=1&correct=0"])
    def test_bad_correct_is_a_400_naming_it(self, client, url):
        response = client.get(url)
        assert response.status_code == 400
        assert response.get_json()["error"]["param"] == "correct"

    def test_openapi_documents_the_parameter_and_fields(self, client):
        document = client.get("/openapi.json").get_json()
        params = {p["name"]: p for p in document["paths"]["/api/search"]["get"]["parameters"]}
        # A pattern (0/1, true/false, yes/no, on/off in any case, blanks around), as the code reads it.
        pattern = re.compile(params["correct"]["schema"]["pattern"])
        assert all(pattern.fullmatch(v) for v in ("0", "1", "False", " no ", ""))
        assert not any(pattern.fullmatch(v) for v in ("2", "nope"))
        properties = document["components"]["schemas"]["SearchResults"]["properties"]
        assert {"searched", "correction", "unmatched"} <= set(properties)

    def test_page_links_keep_correct_0(self, client):
        html = client.get("/search?q=智惠城市&correct=0").get_data(as_text=True)
        assert "notice-corrected" not in html
        assert "correct=0" in html  # the JSON twin and every other link keep it

    def test_the_page_says_what_was_searched(self, client):
        html = client.get("/search?q=智惠城市").get_data(as_text=True)
        assert "已显示「" in html and "智慧城市</strong></a>」的搜索结果，仍然搜索「" in html
        assert "correct=0" in html

    def test_analytics_record_typed_and_searched(self, tmp_path, jieba_cache, sample_settings):
        from search_service.analytics import AnalyticsDB, database_path
        from search_service.web import close_app, create_app

        settings = sample_settings.replace(analytics=True, analytics_db=str(tmp_path / "a.sqlite3"))
        app = create_app(settings)
        try:
            client = app.test_client()
            client.get("/search?q=智惠城市", headers={"User-Agent": "Mozilla/5.0"})
            client.get("/api/search?q=智慧城市")
            app.extensions["analytics"].flush()
        finally:
            close_app(app)
        db = AnalyticsDB(database_path(settings.index_dir, settings.analytics_db))
        with db.connect() as conn:
            rows = conn.execute("SELECT query, searched, channel FROM searches ORDER BY id").fetchall()
        assert rows == [("智惠城市", "智慧城市", "page"), ("智慧城市", None, "api")]


def test_analytics_file_of_an_older_version_gains_the_searched_column(tmp_path):
    import sqlite3

    from search_service.analytics import AnalyticsDB, Period, SearchEvent

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:  # the table as it was before correction
        conn.execute("CREATE TABLE searches (id INTEGER PRIMARY KEY, ts REAL NOT NULL, day TEXT NOT NULL, "
                     "channel TEXT NOT NULL, query TEXT NOT NULL, filters TEXT NOT NULL DEFAULT '', "
                     "results INTEGER NOT NULL, relaxed TEXT, took_ms REAL NOT NULL, "
                     "page INTEGER NOT NULL DEFAULT 1, refine INTEGER NOT NULL DEFAULT 0)")
        conn.execute("INSERT INTO searches (ts, day, channel, query, results, took_ms) "
                     "VALUES (1, '2026-01-01', 'page', '旧', 1, 1.0)")
    conn.close()
    db = AnalyticsDB(path)
    db.create()
    db.create()  # idempotent
    db.insert([SearchEvent("智惠城市", "page", 7, searched="智慧城市"), SearchEvent("智惠城市", "page", 7,
                                                                                   searched="智慧城市"),
               SearchEvent("科普", "page", 3)])
    today = Period.last(1)
    assert db.corrections(today) == [("智惠城市", "智慧城市", 2)]
    with db.connect() as conn:
        assert conn.execute("SELECT COUNT(*) FROM searches WHERE searched IS NULL").fetchone()[0] == 2


def test_warm_up_builds_the_vocabulary_before_the_first_slip(tmp_path):
    engine = make_engine(tmp_path)
    off = make_engine(tmp_path / "off", correction=False)
    try:
        engine.warm(queries=())
        off.warm(queries=())
        # Held for the snapshot the first search will use (built once per generation/commit).
        assert engine._vocabulary is not None and engine._vocabulary[0] == engine.snapshot().key
        assert off._vocabulary is None  # correction off: nothing to read
    finally:
        engine.close()
        off.close()
