"""The index's analyzers: the text pipeline's functions (``text.analysis``, ``text.pinyin``)
wrapped as Whoosh tokenizers, for the schema pickled into every table of contents.

Whoosh calls them when it analyzes a field itself (stock Whoosh reading our index in
the oracle tests, the query parser of the baseline); the engine's own builder and
evaluator call the text functions directly.

The classes are pickled by module and name into each generation's table of contents.
Generations written before the engine package named them ``search_service.analysis``
and ``search_service.pinyin``: those names are kept as aliases of this module (see the
end), so such generations open unchanged (``tests/fixtures/index_v1``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

from whoosh.analysis import Token, Tokenizer

from ...text.analysis import bigram_spans, normalize, word_spans
from ...text.pinyin import title_pinyin_tokens

__all__ = ["BigramTokenizer", "FirstCharacterTokenizer", "PinyinTokenizer", "SpanTokenizer", "WordTokenizer",
           "bigram_analyzer", "word_analyzer"]


class SpanTokenizer(Tokenizer):
    """A Whoosh tokenizer made of a span function; subclasses define :meth:`spans`.

    Honours Whoosh's tokenizer contract: ``positions`` start at ``start_pos``;
    ``startchar``/``endchar`` are offsets into the original value plus ``start_char``
    (normalization keeps the length, so offsets found in normalized text are
    offsets in the original).
    """

    def spans(self, value: str, mode: str, removestops: bool) -> Iterator[tuple[int, str, int, int]]:
        """(position, token text, start, end) of ``value``; positions relative to 0."""
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(vars(self).items()))))

    def __call__(self, value, positions=False, chars=False, keeporiginal=False, removestops=True,
                 start_pos=0, start_char=0, tokenize=True, mode="", **kwargs):
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        items = self.spans(value, mode, removestops) if tokenize else [(0, normalize(value), 0, len(value))]
        for pos, text, start, end in items:
            token.text = text
            token.boost = 1.0
            token.stopped = False
            if keeporiginal:
                token.original = value[start:end]
            if positions:
                token.pos = start_pos + pos
            if chars:
                token.startchar, token.endchar = start_char + start, start_char + end
            yield token


class WordTokenizer(SpanTokenizer):
    """Normalize, then jieba: search mode when indexing, precise mode for queries (``mode="query"``).

    Positions are token ordinals, never character offsets.
    """

    def __init__(self, index_mode: str = "search") -> None:
        self.index_mode = index_mode

    def spans(self, value, mode, removestops):
        search = mode != "query" and self.index_mode == "search"
        for pos, (text, start, end) in enumerate(word_spans(normalize(value), search=search,
                                                            removestops=removestops)):
            yield pos, text, start, end


class BigramTokenizer(SpanTokenizer):
    """The substring field's tokenizer: see :func:`bigram_spans`."""

    def spans(self, value, mode, removestops):
        return bigram_spans(normalize(value))


class FirstCharacterTokenizer(SpanTokenizer):
    """The character fields' tokenizer: the first character of each substring token, once
    (see :func:`first_characters`), at that token's first occurrence."""

    def spans(self, value, mode, removestops):
        seen: set[str] = set()
        for _, text, start, _ in bigram_spans(normalize(value)):
            if text[0] not in seen:
                yield len(seen), text[0], start, start + 1
                seen.add(text[0])


def word_analyzer() -> WordTokenizer:
    """The analyzer of the word fields (a tokenizer is a complete Whoosh analyzer)."""
    return WordTokenizer("search")


def bigram_analyzer() -> BigramTokenizer:
    """The analyzer of the substring fields."""
    return BigramTokenizer()


class PinyinTokenizer(SpanTokenizer):
    """The ``title_py`` field's tokenizer (see :func:`title_pinyin_tokens`)."""

    def spans(self, value, mode, removestops):
        for pos, (text, start, end) in enumerate(title_pinyin_tokens(value)):
            yield pos, text, start, end


# Module names of these classes in tables of contents written by older releases.
for _old_name in ("search_service.analysis", "search_service.pinyin"):
    sys.modules.setdefault(_old_name, sys.modules[__name__])
