"""docsets: matched document sets read from posting blocks, against Whoosh's own matchers.

A two-segment in-memory index with a deleted document in each segment: every query type query.py
produces gives the documents Whoosh's ``docs_for_query`` gives, minus the deleted ones.
"""

from __future__ import annotations

import numpy as np
import pytest

from search_service.article import Article
from search_service.engine import query as q
from search_service.engine.backend.commit import Commit
from search_service.engine.docsets import DocSetEvaluator, PostingsCache
from search_service.engine.schema import BODY, BODY_BIGRAMS, CATEGORY, CHARS_OF, ID, TITLE, TITLE_BIGRAMS
from search_service.errors import InvalidParameter

from ..helpers import ram_index, to_whoosh

FIRST = [
    Article("p1", "园区规划", "园区规划发布，高新区产业集群。", "产业规划"),
    # Every bigram of 园区规划 (园区, 区规, 规划), never in a row: only position checks tell.
    Article("p2", "规划园区", "规划园区，园区很大，区规定了规划。", "产业规划"),
    Article("p3", "智慧城市", "智慧城市建设，园区规划先行。", "智慧城市案例"),
    Article("gone1", "园区规划作废", "园区规划旧稿。", "产业规划"),
    Article("p4", "农业发展", "现代农业示范区。", "区域经济研究"),
]
SECOND = [
    Article("q1", "产业集群", "产业集群与园区规划协同。", "高新区新闻"),
    Article("gone2", "园区规划旧闻", "园区规划。", "高新区新闻"),
    Article("q2", "科技创新", "科技创新券，科技成果转化。", "政策解读"),
    Article("q3", "科学规划", "科学规划园区。", "政策解读"),
]


@pytest.fixture(scope="module")
def searcher(jieba_cache):
    ix = ram_index(FIRST, SECOND, deleted=("gone1", "gone2"))
    with ix.searcher() as searcher:
        yield searcher


@pytest.fixture(scope="module")
def commit(searcher) -> Commit:
    return Commit.of_readers([leaf for leaf, _ in searcher.reader().leaf_readers()])


@pytest.fixture()
def evaluator(searcher, commit) -> DocSetEvaluator:
    reader = searcher.reader()
    live = np.array([not reader.is_deleted(d) for d in range(reader.doc_count_all())], dtype=bool)
    assert (~live).sum() == 2 and len(commit.segments) >= 2  # deletions in two segments
    return DocSetEvaluator(commit, live)


def ids(searcher, docs) -> set[str]:
    return {searcher.stored_fields(int(d))[ID] for d in docs}


def whoosh_docs(searcher, query) -> list[int]:
    return sorted(searcher.docs_for_query(to_whoosh(query)))


QUERIES = {
    "term": q.Term(BODY, "园区"),
    "and": q.And((q.Term(BODY, "园区"), q.Term(BODY, "规划"))),
    "or": q.Or((q.Term(TITLE, "科技"), q.Term(BODY, "农业"))),
    "and not": q.AndNot(q.Term(BODY, "园区"), q.Term(BODY, "产业")),
    "phrase": q.Phrase(BODY_BIGRAMS, ("园区", "区规", "规划")),
    "phrase in an and": q.And((q.Term(CATEGORY, "产业规划"), q.Phrase(TITLE_BIGRAMS, ("园区", "区规", "规划")))),
    "prefix": q.Prefix(BODY, "科技"),
    "nested": q.Or((q.And((q.Term(BODY, "产业"), q.Term(BODY, "集群"))), q.Phrase(BODY_BIGRAMS, ("农业",)))),
}


@pytest.mark.parametrize("name", list(QUERIES))
def test_the_same_documents_as_whoosh_without_the_deleted(searcher, evaluator, name):
    query = QUERIES[name]
    docs = evaluator.docs(query)
    assert docs.dtype == np.int64 and docs.tolist() == sorted(set(docs.tolist()))  # sorted, unique
    assert docs.tolist() == whoosh_docs(searcher, query), name
    assert docs.size and not ids(searcher, docs) & {"gone1", "gone2"}, name


def test_a_phrase_needs_its_words_next_to_each_other(searcher, evaluator):
    docs = evaluator.docs(QUERIES["phrase"])
    candidates = evaluator.docs(q.And(tuple(q.Term(BODY_BIGRAMS, w) for w in ["园区", "区规", "规划"])))
    assert "p2" in ids(searcher, candidates) and "p2" not in ids(searcher, docs)
    assert ids(searcher, docs) == {"p1", "p3", "q1"}


