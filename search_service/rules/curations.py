"""Pinned and hidden results of one query, applied to the engine's ranked documents.

A :class:`Curation` names articles by id; :meth:`Curation.resolve` turns it into document numbers
of one snapshot (memoized per snapshot: a rule with 20 pins and 100 hidden ids costs its term
lookups once per commit, not per request), and :class:`Resolved` applies them:

* every tier of matches loses the pinned and the hidden documents (:meth:`Resolved.without`, a
  ``searchsorted`` on the sorted tier: microseconds for a tier of 40,000 documents);
* the pinned documents, in the staff's order, become a tier of their own ranked first
  (:meth:`Resolved.score` gives the pin order as the tier's score), after the same category and
  date filters as every other tier: a pinned article outside the chosen category is not shown.

The searcher's seam (``engine/searcher.py``, ``_Execution.run``), where the tiers exist and are
not yet filtered, counted for facets or paged::

    curated = self.curation.resolve(self.snap.key, lambda doc_id: self.docsets.term(ID, doc_id)) \
        if self.curation is not None else None
    if curated is not None:
        for tier in tiers:
            tier.docs = curated.without(tier.docs)
        if curated.pinned.size and tiers[0].score is not None:
            tiers.insert(0, Tier("pinned", curated.pinned, curated.score))

and the page-filling partial matches leave ``curated.removed`` out too. :func:`curate_docnums`
does the same for the search box's suggestions, :func:`curate_hits` for a list of finished
hits (the desk's preview).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import numpy as np

_EMPTY = np.zeros(0, dtype=np.int64)
H = TypeVar("H")


@dataclasses.dataclass(frozen=True)
class Resolved:
    """A curation as document numbers of one snapshot."""

    #: Live pinned documents in the staff's order (ids not in the index left out).
    pinned: np.ndarray
    #: Pinned and hidden documents, sorted: what every other tier must not contain.
    removed: np.ndarray
    #: Ids of the curation that no live article has (pinned or hidden).
    missing: tuple[str, ...] = ()

    def without(self, docs: np.ndarray) -> np.ndarray:
        """``docs`` (sorted document numbers) without the pinned and hidden ones."""
        removed = self.removed
        if not removed.size or not docs.size:
            return docs
        positions = np.searchsorted(docs, removed)
        inside = positions < docs.size
        positions = positions[inside]
        found = positions[docs[positions] == removed[inside]]
        return np.delete(docs, found) if found.size else docs

    def score(self, docs: np.ndarray) -> np.ndarray:
        """The pinned tier's score: the first pin highest (any pinned document of ``docs``)."""
        order = {int(doc): float(self.pinned.size - i) for i, doc in enumerate(self.pinned.tolist())}
        return np.array([order.get(int(doc), 0.0) for doc in docs.tolist()], dtype=np.float64)

    def pinned_set(self) -> frozenset[int]:
        return frozenset(self.pinned.tolist())


@dataclasses.dataclass(frozen=True, eq=False)
class Curation:
    """Staff's pins (in order) and hidden ids for one normalized query."""

    query: str
    pin: tuple[str, ...] = ()
    hide: tuple[str, ...] = ()
    # (snapshot key, Resolved) of the last snapshot resolved on; not compared.
    _memo: list = dataclasses.field(default_factory=lambda: [None], repr=False, compare=False)
    _lock: Any = dataclasses.field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def key(self) -> tuple:
        """What a cached answer depends on (part of the result cache's key)."""
        return (self.pin, self.hide)

    @classmethod
    def of(cls, query: str, value: dict) -> Curation:
        return cls(query, tuple(value.get("pin", ())), tuple(value.get("hide", ())))

    def to_json(self) -> dict:
        return {"pin": list(self.pin), "hide": list(self.hide)}

    def resolve(self, snapshot_key: Any, find: Callable[[str], np.ndarray]) -> Resolved:
        """Document numbers on the snapshot ``snapshot_key``; ``find(id)`` gives an id's live documents
        (the searcher's ``DocSetEvaluator.term(ID, id)``). Memoized for the latest snapshot."""
        held = self._memo[0]
        if held is not None and held[0] == snapshot_key:
            return held[1]
        resolved = resolve(self.pin, self.hide, find)
        with self._lock:
            self._memo[0] = (snapshot_key, resolved)
        return resolved


def resolve(pin: Sequence[str], hide: Sequence[str], find: Callable[[str], np.ndarray]) -> Resolved:
    """:class:`Resolved` of ids ``pin`` and ``hide`` (see :meth:`Curation.resolve`)."""
    pinned: list[int] = []
    removed: list[int] = []
    missing: list[str] = []
    for ids, keep in ((pin, True), (hide, False)):
        for doc_id in ids:
            docs = find(doc_id)
            if not docs.size:
                missing.append(doc_id)
                continue
            removed.extend(int(d) for d in docs.tolist())
            if keep and int(docs[0]) not in pinned:
                pinned.append(int(docs[0]))
    return Resolved(np.array(pinned, dtype=np.int64) if pinned else _EMPTY,
                    np.unique(np.array(removed, dtype=np.int64)) if removed else _EMPTY, tuple(missing))


def curate_tiers(tiers: Sequence[np.ndarray], resolved: Resolved) -> tuple[np.ndarray, list[np.ndarray]]:
    """(the pinned tier, every tier without pinned and hidden documents): the searcher's seam as one call."""
    return resolved.pinned, [resolved.without(docs) for docs in tiers]


def curate_docnums(chosen: Iterable[int], resolved: Resolved, limit: int) -> list[int]:
    """The search box's suggestions: pinned documents first (staff's order), then ``chosen`` without
    pinned or hidden ones, at most ``limit``."""
    out = [int(d) for d in resolved.pinned.tolist()][:limit]
    skip = set(resolved.removed.tolist())
    for doc in chosen:
        if len(out) >= limit:
            break
        if int(doc) not in skip:
            out.append(int(doc))
    return out


def curate_hits(hits: Sequence[H], curation: Curation, id_of: Callable[[H], str],
                fetch: Callable[[str], H | None], limit: int) -> list[tuple[H, bool]]:
    """A finished list of hits as readers see it with ``curation``: ``(hit, pinned)`` pairs.

    Pinned ids come first in the staff's order (taken from ``hits`` when there, else
    ``fetch(id)``; ids it cannot find are left out), then the other hits without pinned or
    hidden ones, at most ``limit``. Idempotent: hits already curated by the engine come out
    the same.
    """
    by_id = {id_of(hit): hit for hit in hits}
    out: list[tuple[H, bool]] = []
    for doc_id in curation.pin:
        hit = by_id.get(doc_id)
        if hit is None:
            hit = fetch(doc_id)
        if hit is not None:
            out.append((hit, True))
    skip = set(curation.pin) | set(curation.hide)
    for hit in hits:
        if id_of(hit) not in skip:
            out.append((hit, False))
    return out[:limit]
