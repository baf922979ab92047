"""Pinyin for titles: a query typed in pinyin (zhihuichengshi, zhihui chengshi, zhcs) finds 智慧城市.

Kept in a field of its own (``title_py``) and used only for suggestions, for the
fallback when a query finds nothing, and for did-you-mean. It never takes part in
ranking a Chinese query: pinyin used as a normalizer would make 景点 match 经典.

Each title word (jieba search mode, so 智慧城市 gives 智慧, 城市 and 智慧城市) is
indexed as its toneless full pinyin (``zhihuichengshi``) and its initials (``zhcs``).
Text is normalized first, so 長沙 reads chang sha, not zhang sha.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator

from .analysis import CJK_CLASS, SEGMENTER, has_cjk, normalize

_PINYIN_QUERY = re.compile(r"[a-zA-Z' ]+")


@functools.lru_cache(maxsize=65536)
def word_pinyin(word: str) -> tuple[str, str]:
    """(full toneless pinyin, initials) of a normalized CJK word."""
    # Imported on first use: pypinyin reads its dictionaries at import (~0.5 s), which
    # processes that only open the schema (a merge, most CLI commands) never need.
    from pypinyin import lazy_pinyin

    syllables = [s for s in lazy_pinyin(word) if s.isalpha()]
    return "".join(syllables).lower(), "".join(s[0] for s in syllables).lower()


def pinyin_key(text: str) -> str:
    """The full toneless pinyin of the CJK characters of ``text`` (other characters dropped)."""
    # Whole runs, not single characters: pypinyin picks a heteronym's reading from context.
    return "".join(word_pinyin(run)[0] for run in re.findall(f"[{CJK_CLASS}]+", normalize(text)))


def title_pinyin_tokens(text: str) -> Iterator[tuple[str, int, int]]:
    """Pinyin tokens of a title as (token, start, end) of the word they come from."""
    return pinyin_of_segments(SEGMENTER.spans(normalize(text), True))


def pinyin_of_segments(segments: Iterable[tuple[str, int, int]]) -> Iterator[tuple[str, int, int]]:
    """:func:`title_pinyin_tokens` of jieba's raw search-mode output of the normalized title."""
    for word, start, end in segments:
        if not has_cjk(word) or not all(has_cjk(ch) for ch in word):
            continue
        full, initials = word_pinyin(word)
        if full:
            yield full, start, end
            if len(word) > 1:
                yield initials, start, end


def query_key(text: str) -> str | None:
    """The pinyin key of a query typed in Latin letters (spaces and ' dropped), else None."""
    if not text or not _PINYIN_QUERY.fullmatch(text):
        return None
    key = re.sub(r"[' ]", "", text).lower()
    return key if len(key) >= 2 else None


def words_with_key(title: str, key: str) -> list[str]:
    """The words of ``title`` (original script) whose pinyin or initials equal ``key``."""
    found = []
    for token, start, end in title_pinyin_tokens(title):
        if token == key:
            found.append(title[start:end])
    return list(dict.fromkeys(found))


def words_with_prefix(title: str, prefix: str) -> list[str]:
    """The words of ``title`` whose pinyin or initials start with ``prefix`` (for marking suggestions)."""
    found = [title[start:end] for token, start, end in title_pinyin_tokens(title) if token.startswith(prefix)]
    return sorted(set(found), key=len, reverse=True)
