"""Dictionary words: proposals from analytics and the corpus, decisions, the words in effect, the reindex job."""

from __future__ import annotations

import contextlib
import time

import pytest

from search_service.analytics import AnalyticsDB, SearchEvent
from search_service.engine.docsets import DocSetEvaluator
from search_service.engine.schema import TITLE
from search_service.engine.searcher import EngineOptions, SearchEngine
from search_service.rules import edits, jobs, words
from search_service.rules.store import RulesDB, rules_path
from search_service.text.analysis import SEGMENTER, query_words

NOW = time.time()


@contextlib.contextmanager
def forgetting(*taught: str):
    """Leave this process's segmenter as it was (tests share it)."""
    try:
        yield
    finally:
        for word in taught:
            if word in words._taught:
                SEGMENTER._jieba.del_word(word)
                SEGMENTER._dictionary_changed()
                words._taught.discard(word)


def test_unfound_and_refined_searches_of_split_terms_are_proposed(tmp_path, jieba_cache):
    db = AnalyticsDB(tmp_path / "analytics.sqlite3")
    db.create()
    db.insert([*(SearchEvent("亩均论英雄", "page", 0, ts=NOW - i) for i in range(3)),
               *(SearchEvent("一网统管", "page", 4, refine=True, ts=NOW - i) for i in range(2)),
               SearchEvent("一网统管", "widget", 2, relaxed="any_word", ts=NOW),
               *(SearchEvent("概念验证中心", "script", 0, ts=NOW - i) for i in range(9)),  # not readers
               SearchEvent("园区 规划", "page", 0, ts=NOW),     # two words: no dictionary entry
               SearchEvent("专精特新", "page", 0, ts=NOW),      # jieba knows it
               SearchEvent("低空经济", "page", 7, ts=NOW)])     # found: nothing to propose
    rows = words.analytics_proposals(db.path)
    assert [(r["word"], r["searches"]) for r in rows] == [("亩均论英雄", 3), ("一网统管", 3)]
    assert rows[0]["split"] == ["亩", "均", "论", "英雄"] and rows[0]["source"] == "analytics"


def test_a_damaged_analytics_file_is_said_to_be_unreadable(tmp_path):
    from search_service.errors import AnalyticsUnavailable

    damaged = tmp_path / "analytics.sqlite3"
    damaged.write_bytes(b"not a database" * 200)
    with pytest.raises(AnalyticsUnavailable, match="analytics.sqlite3 cannot be read") as caught:
        words.analytics_proposals(damaged)
    assert caught.value.status == 503
    assert words.analytics_proposals(tmp_path / "none.sqlite3") == []


def test_decisions_and_evidence(tmp_path):
    db = RulesDB(tmp_path / "rules.sqlite3")
    db.put_evidence([{"word": "亩均论英雄", "source": "analytics", "searches": 3, "split": ["亩", "均"]},
                     {"word": "一网统管", "source": "corpus", "corpus": 12, "contexts": ["推行一网统管平台"]}])
    db.put_evidence([{"word": "一网统管", "source": "analytics", "searches": 2}])
    listed = {p["word"]: p for p in words.proposals(db)}
    assert listed["一网统管"]["sources"] == ["analytics", "corpus"] and listed["一网统管"]["corpus"] == 12
    assert listed["一网统管"]["contexts"] == ["推行一网统管平台"]
    edits.decide_word(db, "亩均论英雄", "rejected", "甲")
    edits.decide_word(db, "一网统管", "accepted", "甲")
    db.put_evidence([{"word": "亩均论英雄", "source": "analytics", "searches": 30}])  # asked again and again
    assert words.proposals(db) == []  # a rejected word is not proposed again
    assert [p["word"] for p in words.proposals(db, "rejected")] == ["亩均论英雄"]
    assert words.accepted_words(db) == ["一网统管"]
    edits.decide_word(db, "亩均论英雄", "proposed", "甲")
    assert [p["word"] for p in words.proposals(db)] == ["亩均论英雄"]


def test_contexts_are_cut_from_the_original_text():
    texts = ["前文很长很长很长很长很长很长很长。南屿推行“畝均論英雄”综合评价，效果明显。后文。", "无关"]
    assert words.contexts_in(texts, "亩均论英雄", width=6) == ["…。南屿推行“畝均論英雄”综合评价，…"]


def test_corpus_mining_proposes_with_contexts(jieba_cache):
    left = ["推进", "关于", "实行", "他说", "鼓励", "探索", "发展", "支持"]
    right = ["模式", "很好", "报告", "经验", "办法", "项目", "机制", "试点"]
    filler = "高新区产业园区发展规划要看空间布局和招商运营，县域经济与开发区联动发展的几点观察。"
    texts = [f"{left[i % 8]}飞地抱团{right[(i * 3) % 8]}。{filler}" for i in range(40)]
    rows = words.corpus_proposals(texts, min_count=5, top=5)
    assert [(r["word"], r["source"], r["corpus"], r["split"]) for r in rows] == [
        ("飞地抱团", "corpus", 40, ["飞地", "抱团"])]
    assert rows[0]["contexts"][0] == "推进飞地抱团模式。高新区产业园区发展规划要看空间…"
    assert len(rows[0]["contexts"]) == words.CONTEXTS


def test_a_build_uses_the_accepted_words_and_records_them(tmp_path, jieba_cache):
    db = RulesDB(rules_path(tmp_path))
    edits.decide_word(db, "亩均论英雄", "accepted", "甲")
    with forgetting("亩均论英雄"):
        assert words.prepare_segmenter(tmp_path, build=False) == []  # not yet in effect
        used = words.prepare_segmenter(tmp_path, build=True)
        assert used == ["亩均论英雄"] and query_words("亩均论英雄") == ["亩均论英雄"]
        words.record_build(tmp_path, used)
        assert db.dictionary() == ["亩均论英雄"]
    words.record_build(tmp_path / "nothing", [])
    assert not (tmp_path / "nothing" / "rules.sqlite3").exists()


@pytest.mark.processes
def test_the_reindex_job_puts_accepted_words_in_effect(desk_settings):
    db = RulesDB(rules_path(desk_settings.index_dir))
    edits.decide_word(db, "亩均论英雄", "accepted", "王编辑")
    engine = SearchEngine(desk_settings.index_dir, EngineOptions(reload_interval=0))
    with forgetting("亩均论英雄"), contextlib.closing(engine):
        snap = engine.snapshot()
        assert not DocSetEvaluator(snap.commit, snap.arrays.live).term(TITLE, "亩均论英雄").size
        job = jobs.start(desk_settings, "reindex", "王编辑")
        deadline = time.monotonic() + 120
        while (job := db.job(job.id)).running and time.monotonic() < deadline:
            time.sleep(0.2)
        assert job.state == "done", job.message
        assert job.total == job.done and job.done > 30 and "1 个自定义词已生效" in job.message
        assert db.dictionary() == ["亩均论英雄"]
        snap = engine.refresh()
        assert DocSetEvaluator(snap.commit, snap.arrays.live).term(TITLE, "亩均论英雄").size == 1
        later = db.start_job("mine", "x")  # the reindex is over: another job may start
        assert later.running
