"""Compile a parsed query to the engine's queries (:mod:`query`) of each tier.

:class:`CompiledQuery` turns the syntax tree of :mod:`syntax` into:

* ``words``: every word must match (jieba precise mode, title boosted);
* ``substring``: every term must occur verbatim (CJK bigram phrases);
* ``any_word``: at least one word matches (the last-resort relaxation).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ..text import analysis, regional
from ..text.synonyms import SynonymTable
from . import query as q
from .schema import BIGRAM_FIELDS, BODY, BODY_BIGRAMS, TITLE, TITLE_BIGRAMS, WORD_FIELDS
from .syntax import And, Node, Not, Term, all_terms, parsed, positive_terms


@dataclasses.dataclass
class CompiledQuery:
    """The queries of each tier for one parsed query."""

    node: Node | None
    title_boost: float = 3.0
    synonyms: SynonymTable = dataclasses.field(default_factory=SynonymTable)
    #: ``regional(text)``: the regional words of a term and their counterparts that the index holds
    #: (人工智慧 → 人工智能, see :mod:`text.regional`); None: no regional vocabulary.
    regional: Callable[[str], list[tuple[str, str]]] | None = None
    #: What was compiled or looked up already (a search asks for the same queries several times).
    _memo: dict = dataclasses.field(default_factory=dict, init=False, compare=False, repr=False)

    def words(self) -> q.Query:
        """Every word must match (in title or body, title weighted higher)."""
        found = self._memo.get("words")
        if found is None:
            found = self._memo["words"] = self._compile(self.node, substring=False)
        return found

    def substring(self) -> q.Query:
        """Every term must occur verbatim (bigram phrases)."""
        found = self._memo.get("substring")
        if found is None:
            found = self._memo["substring"] = self._compile(self.node, substring=True)
        return found

    def any_word(self) -> q.Query:
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
            clauses.extend(self._words_of(alt, term.field) for alt in self._regional_alternatives(term))
        return q.any_of(clauses)

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

    def bigrams_any(self) -> q.Query:
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
        clauses: list[q.Query] = []
        for field, boost in ((BODY_BIGRAMS, 1.0), (TITLE_BIGRAMS, self.title_boost)):
            clauses += [q.Term(field, token, boost) for token in tokens]
            if not tokens:
                clauses += [q.Prefix(field, char, boost) for char in singles]
        return q.any_of(clauses)

    def negatives(self) -> q.Query:
        """What the query excludes (its NOT / -word terms), as words; NOTHING when nothing."""
        if not isinstance(self.node, And):
            return q.NOTHING
        excluded = [self._compile(child.child, substring=False) for child in self.node.children
                    if isinstance(child, Not)]
        return q.any_of(excluded)

    def expansions(self) -> list[dict]:
        """The synonym expansions this query applies: ``[{"term", "synonyms"}]``."""
        found: dict[str, tuple[str, ...]] = {}
        for term in positive_terms(self.node):
            for typed, counterpart in self._regional_pairs(term):
                found[typed] = tuple(dict.fromkeys(found.get(typed, ()) + (counterpart,)))
            whole = self._whole_alternatives(term)
            if whole:
                found[term.text] = tuple(dict.fromkeys(found.get(term.text, ()) + whole))
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

    def word_clause(self, word: str, field: str | None = None) -> q.Query:
        """One normalized word in ``field`` (title or body, title boosted, when None), or any of
        its synonyms: what each word of :meth:`words` becomes."""
        alternatives = self.synonyms.alternatives(word) if self.synonyms.groups else ()
        clause = self._word(word, field)
        if not alternatives:
            return clause
        return q.Or((clause, *(self._words_of(alt, field) for alt in alternatives)))

    # -- internals ------------------------------------------------------------------------

    def _compile(self, node: Node | None, substring: bool) -> q.Query:
        if node is None:
            return q.NOTHING
        if isinstance(node, Term):
            whole = self._whole_alternatives(node)
            if node.phrase or substring:
                query = self._substring(node)
                alternatives = whole + (() if node.phrase else self._regional_alternatives(node))
                if alternatives:
                    query = q.Or((query, *(self._substring(Term(alt, field=node.field)) for alt in alternatives)))
                return query
            if node.prefix:
                return self._prefix(node)
            words = analysis.query_words(node.text)
            if not words:
                # Only stop words or symbols: the verbatim match is the only meaning left.
                return self._substring(node)
            regional_alternatives = self._regional_alternatives(node)
            if whole:
                # The whole term is a synonym (经开区): it or any equivalent, each as all its words.
                return q.Or((self._words_of(node.text, node.field),
                             *(self._words_of(alt, node.field) for alt in whole + regional_alternatives)))
            query = q.all_of([self.word_clause(w, node.field) for w in words])
            if regional_alternatives:
                # 人工智慧: its words, or the words of the term in the other region's vocabulary.
                return q.Or((query, *(q.all_of([self.word_clause(w, node.field) for w in analysis.query_words(alt)])
                                      for alt in regional_alternatives)))
            return query
        if isinstance(node, Not):
            return q.Not(self._compile(node.child, substring))
        children = [self._compile(child, substring) for child in node.children]
        if isinstance(node, And):
            positives = [c for c in children if not isinstance(c, q.Not)]
            negatives = [c for c in children if isinstance(c, q.Not)]
            if not positives:
                positives = [q.EVERY]
            if negatives:
                # x AND -y: the documents of x without those of y.
                return q.AndNot(q.all_of(positives), q.any_of([n.child for n in negatives]))
            return q.all_of(positives)
        if any(isinstance(c, q.Not) for c in children):
            children = [q.AndNot(q.EVERY, c.child) if isinstance(c, q.Not) else c for c in children]
        return q.Or(tuple(children))

    def _whole_alternatives(self, term: Term) -> tuple[str, ...]:
        if term.prefix:
            return ()  # a prefix already stands for many words
        return self.synonyms.alternatives(term.text) if self.synonyms.groups else ()

    def _regional_pairs(self, term: Term) -> list[tuple[str, str]]:
        """(typed word, counterpart) of the regional vocabulary in a plain term (not a quoted
        phrase, which means the text as typed, nor a prefix)."""
        if self.regional is None or term.phrase or term.prefix or not analysis.has_cjk(term.text):
            return []
        key = ("regional", term.text)  # asked by the compilation, any_word and expansions
        pairs = self._memo.get(key)
        if pairs is None:
            pairs = self._memo[key] = self.regional(analysis.normalize(term.text).strip())
        return pairs

    def _regional_alternatives(self, term: Term) -> tuple[str, ...]:
        """The term written with the other region's vocabulary (人工智慧发展 → 人工智能发展), or ()."""
        pairs = self._regional_pairs(term)
        if not pairs:
            return ()
        return (regional.alternative(analysis.normalize(term.text).strip(), pairs),)

    def _words_of(self, text: str, field: str | None) -> q.Query:
        """All the words of ``text`` (no synonyms), or its substring when it has none."""
        clauses = [self._word(w, field) for w in analysis.query_words(text)]
        if not clauses:
            return self._substring(Term(text, field=field))
        return q.all_of(clauses)

    def _prefix(self, term: Term) -> q.Query:
        """``stem*``: any word of the word fields starting with the normalized stem."""
        stem = _stem(term)
        if not stem:
            return q.NOTHING
        if term.field == TITLE:
            return q.Prefix(TITLE, stem)
        return q.Or((q.Prefix(TITLE, stem, self.title_boost), q.Prefix(BODY, stem)))

    def _word(self, word: str, field: str | None) -> q.Query:
        if field == TITLE:
            return q.Term(TITLE, word)
        return q.Or((q.Term(TITLE, word, self.title_boost), q.Term(BODY, word)))

    def _substring(self, term: Term) -> q.Query:
        fields = (TITLE_BIGRAMS,) if term.field == TITLE else BIGRAM_FIELDS
        groups = analysis.query_bigram_groups(term.text)
        if not groups:
            return q.NOTHING
        per_field = []
        for field in fields:
            boost = self.title_boost if field == TITLE_BIGRAMS else 1.0
            per_field.append(q.all_of([_bigram_clause(field, tokens, boost) for tokens in groups]))
        return q.any_of(per_field)


def _stem(term: Term) -> str:
    """The normalized text of a prefix term, as index words are written."""
    return analysis.normalize(term.text).strip()


def _bigram_clause(field: str, tokens: list[str], boost: float) -> q.Query:
    if len(tokens) == 1:
        token = tokens[0]
        if len(token) == 1 and analysis.has_cjk(token):
            # One character: every bigram starting with it, and the run-final unigram.
            return q.Prefix(field, token, boost)
        return q.Term(field, token, boost)
    return q.Phrase(field, tuple(tokens), boost)


def compile_query(text: str, title_boost: float = 3.0, synonyms: SynonymTable | None = None) -> CompiledQuery:
    """Parse and wrap a query string."""
    return CompiledQuery(parsed(text).node, title_boost, synonyms or SynonymTable())



def verbatim_query(text: str) -> q.Query:
    """Articles holding ``text`` verbatim, in title or body (bigram phrases, no boost): the evidence
    the correction weighs a typed text and its alternatives by (see :mod:`correction`)."""
    return CompiledQuery(None, 1.0)._substring(Term(text))
