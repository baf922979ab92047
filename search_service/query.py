"""From request parameters to Whoosh queries.

:class:`SearchRequest` is the validated form of the API's parameters (the HTML
pages use the same names). :func:`parse` turns the query text into a small
syntax tree (words, "phrases", OR, NOT/-word, parentheses, ``title:``, ``word*``
prefixes); a malformed query falls back to plain words instead of failing. :class:`CompiledQuery`
turns that tree into the Whoosh queries of each tier:

* ``words``: every word must match (jieba precise mode, title boosted);
* ``substring``: every term must occur verbatim (CJK bigram phrases);
* ``any_word``: at least one word matches (the last-resort relaxation).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from whoosh import query as wq

from . import analysis
from .categories import canonical_category
from .errors import InvalidParameter
from .schema import BIGRAM_FIELDS, BODY, BODY_BIGRAMS, TITLE, TITLE_BIGRAMS, WORD_FIELDS, day_number
from .synonyms import SynonymTable

SORTS = ("relevance", "date_desc", "date_asc")

# --------------------------------------------------------------------------- request


@dataclasses.dataclass(frozen=True)
class Limits:
    """Request limits taken from the settings."""

    max_query_length: int = 256
    max_page_size: int = 100
    max_result_window: int = 10000
    default_page_size: int = 10
    max_categories: int = 20


@dataclasses.dataclass(frozen=True)
class SearchRequest:
    """A validated search: the same fields as ``/api/search``'s parameters."""

    q: str = ""
    categories: tuple[str, ...] = ()
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    sort: str = "relevance"
    page: int = 1
    page_size: int = 10
    #: False (``correct=0``): search the query exactly as typed, never a homophone/pinyin correction.
    correct: bool = True

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size

    def cache_key(self) -> tuple:
        return (self.q, tuple(sorted(self.categories)), self.date_from, self.date_to, self.sort,
                self.page, self.page_size, self.correct)

    def to_params(self, **changes) -> list[tuple[str, str]]:
        """URL parameters that reproduce this request (defaults left out), with changes applied.

        ``categories`` may be given as a tuple; ``None`` removes a parameter.
        """
        values: dict[str, Any] = {  # strings, except categories (a tuple); changes are any of these
            "q": self.q,
            "categories": self.categories,
            "date_from": self.date_from.isoformat() if self.date_from else "",
            "date_to": self.date_to.isoformat() if self.date_to else "",
            "sort": self.sort if self.sort != "relevance" else "",
            "page": str(self.page) if self.page != 1 else "",
            "page_size": str(self.page_size) if self.page_size != 10 else "",
            "correct": "" if self.correct else "0",
        }
        for key, value in changes.items():
            if isinstance(value, dt.date):
                value = value.isoformat()
            values[key] = value if value is not None else ("" if key != "categories" else ())
        params: list[tuple[str, str]] = []
        if values["q"]:
            params.append(("q", values["q"]))
        params.extend(("category", c) for c in values["categories"])
        for key in ("date_from", "date_to", "sort", "page", "page_size", "correct"):
            if values[key]:
                params.append((key, str(values[key])))
        return params

    @classmethod
    def from_params(cls, get_list: Callable[[str], Sequence[str]], limits: Limits = Limits()) -> SearchRequest:
        """Validate raw parameters; ``get_list(name)`` returns every value given for ``name``.

        Raises :class:`InvalidParameter` naming the parameter, the limit and the fix.
        """
        q = _single(get_list, "q").strip()
        _check_unicode("q", q)
        if len(q) > limits.max_query_length:
            raise InvalidParameter(
                f"q is {len(q)} characters long; the limit is {limits.max_query_length}. Shorten the query.",
                param="q",
            )
        given = get_list("category")
        if len(given) > limits.max_categories:
            raise InvalidParameter(
                f"category was given {len(given)} times; the limit is {limits.max_categories} "
                "(setting max_categories). Filter on fewer categories.",
                param="category",
            )
        for value in given:
            _check_unicode("category", value)
        categories = tuple(dict.fromkeys(canonical_category(c) for c in given if c.strip()))
        date_from = _date(get_list, "date_from")
        date_to = _date(get_list, "date_to")
        if date_from and date_to and date_from > date_to:
            raise InvalidParameter(
                f"date_from ({date_from}) is after date_to ({date_to}); swap them or drop one.",
                param="date_from",
            )
        sort = _single(get_list, "sort") or "relevance"
        if sort not in SORTS:
            raise InvalidParameter(
                f"sort must be one of {', '.join(SORTS)}; got {sort!r}.", param="sort"
            )
        page = integer_param(get_list, "page", 1, 1, None)
        page_size = integer_param(get_list, "page_size", limits.default_page_size, 1, limits.max_page_size,
                             setting="max_page_size")
        if page * page_size > limits.max_result_window:
            raise InvalidParameter(
                f"page {page} with page_size {page_size} reaches result {page * page_size}; results deeper "
                f"than {limits.max_result_window} are not paged (setting max_result_window). Narrow the "
                "search with filters instead.",
                param="page",
            )
        correct = _boolean(get_list, "correct", True)
        return cls(q, categories, date_from, date_to, sort, page, page_size, correct)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_unicode(name: str, value: str) -> None:
    """Refuse lone surrogates (invalid Unicode: from a command line's undecodable bytes, say)."""
    match = _SURROGATE.search(value)
    if match:
        raise InvalidParameter(f"{name} contains invalid Unicode (a lone surrogate U+{ord(match.group()):04X}); "
                               "send UTF-8 text.", param=name)


