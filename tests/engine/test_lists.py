"""backend/lists: every segment's posting lists also as arrays (its ``.lst`` file).

Every way a segment is written (a build's worker segments, the build's merge of them, in one
process or several, a merge with deletions, an incremental change) writes the file, and every
list read from it is the list its postings file holds. A file that is missing, short, of another
version, or that names documents the segment does not have is not used: the postings file is
read instead, with the same answers, and one warning says why.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest
from whoosh import index as whoosh_index

from search_service.engine import building, indexer
from search_service.engine.backend import commit as backend_commit
from search_service.engine.backend import index as backend_index
from search_service.engine.backend import lists, segments
from search_service.engine.backend.commit import Commit, Generation
from search_service.engine.backend.postings import list_arrays
from search_service.engine.backend.readers import ReaderPool, TermTable
from search_service.engine.request import SearchRequest
from search_service.engine.searcher import EngineOptions, SearchEngine
from search_service.engine.store import IndexStore
from search_service.ingest import Ingest

from ..helpers import REPO


@pytest.fixture(scope="module")
def corpus(jieba_cache):
    ingest = Ingest()
    articles = list(ingest.read([REPO / "samples" / "articles.jsonl"]))
    assert ingest.report.ok
    # Copies, so that frequent terms have lists of several blocks.
    return [dataclasses.replace(article, id=f"{article.id}-{copy}") for copy in range(3) for article in articles]


def _commit(folder: Path) -> Commit:
    generation = Generation(whoosh_index.open_dir(str(folder)))
    return generation.commit(generation.latest(), ReaderPool())


def _listed(segment) -> list:
    """The term table entries of ``segment`` whose postings are in its postings file."""
    from whoosh.codec.whoosh3 import W3TermInfo

    table = TermTable(segment._reader._terms._tindex)
    infos = [W3TermInfo.from_bytes(value) for _, value in table.items_with_prefix(b"")]
    return [info for info in infos if not info.is_inlined()]


def assert_every_list_reads_as_its_postings(folder: Path) -> int:
    """Every segment of the index in ``folder`` has a usable ``.lst`` file holding every list of
    its postings file, each read as the postings file reads it; returns how many lists."""
    checked = 0
    for segment in _commit(folder).segments:
        arrays = segment._posting_arrays
        assert arrays is not None, segment.id
        listed = _listed(segment)
        assert len(arrays) == len(listed)
        for info in listed:
            offset, _ = info.extent()
            found = arrays.get(offset, info.doc_frequency())
            expected = list_arrays(segment._posting_bytes(info))
            assert found is not None and expected is not None
            assert found[0].dtype == np.int64 and found[1].dtype == np.float64
            assert found[0].tolist() == expected[0].tolist() and found[1].tolist() == expected[1].tolist()
            checked += 1
    return checked


def _build(folder: Path, articles, procs: int = 1, segment_mb: float = 1000.0, one_segment: bool = True) -> None:
    folder.mkdir()
    backend_index.create(folder)
    building.build(folder, articles, procs=procs, segment_mb=segment_mb, one_segment=one_segment)


@pytest.mark.parametrize("procs,segment_mb,one_segment", [(1, 1000.0, True), (1, 0.05, False), (2, 0.05, True)])
def test_every_way_a_build_writes_segments_writes_their_lists(corpus, tmp_path, procs, segment_mb, one_segment):
    # One segment written whole; several small ones left as they are; several merged into one
    # by copying their blocks, the ranges of terms in two processes.
    _build(tmp_path / "ix", corpus, procs, segment_mb, one_segment)
    count = len(backend_index.latest_segments(tmp_path / "ix"))
    assert (count == 1) == one_segment
    assert assert_every_list_reads_as_its_postings(tmp_path / "ix") > 100


def test_merges_and_incremental_changes_write_their_lists(corpus, tmp_path):
    _build(tmp_path / "ix", corpus[:60], segment_mb=0.02, one_segment=False)
    # A change: new articles, replaced ones (deletions in the old segments), deleted ones.
    writer = indexer.open_writer(tmp_path / "ix")
    replaced = [dataclasses.replace(a, body="修订 " + a.body) for a in corpus[:10]]
    indexer.apply_changes(writer, [(a.id, a) for a in corpus[60:] + replaced] + [(a.id, None) for a in corpus[10:15]])
    writer.commit()
    assert_every_list_reads_as_its_postings(tmp_path / "ix")
    # A merge of segments with deletions (decoded and encoded again) and one without (blocks copied).
    from whoosh.filedb.filestore import FileStorage
    from whoosh.index import TOC

    toc = TOC.read(FileStorage(str(tmp_path / "ix")), backend_index.INDEX_NAME)
    assert any(segment.has_deletions() for segment in toc.segments)
    merged, _ = segments.merge_segments(tmp_path / "ix", toc.segments, tmp_path / "ix", toc.schema)
    segments.commit_segments(tmp_path / "ix", [merged])
    assert_every_list_reads_as_its_postings(tmp_path / "ix")
    assert sorted(p.name for p in (tmp_path / "ix").glob("*.lst")) == [merged.segment_id() + lists.EXTENSION]


def _served_index(root: Path, articles) -> Path:
    """An index as the service keeps it in ``root``; returns its generation folder."""
    indexer.rebuild(IndexStore(root), iter(articles), procs=1)
    return IndexStore(root).current_path()


def _search_everything(root: Path) -> list:
    """What searches and suggestions answer on the index in ``root`` (and the read paths they took)."""
    engine = SearchEngine(root, EngineOptions(reload_interval=0, cache_entries=0))
    try:
        answers = []
        for q in ("智慧城市", "\"高新区\"", "科技*", "园区 规划", "发展", "产业"):
            results = engine.search(SearchRequest(q=q))
            answers.append((results.total, [(hit.id, hit.score) for hit in results.hits]))
            answers.append([s.id for s in engine.suggest(q)])
        return answers
    finally:
        engine.close()


def _damage_kinds() -> dict:
    def short(data: bytes) -> bytes:
        return data[:-1]

    def other_version(data: bytes) -> bytes:
        return data[:7] + b"\x09" + data[8:]

    def foreign_documents(data: bytes) -> bytes:
        # The first document number of the first list set to 65,535: beyond the segment.
        magic, count, total, large, id_size = lists._HEAD.unpack_from(data)
        ids_at = lists._layout(count, total, large, id_size).ids
        return data[:ids_at] + b"\xff\xff" + data[ids_at + 2:]

    def disordered(data: bytes) -> bytes:
        at = lists._HEAD.size
        return data[:at] + data[at + 8:at + 16] + data[at:at + 8] + data[at + 16:]

    return {"short": short, "other_version": other_version, "foreign_documents": foreign_documents,
            "disordered": disordered, "empty": lambda data: b""}


@pytest.mark.parametrize("damage", sorted(_damage_kinds()))
def test_a_damaged_file_is_not_used_and_the_answers_stay(corpus, tmp_path, caplog, damage):
    folder = _served_index(tmp_path / "ix", corpus)
    backend_commit.PATHS.clear()
    expected = _search_everything(tmp_path / "ix")
    assert backend_commit.PATHS["postings:arrays"] > 0
    (path,) = folder.glob("*.lst")
    path.write_bytes(_damage_kinds()[damage](path.read_bytes()))
    lists._warned.clear()
    backend_commit.PATHS.clear()
    with caplog.at_level(logging.WARNING, logger=lists.__name__):
        assert _search_everything(tmp_path / "ix") == expected
    assert backend_commit.PATHS["postings:arrays"] == 0 and backend_commit.PATHS["postings:fast"] > 0
    warnings = [r.getMessage() for r in caplog.records if r.name == lists.__name__]
    assert len(warnings) == 1 and path.name in warnings[0], warnings


def test_an_index_without_the_files_is_read_from_its_postings(corpus, tmp_path):
    # An index written before the files existed.
    folder = _served_index(tmp_path / "ix", corpus)
    expected = _search_everything(tmp_path / "ix")
    for path in folder.glob("*.lst"):
        path.unlink()
    backend_commit.PATHS.clear()
    assert _search_everything(tmp_path / "ix") == expected
    assert backend_commit.PATHS["postings:arrays"] == 0 and backend_commit.PATHS["postings:fast"] > 0


@pytest.mark.parametrize("doc_count,top_freq", [(70_000, 300), (100, 70_000), (100, 3), (100, 254), (100, 255)])
def test_wide_document_numbers_and_large_frequencies(tmp_path, doc_count, top_freq):
    # Segments of more than 65,536 documents take four bytes a document number; a frequency of
    # 255 or more is kept exactly beside the one-byte ones.
    writer = lists.ArraysWriter(tmp_path, "MAIN_x", doc_count)
    ids = np.array([0, 5, doc_count - 1, 1, 2, 3, 4], dtype=np.int64)
    freqs = np.array([1, top_freq, 2, 1, top_freq, 1, 2 ** 32 - 1], dtype=np.float64)
    writer.add([4, 900], [3, 2], ids[:5], freqs[:5])
    writer.add([2 ** 40], [0], ids[:0], freqs[:0])  # an empty list is kept as one
    writer.add([2 ** 41], [2], ids[5:], freqs[5:])
    assert writer.write() == 4
    assert sorted(path.name for path in tmp_path.iterdir()) == ["MAIN_x.lst"]  # its temporary files gone
    data = (tmp_path / "MAIN_x.lst").read_bytes()
    _, _, total, large, id_size = lists._HEAD.unpack_from(data)
    assert id_size == (4 if doc_count > 65_536 else 2)
    assert (total, large) == (7, 1 + 2 * (top_freq >= 255))
    arrays = lists.open_arrays(data, doc_count, "MAIN_x.lst")
    assert arrays is not None
    assert [a.tolist() for a in arrays.get(4, 3)] == [[0, 5, doc_count - 1], [1, top_freq, 2]]
    assert [a.tolist() for a in arrays.get(900, 2)] == [[1, 2], [1, top_freq]]
    assert [a.tolist() for a in arrays.get(2 ** 41, 2)] == [[3, 4], [1, 2 ** 32 - 1]]
    assert [a.tolist() for a in arrays.get(2 ** 40, 0)] == [[], []]
    assert arrays.get(900, 3) is None  # another count than the term table's: not this list
    assert arrays.get(5, 3) is None and arrays.get(10 ** 12, 1) is None


def test_weights_that_are_not_frequencies_are_left_to_the_postings_file(tmp_path):
    writer = lists.ArraysWriter(tmp_path, "MAIN_y", 2)
    writer.add([4], [2], np.array([0, 1]), np.array([1.5, 1.0]))  # Whoosh's float weights
    writer.add([40], [2], np.array([0, 1]), np.array([1.0, 2.0]))
    assert writer.write() == 1
    arrays = lists.open_arrays((tmp_path / "MAIN_y.lst").read_bytes(), 2, "MAIN_y.lst")
    assert arrays.get(4, 2) is None and arrays.get(40, 2) is not None


def test_a_writer_refuses_lists_that_do_not_add_up(tmp_path):
    writer = lists.ArraysWriter(tmp_path, "MAIN_z", 7)
    with pytest.raises(ValueError, match="3 postings"):
        writer.add([4], [3], np.array([0, 1]), np.array([1, 1]))
    with pytest.raises(ValueError, match="beyond"):
        writer.add([40], [1], np.array([7]), np.array([1]))
    writer.add([40], [1], np.array([0]), np.array([1]))
    with pytest.raises(ValueError, match="order"):
        writer.add([4], [1], np.array([0]), np.array([1]))
    writer.discard()
    assert list(tmp_path.iterdir()) == []


def test_a_segment_given_up_leaves_no_temporary_file(corpus, tmp_path):
    from search_service.engine.documents import analyze

    builder = segments.SegmentBuilder(tmp_path)
    for article in corpus[:5]:
        builder.add(analyze(article))
    builder.list_arrays().add([4], [2], np.array([0, 1]), np.array([1, 1]))
    assert any(path.name.endswith(".lst_ids") for path in tmp_path.iterdir())
    builder.cancel()
    assert not [path.name for path in tmp_path.iterdir() if ".lst" in path.name]
