"""The index's fields: their names, what each holds, and an Article back from stored fields.

How each field is indexed is the backend's (``backend.index.index_schema``); how an article
is analyzed into them is ``documents``.
"""

from __future__ import annotations

import datetime as dt

from ..article import Article

# Field names, used everywhere instead of string literals.
ID = "id"
TITLE = "title"          # words (jieba search mode), stored in the original script
BODY = "body"            # words, stored in the original script
TITLE_BIGRAMS = "title_bi"  # CJK bigrams with positions: substring / phrase matching
TITLE_PINYIN = "title_py"    # pinyin of title words: suggestions and fallback only, never ranking
BODY_BIGRAMS = "body_bi"
# The first character of each bigram field token, each once per document, without positions:
# a one-character prefix of a bigram field (a half-typed last character, 会 in "APEC 会") is
# the documents of one term here instead of the union of thousands of bigrams.
TITLE_CHARS = "title_ch"
BODY_CHARS = "body_ch"
CATEGORY = "category"    # canonical category, one term
DAY = "day"              # date as the integer YYYYMMDD, 0 when undated; sortable column
URL = "url"
SOURCE = "source"
# Stored True when OpenCC leaves the title and the body's snippet texts as they are
# (``highlight.script_stable``): a hit's highlighting then skips the conversion. Absent otherwise,
# and in articles indexed before it existed.
SCRIPT_STABLE = "script_stable"

WORD_FIELDS = (TITLE, BODY)
BIGRAM_FIELDS = (TITLE_BIGRAMS, BODY_BIGRAMS)
CHARS_OF = {TITLE_BIGRAMS: TITLE_CHARS, BODY_BIGRAMS: BODY_CHARS}
WORDS_OF = {TITLE_BIGRAMS: TITLE, BODY_BIGRAMS: BODY}  # the word field of the same text

UNDATED = 0


def day_number(date: dt.date | None) -> int:
    """``date`` as YYYYMMDD, or :data:`UNDATED`."""
    return date.year * 10000 + date.month * 100 + date.day if date else UNDATED


def day_to_date(day: int) -> dt.date | None:
    """Inverse of :func:`day_number`."""
    if not day:
        return None
    return dt.date(day // 10000, day // 100 % 100, day % 100)


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