def _single(get_list: Callable[[str], Sequence[str]], name: str) -> str:
    values = get_list(name)
    if len(values) > 1:
        raise InvalidParameter(f"{name} was given {len(values)} times; give it once.", param=name)
    return values[0] if values else ""


def integer_param(get_list, name: str, default: int, low: int, high: int | None, setting: str = "",
                  empty_is_default: bool = True) -> int:
    """The whole number given once as ``name`` (``default`` when absent), within ``low``..``high``.

    An empty value means the default too, unless ``empty_is_default`` is false (then it is refused).

    Only ASCII digits, at most 9 of them: ``int()`` would also take ``٣`` or ``１`` (and
    ``str.isdigit`` even ``²``, which ``int()`` then refuses), and a 5,000-digit value
    is an error of its own in Python. Raises :class:`InvalidParameter` naming ``name``.
    """
    raw = _single(get_list, name).strip()
    if not raw and (empty_is_default or not get_list(name)):
        return default
    if not re.fullmatch(r"[0-9]{1,9}", raw, re.ASCII):
        shown = raw if len(raw) <= 40 else raw[:40] + f"…({len(raw)} characters)"
        bound = f" between {low} and {high}" if high is not None else f" of at least {low}"
        raise InvalidParameter(f"{name} must be a whole number{bound}, written in ASCII digits 0-9; "
                               f"got {shown!r}.", param=name)
    value = int(raw)
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        where = f" (setting {setting})" if setting and high is not None and value > high else ""
        raise InvalidParameter(f"{name} must be {bound}{where}; got {value}.", param=name)
    return value


def _boolean(get_list, name: str, default: bool) -> bool:
    raw = _single(get_list, name).strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise InvalidParameter(f"{name} must be 1 or 0 (true or false); got {raw[:40]!r}.", param=name)


def _date(get_list, name: str) -> dt.date | None:
    raw = _single(get_list, name).strip()
    if not raw:
        return None
    problem = f"{name} must be a date written YYYY-MM-DD, e.g. 2025-09-11; got {raw!r}."
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        raise InvalidParameter(problem, param=name)
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:  # well-formed but impossible, e.g. 2024-02-30
        raise InvalidParameter(problem, param=name) from None


# --------------------------------------------------------------------------- syntax tree


@dataclasses.dataclass(frozen=True)
class Term:
    """A word (segmented further by jieba) or a quoted phrase, optionally in ``title``.

    ``prefix``: the word was typed ``text*`` and matches every index word starting with it.
    """

    text: str
    phrase: bool = False
    field: str | None = None
    prefix: bool = False


@dataclasses.dataclass(frozen=True)
class Not:
    child: Node


@dataclasses.dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclasses.dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


Node = Term | Not | And | Or

