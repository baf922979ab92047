"""BM25 scores for a whole matched set at once, in numpy.

Whoosh scores one document at a time through its matcher tree, about 25 µs
each: 45 ms for a query whose words occur in 1,800 articles. Here every leaf
term's postings (already read as arrays by :mod:`docsets`) are scored in one
vectorized step and summed the way Whoosh combines them (AND and OR add the
scores of the clauses that match), so the ranking needs no Whoosh search call.

BM25 per field with Lucene's idf, ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))``,
and per-field length normalization against that field's average length.
"""

from __future__ import annotations

import numpy as np

from . import query as q
from .docsets import DocSetEvaluator

#: Terms of a prefix's expansion (the first, in order) whose postings score it.
PREFIX_SCORED_TERMS = 64


class Bm25:
    """Scores the documents of a sorted array for a query tree."""

    def __init__(self, evaluator: DocSetEvaluator, lengths: dict[str, np.ndarray],
                 average_lengths: dict[str, float], live_count: int, k1: float = 1.2, b: float = 0.75) -> None:
        self.evaluator = evaluator
        self.lengths = lengths
        self.average_lengths = average_lengths
        self.live_count = max(1, live_count)
        self.k1 = k1
        self.b = b

    def scores(self, query: q.Query, docs: np.ndarray) -> np.ndarray:
        """Score of each document in ``docs`` (sorted, unique) for ``query``."""
        total = np.zeros(docs.size, dtype=np.float64)
        if docs.size:
            self._add(query, docs, total)
        return total

    def _add(self, query: q.Query, docs: np.ndarray, total: np.ndarray) -> None:
        if isinstance(query, q.Term):
            self._add_term(query.field, query.text, query.boost, docs, total)
        elif isinstance(query, q.Phrase):
            # A phrase scores as the sum of its words: frequency of the words stands in
            # for the phrase's own frequency, which would have to be counted by position.
            for word in query.words:
                self._add_term(query.field, word, query.boost, docs, total)
        elif isinstance(query, q.Prefix):
            # A one-character prefix can expand to thousands of terms; the first few suffice, and
            # only theirs are read (the rest are only counted, from the term tables).
            terms = self.evaluator.prefix_texts(query.field, query.text)
            head = terms[:PREFIX_SCORED_TERMS]
            if head:
                self.evaluator.read_prefix_head(query.field, query.text, head)
                self._add_terms(query.field, head, query.boost / max(1, len(terms)) ** 0.5, docs, total)
        elif isinstance(query, q.AndNot):
            self._add(query.positive, docs, total)
        elif isinstance(query, (q.And, q.Or)):
            for child in query.children:
                self._add(child, docs, total)
        # Not, Every, Nothing contribute nothing to relevance.

    def _add_terms(self, field: str, texts: list[str], boost: float, docs: np.ndarray, total: np.ndarray) -> None:
        """``_add_term`` for each of ``texts`` in turn (a prefix's expansion: up to 64 terms), in one
        set of array operations instead of one per term: the same additions in the same order,
        so the same scores to the last bit (``np.add.at`` adds element by element, in order)."""
        lists = [self.evaluator.postings(field, text) for text in texts]
        lists = [(postings, freqs) for postings, freqs in lists if postings.size]
        if not lists:
            return
        sizes = np.array([postings.size for postings, _ in lists], dtype=np.int64)
        all_postings = np.concatenate([postings for postings, _ in lists])
        all_freqs = np.concatenate([freqs for _, freqs in lists])
        term_of = np.repeat(np.arange(len(lists), dtype=np.int64), sizes)
        # Look the shorter side up in the longer one, as _add_term does, but for all terms at once.
        if docs.size * len(lists) < all_postings.size:
            keys = term_of << 32 | all_postings  # sorted: terms in order, each term's postings ascending
            wanted = (np.arange(len(lists), dtype=np.int64)[:, None] << 32 | docs[None, :]).ravel()
            positions = np.searchsorted(keys, wanted)
            positions[positions >= keys.size] = 0
            found = np.flatnonzero(keys[positions] == wanted)
            where = found % docs.size
            term, matched, tf = found // docs.size, docs[where], all_freqs[positions[found]]
        else:
            positions = np.searchsorted(docs, all_postings)
            positions[positions >= docs.size] = 0
            hit = docs[positions] == all_postings
            where, term, matched, tf = positions[hit], term_of[hit], all_postings[hit], all_freqs[hit]
        if not where.size:
            return
        np.add.at(total, where, self._contributions(field, (boost * self._idf(sizes))[term], matched, tf))

    def _add_term(self, field: str, text: str, boost: float, docs: np.ndarray, total: np.ndarray) -> None:
        postings, freqs = self.evaluator.postings(field, text)
        if not postings.size:
            return
        # Both are sorted: look the shorter one up in the longer (a common word's postings are
        # often a hundred times the candidates).
        if docs.size < postings.size:
            positions = np.searchsorted(postings, docs)
            positions[positions >= postings.size] = 0
            found = postings[positions] == docs
            where = np.flatnonzero(found)
            if not where.size:
                return
            matched, tf = docs[where], freqs[positions[found]]
        else:
            positions = np.searchsorted(docs, postings)
            positions[positions >= docs.size] = 0
            hit = docs[positions] == postings
            if not hit.any():
                return
            where, matched, tf = positions[hit], postings[hit], freqs[hit]
        total[where] += self._contributions(field, boost * self._idf(postings.size), matched, tf)

    def _idf(self, df):
        """Lucene's idf of a document frequency (an int, or an array of them)."""
        return np.log(1.0 + (self.live_count - df + 0.5) / (df + 0.5))

    def _contributions(self, field: str, weight, matched: np.ndarray, tf: np.ndarray) -> np.ndarray:
        """BM25 of ``tf`` occurrences in documents ``matched``, times ``weight`` (boost x idf, one or
        one per posting); the operations in one order, so both callers add the same bits."""
        field_lengths = self.lengths.get(field)
        if field_lengths is None:
            # A field without length statistics (title_py): no length normalization.
            norm = self.k1
        else:
            norm = self.k1 * (1.0 - self.b + self.b * field_lengths[matched] / self.average_lengths[field])
        return weight * tf * (self.k1 + 1.0) / (tf + norm)
