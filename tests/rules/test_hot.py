"""Hot searches: readers' found searches of the last days, with staff pins, blocks and length."""

from __future__ import annotations

import time

from search_service.analytics import AnalyticsDB, SearchEvent
from search_service.rules import hot
from search_service.rules.source import HotRules

NOW = time.time()


def searches(query: str, count: int, *, channel: str = "page", results: int = 5, relaxed=None, refine=False,
             days_ago: float = 1, filtered_out: bool = False) -> list[SearchEvent]:
    return [SearchEvent(query, channel, results, relaxed=relaxed, refine=refine, ts=NOW - days_ago * 86400 - i,
                        filtered_out=filtered_out) for i in range(count)]


def analytics(tmp_path, *groups) -> AnalyticsDB:
    db = AnalyticsDB(tmp_path / "analytics.sqlite3")
    db.create()
    db.insert([event for group in groups for event in group])
    return db


def test_only_readers_found_new_searches_of_the_period_count(tmp_path):
    db = analytics(
        tmp_path,
        searches("园区规划", 5), searches("园区规划", 4, channel="widget"),
        searches("新质生产力", 6, channel="api"),
        searches("脚本查询", 50, channel="script"),           # not a reader
        searches("没找到", 20, results=0),                     # nothing found
        searches("只有部分匹配", 20, relaxed="any_word"),       # unfound: only a fallback
        searches("拼音", 20, relaxed="pinyin"),
        searches("逐字匹配", 3, relaxed="substring"),           # found verbatim: counts
        searches("翻页", 30, refine=True),                     # another page of an earlier search
        searches("很久以前", 30, days_ago=10),                  # outside the 7 days
        searches("只搜一次", 1),                               # below min_searches
        searches("筛选", 9, results=0, filtered_out=True),
    )
    counted = hot.computed(db.path, days=7, min_searches=3, limit=10, now=NOW)
    assert counted == [("园区规划", 9), ("新质生产力", 6), ("逐字匹配", 3)]
    assert hot.computed(db.path, days=30, min_searches=3, limit=10, now=NOW)[0] == ("很久以前", 30)


def test_pins_first_blocks_out_length_kept():
    counted = [("园区规划", 9), ("新质生产力", 6), ("坏词", 5), ("低空经济", 4)]
    rules = HotRules(length=3, pins=("专精特新", "低空经济"), blocks=frozenset({"坏词"}))
    entries = hot.hot_list(rules, counted)
    assert [(e.query, e.pinned) for e in entries] == [("专精特新", True), ("低空经济", True), ("园区规划", False)]
    assert entries[1].searches == 4 and entries[0].searches is None
    assert [e.to_json() for e in entries][0] == {"query": "专精特新", "pinned": True}


def test_the_list_is_cached_but_follows_the_rules_at_once(tmp_path):
    db = analytics(tmp_path, searches("园区规划", 5), searches("低空经济", 4))
    listing = hot.HotList(db.path)
    rules = HotRules()
    assert [e.query for e in listing.entries(rules, 1)] == ["园区规划", "低空经济"]
    db.insert(searches("新词", 9))
    assert [e.query for e in listing.entries(rules, 1)] == ["园区规划", "低空经济"]  # cached a minute
    blocked = HotRules(blocks=frozenset({"园区规划"}))
    assert [e.query for e in listing.entries(blocked, 2)] == ["新词", "低空经济"]  # a rules change: recomputed


def test_no_analytics_file_no_hot_searches(tmp_path):
    assert hot.computed(tmp_path / "none.sqlite3", 7, 3, 10) == []
    assert [e.query for e in hot.HotList(tmp_path / "none.sqlite3").entries(HotRules(pins=("园区",)), 0)] == ["园区"]