# Chinese users type “”, 「」 and full-width quotes as often as ASCII ones.
_QUOTES = {'"': '"', "“": "”", "「": "」", "『": "』", "＂": "＂", "”": "”"}
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<lparen>[(（])
      | (?P<rparen>[)）])
      | (?P<quoted>(?P<qmark>["“「『＂”]).*?(?:["”」』＂]|$))
      | (?P<word>[^\s()（）"“”「」『』＂]+)
    )""",
    re.VERBOSE,
)


class _Malformed(Exception):
    pass


#: Deepest nesting a query may have, counted as its deepest parenthesis plus all its
#: negations (NOT, -word). The parser and every walk over the tree recurse once per level,
#: so this keeps a 256-character query of ``(`` far from Python's recursion limit; real
#: queries nest two or three levels.
MAX_QUERY_DEPTH = 64


def _depth(tokens: list[tuple[str, str]]) -> int:
    """An upper bound of the tree depth ``tokens`` can produce (see :data:`MAX_QUERY_DEPTH`)."""
    level = deepest = negations = 0
    for kind, value in tokens:
        if kind == "(":
            level += 1
            deepest = max(deepest, level)
        elif kind == ")":
            level = max(0, level - 1)
        elif kind == "not":
            negations += 1
        elif kind == "word":
            negations += len(value) - len(value.lstrip("-"))
    return deepest + negations


def query_depth(text: str) -> int:
    """How deeply ``text`` nests (parentheses plus negations); 0 for plain words."""
    tokens = _lex(text)
    return _depth(tokens) if tokens else 0


def parse(text: str) -> Node | None:
    """The syntax tree of a query, or None for an empty query.

    Never raises: unbalanced quotes or parentheses and lone operators make the
    whole query plain words.
    """
    tokens = _lex(text)
    if tokens is None or _depth(tokens) > MAX_QUERY_DEPTH:
        return _plain_words(text)
    if not tokens:
        return None
    parser = _Parser(tokens)
    try:
        node = parser.expression()
        if parser.peek() is not None:
            raise _Malformed
        return node
    except _Malformed:
        return _plain_words(text)


def _lex(text: str) -> list[tuple[str, str]] | None:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            break
        pos = match.end()
        kind = match.lastgroup if match.lastgroup != "qmark" else "quoted"
        if match.group("lparen"):
            tokens.append(("(", "("))
        elif match.group("rparen"):
            tokens.append((")", ")"))
        elif match.group("quoted"):
            raw = match.group("quoted")
            opener = raw[0]
            if len(raw) < 2 or raw[-1] != _QUOTES.get(opener, '"') and raw[-1] not in '"”」』＂':
                return None  # unbalanced quote
            tokens.append(("phrase", raw[1:-1]))
        elif kind == "word":
            tokens.append(_classify(match.group("word")))
    return tokens


def _classify(word: str) -> tuple[str, str]:
    if word in ("OR", "|", "||"):
        return ("or", word)
    if word in ("AND", "&&"):
        return ("and", word)
    if word == "NOT":
        return ("not", word)
    return ("word", word)


class _Parser:
    """Recursive descent: expr := and ('OR' and)* ; and := unary+ ; unary := NOT unary | primary."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expression(self) -> Node:
        children = [self.conjunction()]
        while (token := self.peek()) is not None and token[0] == "or":
            self.take()
            children.append(self.conjunction())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def conjunction(self) -> Node:
        children: list[Node] = []
        while True:
            token = self.peek()
            if token is None or token[0] in ("or", ")"):
                break
            if token[0] == "and":
                self.take()
                if not children:
                    raise _Malformed
                continue
            children.append(self.unary())
        if not children:
            raise _Malformed
        return children[0] if len(children) == 1 else And(tuple(children))

    def unary(self) -> Node:
        token = self.peek()
        if token is None:
            raise _Malformed
        if token[0] == "not":
            self.take()
            return Not(self.unary())
        if token[0] == "word" and token[1].startswith("-") and len(token[1]) > 1:
            self.take()
            rest = token[1][1:]
            self.tokens.insert(self.pos, _classify(rest) if rest not in ("OR", "AND", "NOT") else ("word", rest))
            return Not(self.unary())
        return self.primary()

    def primary(self) -> Node:
        token = self.take()
        kind, value = token
        if kind == "(":
            node = self.expression()
            if self.peek() is None or self.take()[0] != ")":
                raise _Malformed
            return node
        if kind == "phrase":
            if not value.strip():
                raise _Malformed
            return Term(value.strip(), phrase=True)
        if kind == "word":
            field, _, rest = value.partition(":")
            if rest and field.lower() == "title":
                return _word_term(rest, TITLE)
            if field.lower() == "title" and not rest and value.endswith(":"):
                nxt = self.peek()
                if nxt is not None and nxt[0] == "phrase":
                    self.take()
                    return Term(nxt[1].strip(), phrase=True, field=TITLE)
                raise _Malformed
            return _word_term(value)
        raise _Malformed


def _word_term(word: str, field: str | None = None) -> Term:
    """``word*`` is a prefix term; a leading ``*`` stays in the text (see :func:`check_query`)."""
    stem = word.rstrip("*")
    if stem != word and stem and not stem.startswith("*"):
        return Term(stem, field=field, prefix=True)
    return Term(word, field=field)


def _plain_words(text: str) -> Node | None:
    words = [w for w in re.split(r"[\s()（）\"“”「」『』＂]+", text) if w and w not in ("OR", "AND", "NOT", "-", "|")]
    words = [w.lstrip("-") or w for w in words]
    terms = tuple(_word_term(w) for w in words)
    if not terms:
        return None
    return terms[0] if len(terms) == 1 else And(terms)


def positive_terms(node: Node | None) -> list[Term]:
    """The terms that are not under a NOT: what highlighting marks."""
    if node is None:
        return []
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Not):
        return []
    return [t for child in node.children for t in positive_terms(child)]


