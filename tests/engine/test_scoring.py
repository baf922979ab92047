"""scoring.Bm25 (numpy, a whole document set at once) against Whoosh's own BM25F, document by document.

Whoosh's BM25F is given the idf the scoring module documents (Lucene's, which never goes negative);
everything else -- term frequencies, the one-byte field lengths, the average field length, boosts,
how AND / OR / AND NOT add their clauses' scores -- is Whoosh's own code. Same scores, to rounding.
"""

from __future__ import annotations

import datetime as dt
from math import log

import numpy as np
import pytest
from whoosh.scoring import BM25F

from search_service.article import Article
from search_service.engine import query as q
from search_service.engine.backend.commit import Commit
from search_service.engine.docsets import DocSetEvaluator
from search_service.engine.schema import BIGRAM_FIELDS, BODY, BODY_BIGRAMS, TITLE, WORD_FIELDS
from search_service.engine.scoring import Bm25

from ..helpers import ram_index, to_whoosh

SCORED = WORD_FIELDS + BIGRAM_FIELDS


class LuceneIdfBM25F(BM25F):
    """Whoosh's BM25F with Lucene's idf over the live documents, as scoring.Bm25 computes it."""

    def idf(self, searcher, fieldname, text):
        parent = searcher.get_parent()
        df = parent.doc_frequency(fieldname, text)
        return log(1 + (parent.doc_count() - df + 0.5) / (df + 0.5))


# Lengths vary (a one-line notice beside a long report), words repeat, two segments.
ARTICLES = [
    Article("short", "园区规划", "园区规划发布。", "产业规划", dt.date(2024, 1, 1)),
    Article("long", "高新区年度报告", "园区规划" * 3 + "高新区产业集群持续壮大，" * 12 + "科技创新成果丰硕。",
            "产业规划", dt.date(2024, 2, 1)),
    Article("title-only", "智慧城市园区", "建设进展顺利。", "智慧城市案例", dt.date(2024, 3, 1)),
    Article("body-only", "季度简报", "智慧城市与园区规划并进，智慧城市试点扩围。", "智慧城市案例", dt.date(2024, 4, 1)),
    Article("none", "农业发展", "现代农业示范区建设。", "区域经济研究", dt.date(2024, 5, 1)),
]
MORE = [
    Article("second-seg", "园区规划新思路", "高新区园区规划与产业集群协同。" * 2, "产业规划", dt.date(2025, 1, 1)),
    Article("cluster", "产业集群", "产业集群发展促进机构成立，产业集群招商。", "高新区新闻", dt.date(2025, 2, 1)),
    Article("city", "智慧城市大脑", "城市大脑上线，智慧城市再提速。", "智慧城市案例", dt.date(2025, 3, 1)),
]

QUERIES = {
    "one body word": q.Term(BODY, "园区"),
    "title boosted or body": q.Or((q.Term(TITLE, "园区", 3.0), q.Term(BODY, "园区"))),
    "every word, per field": q.And((
        q.Or((q.Term(TITLE, "园区", 3.0), q.Term(BODY, "园区"))),
        q.Or((q.Term(TITLE, "规划", 3.0), q.Term(BODY, "规划"))),
    )),
    "any of three words": q.Or((q.Term(BODY, "智慧"), q.Term(BODY, "产业"), q.Term(TITLE, "集群", 2.5))),
    "and not": q.AndNot(q.Term(BODY, "园区"), q.Term(BODY, "产业")),
    "bigram field": q.Or((q.Term(BODY_BIGRAMS, "园区"), q.Term(BODY_BIGRAMS, "规划", 0.5))),
}


@pytest.fixture(scope="module")
def searchers(jieba_cache):
    ix = ram_index(ARTICLES, MORE)
    with ix.searcher(weighting=LuceneIdfBM25F(B=0.75, K1=1.2)) as whoosh_searcher:
        yield ix, whoosh_searcher


def numpy_scorer(searcher, k1: float = 1.2, b: float = 0.75, whoosh_average: bool = True) -> tuple[Bm25, DocSetEvaluator]:
    """Bm25 over ``searcher``'s documents (none deleted).

    The average field length is Whoosh's (exact token totals / documents) or, with
    ``whoosh_average=False``, the service's: the mean of the one-byte lengths (snapshot.DocArrays).
    """
    commit = Commit.of_readers([leaf for leaf, _ in searcher.reader().leaf_readers()])
    live = np.ones(searcher.doc_count_all(), dtype=bool)
    lengths = {field: np.concatenate([segment.lengths(field) for segment in commit.segments]) for field in SCORED}
    if whoosh_average:
        average = {field: searcher.avg_field_length(field) for field in SCORED}
    else:
        average = {field: max(1.0, float(values[live].mean())) for field, values in lengths.items()}
    evaluator = DocSetEvaluator(commit, live)
    return Bm25(evaluator, lengths, average, int(live.sum()), k1=k1, b=b), evaluator