@pytest.mark.parametrize("field", [BODY_BIGRAMS, TITLE_BIGRAMS])
def test_documents_with_the_phrase_as_a_word_skip_the_position_check_and_the_answer_is_the_same(
        searcher, commit, evaluator, field, monkeypatch):
    from search_service.engine import docsets

    phrases = [("园区", "区规", "规划"), ("产业", "业集", "集群"), ("科技", "技创", "创新"), ("规划", "划园", "园区"),
               ("智慧", "慧城", "城市"), ("科技", "技成")]
    from search_service.engine.backend.commit import Segment

    checked: list[int] = []
    real_phrase = Segment.phrase

    def phrase(segment, field_, words_, docnums):
        checked.extend((docnums + segment.offset).tolist())
        return real_phrase(segment, field_, words_, docnums)

    monkeypatch.setattr(Segment, "phrase", phrase)
    with_words = {words: DocSetEvaluator(commit, evaluator.live).docs(q.Phrase(field, words)).tolist()
                  for words in phrases}
    checked.clear()
    smart_city = DocSetEvaluator(commit, evaluator.live).docs(q.Phrase(field, ("智慧", "慧城", "城市"))).tolist()
    assert smart_city and not checked  # 智慧城市 is a word of p3: no positions read
    assert docsets._phrase_word(q.Phrase(field, phrases[0])) == "园区规划"
    assert docsets._phrase_word(q.Phrase(field, ("5g", "g网"))) is None  # not one CJK run
    assert docsets._phrase_word(q.Phrase(field, ("园区", "规划"))) is None  # not chained
    monkeypatch.setattr(docsets, "_phrase_word", lambda query: None)  # positions only
    for words in phrases:
        expected = DocSetEvaluator(commit, evaluator.live).docs(q.Phrase(field, words)).tolist()
        assert with_words[words] == expected == [d for d in whoosh_docs(searcher, q.Phrase(field, words))
                                                 if evaluator.live[d]], words


def test_not_and_every_are_the_live_documents(searcher, evaluator):
    everything = evaluator.docs(q.EVERY)
    assert ids(searcher, everything) == {a.id for a in FIRST + SECOND} - {"gone1", "gone2"}
    without = evaluator.docs(q.Not(q.Term(BODY, "园区")))
    assert ids(searcher, without) == {"p4", "q2"}


def test_within_restricts_exactly(searcher, evaluator):
    mask = np.zeros(evaluator.live.size, dtype=bool)
    mask[::2] = True
    for name, query in QUERIES.items():
        full = evaluator.docs(query)
        assert evaluator.docs(query, within=mask).tolist() == full[mask[full]].tolist(), name


@pytest.mark.parametrize("field", [BODY_BIGRAMS, TITLE_BIGRAMS])
@pytest.mark.parametrize("char", ["园", "规", "区", "科", "农", "无"])
def test_a_prefix_within_a_mask_reads_what_it_needs_and_finds_the_same(searcher, commit, char, field):
    # Evaluated within a mask, a one-character prefix skips segments without candidates and stops
    # reading a segment's terms once every candidate there matched: the same documents either way.
    reader = searcher.reader()
    live = np.array([not reader.is_deleted(d) for d in range(reader.doc_count_all())], dtype=bool)
    full = DocSetEvaluator(commit, live).docs(q.Prefix(field, char))
    size = live.size
    first = commit.segments[0].doc_count
    masks = [np.ones(size, dtype=bool), ~live, np.arange(size) < first, np.arange(size) >= first,
             np.arange(size) % 2 == 0, np.arange(size) % 3 == 1, np.zeros(size, dtype=bool)]
    for mask in masks:
        fresh = DocSetEvaluator(commit, live)  # nothing of the prefix read before
        assert fresh.docs(q.Prefix(field, char), within=mask).tolist() == full[mask[full]].tolist()
        # In an And after a term that narrows the candidates (the order docsets evaluates in).
        narrowed = q.And((q.Prefix(field, char), q.Term(BODY, "园区")))
        expected = np.intersect1d(full, DocSetEvaluator(commit, live).docs(q.Term(BODY, "园区")))
        assert DocSetEvaluator(commit, live).docs(narrowed, within=mask).tolist() == expected[mask[expected]].tolist()