def all_terms(node: Node | None) -> list[Term]:
    """Every term of the query, negated ones included."""
    if node is None:
        return []
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Not):
        return all_terms(node.child)
    return [t for child in node.children for t in all_terms(child)]


def check_query(text: str, max_terms: int) -> None:
    """Refuse what would make a query expensive or is not supported, naming the limit.

    Raises :class:`InvalidParameter` (param ``q``) for a leading wildcard (``*abc``), for
    nesting deeper than :data:`MAX_QUERY_DEPTH` and for more than ``max_terms`` words and
    phrases (setting ``max_query_terms``).
    """
    depth = query_depth(text)
    if depth > MAX_QUERY_DEPTH:
        raise InvalidParameter(
            f"q nests parentheses and negations (NOT, -word) {depth} levels deep; the limit is "
            f"{MAX_QUERY_DEPTH}. Remove the extra parentheses.",
            param="q",
        )
    terms = all_terms(parse(text))
    for term in terms:
        if not term.phrase and term.text.startswith("*"):
            raise InvalidParameter(
                f"{term.text!r}: a wildcard may only end a word (word*); leading wildcards such as *abc "
                "are not supported. Type the beginning of the word, then *.",
                param="q",
            )
    if len(terms) > max_terms:
        raise InvalidParameter(
            f"q has {len(terms)} words and phrases; the limit is {max_terms} (setting max_query_terms). "
            "Use fewer words.",
            param="q",
        )


def is_negative_only(node: Node | None) -> bool:
    """True when nothing in the query can match by itself (``-foo``, ``NOT a NOT b``)."""
    return node is not None and not positive_terms(node)


# --------------------------------------------------------------------------- compile


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
                clauses.extend(self._word_or_synonyms(w, term.field) for w in words)
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
            clauses = [self._word_or_synonyms(w, node.field) for w in words]
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

    def _word_or_synonyms(self, word: str, field: str | None) -> wq.Query:
        alternatives = self.synonyms.alternatives(word) if self.synonyms.groups else ()
        clause = self._word(word, field)
        if not alternatives:
            return clause
        return wq.Or([clause, *(self._words_of(alt, field) for alt in alternatives)])

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
    return CompiledQuery(parse(text), title_boost, synonyms or SynonymTable())


def date_bounds(request: SearchRequest) -> tuple[int, int]:
    """The request's date filter as inclusive YYYYMMDD bounds (0 / 99999999 when open)."""
    low = day_number(request.date_from) if request.date_from else 0
    high = day_number(request.date_to) if request.date_to else 99_999_999
    return low, high


def get_list_from_mapping(params: Mapping[str, object]) -> Callable[[str], list[str]]:
    """Adapter: a plain dict of str or list values as a ``get_list`` callable (CLI, tests)."""

    def get_list(name: str) -> list[str]:
        value = params.get(name)
        if value is None:
            return []
        if isinstance(value, (list, tuple)):
            return [str(v) for v in value]
        return [str(value)]

    return get_list
