"""The writer thread below the web layer: what the journal takes, and what an answer says."""

from __future__ import annotations

import pytest

from search_service import indexer
from search_service.article import Article
from search_service.errors import WriteFailed
from search_service.searcher import EngineOptions, SearchEngine
from search_service.store import IndexStore, article_digest, committed_changes, journal_since
from search_service.writer import IndexWriterThread


@pytest.fixture()
def store(tmp_path, jieba_cache) -> IndexStore:
    store = IndexStore(tmp_path / "index")
    indexer.rebuild(store, [Article("seed", "种子文章", "园区规划")])
    return store


@pytest.fixture()
def writer(store):
    engine = SearchEngine(store.root, EngineOptions(reload_interval=0))
    writer = IndexWriterThread(store, engine, commit_delay=0).start()
    yield writer
    writer.close()
    engine.close()


def test_the_journal_takes_any_string_the_index_takes(store, writer):
    # A lone surrogate (validation rejects it at the API; here it is built below that layer)
    # made the old journal fail *after* the commit, and the client was told nothing was written.
    odd = Article("odd", "智慧城市", "智慧城市建设", url="https://example.org/x\ud83d")
    result = writer.submit(upserts=[odd])
    assert result.visible and result.to_json()["status"] == "committed"
    touched = journal_since(store)
    assert touched == {"odd": {article_digest(odd)}}
    # What the journal recorded is what the index holds: a rollback or rebuild carries it over.
    assert committed_changes(store.open_current(), touched) == {"odd": odd}


def test_a_write_that_fails_before_its_commit_journals_nothing_it_did_not_commit(store, writer):
    with pytest.raises(WriteFailed):
        # A category the index's column cannot encode fails while the document is added.
        writer.submit(upserts=[Article("bad", "标题", "正文", category="分类\ud800")])
    assert "bad" not in journal_since(store)
    with store.open_current().searcher() as searcher:
        assert searcher.document(id="bad") is None
    assert writer.submit(upserts=[Article("good", "标题", "正文")]).visible  # the writer goes on


def test_the_first_write_of_a_server_without_an_index_creates_one(tmp_path, jieba_cache):
    store = IndexStore(tmp_path / "empty")
    engine = SearchEngine(store.root, EngineOptions(reload_interval=0))
    writer = IndexWriterThread(store, engine, commit_delay=0).start()
    try:
        result = writer.submit(upserts=[Article("first", "第一篇", "正文")])
        assert result.generation == "g000001" and store.current_name() == "g000001"
    finally:
        writer.close()
        engine.close()