@pytest.mark.parametrize("field", [BODY_BIGRAMS, TITLE_BIGRAMS])
def test_a_one_character_prefix_is_one_term_of_the_character_field_and_finds_what_whoosh_finds(
        searcher, commit, evaluator, field):
    # 园* over the bigrams (园区, 园…, a run-final 园) is answered by the character field's term 园.
    assert all(segment.has_terms(CHARS_OF[field]) for segment in commit.segments)
    text = "".join(a.title + a.body for a in FIRST + SECOND)
    for char in sorted(set(text)) + ["无", "z"]:
        prefix = q.Prefix(field, char)
        expected = [d for d in whoosh_docs(searcher, prefix) if evaluator.live[d]]
        assert DocSetEvaluator(commit, evaluator.live).docs(prefix).tolist() == expected, char
        everything = np.ones(evaluator.live.size, dtype=bool)
        assert DocSetEvaluator(commit, evaluator.live).docs(prefix, everything).tolist() == expected, char


def test_postings_carry_term_frequencies(searcher, evaluator):
    docs, freqs = evaluator.postings(BODY, "园区")
    by_id = dict(zip(ids_in_order(searcher, docs), freqs.tolist()))
    assert by_id["p2"] == 2 and by_id["p1"] == 1  # p2 says 园区 twice


def ids_in_order(searcher, docs) -> list[str]:
    return [searcher.stored_fields(int(d))[ID] for d in docs]


def test_prefix_expansion_is_bounded(evaluator):
    terms = evaluator.expand_prefix(BODY, "科技")
    assert "科技" in terms and terms == sorted(terms) and all(t.startswith("科技") for t in terms)
    assert len(evaluator.expand_prefix(BODY, "科技", limit=len(terms))) == len(terms)  # at the bound: fine
    with pytest.raises(InvalidParameter, match="max_prefix_terms") as caught:
        evaluator.expand_prefix(BODY, "科技", limit=len(terms) - 1)
    assert caught.value.param == "q"
    assert evaluator.docs(q.Prefix(BODY, "不存在")).size == 0


def test_postings_cache_is_bounded_in_bytes_and_least_recently_used_goes_first():
    item = (np.arange(10, dtype=np.int64), np.ones(10))  # 160 bytes, + the per-entry overhead
    entry = 160 + PostingsCache.ENTRY_OVERHEAD
    cache = PostingsCache(max_bytes=2 * entry + 10)
    cache.put(("seg", "body", "a"), item)
    cache.put(("seg", "body", "b"), item)
    assert cache.get(("seg", "body", "a")) is item  # a is now the most recently used
    cache.put(("seg", "body", "c"), item)  # three entries do not fit: the least recently used (b) goes
    assert cache.get(("seg", "body", "b")) is None
    assert cache.get(("seg", "body", "a")) is item and cache.get(("seg", "body", "c")) is item
    cache.put(("seg", "body", "huge"), (np.arange(100, dtype=np.int64), np.ones(100)))  # bigger than the bound
    assert cache.get(("seg", "body", "huge")) is None and cache.get(("seg", "body", "a")) is item
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0))
    for i in range(100):  # a term a segment lacks is remembered too, and still counts against the bound
        cache.put(("seg", "body", f"missing{i}"), empty)
    assert len(cache) <= (2 * entry + 10) // PostingsCache.ENTRY_OVERHEAD


def test_a_shared_cache_keeps_each_segments_postings_for_the_next_evaluator(commit, evaluator):
    cache = PostingsCache(1 << 20)
    first = DocSetEvaluator(commit, evaluator.live, cache)
    docs, freqs = first.postings(BODY, "规划")
    kept = {segment.id: cache.get((segment.id, BODY, "规划")) for segment in commit.segments}
    assert len(kept) == len(commit.segments) >= 2 and all(value is not None for value in kept.values())
    again = DocSetEvaluator(commit, evaluator.live, cache).postings(BODY, "规划")
    assert again[0].tolist() == docs.tolist() and again[1].tolist() == freqs.tolist()
    assert all(cache.get((sid, BODY, "规划")) is value for sid, value in kept.items())  # read once, not again
    # The cache holds every posting of a segment, deleted documents included: the live mask is
    # applied per evaluator, so a later commit's deletions use the same entries.
    fewer = evaluator.live.copy()
    fewer[docs[0]] = False
    assert DocSetEvaluator(commit, fewer, cache).postings(BODY, "规划")[0].tolist() == docs[1:].tolist()


