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


def test_old_segments_without_the_character_fields_are_read_through_the_bigrams(tmp_path, jieba_cache):
    # The fixture predates the character fields (title_ch, body_ch): a one-character prefix reads
    # its segments through the bigram expansion. Writes keep the generation's schema, and a merge
    # of segments without the fields writes none (a merge of old and new segments would leave
    # them out: they would miss the old documents).
    from search_service.engine.backend.index import open_index
    from search_service.engine.backend.readers import _open_segment
    from search_service.engine.backend.segments import _partial_fields
    from search_service.engine.merging import merge
    from search_service.engine.schema import BODY_CHARS, TITLE_CHARS

    from ..helpers import ram_index

    root = tmp_path / "index"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("README.md"))
    store = IndexStore(root)
    indexer.update(store, [Article("new-1", "新文章：智慧城市", "新写入的智慧城市文章。", "智慧城市案例",
                                   dt.date(2026, 12, 1))])

    def prefix_hits() -> dict[str, list[str]]:
        engine = SearchEngine(root, EngineOptions(reload_interval=0, cache_entries=0))
        try:
            # "城市 智" ends in a half-typed character: 智* over the bigram fields.
            return {text: sorted(hit.id for hit in engine.search(SearchRequest(q=text)).hits)
                    for text in ("城市 智", "智", "文章 新", "园")}
        finally:
            engine.close()

    def old_readers() -> list:
        ix = open_index(store.current_path())
        names = list(ix.storage.list())
        return [_open_segment(str(store.current_path()), ix.schema, segment, None, names)
                for segment in ix._segments()]

    before = prefix_hits()
    assert {"new-1", "old-1"} <= set(before["城市 智"]) and before["园"]
    assert len(old_readers()) > 1 and _partial_fields(old_readers()) == {TITLE_CHARS, BODY_CHARS}  # none has them
    assert merge(store.current_path(), everything=True) is not None
    assert prefix_hits() == before
    new_reader = ram_index([Article("n", "园区", "园区规划。", "产业规划")]).reader()
    assert _partial_fields([new_reader]) == set()
    assert _partial_fields([*old_readers(), new_reader]) == {TITLE_CHARS, BODY_CHARS}


def test_warming_an_index_older_than_the_speed_fields_tells_the_operator_to_reindex(tmp_path, jieba_cache, caplog):
    from search_service.engine.searcher import missing_format_fields

    root = tmp_path / "index"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("README.md"))
    engine = SearchEngine(root, EngineOptions(reload_interval=0, cache_entries=0))
    try:
        with caplog.at_level("INFO", logger="search_service.engine.searcher"):
            engine.warm()
        assert "search-service reindex" in caplog.text and "title_ch" in caplog.text and ".lst" in caplog.text
        assert len(missing_format_fields(engine.snapshot())) == 3
    finally:
        engine.close()
    fresh = tmp_path / "fresh"
    indexer.rebuild(IndexStore(fresh), [Article("n", "园区", "园区规划。", "产业规划")])
    engine = SearchEngine(fresh, EngineOptions(reload_interval=0, cache_entries=0))
    try:
        caplog.clear()
        with caplog.at_level("INFO", logger="search_service.engine.searcher"):
            engine.warm()
        assert missing_format_fields(engine.snapshot()) == [] and "reindex" not in caplog.text
    finally:
        engine.close()