@pytest.mark.parametrize("name", list(QUERIES))
def test_numpy_bm25_gives_whoosh_bm25f_scores(searchers, name):
    _, searcher = searchers
    query = QUERIES[name]
    expected = {hit.docnum: hit.score for hit in searcher.search(to_whoosh(query), limit=None)}
    scorer, evaluator = numpy_scorer(searcher)
    docs = evaluator.docs(query)
    assert sorted(expected) == docs.tolist() and docs.size >= 2, name  # the same documents match
    scores = scorer.scores(query, docs)
    assert scores == pytest.approx([expected[d] for d in docs.tolist()], rel=1e-9), name
    # The order the service ranks by is Whoosh's order.
    assert np.argsort(-scores, kind="stable").tolist() == sorted(range(docs.size), key=lambda i: -expected[docs[i]])


def test_the_services_average_length_keeps_scores_within_two_percent_and_the_same_order(searchers):
    # The service averages the one-byte lengths it has per document (no exact totals per
    # snapshot): a long article's length is rounded, which moves scores by ~2% here, not the order.
    _, searcher = searchers
    for name, query in QUERIES.items():
        expected = {hit.docnum: hit.score for hit in searcher.search(to_whoosh(query), limit=None)}
        scorer, evaluator = numpy_scorer(searcher, whoosh_average=False)
        docs = evaluator.docs(query)
        scores = scorer.scores(query, docs)
        assert scores == pytest.approx([expected[d] for d in docs.tolist()], rel=0.02), name
        assert np.argsort(-scores, kind="stable").tolist() == \
            sorted(range(docs.size), key=lambda i: -expected[docs[i]]), name


def test_k1_and_b_are_used_as_whoosh_uses_them(jieba_cache):
    ix = ram_index(ARTICLES, MORE)
    query = QUERIES["title boosted or body"]
    for k1, b in [(0.5, 0.0), (2.0, 1.0)]:
        with ix.searcher(weighting=LuceneIdfBM25F(B=b, K1=k1)) as searcher:
            expected = {hit.docnum: hit.score for hit in searcher.search(to_whoosh(query), limit=None)}
            scorer, evaluator = numpy_scorer(searcher, k1=k1, b=b)
            docs = evaluator.docs(query)
            assert scorer.scores(query, docs) == pytest.approx([expected[d] for d in docs.tolist()], rel=1e-9)


def test_the_length_column_is_the_length_whoosh_reports(searchers):
    _, searcher = searchers
    for leaf, _ in searcher.reader().leaf_readers():
        segment = Commit.of_readers([leaf]).segments[0]
        for field in SCORED:
            fast = segment.lengths(field)
            assert fast.tolist() == [leaf.doc_field_length(d, field) for d in range(leaf.doc_count_all())], field
            assert fast.max() > fast.min()  # the articles really differ in length


def test_documents_outside_the_set_or_without_the_term_score_nothing(searchers):
    _, searcher = searchers
    scorer, evaluator = numpy_scorer(searcher)
    everything = np.arange(searcher.doc_count_all(), dtype=np.int64)
    scores = scorer.scores(q.Term(BODY, "农业"), everything)
    assert (scores > 0).sum() == 1 and scores[evaluator.term(BODY, "农业")[0]] > 0
    assert scorer.scores(q.Term(BODY, "不存在的词"), everything).tolist() == [0.0] * everything.size
    assert scorer.scores(q.Term(BODY, "园区"), np.zeros(0, dtype=np.int64)).size == 0
    # NOT contributes nothing: a document is ranked by what it has, not by what it lacks.
    assert scorer.scores(q.Not(q.Term(BODY, "园区")), everything).tolist() == [0.0] * everything.size


@pytest.mark.parametrize("field", [BODY_BIGRAMS, TITLE])
def test_a_prefix_s_terms_scored_at_once_give_the_per_term_scores_to_the_bit(searchers, field):
    # _add_terms (a prefix's expansion in one set of array operations) must add what _add_term
    # adds, in the same order: on top of earlier clauses' scores too, for a few candidates
    # (looked up in the postings) and for many (the postings looked up in them).
    _, searcher = searchers
    scorer, evaluator = numpy_scorer(searcher)
    terms = [text for text in evaluator.prefix_texts(field, "") if text][:64]
    assert len(terms) > 10
    everything = evaluator.docs(q.Or(tuple(q.Term(field, text) for text in terms)))
    sizes = [evaluator.postings(field, text)[0].size for text in terms]
    postings, scored = sum(sizes), sum(size > 0 for size in sizes)
    assert everything.size * scored >= postings > scored  # so both ways of looking up are taken
    for docs in (everything, everything[everything.size // 2:][:1]):
        start = np.linspace(0.0, 3.0, docs.size)
        one_by_one, at_once = start.copy(), start.copy()
        for text in terms:
            scorer._add_term(field, text, 0.37, docs, one_by_one)
        scorer._add_terms(field, terms, 0.37, docs, at_once)
        assert at_once.tobytes() == one_by_one.tobytes()
        assert (at_once != start).any()
