"""The engine's query form: what :mod:`compiler` produces and :mod:`docsets` and :mod:`scoring` evaluate.

A small tree of frozen dataclasses, owned by the project (not the index library's query
classes): leaves name a field and normalized index terms, inner nodes combine them.

* :class:`Term` — documents with ``text`` in ``field``;
* :class:`Prefix` — documents with any term of ``field`` starting with ``text``;
* :class:`Phrase` — documents with ``words`` at consecutive positions of ``field``;
* :class:`And`, :class:`Or` — every child / any child;
* :class:`AndNot` — ``positive`` but not ``negative``;
* :class:`Not` — the complement of ``child`` among live documents (only the compiler's
  intermediate form for ``-word``: it turns ``And(x, Not(y))`` into ``AndNot``);
* :data:`EVERY` — every live document; :data:`NOTHING` — no document.

``boost`` scales a leaf's BM25 score. Scores of an And or Or add up the scores of the
children that match; AndNot scores as its positive side; Not, EVERY and NOTHING score 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

__all__ = ["EVERY", "NOTHING", "And", "AndNot", "Every", "Not", "Nothing", "Or", "Phrase", "Prefix", "Query",
           "Term", "all_of", "any_of", "children", "contains_phrase", "leaves"]


@dataclasses.dataclass(frozen=True, slots=True)
class Term:
    field: str
    text: str
    boost: float = 1.0


@dataclasses.dataclass(frozen=True, slots=True)
class Prefix:
    field: str
    text: str
    boost: float = 1.0


@dataclasses.dataclass(frozen=True, slots=True)
class Phrase:
    field: str
    words: tuple[str, ...]
    boost: float = 1.0


@dataclasses.dataclass(frozen=True, slots=True)
class And:
    children: tuple[Query, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Query, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class AndNot:
    positive: Query
    negative: Query


@dataclasses.dataclass(frozen=True, slots=True)
class Not:
    child: Query


@dataclasses.dataclass(frozen=True, slots=True)
class Every:
    """Every live document."""


@dataclasses.dataclass(frozen=True, slots=True)
class Nothing:
    """No document (a query that cannot match, e.g. only stop words in a field without them)."""


EVERY = Every()
NOTHING = Nothing()

Query = Term | Prefix | Phrase | And | Or | AndNot | Not | Every | Nothing


def all_of(children: Sequence[Query]) -> Query:
    """``And`` of ``children``, or the child itself when there is one."""
    return children[0] if len(children) == 1 else And(tuple(children))


def any_of(children: Sequence[Query]) -> Query:
    """``Or`` of ``children`` (NOTHING when empty), or the child itself when there is one."""
    if not children:
        return NOTHING
    return children[0] if len(children) == 1 else Or(tuple(children))


def children(query: Query) -> tuple[Query, ...]:
    """The direct subqueries of ``query``."""
    if isinstance(query, (And, Or)):
        return query.children
    if isinstance(query, AndNot):
        return (query.positive, query.negative)
    if isinstance(query, Not):
        return (query.child,)
    return ()


def contains_phrase(query: Query) -> bool:
    """Whether a phrase occurs anywhere in ``query`` (phrases cost a position check)."""
    return isinstance(query, Phrase) or any(contains_phrase(child) for child in children(query))


def leaves(query: Query) -> Iterator[Term | Prefix | Phrase]:
    """Every Term, Prefix and Phrase of ``query``, depth first."""
    if isinstance(query, (Term, Prefix, Phrase)):
        yield query
    for child in children(query):
        yield from leaves(child)
