"""The query syntax: query text to a small syntax tree, and the limits a query must keep.

:func:`parsed` turns the text into a :class:`ParsedQuery` (words, "phrases", OR,
NOT/-word, parentheses, ``title:``, ``word*`` prefixes); a malformed query falls back to
plain words instead of failing. Each text is parsed once per process while it is recent
(a small memo): the request's validation, the searcher and the page's highlighting all
ask for the same parse. :func:`check_query` refuses what would be expensive or is not
supported (deep nesting, too many terms, leading wildcards). Compilation to Whoosh is in
:mod:`compiler`.
"""

from __future__ import annotations

import dataclasses
import functools
import re

from ..errors import InvalidParameter
from .schema import TITLE


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




@dataclasses.dataclass(frozen=True)
class ParsedQuery:
    """A query as typed, its syntax tree (None when empty) and how deeply it nests."""

    text: str
    node: Node | None
    #: Parentheses plus negations as typed (see :data:`MAX_QUERY_DEPTH`); 0 for plain words.
    depth: int


# Distinct texts kept parsed: a request, its correction and its page's highlighting ask for the same text.
_PARSED_MEMO = 1024


@functools.lru_cache(maxsize=_PARSED_MEMO)
def parsed(text: str) -> ParsedQuery:
    """The parse of ``text`` (memoized: the tree is immutable, so every caller may share it).

    Never raises: unbalanced quotes or parentheses and lone operators make the whole query
    plain words, and so does nesting deeper than :data:`MAX_QUERY_DEPTH`.
    """
    tokens = _lex(text)
    depth = _depth(tokens) if tokens else 0
    if tokens is None or depth > MAX_QUERY_DEPTH:
        return ParsedQuery(text, _plain_words(text), depth)
    if not tokens:
        return ParsedQuery(text, None, 0)
    parser = _Parser(tokens)
    try:
        node = parser.expression()
        if parser.peek() is not None:
            raise _Malformed
        return ParsedQuery(text, node, depth)
    except _Malformed:
        return ParsedQuery(text, _plain_words(text), depth)


def query_depth(text: str) -> int:
    """How deeply ``text`` nests (parentheses plus negations); 0 for plain words."""
    return parsed(text).depth


def parse(text: str) -> Node | None:
    """The syntax tree of a query, or None for an empty query (see :func:`parsed`)."""
    return parsed(text).node


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




def check_query(text: str, max_terms: int) -> ParsedQuery:
    """The parse of ``text`` when it keeps the limits; else :class:`InvalidParameter` naming the limit.

    Refused (param ``q``): a leading wildcard (``*abc``), nesting deeper than
    :data:`MAX_QUERY_DEPTH` and more than ``max_terms`` words and phrases (setting
    ``max_query_terms``).
    """
    query = parsed(text)
    if query.depth > MAX_QUERY_DEPTH:
        raise InvalidParameter(
            f"q nests parentheses and negations (NOT, -word) {query.depth} levels deep; the limit is "
            f"{MAX_QUERY_DEPTH}. Remove the extra parentheses.",
            param="q",
        )
    terms = all_terms(query.node)
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
    return query


def is_negative_only(node: Node | None) -> bool:
    """True when nothing in the query can match by itself (``-foo``, ``NOT a NOT b``)."""
    return node is not None and not positive_terms(node)

