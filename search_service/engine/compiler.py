"""Compile a parsed query to the Whoosh queries of each tier.

:class:`CompiledQuery` turns the syntax tree of :mod:`syntax` into:

* ``words``: every word must match (jieba precise mode, title boosted);
* ``substring``: every term must occur verbatim (CJK bigram phrases);
* ``any_word``: at least one word matches (the last-resort relaxation).
"""

from __future__ import annotations

import dataclasses

from whoosh import query as wq

from ..text import analysis
from ..text.synonyms import SynonymTable
from .schema import BIGRAM_FIELDS, BODY, BODY_BIGRAMS, TITLE, TITLE_BIGRAMS, WORD_FIELDS
from .syntax import And, Node, Not, Term, all_terms, parsed, positive_terms


@dataclasses.dataclass
class CompiledQuery:
    """The Whoosh queries of each tier for one parsed query."""

    node: Node | None
    title_boost: float = 3.0
    synonyms: SynonymTable = dataclasses.field(default_factory=SynonymTable)

    def words(self) -> wq.Query:
        """Every word must match (in title or body, title weighted higher)."""
        return self._compile(self.node, substring=False)

    def substring(self) -> wq.Query:
        """Every term must occur verbatim (bigram phrases)."""
        return self._compile(self.node, substring=True)

    def any_word(self) -> wq.Query:
        """At least one positive word matches."""
        clauses = []
        for term in positive_terms(self.node):
            if term.prefix:
                clauses.append(self._prefix(term))
                continue
            words = analysis.query_words(term.text)
            if words:
                clauses.extend(self.word_clause(w, term.field) for w in words)
            else:
                clauses.append(self._substring(term))
            clauses.extend(self._words_of(alt, term.field) for alt in self._whole_alternatives(term))
        return wq.Or(clauses) if clauses else wq.NullQuery

    def prefixes(self) -> list[tuple[str, str]]:
        """(word field, normalized stem) of every prefix term, negated ones included.

        The searcher checks how many index terms each expands to (setting ``max_prefix_terms``).
        """
        found: dict[tuple[str, str], None] = {}
        for term in all_terms(self.node):
            if term.prefix:
                for field in (TITLE,) if term.field == TITLE else WORD_FIELDS:
                    found.setdefault((field, _stem(term)), None)
        return list(found)

    def is_plain(self) -> bool:
        """Plain words (and -words): no phrase, OR, field or prefix. Partial matches may follow these."""

        def plain(node: Node) -> bool:
            if isinstance(node, Term):
                return not (node.phrase or node.field or node.prefix)
            if isinstance(node, Not):
                return isinstance(node.child, Term)
            return isinstance(node, And) and all(plain(child) for child in node.children)

        return self.node is not None and plain(self.node) and bool(positive_terms(self.node))

    def bigrams_any(self) -> wq.Query:
        """Any of the positive terms' character bigrams, in body and (boosted) title.

        Ranks partial matches by shared characters when they share no jieba word (种业振兴
        against 种业 and 振兴, a product name jieba splits differently).
        """
        tokens: dict[str, None] = {}
        singles: dict[str, None] = {}
        for term in positive_terms(self.node):
            for group in analysis.query_bigram_groups(term.text):
                for token in group:
                    if len(token) == 1 and analysis.has_cjk(token):
                        singles.setdefault(token, None)
                    else:
                        tokens.setdefault(token, None)
        clauses = []
        for field, boost in ((BODY_BIGRAMS, 1.0), (TITLE_BIGRAMS, self.title_boost)):
            clauses += [wq.Term(field, token, boost=boost) for token in tokens]
            if not tokens:
                clauses += [wq.Prefix(field, char, boost=boost) for char in singles]
        return wq.Or(clauses) if clauses else wq.NullQuery

    def negatives(self) -> wq.Query:
        """What the query excludes (its NOT / -word terms), as words; NullQuery when nothing."""
        if not isinstance(self.node, And):
            return wq.NullQuery
        excluded = [self._compile(child.child, substring=False) for child in self.node.children
                    if isinstance(child, Not)]
        return wq.Or(excluded) if excluded else wq.NullQuery

    def expansions(self) -> list[dict]:
        """The synonym expansions this query applies: ``[{"term", "synonyms"}]``."""
        found: dict[str, tuple[str, ...]] = {}
        for term in positive_terms(self.node):
            whole = self._whole_alternatives(term)
            if whole:
                found[term.text] = whole
                continue
            if term.phrase:
                continue
            for word in analysis.query_words(term.text):
                alternatives = self.synonyms.alternatives(word)
                if alternatives:
                    found[word] = alternatives
        return [{"term": term, "synonyms": list(alts)} for term, alts in found.items()]

    def highlight_terms(self) -> list[str]:
        """Normalized strings to mark in titles and bodies: words and whole phrases."""
        marks: dict[str, None] = {}
        for term in positive_terms(self.node):
            norm = analysis.normalize(term.text).strip()
            if term.phrase:
                # A phrase matches only as a whole; marking its words alone would mislead.
                marks.setdefault(norm, None)
                continue
            if analysis.has_cjk(norm):
                marks.setdefault(norm, None)
            for word in analysis.query_words(term.text):
                marks.setdefault(word, None)
        for expansion in self.expansions():
            for alternative in expansion["synonyms"]:
                for part in alternative.split():
                    marks.setdefault(part, None)
        return [m for m in marks if m]

    def word_clause(self, word: str, field: str | None = None) -> wq.Query:
        """One normalized word in ``field`` (title or body, title boosted, when None), or any of
        its synonyms: what each word of :meth:`words` becomes."""
        alternatives = self.synonyms.alternatives(word) if self.synonyms.groups else ()
        clause = self._word(word, field)
        if not alternatives:
            return clause
        return wq.Or([clause, *(self._words_of(alt, field) for alt in alternatives)])

    # -- internals ------------------------------------------------------------------------

    def _compile(self, node: Node | None, substring: bool) -> wq.Query:
        if node is None:
            return wq.NullQuery
        if isinstance(node, Term):
            whole = self._whole_alternatives(node)
            if node.phrase or substring:
                query = self._substring(node)
                if whole:
                    query = wq.Or([query, *(self._substring(Term(alt, field=node.field)) for alt in whole)])
                return query
            if node.prefix:
                return self._prefix(node)
            words = analysis.query_words(node.text)
            if not words:
                # Only stop words or symbols: the verbatim match is the only meaning left.
                return self._substring(node)
            if whole:
                # The whole term is a synonym (经开区): it or any equivalent, each as all its words.
                return wq.Or([self._words_of(node.text, node.field),
                              *(self._words_of(alt, node.field) for alt in whole)])
            clauses = [self.word_clause(w, node.field) for w in words]
            return clauses[0] if len(clauses) == 1 else wq.And(clauses)
        if isinstance(node, Not):
            return wq.Not(self._compile(node.child, substring))
        children = [self._compile(child, substring) for child in node.children]
        if isinstance(node, And):
            positives = [c for c in children if not isinstance(c, wq.Not)]
            negatives = [c for c in children if isinstance(c, wq.Not)]
            if not positives:
                positives = [wq.Every()]
            if negatives:
                # Whoosh evaluates And(x, Not(y)) as AndNot, which is what we mean.
                return wq.AndNot(_and(positives), wq.Or([n.query for n in negatives]))
            return _and(positives)
        if any(isinstance(c, wq.Not) for c in children):
            children = [wq.AndNot(wq.Every(), c.query) if isinstance(c, wq.Not) else c for c in children]
        return wq.Or(children)

    def _whole_alternatives(self, term: Term) -> tuple[str, ...]:
        if term.prefix:
            return ()  # a prefix already stands for many words
        return self.synonyms.alternatives(term.text) if self.synonyms.groups else ()

    def _words_of(self, text: str, field: str | None) -> wq.Query:
        """All the words of ``text`` (no synonyms), or its substring when it has none."""
        clauses = [self._word(w, field) for w in analysis.query_words(text)]
        if not clauses:
            return self._substring(Term(text, field=field))
        return _and(clauses)

    def _prefix(self, term: Term) -> wq.Query:
        """``stem*``: any word of the word fields starting with the normalized stem."""
        stem = _stem(term)
        if not stem:
            return wq.NullQuery
        if term.field == TITLE:
            return wq.Prefix(TITLE, stem)
        return wq.Or([wq.Prefix(TITLE, stem, boost=self.title_boost), wq.Prefix(BODY, stem)])

    def _word(self, word: str, field: str | None) -> wq.Query:
        if field == TITLE:
            return wq.Term(TITLE, word)
        return wq.Or([wq.Term(TITLE, word, boost=self.title_boost), wq.Term(BODY, word)])

    def _substring(self, term: Term) -> wq.Query:
        fields = (TITLE_BIGRAMS,) if term.field == TITLE else BIGRAM_FIELDS
        groups = analysis.query_bigram_groups(term.text)
        if not groups:
            return wq.NullQuery
        per_field = []
        for field in fields:
            boost = self.title_boost if field == TITLE_BIGRAMS else 1.0
            parts = [_bigram_clause(field, tokens, boost) for tokens in groups]
            per_field.append(_and(parts))
        return per_field[0] if len(per_field) == 1 else wq.Or(per_field)


def _stem(term: Term) -> str:
    """The normalized text of a prefix term, as index words are written."""
    return analysis.normalize(term.text).strip()


def _bigram_clause(field: str, tokens: list[str], boost: float) -> wq.Query:
    if len(tokens) == 1:
        token = tokens[0]
        if len(token) == 1 and analysis.has_cjk(token):
            # One character: every bigram starting with it, and the run-final unigram.
            return wq.Prefix(field, token, boost=boost)
        return wq.Term(field, token, boost=boost)
    return wq.Phrase(field, tokens, boost=boost)


def _and(queries: list[wq.Query]) -> wq.Query:
    return queries[0] if len(queries) == 1 else wq.And(queries)


def compile_query(text: str, title_boost: float = 3.0, synonyms: SynonymTable | None = None) -> CompiledQuery:
    """Parse and wrap a query string."""
    return CompiledQuery(parsed(text).node, title_boost, synonyms or SynonymTable())

