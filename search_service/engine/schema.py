"""The Whoosh schema: field names and how an Article becomes an index document."""

from __future__ import annotations

import datetime as dt

from whoosh import fields

from ..article import Article
from .backend.analyzers import PinyinTokenizer, bigram_analyzer, word_analyzer

# Field names, used everywhere instead of string literals.
ID = "id"
TITLE = "title"          # words (jieba search mode), stored in the original script
BODY = "body"            # words, stored in the original script
TITLE_BIGRAMS = "title_bi"  # CJK bigrams with positions: substring / phrase matching
TITLE_PINYIN = "title_py"    # pinyin of title words: suggestions and fallback only, never ranking
BODY_BIGRAMS = "body_bi"
CATEGORY = "category"    # canonical category, one term
DAY = "day"              # date as the integer YYYYMMDD, 0 when undated; sortable column
URL = "url"
SOURCE = "source"

WORD_FIELDS = (TITLE, BODY)
BIGRAM_FIELDS = (TITLE_BIGRAMS, BODY_BIGRAMS)

UNDATED = 0


def build_schema() -> fields.Schema:
    """The schema of every index generation."""
    words = word_analyzer()
    bigrams = bigram_analyzer()
    return fields.Schema(
        **{
            ID: fields.ID(stored=True, unique=True),
            # Word fields need no positions: quoted phrases are answered by the bigram
            # fields, which saves a third of the posting data.
            TITLE: fields.TEXT(analyzer=words, stored=True, phrase=False),
            BODY: fields.TEXT(analyzer=words, stored=True, phrase=False),
            TITLE_BIGRAMS: fields.TEXT(analyzer=bigrams, phrase=True),
            TITLE_PINYIN: fields.TEXT(analyzer=PinyinTokenizer(), phrase=False),
            BODY_BIGRAMS: fields.TEXT(analyzer=bigrams, phrase=True),
            CATEGORY: fields.ID(stored=True, sortable=True),
            DAY: fields.NUMERIC(int, bits=32, stored=True, sortable=True, default=UNDATED),
            URL: fields.STORED(),
            SOURCE: fields.STORED(),
        }
    )


def day_number(date: dt.date | None) -> int:
    """``date`` as YYYYMMDD, or :data:`UNDATED`."""
    return date.year * 10000 + date.month * 100 + date.day if date else UNDATED


def day_to_date(day: int) -> dt.date | None:
    """Inverse of :func:`day_number`."""
    if not day:
        return None
    return dt.date(day // 10000, day // 100 % 100, day % 100)


def to_document(article: Article) -> dict:
    """The keyword arguments for ``writer.add_document`` / ``update_document``."""
    return {
        ID: article.id,
        TITLE: article.title,
        BODY: article.body,
        TITLE_BIGRAMS: article.title,
        TITLE_PINYIN: article.title,
        BODY_BIGRAMS: article.body,
        CATEGORY: article.category,
        DAY: day_number(article.date),
        URL: article.url,
        SOURCE: article.source,
    }


def from_stored(stored: dict) -> Article:
    """An Article from a document's stored fields."""
    return Article(
        id=stored[ID],
        title=stored.get(TITLE, ""),
        body=stored.get(BODY, ""),
        category=stored.get(CATEGORY, ""),
        date=day_to_date(stored.get(DAY, UNDATED)),
        url=stored.get(URL, "") or "",
        source=stored.get(SOURCE, "") or "",
    )
