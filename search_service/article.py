"""The Article record: what ingest produces and the indexer consumes."""

from __future__ import annotations

import dataclasses
import datetime as dt


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
