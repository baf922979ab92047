"""What every format reader produces: a raw record, or the reason it cannot be used."""

from __future__ import annotations

import dataclasses
import datetime as dt


class Rejected(Exception):
    """A record cannot be used; ``reasons`` say why, ``line`` where (1-based)."""

    def __init__(self, line: int, *reasons: str) -> None:
        super().__init__("; ".join(reasons))
        self.line = line
        self.reasons = reasons


@dataclasses.dataclass(frozen=True, slots=True)
class FileProblem:
    """A problem with a whole file (unreadable, damaged), not with one of its records."""

    line: int
    reason: str


@dataclasses.dataclass(slots=True)
class RawRecord:
    """Field values as found in the file, with the line each came from.

    Text values are uncleaned strings; ``date`` is a string (unparsed), a date,
    or None. ``title``/``body`` are None when absent from the input.
    """

    line: int
    id: str
    title: str | None
    body: str | None
    category: str = ""
    date: str | dt.date | None = None
    url: str = ""
    source: str = ""
    title_line: int | None = None
    body_line: int | None = None
    date_line: int | None = None
    missing_title_reason: str = "missing title: no title line found"
    missing_body_reason: str = "missing body: no text after the title"
    # Problems found while reading the fields (wrong JSON types …), and the
    # fields they concern, which are then not checked again for emptiness.
    problems: list[str] = dataclasses.field(default_factory=list)
    bad_fields: set[str] = dataclasses.field(default_factory=set)


def os_reason(exc: OSError) -> str:
    """An OS error as a person reads it ("Permission denied")."""
    return exc.strerror or str(exc)
