"""One look at the disk per read: the index, the staff rules and the synonyms checked once.

Every search asks whether the index, the rules or the synonyms changed on disk (``stat``
calls, a SQLite ``data_version``), so that a write acknowledged by any process is seen at
once. A read asked that four to six times -- the entity tag, the search, the curation, the
synonym table -- and each answer could differ from the one before if a write landed in
between. Within :func:`one_look` each source checks the first time it is asked and answers
the same afterwards: one request reads one state of the data, at about half the cost.

Only reads are wrapped (a write must see its own commit); outside a scope every call looks.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")

_scope = threading.local()


@contextlib.contextmanager
def one_look() -> Iterator[None]:
    """Within: :func:`looked` computes each source's answer once per thread, then remembers it."""
    previous = getattr(_scope, "memo", None)
    _scope.memo = {}
    try:
        yield
    finally:
        _scope.memo = previous


def looked(source: object, look: Callable[[], T]) -> T:
    """``look()``, or within :func:`one_look` the answer it gave ``source`` the first time."""
    memo = getattr(_scope, "memo", None)
    if memo is None:
        return look()
    key = id(source)
    if key in memo:
        return memo[key]
    answer = memo[key] = look()
    return answer


def looked_again(source: object, answer: T) -> T:
    """Record a fresh ``answer`` for ``source`` (after an explicit refresh) and return it."""
    memo = getattr(_scope, "memo", None)
    if memo is not None:
        memo[id(source)] = answer
    return answer
