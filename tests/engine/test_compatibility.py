"""Indexes written by older releases keep opening: their tables of contents pickle the analyzer
classes under the module names those releases had (``tests/fixtures/index_v1``)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from search_service.article import Article
from search_service.engine import indexer
from search_service.engine.request import SearchRequest
from search_service.engine.searcher import EngineOptions, SearchEngine
from search_service.engine.store import IndexStore

FIXTURE = Path(__file__).parents[1] / "fixtures" / "index_v1"


def test_an_index_written_before_the_engine_package_opens_searches_and_takes_writes(tmp_path, jieba_cache):
    root = tmp_path / "index"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("README.md"))
    engine = SearchEngine(root, EngineOptions(reload_interval=0, cache_entries=0))
    try:
        assert engine.stats().documents == 4
        assert [hit.id for hit in engine.search(SearchRequest(q="智慧城市")).hits][:1] == ["old-1"]
        assert [hit.id for hit in engine.search(SearchRequest(q="园区规划")).hits] == ["old-2"]  # written 園區規劃
        assert engine.search(SearchRequest(q="一带一路")).total == 1
        indexer.update(IndexStore(root), [Article("new-1", "新文章：智慧城市", "新写入的智慧城市文章。", "智慧城市案例",
                                                  dt.date(2026, 12, 1))])
        assert engine.search(SearchRequest(q="智慧城市")).total == 2
        assert engine.document("old-3").date is None
    finally:
        engine.close()
