"""backend/postings: whole posting lists decoded straight from the postings file, against Whoosh.

Two kinds of segments: the service's own (written by ``SegmentBuilder``, the bundled samples)
and Whoosh's (its writer, zlib-compressed blocks, float weights: an index in memory). For
every term with a posting list, the decoded documents and frequencies are Whoosh's matcher's;
for phrases of consecutive bigrams taken from the titles (and shuffled ones, which mostly do
not occur), the verified documents are those Whoosh's ``Phrase`` finds.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from search_service.article import Article
from search_service.engine.backend import commit as backend_commit
from search_service.engine.backend.commit import Commit, Generation
from search_service.engine.backend.postings import _summed_per_block, list_arrays
from search_service.engine.backend.readers import ReaderPool
from search_service.engine.schema import BODY, BODY_BIGRAMS, TITLE, TITLE_BIGRAMS
from search_service.engine.store import IndexStore
from search_service.text import analysis

from ..helpers import ram_index

ARTICLES = [
    Article(f"a{i}", title, body * (1 + i % 4), "产业规划")
    for i, (title, body) in enumerate([
        ("园区规划", "园区规划发布，高新区产业集群。园区很大。"),
        ("规划园区", "规划园区，园区很大，区规定了规划。"),
        ("智慧城市建设", "智慧城市建设，园区规划先行，城市大脑。"),
        ("科技创新券", "科技创新券，科技成果转化，创新创业。"),
    ] * 70)  # enough documents for posting lists of several blocks
]


def whoosh_arrays(segment, field: str, text: str) -> tuple[list[int], list[float]]:
    from search_service.engine.backend.readers import raw_postings

    matcher = raw_postings(segment._reader, field, text)
    ids, weights = [], []
    while matcher.is_active():
        ids.append(matcher.id())
        weights.append(matcher.weight())
        matcher.next()
    return ids, weights


@pytest.fixture(scope="module")
def whoosh_commit(jieba_cache):
    ix = ram_index(ARTICLES[:220], ARTICLES[220:])
    searcher = ix.searcher()
    yield Commit.of_readers([leaf for leaf, _ in searcher.reader().leaf_readers()])
    searcher.close()


@pytest.fixture(scope="module")
def own_commit(sample_settings):
    store = IndexStore(sample_settings.index_dir)
    generation = Generation(store.open_current())
    return generation.commit(generation.latest(), ReaderPool())


@pytest.fixture(params=["own", "whoosh"])
def commit(request, own_commit, whoosh_commit) -> Commit:
    return own_commit if request.param == "own" else whoosh_commit


def posting_lists(commit):
    """(segment, field, text, bytes) of every posting list (not inlined) of the text fields."""
    for segment in commit.segments:
        for field in (TITLE, BODY, TITLE_BIGRAMS, BODY_BIGRAMS):
            for text in segment.terms(field):
                info = segment._term_info(field, text)
                if not info.is_inlined():
                    yield segment, field, text, segment._posting_bytes(info)


def test_every_posting_list_decodes_as_whooshs_matcher_reads_it(commit):
    checked = 0
    for segment, field, text, data in posting_lists(commit):
        arrays = list_arrays(data)
        assert arrays is not None, (field, text)
        ids, weights = whoosh_arrays(segment, field, text)
        assert arrays[0].tolist() == ids and arrays[1].tolist() == weights, (field, text)
        checked += 1
    assert checked > 50


@pytest.mark.parametrize("reader", ["_list_arrays_sliced", "_list_arrays_joined"])
def test_the_block_readers_read_every_list_they_take_as_whooshs_matcher(commit, request, reader):
    # list_arrays takes the slicing reader for lists of SLICED_MIN_BYTES or more, the joining one
    # (one unpickling for all blocks) for shorter ones; here each reads every list, so that it
    # meets every shape of block: short ones, wide deltas, frequencies, Whoosh's compressed blocks
    # and float weights (which they must leave to the unpickling reader). Lists of several blocks of
    # the service's own: tests/engine/test_segments.py.
    from search_service.engine.backend import postings

    read = declined = 0
    for segment, field, text, data in posting_lists(commit):
        arrays = getattr(postings, reader)(data)
        if arrays is None:
            declined += 1
            continue
        ids, weights = whoosh_arrays(segment, field, text)
        assert arrays[0].tolist() == ids and arrays[1].tolist() == weights, (field, text)
        read += 1
    assert read + declined > 50
    if request.node.callspec.params["commit"] == "own":
        assert read > 50 and declined == 0  # the service's own blocks: every one
    elif reader == "_list_arrays_joined":
        assert declined > 0


def test_posting_lists_of_several_blocks_are_read_whole(whoosh_commit):
    segment = whoosh_commit.segments[0]
    ids, freqs = segment.postings(BODY, "园区")
    assert ids.size > 128  # more than one block
    assert ids.tolist() == whoosh_arrays(segment, BODY, "园区")[0]
    assert np.all(np.diff(ids) > 0)


def phrases(titles: list[str], rng: random.Random) -> list[tuple[str, ...]]:
    found = []
    for title in titles:
        grams = [gram for _, gram, _, _ in analysis.bigram_spans(analysis.normalize(title))]
        for size in (2, 3):
            for start in range(0, max(1, len(grams) - size + 1)):
                words = tuple(grams[start:start + size])
                if len(words) == size:
                    found.append(words)
                    found.append(tuple(rng.sample(words, len(words))))
    return found


def test_phrases_are_verified_as_whoosh_verifies_them(commit):
    rng = random.Random(7)
    checked = matched = 0
    for segment in commit.segments:
        titles = [segment.stored_fields(d).get(TITLE, "") for d in range(min(segment.doc_count, 40))]
        everyone = np.arange(segment.doc_count, dtype=np.int64)
        for field in (TITLE_BIGRAMS, BODY_BIGRAMS):
            for words in phrases(titles, rng)[:60]:
                backend_commit.PATHS.clear()
                ours = segment.phrase(field, words, everyone)
                assert backend_commit.PATHS["phrase:fast"] == 1
                assert ours.tolist() == segment._phrase_by_whoosh(field, words, everyone).tolist(), words
                # Restricted to some candidates, the same answer restricted.
                some = everyone[::3]
                assert segment.phrase(field, words, some).tolist() == [d for d in ours.tolist() if d % 3 == 0]
                checked += 1
                matched += bool(ours.size)
    assert checked > 20 and matched > 5


def test_a_repeated_word_needs_both_occurrences_in_a_row(jieba_cache):
    ix = ram_index([Article("r1", "园区园区", "园区园区", "产业规划"), Article("r2", "园区", "园区 其他", "产业规划")])
    with ix.searcher() as searcher:
        commit = Commit.of_readers([leaf for leaf, _ in searcher.reader().leaf_readers()])
        segment = commit.segments[0]
        everyone = np.arange(segment.doc_count, dtype=np.int64)
        words = ("园区", "区园", "园区")
        assert segment.phrase(TITLE_BIGRAMS, words, everyone).tolist() == [0]
        assert segment._phrase_by_whoosh(TITLE_BIGRAMS, words, everyone).tolist() == [0]


def test_blocks_of_the_services_segments_skip_their_positions(own_commit):
    # Documents and frequencies without unpickling a bytes object per posting: every block of
    # our own writer's bigram lists is read as (ids, weights) only.
    from search_service.engine.backend.postings import _blocks

    blocks = 0
    for segment in own_commit.segments:
        for text in segment.terms(BODY_BIGRAMS):
            info = segment._term_info(BODY_BIGRAMS, text)
            if info.is_inlined():
                continue
            for found in _blocks(segment._posting_bytes(info), values=False):
                assert found is not None and len(found[1]) == 2, text
                blocks += 1
    assert blocks > 20


def test_the_term_table_is_read_in_its_map_as_whoosh_reads_it(own_commit):
    from search_service.engine.backend.readers import TermTable

    checked = 0
    for segment in own_commit.segments:
        tindex = segment._reader._terms._tindex
        table = TermTable(tindex)
        assert table.fast  # a mapped file hashed with md5: the service's own segments
        for key, value in tindex.items():
            assert table.get(key) == value
            assert table.get(key + b"\x00") is None and table.get(key[:-1] + b"\xff") == tindex.get(key[:-1] + b"\xff")
            checked += 1
    assert checked > 1000
    assert table.get(b"") is None and table.get(b"\xff\xff no such field") is None


def test_a_prefix_scans_the_term_tables_range_as_whoosh_lists_it(own_commit):
    from search_service.engine.backend.readers import TermTable

    segment = own_commit.segments[0]
    terms = segment._reader._terms
    table = TermTable(terms._tindex)
    for field, prefix in ((TITLE, "科"), (BODY, "高新"), (BODY, "z"), (TITLE_BIGRAMS, "园"), (BODY, "\uffff")):
        key = terms._keycoder(field, prefix.encode("utf-8"))
        ours = list(table.items_with_prefix(key))
        whoosh = []
        for k, v in terms._tindex.items_from(key):
            if not k.startswith(key):
                break
            whoosh.append((k, v))
        assert ours == whoosh, (field, prefix)
        found = [text for text, _, _ in segment.prefix_postings(field, prefix)]
        assert found == [t for t in segment.expand_prefix(field, prefix)], (field, prefix)


@pytest.mark.parametrize("writer", ["own", "whoosh"])
def test_position_values_are_decoded_together_as_one_by_one(writer):
    # The service's compact layout joins into one unpickling; Whoosh's own (protocol 2 with a
    # memo, lists) must come out the same, joined or not.
    from whoosh.formats import Positions

    from search_service.engine.backend.postings import decode_position_lists, decode_positions
    from search_service.engine.backend.segments import encode_positions

    rng = random.Random(3)
    lists = [[0], [7], [1, 2, 3], [5, 300, 301], [0, 256, 65535, 65536, 70000]]
    lists += [sorted(rng.sample(range(100_000), rng.randint(1, 40))) for _ in range(200)]
    encode = encode_positions if writer == "own" else Positions().encode
    values = [encode(positions) for positions in lists]
    counts, flat = decode_position_lists(values)
    assert counts.tolist() == [len(p) for p in lists]
    assert flat.tolist() == [p for positions in lists for p in positions]
    assert [decode_positions(v) for v in values] == lists
    one_counts, one_flat = decode_position_lists(values[3:4])
    assert one_counts.tolist() == [3] and one_flat.tolist() == [5, 300, 301]


def test_block_deltas_sum_to_the_document_numbers():
    # Each block's first id is absolute, the rest are deltas; empty blocks hold none.
    rng = random.Random(7)
    for _ in range(500):
        blocks, deltas, start = [], [], 0
        for _ in range(rng.randint(1, 6)):
            ids = sorted(rng.sample(range(start, start + 5000), rng.randint(0, 40)))
            if ids:
                start = ids[-1] + 1
                deltas += [ids[0]] + [b - a for a, b in zip(ids, ids[1:])]
            blocks.append(ids)
        summed = _summed_per_block(np.array(deltas, dtype=np.int64), [len(ids) for ids in blocks])
        assert summed.tolist() == [doc for ids in blocks for doc in ids]