def test_a_prefix_expansion_keeps_its_terms_postings_for_the_next_keystroke(commit, evaluator, monkeypatch):
    # Typing 规 then 规划: the second expansion's terms were decoded for the first one.
    from search_service.engine.backend.commit import Segment

    cache = PostingsCache(1 << 20)
    first = DocSetEvaluator(commit, evaluator.live, cache).prefix_terms(BODY, "规")
    assert "规划" in first and len(cache) >= len(first)
    expected = {text: docs.tolist() for text, (docs, _) in first.items() if text.startswith("规划")}

    def not_again(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(Segment, "_info_arrays", not_again)
    again = DocSetEvaluator(commit, evaluator.live, cache).prefix_terms(BODY, "规划")
    assert {text: docs.tolist() for text, (docs, _) in again.items()} == expected
    narrowed = DocSetEvaluator(commit, evaluator.live, cache).prefix_within(BODY, "规划", evaluator.live)
    assert narrowed.tolist() == sorted({d for docs in expected.values() for d in docs})


def test_a_phrase_cache_verifies_only_documents_not_checked_before_and_answers_the_same(commit, evaluator,
                                                                                       monkeypatch):
    from search_service.engine import docsets
    from search_service.engine.backend.commit import Segment
    from search_service.engine.docsets import PhraseCache

    asked: list[int] = []  # commit numbers of the documents verified by position
    real_phrase = Segment.phrase

    def phrase(segment, field_, words_, docnums):
        asked.extend((docnums + segment.offset).tolist())
        return real_phrase(segment, field_, words_, docnums)

    monkeypatch.setattr(Segment, "phrase", phrase)
    monkeypatch.setattr(docsets, "_phrase_word", lambda query: None)  # every candidate by position
    query = QUERIES["phrase"]
    expected = evaluator.docs(query).tolist()
    asked.clear()
    evaluator.docs(query)
    candidates = sorted(asked)  # what an evaluator without the cache verifies
    assert len(candidates) > len(expected) > 1  # some candidates fail (p2: the bigrams apart)
    cache = PhraseCache(1 << 20)
    odd = np.zeros(evaluator.live.size, dtype=bool)
    odd[1::2] = True
    asked.clear()
    assert DocSetEvaluator(commit, evaluator.live, phrases=cache).docs(query, within=odd).tolist() == \
        [d for d in expected if d % 2]
    assert sorted(asked) == [d for d in candidates if d % 2]
    asked.clear()  # the same candidates again: nothing to verify
    assert DocSetEvaluator(commit, evaluator.live, phrases=cache).docs(query, within=odd).tolist() == \
        [d for d in expected if d % 2]
    assert asked == []
    asked.clear()  # all of them: only the even ones are new
    assert DocSetEvaluator(commit, evaluator.live, phrases=cache).docs(query).tolist() == expected
    assert sorted(asked) == [d for d in candidates if d % 2 == 0]


def test_the_phrase_cache_is_bounded_in_bytes():
    from search_service.engine.docsets import PhraseCache

    some = np.arange(100, dtype=np.int64)
    entry = 2 * some.nbytes + PhraseCache.ENTRY_OVERHEAD
    cache = PhraseCache(2 * entry + 10)
    for i in range(5):
        cache.put(("seg", "body_bi", (f"w{i}", "x")), some, some)
    assert len(cache) == 2 and cache.get(("seg", "body_bi", ("w4", "x"))) is not None
    cache.put(("seg", "body_bi", ("w4", "x")), some[:10], some[:5])  # replaced, not added
    assert len(cache) == 2 and cache.get(("seg", "body_bi", ("w4", "x")))[0].size == 10
    cache.put(("seg", "body_bi", ("huge", "x")), np.arange(10_000, dtype=np.int64), some)
    assert cache.get(("seg", "body_bi", ("huge", "x"))) is None


def test_scoring_a_prefix_reads_its_first_terms_in_one_scan(commit, evaluator, monkeypatch):
    from search_service.engine.backend.commit import Segment
    from search_service.engine.scoring import Bm25

    lengths = {field: np.ones(evaluator.live.size) for field in (BODY, BODY_BIGRAMS, TITLE, TITLE_BIGRAMS)}
    averages = dict.fromkeys(lengths, 1.0)
    query = q.Prefix(BODY_BIGRAMS, "园")
    docs = evaluator.docs(query)
    expected = Bm25(DocSetEvaluator(commit, evaluator.live), lengths, averages, 7).scores(query, docs)
    fresh = DocSetEvaluator(commit, evaluator.live)
    texts = fresh.prefix_texts(BODY_BIGRAMS, "园")

    def no_lookup(*args, **kwargs):
        raise AssertionError("a term looked up on its own")

    monkeypatch.setattr(Segment, "_term_info", no_lookup)
    assert Bm25(fresh, lengths, averages, 7).scores(query, docs).tolist() == expected.tolist()
    assert texts and all((BODY_BIGRAMS, text) in fresh._terms for text in texts)
