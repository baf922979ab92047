"""Desk synonym groups merged with the synonyms file, and their preview.

Decision (docs/ADMIN.md#synonyms): the desk does **not** write the synonyms file. Operators keep
that file (``synonyms_file``, and the built-in list) in version control, where a deploy would
overwrite whatever a service wrote into it, and its format has no one-way groups. The desk keeps
its own groups in the rules file and :class:`DeskSynonymSource` merges them with the file's on
every request: a change is in effect on the next request of every worker (the rules file's
version check, see :mod:`.source`), the file is still re-read when it changes, and the file's
groups are shown in the desk read-only.

A one-way group (``from => to``) is kept in the merged table's ``groups`` as
``(ONE_WAY, from, *to)``, so everything that fingerprints a table by its groups (the result
cache's key, the API's ETag) sees it change.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from ..text.synonyms import SynonymTable
from .model import term_key

if TYPE_CHECKING:
    from .source import RulesSource

#: First element of a one-way group in :class:`DeskSynonymTable.groups` (a control character: no
#: term can hold one).
ONE_WAY = "\x00=>"


class DeskSynonymTable(SynonymTable):
    """A :class:`SynonymTable` whose groups may also be one-way: ``(ONE_WAY, from, *to)``."""

    @property
    def lookup(self) -> dict[str, tuple[str, ...]]:
        table: dict[str, tuple[str, ...]] = {}
        for group in self.groups:
            if group and group[0] == ONE_WAY:
                source, targets = group[1], group[2:]
                table[source] = tuple(dict.fromkeys(table.get(source, ()) + tuple(t for t in targets
                                                                                  if t != source)))
                continue
            for term in group:
                others = tuple(t for t in group if t != term)
                table[term] = tuple(dict.fromkeys(table.get(term, ()) + others))
        return table


def table_groups(groups: Sequence[dict]) -> tuple[tuple[str, ...], ...]:
    """Desk groups (see :mod:`.model`) as a table's normalized groups."""
    out = []
    for group in groups:
        if group["kind"] == "two_way":
            out.append(tuple(dict.fromkeys(term_key(t) for t in group["terms"])))
        else:
            out.append((ONE_WAY, term_key(group["from"]), *dict.fromkeys(term_key(t) for t in group["to"])))
    return tuple(out)


def merged_table(base: SynonymTable, groups: Sequence[dict]) -> SynonymTable:
    """``base`` (the file's groups) plus the desk's; ``base`` itself when the desk has none."""
    if not groups:
        return base
    return DeskSynonymTable(tuple(base.groups) + table_groups(groups))


class _Source(Protocol):
    def table(self) -> SynonymTable: ...


class DeskSynonymSource:
    """What the engine asks for synonyms (``engine.synonyms.table()``): the file's table (re-read when it
    changes, by the wrapped :class:`text.synonyms.SynonymSource`) merged with the desk's groups."""

    def __init__(self, base: _Source, rules: RulesSource) -> None:
        self.base = base
        self.rules = rules
        self._lock = threading.Lock()
        self._cached: tuple[SynonymTable, int, SynonymTable] | None = None

    def table(self) -> SynonymTable:
        base = self.base.table()
        state = self.rules.current()
        cached = self._cached
        if cached is not None and cached[0] is base and cached[1] == state.version:
            return cached[2]
        with self._lock:
            table = merged_table(base, state.groups)
            self._cached = (base, state.version, table)
            return table

    def file_table(self) -> SynonymTable:
        """The file's groups alone (built-in list and ``synonyms_file``)."""
        return self.base.table()

    _OWN = frozenset({"base", "rules", "_lock", "_cached"})

    def __getattr__(self, name: str):
        # Anything else (path, check_interval, ...) is the file source's, read and written.
        return getattr(self.base, name)

    def __setattr__(self, name: str, value) -> None:
        if name in self._OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self.base, name, value)


# --------------------------------------------------------------------------- preview


def expansion_query(term: str, table: SynonymTable) -> str:
    """A query that finds what searching ``term`` alone finds with ``table``, for an engine that
    expands no synonyms itself: ``term`` OR each alternative, each in parentheses (a term of several
    words means all of them)."""
    alternatives = table.alternatives(term)
    if not alternatives:
        return term
    return " OR ".join(f"({t})" for t in (term, *alternatives))


def preview_queries(members: Sequence[str], before: SynonymTable,
                    after: SynonymTable) -> list[tuple[str, str, str]]:
    """(member, query today, query once saved) for each member of a group being added, changed or removed:
    the desk counts both on an engine without synonyms (see :func:`expansion_query`)."""
    return [(m, expansion_query(m, before), expansion_query(m, after)) for m in members]


def group_members(group: dict) -> list[str]:
    """Every term of a group, its source first for a one-way group."""
    return list(group["terms"]) if group["kind"] == "two_way" else [group["from"], *group["to"]]
