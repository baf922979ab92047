"""The fast segment builder writes exactly what Whoosh's own writer writes, readable by stock Whoosh."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from whoosh import index as whoosh_index
from whoosh import query as wq

from search_service.article import Article
from search_service.engine import building, indexer
from search_service.engine.backend import index as backend_index
from search_service.engine.backend import segments
from search_service.engine.backend.commit import Commit
from search_service.engine.backend.index import codec, index_schema
from search_service.engine.docsets import DocSetEvaluator
from search_service.engine.documents import analyze, field_values
from search_service.engine.schema import BIGRAM_FIELDS, ID
from search_service.errors import IndexBusy
from search_service.ingest import Ingest

from ..helpers import REPO, from_whoosh


def _odd_articles() -> list[Article]:
    """Articles that reach every encoding branch: >128 postings, positions >65,535, empty text."""
    long_body = "，".join(f"第{i}条 高新区智慧城市建设" for i in range(7000))  # > 65,536 positions
    articles = [
        Article("long", "長沙市條例（繁體）", long_body, "法规", dt.date(2024, 1, 2)),
        Article("empty-body", "只有标题", "", "", None),
        Article("latin", "iPhone15 Pro 5G 2025年", "C++ 3.5% ｆｕｌｌ　ｗｉｄｔｈ İstanbul 𠀀𠀁 emoji 😀", "科技", None),
        Article("punct", "标题", "！！？？。。……", "", dt.date(1999, 12, 31)),
    ]
    # Many documents sharing terms, so some terms span several posting blocks.
    articles += [Article(f"many-{i}", f"城市{i % 3}", f"智慧城市 建设 {i} 号 高新区" * (1 + i % 4), "案例",
                         dt.date(2020, 1, 1 + i % 28)) for i in range(300)]
    return articles


@pytest.fixture(scope="module")
def corpus(jieba_cache) -> list[Article]:
    ingest = Ingest()
    articles = list(ingest.read([REPO / "samples" / "articles.jsonl"]))
    assert ingest.report.ok
    return articles + _odd_articles()


def _whoosh_build(path: Path, articles: list[Article]) -> whoosh_index.Index:
    path.mkdir()
    ix = whoosh_index.create_in(str(path), index_schema())
    writer = ix.writer(codec=codec())
    for article in articles:
        writer.add_document(**field_values(article))
    writer.commit()
    return whoosh_index.open_dir(str(path))


def _fast_build(path: Path, articles: list[Article], procs: int, segment_mb: float,
                one_segment: bool = True) -> whoosh_index.Index:
    path.mkdir()
    backend_index.create(path)
    count, _ = building.build(path, articles, procs=procs, segment_mb=segment_mb, one_segment=one_segment)
    assert count == len(articles)
    return whoosh_index.open_dir(str(path))


def _dump(ix: whoosh_index.Index) -> dict:
    """Everything a search reads, keyed by article id instead of document number."""
    schema = ix.schema
    with ix.reader() as reader:
        ids = {docnum: fields[ID] for docnum, fields in reader.iter_docs()}
        postings: dict[tuple[str, bytes], list] = {}
        stats: dict[tuple[str, bytes], list] = {}
        leaves = reader.leaf_readers() if hasattr(reader, "leaf_readers") else [(reader, 0)]
        for leaf, offset in leaves:
            for fieldname, tbytes in list(leaf._terms.terms()):
                fmt = schema[fieldname].format
                matcher = leaf._terms.matcher(fieldname, tbytes, fmt)
                while matcher.is_active():
                    value = matcher.value()
                    if fieldname in BIGRAM_FIELDS:
                        value = tuple(fmt.decode_positions(value))
                    elif value:
                        value = fmt.decode_frequency(value)
                    else:
                        value = None  # no value: None from a block, "" from an inlined posting
                    postings.setdefault((fieldname, tbytes), []).append(
                        (ids[matcher.id() + offset], float(matcher.weight()), value))
                    matcher.next()
                info = leaf._terms.term_info(fieldname, tbytes)
                entry = stats.setdefault((fieldname, tbytes), [0, 0.0, 0.0])
                entry[0] += info.doc_frequency()
                entry[1] += info.weight()
                entry[2] = max(entry[2], info.max_weight())
        for value in postings.values():
            value.sort()
        stored = {fields[ID]: fields for _, fields in reader.iter_docs()}
        lengths = {(ids[d], f): reader.doc_field_length(d, f) for d in ids for f in schema.scorable_names()}
        totals = {f: reader.field_length(f) for f in schema.scorable_names()}
    return {"postings": postings, "stats": stats, "stored": stored, "lengths": lengths, "totals": totals,
            "count": len(ids)}


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory):
    ix = _whoosh_build(tmp_path_factory.mktemp("whoosh") / "ix", corpus)
    return ix, _dump(ix)


@pytest.mark.parametrize("procs,segment_mb,one_segment", [(1, 1000.0, True), (1, 0.05, False), (1, 0.05, True),
                                                        (2, 0.05, False), (2, 0.05, True)])
def test_fast_build_writes_the_same_postings_as_whoosh(corpus, reference, tmp_path, procs, segment_mb, one_segment):
    # Small segments (segment_mb) are merged into one at the end of the build (one_segment).
    ix = _fast_build(tmp_path / "fast", corpus, procs, segment_mb, one_segment)
    found = len(backend_index.latest_segments(tmp_path / "fast"))
    assert found == 1 if one_segment else found > 1
    # Nothing of the merged segments is left behind.
    live = {segment.id for segment in backend_index.latest_segments(tmp_path / "fast")}
    assert {name.split(".")[0] for name in os.listdir(tmp_path / "fast")
            if name.startswith("MAIN_")} == live
    expected = reference[1]
    got = _dump(ix)
    for part in ("count", "stored", "lengths", "totals", "stats"):
        assert got[part] == expected[part], part
    assert got["postings"].keys() == expected["postings"].keys()
    different = [key for key, value in expected["postings"].items() if got["postings"][key] != value]
    assert not different, different[:5]


def test_segments_are_not_compound_and_smaller(reference, corpus, tmp_path):
    ix = _fast_build(tmp_path / "fast", corpus, 1, 1000.0)
    assert not any(backend_index.is_compound(ix))
    size = sum(p.stat().st_size for p in (tmp_path / "fast").iterdir())
    reference_size = sum(p.stat().st_size for p in Path(reference[0].storage.folder).iterdir())
    assert size < 0.8 * reference_size


QUERIES = [
    wq.Term("body", "智慧"), wq.Term("title", "城市"), wq.Term("body", "高新区"), wq.Term("category", "案例"),
    wq.Term("title_py", "zhcs"), wq.Term("body", "iphone15"), wq.Term("title", "5g"),
    wq.Phrase("body_bi", ["智慧", "慧城", "城市"]), wq.Phrase("body_bi", ["建设", "设"]),
    wq.Phrase("title_bi", ["长沙", "沙市"]), wq.Phrase("body_bi", ["高新", "新区", "区智"]),
    wq.And([wq.Term("body", "建设"), wq.Phrase("body_bi", ["城市", "市建"])]),
    wq.Prefix("body_bi", "智"), wq.Term("id", "long"),
]


@pytest.mark.parametrize("procs", [1, 2])
def test_stock_whoosh_searcher_finds_the_same_documents(corpus, reference, tmp_path, procs):
    ix = _fast_build(tmp_path / "fast", corpus, procs, 0.05)
    with reference[0].searcher() as expected_searcher, ix.searcher() as searcher:
        for query in QUERIES:
            expected = {hit[ID] for hit in expected_searcher.search(query, limit=None)}
            got = {hit[ID] for hit in searcher.search(query, limit=None)}
            assert got == expected, query
            assert expected, query
            # And the block decoder of the query path reads the new blocks.
            live = np.ones(searcher.doc_count_all(), dtype=bool)
            commit = Commit.of_readers([leaf for leaf, _ in searcher.reader().leaf_readers()])
            docs = DocSetEvaluator(commit, live).docs(from_whoosh(query))
            assert {searcher.stored_fields(int(d))[ID] for d in docs} == expected, query
            # Scores too: same postings and statistics give the same BM25 scores (a Prefix
            # scores differently over several segments in Whoosh itself; its documents are checked).
            if isinstance(query, wq.Prefix):
                continue
            expected_scores = {hit[ID]: round(hit.score, 6) for hit in expected_searcher.search(query, limit=None)}
            got_scores = {hit[ID]: round(hit.score, 6) for hit in searcher.search(query, limit=None)}
            assert got_scores == expected_scores, query


# --------------------------------------------------------------------------- incremental changes


def test_incremental_changes_through_the_fast_path_equal_a_fresh_build(corpus, tmp_path):
    half = len(corpus) // 2
    ix = _fast_build(tmp_path / "fast", corpus[:half], 1, 1000.0)
    replaced = [dataclasses.replace(a, title=a.title + " 修订版", body="修订 " + a.body) for a in corpus[:20]]
    deleted = [a.id for a in corpus[20:40]]
    changes = [(a.id, a) for a in corpus[half:]] + [(a.id, a) for a in replaced] + [(i, None) for i in deleted]
    writer = indexer.open_writer(tmp_path / "fast")
    existed = indexer.apply_changes(writer, changes)
    writer.commit()
    assert [i for i, was in existed.items() if was] == [a.id for a in replaced] + deleted

    final = {a.id: a for a in corpus}
    final.update({a.id: a for a in replaced})
    for doc_id in deleted:
        del final[doc_id]
    reference = _whoosh_build(tmp_path / "whoosh", list(final.values()))
    ix = whoosh_index.open_dir(str(tmp_path / "fast"))
    assert len(backend_index.latest_segments(tmp_path / "fast")) == 2  # the build's, and the changes
    assert not (tmp_path / "fast" / "MAIN.tmp").exists()
    with reference.searcher() as expected_searcher, ix.searcher() as searcher:
        assert searcher.doc_count() == len(final)
        assert {d[ID]: d for d in searcher.all_stored_fields()} == \
            {d[ID]: d for d in expected_searcher.all_stored_fields()}
        for query in QUERIES + [wq.Phrase("title_bi", ["修订", "订版"]), wq.Term("body", "修订")]:
            expected = {hit[ID] for hit in expected_searcher.search(query, limit=None)}
            assert {hit[ID] for hit in searcher.search(query, limit=None)} == expected, query


def test_a_cancelled_change_leaves_no_file_and_frees_the_lock(corpus, tmp_path):
    _fast_build(tmp_path / "fast", corpus[:10], 1, 1000.0)
    def files():  # the lock file stays, as Whoosh's writers leave it
        return sorted(p.name for p in (tmp_path / "fast").iterdir() if p.name != "MAIN_WRITELOCK")

    before = files()
    writer = segments.ChangeWriter(tmp_path / "fast", segment_mb=0.05)
    for article in corpus[10:]:
        writer.add(analyze(article))
    assert writer._added  # segments finished before the cancel are removed too
    assert writer.delete_id(corpus[0].id) == 1
    with pytest.raises(IndexBusy):
        indexer.open_writer(tmp_path / "fast", timeout=0.05)  # one writer at a time
    writer.cancel()
    assert files() == before
    writer = indexer.open_writer(tmp_path / "fast")  # the lock is free again
    writer.commit()
    assert whoosh_index.open_dir(str(tmp_path / "fast")).doc_count() == 10


# --------------------------------------------------------------------------- merges


def test_a_merge_through_the_builder_writes_what_whooshs_own_merge_writes(corpus, tmp_path):
    # Merges go through the same segment writer as builds and writes (the postings copied,
    # positions included, the texts not analyzed again). Stock Whoosh must read the merged
    # segment exactly as the one its own merge (add_reader, what optimize does) writes from
    # the same segments: same postings, statistics, stored fields, lengths and totals.
    _fast_build(tmp_path / "fast", corpus, 1, 0.01, one_segment=False)
    writer = indexer.open_writer(tmp_path / "fast")
    deleted = [a.id for a in corpus[5:15]]
    for doc_id in deleted:
        assert writer.delete_id(doc_id) == 1
    writer.commit()
    folder = tmp_path / "fast"
    assert len(backend_index.latest_segments(folder)) > 2
    shutil.copytree(folder, tmp_path / "whoosh-merged")
    whoosh_ix = whoosh_index.open_dir(str(tmp_path / "whoosh-merged"))
    whoosh_ix.optimize()  # Whoosh's own merge of every segment

    ids = [segment.id for segment in backend_index.latest_segments(folder)]
    staging = folder / ".merge-test"
    staging.mkdir()
    documents, commit = segments.merge(ids, folder, staging, lock_timeout=5)
    assert documents == len(corpus) - len(deleted)
    assert [s.id for s in backend_index.latest_segments(folder)] != ids and len(backend_index.latest_segments(folder)) == 1
    ours = _dump(whoosh_index.open_dir(str(folder)))
    expected = _dump(whoosh_index.open_dir(str(tmp_path / "whoosh-merged")))
    for part in ("count", "stored", "lengths", "totals", "stats"):
        assert ours[part] == expected[part], part
    assert ours["postings"] == expected["postings"]
    assert not set(ours["stored"]) & set(deleted)


def _merge_all(folder: Path, copy_blocks: bool, procs: int = 1) -> None:
    from whoosh.filedb.filestore import FileStorage
    from whoosh.index import TOC

    toc = TOC.read(FileStorage(str(folder)), backend_index.INDEX_NAME)
    merged, _ = segments.merge_segments(folder, toc.segments, folder, toc.schema, copy_blocks=copy_blocks,
                                        procs=procs)
    segments.commit_segments(folder, [merged])


def _posting_lists(ix: whoosh_index.Index) -> list[tuple[str, bytes, bytes]]:
    """(field, term, bytes) of every posting list that has blocks (not inlined)."""
    lists = []
    with ix.reader() as reader:
        terms = reader._terms
        for fieldname, tbytes in list(terms.terms()):
            info = terms.term_info(fieldname, tbytes)
            if info.is_inlined():
                continue
            offset, length = info.extent()
            length = length[0] if isinstance(length, tuple) else length  # Whoosh's from_bytes leaves a 1-tuple
            terms._postfile.seek(offset)
            lists.append((fieldname, tbytes, terms._postfile.read(length)))
    return lists


def _block_counts(ix: whoosh_index.Index) -> list[list[int]]:
    """The postings per block of every posting list that has blocks (not inlined)."""
    from search_service.engine.backend.postings import _blocks

    counts = []
    for _, _, data in _posting_lists(ix):
        blocks = list(_blocks(data, values=False))
        assert None not in blocks
        counts.append([block_info[0] for block_info, _ in blocks])
    return counts


@pytest.mark.parametrize("chunk,procs", [(segments.MERGE_CHUNK_ENTRIES, 1), (40, 1), (40, 2)])
def test_a_merge_without_deletions_copies_blocks_and_reads_as_the_reencoding_merge(corpus, reference, tmp_path,
                                                                                   monkeypatch, chunk, procs):
    # A build's segments (no deletions) are merged by copying their posting blocks, document
    # numbers moved, instead of decoding and encoding every posting again: the same postings,
    # statistics, stored fields and lengths as the re-encoding merge (which the test above holds
    # to Whoosh's own), each segment's blocks kept as they were. A field is merged a range of
    # terms at a time (chunk: entries per range; 40 cuts every field into several), the ranges
    # in procs processes.
    monkeypatch.setattr(segments, "MERGE_CHUNK_ENTRIES", chunk)
    _fast_build(tmp_path / "copied", corpus, 1, 0.01, one_segment=False)
    assert len(backend_index.latest_segments(tmp_path / "copied")) > 5
    shutil.copytree(tmp_path / "copied", tmp_path / "encoded")
    _merge_all(tmp_path / "copied", copy_blocks=True, procs=procs)
    _merge_all(tmp_path / "encoded", copy_blocks=False)
    copied, encoded = whoosh_index.open_dir(str(tmp_path / "copied")), whoosh_index.open_dir(str(tmp_path / "encoded"))
    assert len(backend_index.latest_segments(tmp_path / "copied")) == 1
    ours, expected = _dump(copied), _dump(encoded)
    for part in ("count", "stored", "lengths", "stats", "postings"):
        assert ours[part] == expected[part], part
    # With every document kept, the field totals are the segments' own (exact); re-encoding sums
    # the documents' one-byte lengths, which round.
    assert ours["totals"] == reference[1]["totals"]
    # Re-encoded lists are cut every 128 postings. Copied ones keep the blocks of a segment's part
    # of 128 postings or more, its short last block included; shorter parts (and inlined
    # postings) are joined into blocks of 128.
    assert all(count == 128 for counts in _block_counts(encoded) for count in counts[:-1])
    # Here every segment's part of a list is under 128 postings: the copied lists are cut alike.
    assert _block_counts(copied) == _block_counts(encoded)
    # The search's readers of a list's blocks all at once read the copied lists' short blocks too.
    from search_service.engine.backend.postings import _list_arrays_joined, _list_arrays_sliced, _list_arrays_unpickled

    several = 0
    for fieldname, tbytes, data in _posting_lists(copied):
        expected_arrays = _list_arrays_unpickled(data)
        for read in (_list_arrays_joined, _list_arrays_sliced):
            found = read(data)
            assert found is not None and found[0].tolist() == expected_arrays[0].tolist(), (read, fieldname, tbytes)
            assert found[1].tolist() == expected_arrays[1].tolist()
        several += int.from_bytes(data[4:8], "big", signed=True) > 0
    assert several > 10


def test_a_merge_copies_long_parts_and_joins_short_ones(corpus, tmp_path):
    # Segments of ~150 articles: a frequent term's part of a list is 128 postings or more (its
    # blocks copied, the short last one too), a rare term's parts are short (joined into blocks
    # of 128, not a short block per segment that every search of the term would read).
    many = [dataclasses.replace(article, id=f"{article.id}-{copy}") for copy in range(20) for article in corpus]
    _fast_build(tmp_path / "copied", many, 1, 0.4, one_segment=False)
    assert len(backend_index.latest_segments(tmp_path / "copied")) >= 3
    parts: dict[tuple[str, bytes], list[int]] = {}
    with whoosh_index.open_dir(str(tmp_path / "copied")).reader() as reader:
        for leaf, _ in reader.leaf_readers():
            for fieldname, tbytes in list(leaf._terms.terms()):
                parts.setdefault((fieldname, tbytes), []).append(leaf.doc_frequency(fieldname, tbytes))
    shutil.copytree(tmp_path / "copied", tmp_path / "encoded")
    _merge_all(tmp_path / "copied", copy_blocks=True)
    _merge_all(tmp_path / "encoded", copy_blocks=False)
    copied, encoded = whoosh_index.open_dir(str(tmp_path / "copied")), whoosh_index.open_dir(str(tmp_path / "encoded"))
    ours, expected = _dump(copied), _dump(encoded)
    for part in ("count", "stored", "lengths", "stats", "postings"):
        assert ours[part] == expected[part], part
    joined = kept = 0
    for (fieldname, tbytes, _), counts in zip(_posting_lists(copied), _block_counts(copied), strict=True):
        sizes = parts[(fieldname, tbytes)]
        if all(size < 128 for size in sizes):
            assert counts == [128] * (sum(sizes) // 128) + ([sum(sizes) % 128] if sum(sizes) % 128 else [])
            joined += len(sizes) > 1 and sum(sizes) >= 128
        else:
            kept += any(count < 128 for count in counts[:-1])
    assert joined > 10 and kept > 10


def test_copied_blocks_take_document_numbers_of_any_size(corpus, tmp_path):
    # A block's first id and last id are opcodes of 2, 3 or 5 bytes (K, M, J): moved past 255 or
    # 65,535 they grow, and the block's size with them; a list's last block is marked (negative
    # size) only where the merged list ends.
    from search_service.engine.backend.postings import _blocks, list_arrays

    ix = _fast_build(tmp_path / "one", corpus, 1, 1000.0)
    with ix.reader() as reader:
        terms = reader._terms
        infos = [terms.term_info(field, tbytes) for field, tbytes in list(terms.terms()) if field == "body"]
        longest = max((info for info in infos if not info.is_inlined()), key=lambda info: info.doc_frequency())
        offset, length = longest.extent()
        length = length[0] if isinstance(length, tuple) else length  # Whoosh's from_bytes leaves a 1-tuple
        terms._postfile.seek(offset)
        original = terms._postfile.read(length)
    docs, weights = list_arrays(original)
    assert len(docs) > 128
    for base in (0, 200, 65_000, 70_000, 3_000_000):
        for final in (True, False):
            out = bytearray(original[:4])
            segments._copy_blocks(out, original, 0, len(original), base, final)
            if final:
                moved, moved_weights = list_arrays(bytes(out))
                assert moved.tolist() == (docs + base).tolist()
                assert moved_weights.tolist() == weights.tolist()
                assert [info[1] for info, _ in _blocks(bytes(out), values=False)][-1] == docs[-1] + base
            else:
                assert list(_blocks(bytes(out), values=False))[-1] is None  # no last block: the list goes on


def test_segment_ids_stay_unique_when_the_global_random_generator_is_seeded(tmp_path):
    # Hypothesis (and any library) may seed `random`; Whoosh's own ids would then repeat, and a
    # reader cached under the old segment's id would read the new segment's files.
    import random

    from search_service.engine.backend.segments import SegmentBuilder

    ids = set()
    for _ in range(5):
        random.seed(1234)
        builder = SegmentBuilder(tmp_path)
        ids.add(builder.segment.segment_id())
        builder.cancel()
    assert len(ids) == 5
