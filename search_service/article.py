"""The Article record: what ingest produces and the indexer consumes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re


@dataclasses.dataclass(frozen=True, slots=True)
class Article:
    """One cleaned, validated article.

    ``title`` and ``body`` keep their original script (Traditional stays
    Traditional); normalization happens in the analyzers, never here.
    ``category`` is already canonical (see ``categories.canonical_category``).
    """

    id: str
    title: str
    body: str
    category: str = ""
    date: dt.date | None = None
    url: str = ""
    source: str = ""

    def to_json(self) -> dict:
        """A JSON-ready dict with the date as ``YYYY-MM-DD`` (or None)."""
        return {
            "id": self.id,
            "title": self.title,
            "body": self.body,
            "category": self.category,
            "date": self.date.isoformat() if self.date else None,
            "url": self.url,
            "source": self.source,
        }


# --------------------------------------------------------------------------- field rules
# The one set of rules for what an article's text may contain, applied by ingest to every
# record, whether it came from a file or from the write API: a value that breaks them would
# be stored, then fail wherever it is encoded (the journal, a page, JSON) long after the
# writer was told it was accepted.

#: Longest title, in characters: titles are marked in full on every hit.
MAX_TITLE_CHARS = 1000
#: Longest category, url or source, in characters.
MAX_LINE_FIELD_CHARS = 2000
#: The fields of one article and whether line breaks and tabs belong in them.
TEXT_FIELDS = (("id", False), ("title", False), ("body", True), ("category", False), ("date", False),
               ("url", False), ("source", False))

# Lone surrogates (valid JSON escapes such as \ud83d, but not Unicode: no UTF-8 encoder takes
# them), C0 and C1 controls and DEL. Line breaks and tabs are allowed in the body only.
_FORBIDDEN_LINE = re.compile("[\ud800-\udfff\x00-\x1f\x7f-\x9f]")
_FORBIDDEN_BODY = re.compile("[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def character_problem(name: str, value: str, *, multiline: bool = False) -> str | None:
    """Why ``value`` may not be stored as field ``name``, or None when every character is allowed.

    Refused: lone surrogates (invalid Unicode), NUL and every other control character; in a
    ``multiline`` field (the body) line breaks (LF, CR) and tabs are allowed.
    """
    match = (_FORBIDDEN_BODY if multiline else _FORBIDDEN_LINE).search(value)
    if match is None:
        return None
    char, where = match.group(), match.start() + 1
    if "\ud800" <= char <= "\udfff":
        return (f'"{name}" contains a lone surrogate U+{ord(char):04X} at character {where}, which is not '
                "valid Unicode; send the text as UTF-8 (escapes \\uD800-\\uDFFF must come in pairs)")
    allowed = " (only line breaks and tabs are allowed in the body)" if multiline else ""
    return (f'"{name}" contains the control character U+{ord(char):04X} at character {where}{allowed}; '
            "remove it")


def id_problem(value: str, max_length: int) -> str | None:
    """Why ``value`` is not a usable id, or None. The id is stored exactly as given, so:
    at most ``max_length`` characters (setting ``max_id_length``), no control characters or
    invalid Unicode, no leading or trailing whitespace. (Emptiness is reported by the caller.)"""
    if len(value) > max_length:
        return (f'"id" is {len(value)} characters long; the limit is {max_length} (setting max_id_length); '
                "use a shorter id")
    problem = character_problem("id", value)
    if problem:
        return problem
    if value != value.strip():
        return ('"id" starts or ends with whitespace; ids are stored exactly as sent, so remove the '
                "leading and trailing spaces")
    return None


def length_problem(name: str, value: str) -> str | None:
    """Why a single-line field is too long, or None (titles: :data:`MAX_TITLE_CHARS`, others
    :data:`MAX_LINE_FIELD_CHARS`; the body is bounded by ``max_article_kb`` instead)."""
    limit = MAX_TITLE_CHARS if name == "title" else MAX_LINE_FIELD_CHARS
    if name in ("id", "body") or len(value) <= limit:
        return None
    return f'"{name}" is {len(value)} characters long; the limit is {limit}; shorten it'
