"""An article analyzed once into what every field of the index needs.

The one place where an :class:`~search_service.article.Article` becomes index data: the values
of every field (what is stored and what the columns hold) and the tokens of every text field,
each text normalized once and segmented once per jieba mode (the title's search-mode
segmentation serves its word field and its pinyin field). Builds, incremental writes and the
server's writes all go through :func:`analyze`; the segment builder (``backend.segments``)
only writes what it is given.
"""

from __future__ import annotations

import dataclasses

from ..article import Article
from ..text.analysis import SEGMENTER, bigram_positions, first_characters, normalize, words_of_segments
from ..text.highlight import script_stable
from ..text.pinyin import pinyin_of_segments
from . import schema as S

__all__ = ["AnalyzedArticle", "analyze", "field_values"]

#: Tokens of a text field: the token texts (word and pinyin fields, counted by the builder) or,
#: for the bigram fields, token -> position (or positions, when repeated).
Tokens = list[str] | dict[str, int | list[int]]


@dataclasses.dataclass(frozen=True, slots=True)
class AnalyzedArticle:
    """An article as the index takes it: ``values`` per field, ``tokens`` per text field."""

    id: str
    values: dict[str, object]
    tokens: dict[str, Tokens]
    text_bytes: int  # UTF-8 size of title and body: what segment sizes are measured in


def field_values(article: Article) -> dict[str, object]:
    """The value of every field: the text fields get the text they index, the others their value."""
    return {
        S.ID: article.id,
        S.TITLE: article.title,
        S.BODY: article.body,
        S.TITLE_BIGRAMS: article.title,
        S.TITLE_PINYIN: article.title,
        S.BODY_BIGRAMS: article.body,
        S.TITLE_CHARS: article.title,
        S.BODY_CHARS: article.body,
        S.CATEGORY: article.category,
        S.DAY: S.day_number(article.date),
        S.URL: article.url,
        S.SOURCE: article.source,
        S.SCRIPT_STABLE: True if script_stable(article.title, article.body) else None,
    }


def analyze(article: Article) -> AnalyzedArticle:
    """Normalize and segment the article's texts once; identical to what the schema's
    analyzers (``backend.analyzers``) give for the same text."""
    title = normalize(article.title)
    body = normalize(article.body)
    title_segments = list(SEGMENTER.spans(title, True)) if title else []
    title_bigrams = bigram_positions(title)
    body_bigrams = bigram_positions(body)
    tokens: dict[str, Tokens] = {
        S.TITLE: [w for w, _, _ in words_of_segments(title_segments)],
        S.BODY: [w for w, _, _ in words_of_segments(SEGMENTER.spans(body, True))] if body else [],
        S.TITLE_PINYIN: [w for w, _, _ in pinyin_of_segments(title_segments)],
        S.TITLE_BIGRAMS: title_bigrams,
        S.BODY_BIGRAMS: body_bigrams,
        S.TITLE_CHARS: first_characters(title_bigrams),
        S.BODY_CHARS: first_characters(body_bigrams),
    }
    size = len(article.title.encode("utf-8")) + len(article.body.encode("utf-8"))
    return AnalyzedArticle(article.id, field_values(article), tokens, size)
