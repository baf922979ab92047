"""The Chinese text pipeline: normalize with offsets kept, segment, make bigrams.

Three pieces, used at index time and at query time alike:

* :func:`normalize` folds full-width forms to half-width, lower-cases and converts
  Traditional to Simplified (OpenCC ``t2s``) **without changing the length**, so
  every offset found in the normalized text is an offset in the original. That is
  what lets highlighting work on stored text without re-segmenting it.
* :func:`word_spans` segments with jieba (search mode for indexing: words and their
  sub-words; precise mode for queries); positions are token ordinals.
* :func:`bigram_spans` gives overlapping CJK character bigrams, the substring safety
  net that finds any query occurring verbatim, whatever jieba decides.

No Flask and no index code here (the index's analyzers wrapping these live in
``engine.backend.analyzers``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import opencc

from . import script_fold
from .segmenter import Segmenter

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- normalize

# CJK Unified Ideographs with extension A and compatibility ideographs; extension B+
# (astral) are matched too. Kana/Hangul are not split into bigrams.
CJK_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_CJK_CHAR = re.compile(f"[{CJK_CLASS}]")

# Full-width ASCII (U+FF01..U+FF5E) -> ASCII, ideographic space -> space. One char each.
_WIDTH_FOLD = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_WIDTH_FOLD[0x3000] = 0x20

_WIDE_CHAR = re.compile("[\uff01-\uff5e\u3000]")
_WIDE_ALNUM = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")


def fold_width(text: str) -> str:
    """``text.translate(_WIDTH_FOLD)``, computed on UTF-16 code units with numpy.

    str.translate looks every character up in a dict, and Chinese text is full of full-width
    punctuation (，：？): a 4,000-character body cost ~250 µs, the largest part of a snippet;
    this costs ~20 µs. Characters outside the BMP are surrogate pairs here, outside both ranges.
    """
    units = np.frombuffer(text.encode("utf-16-le", "surrogatepass"), dtype=np.uint16).copy()
    units[(units >= 0xFF01) & (units <= 0xFF5E)] -= 0xFEE0
    units[units == 0x3000] = 0x20
    return units.tobytes().decode("utf-16-le", "surrogatepass")


_local = threading.local()
# Converters loaded ahead for threads still to start (see prepare_converters).
_spare_converters: queue.SimpleQueue[opencc.OpenCC] = queue.SimpleQueue()


def _t2s() -> opencc.OpenCC:
    # One converter per thread: the binding gives no thread-safety guarantee.
    converter = getattr(_local, "t2s", None)
    if converter is None:
        try:
            converter = _spare_converters.get_nowait()
        except queue.Empty:
            converter = opencc.OpenCC("t2s")
        _local.t2s = converter
    return converter


def prepare_converters(count: int) -> None:
    """Load Traditional -> Simplified converters now for ``count`` threads still to start.

    Every text a search normalizes goes through the converter of its thread, and loading one
    takes 0.5 to 40 ms: each of a server's request threads paid that on its first search (16
    of the first 139 searches of two fresh workers of 8 threads). A thread's first text now
    takes one of these instead.
    """
    for _ in range(count - _spare_converters.qsize()):
        _spare_converters.put(opencc.OpenCC("t2s"))


def _lower_keep_length(text: str) -> str:
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    # A few characters (e.g. U+0130 'İ') lower to two code points; keep those as is.
    return "".join(ch.lower() if len(ch.lower()) == 1 else ch for ch in text)


#: Texts at least this long are converted by the character table (:mod:`script_fold`); a
#: shorter one costs OpenCC about as much as the table's own overhead.
FOLD_TABLE_MIN_CHARS = 64


def _t2s_keep_length(text: str) -> str:
    converter = _t2s()
    if len(text) >= FOLD_TABLE_MIN_CHARS:
        folder = script_fold.folder(converter.convert)
        if folder is not None:
            fast = folder.convert(text, converter.convert)
            if fast is not None:
                return fast
    converted = converter.convert(text)
    if len(converted) == len(text):
        return converted
    # OpenCC converted some phrase to a different length (not seen on the corpora,
    # but not ruled out): convert character by character where that happened.
    chars = []
    for ch in text:
        one = _t2s().convert(ch)
        chars.append(one if len(one) == 1 else ch)
    return "".join(chars)


_fold_width = fold_width  # the name tests and older callers use


def fold_width_and_case(text: str, punctuation: bool = True) -> str:
    """:func:`normalize` without its script step (Traditional -> Simplified): the same length.

    Equal to ``normalize(text)`` for a text OpenCC leaves alone, which the index records for
    the texts a snippet scans (``highlight.script_stable``): such a hit's snippet skips OpenCC,
    a fifth of a search's time at the site's size. Without ``punctuation``, full-width
    punctuation and the ideographic space are folded only when the text also has full-width
    letters or digits (Chinese text is full of ，and 。 and rarely has anything else): for a
    caller that looks for words without punctuation or spaces, which match the same either way.
    """
    if (_WIDE_CHAR if punctuation else _WIDE_ALNUM).search(text) is not None:
        text = fold_width(text)
    return _lower_keep_length(text)


#: Texts up to this long are remembered by :func:`normalize` (query words, their bigrams, terms):
#: one search normalizes the same few dozen short strings several times over.
NORMALIZE_MEMO_CHARS = 32


def normalize(text: str) -> str:
    """Fold width, case and script; the result has exactly ``len(text)`` characters."""
    if not text:
        return text
    if len(text) <= NORMALIZE_MEMO_CHARS:
        return _normalize_short(text)
    return _normalize(text)


def _normalize(text: str) -> str:
    folded = fold_width_and_case(text)
    if _CJK_CHAR.search(folded) is None:
        return folded
    return _t2s_keep_length(folded)


_normalize_short = functools.lru_cache(maxsize=16384)(_normalize)


def normalize_ideographs(text: str) -> str:
    """A text of ``len(text)`` characters with :func:`normalize`'s answer at every position
    where that answer is an ideograph, and no ideograph elsewhere: what terms of ideographs
    only are looked for in (the highlighter's Traditional texts).

    Width and case folding neither touch ideographs nor make them. When OpenCC also keeps
    every character those folds touch or make out of its multi-character keys, and converts
    none of them to an ideograph (checked on its dictionaries once, see
    :func:`_script_step_ignores_folding`), its conversion of the unfolded text matches the
    folded text's at every ideograph: its matching sees the same runs of key characters
    either way. Then the folds are skipped (a third of normalizing a 4,000-character body).
    """
    if not text or not _script_step_ignores_folding():
        return normalize(text)
    if _CJK_CHAR.search(text) is None:
        return text
    return _t2s_keep_length(text)


def _fold_touched_points() -> set[int]:
    """Code points that width or case folding changes, or changes another character into."""
    points = set(_WIDTH_FOLD) | set(_WIDTH_FOLD.values())  # the width fold's own table, both sides
    for point in range(script_fold.TABLE_LIMIT):
        if 0xD800 <= point <= 0xDFFF:
            continue
        char = chr(point)
        lowered = char.lower()
        if lowered != char:
            points.add(point)
            if len(lowered) == 1:
                points.add(ord(lowered))
    return points


@functools.cache
def _script_step_ignores_folding() -> bool:
    """Whether OpenCC's ``t2s`` keeps every character folding touches out of its phrases and
    converts none of them to an ideograph (then :func:`normalize_ideographs` may skip the
    folds); False when its dictionaries cannot be read (see ``script_fold``)."""
    folder = script_fold.folder(_t2s().convert)
    if folder is None:
        return False
    return not any(folder.in_phrase(point) or _CJK_CHAR.match(chr(folder.alone(point)))
                   for point in _fold_touched_points())


def has_cjk(text: str) -> bool:
    """True when ``text`` contains at least one CJK ideograph."""
    return _CJK_CHAR.search(text) is not None


# --------------------------------------------------------------------------- segmenter


# Words too common to carry meaning; dropped from the word field (the bigram field
# keeps them, so a query made only of these still finds its substring).
STOP_WORDS = frozenset(
    "的 了 和 与 及 或 是 在 也 都 就 而 之 其 这 那 有 被 把 对 为 以 于 将 并 等 "
    "个 们 中 上 下 着 得 地 又 还 则 即 但 所 从 向 由 这个 那个 一个 我们 你们 他们 "
    "a an and are as at be by for from in is it of on or that the to was were with".split()
)

# Characters that, right after a number, make one token with it: 2025年, 30亿, 5G stays whole.
_NUMBER_UNITS = frozenset("年月日号时分秒元亿万千百个次项家人岁名位条款章节届期")

_MIXED_PARTS = re.compile(r"[^\W\d_]+|\d+(?:\.\d+)?")
_WORDLIKE = re.compile(r"\w")


SEGMENTER = Segmenter()


def initialize(cache_dir: Path | str | None = None, user_dict: Path | str | None = None) -> None:
    """Prepare the process-wide segmenter and the Traditional -> Simplified character table;
    call once at start-up (before workers fork: they share both)."""
    extra = (Path(user_dict),) if user_dict else ()
    SEGMENTER.initialize(cache_dir, extra)
    script_fold.folder(_t2s().convert)


def word_spans(norm: str, *, search: bool, removestops: bool = True) -> Iterator[tuple[str, int, int]]:
    """Word tokens of already-normalized text as (text, start, end) offsets.

    Whitespace and punctuation are skipped; mixed Latin/digit tokens are kept whole
    and split (``iphone15`` -> iphone15, iphone, 15); a number followed by a unit
    character is also kept joined (``2025年`` besides 2025 and 年).
    """
    return words_of_segments(SEGMENTER.spans(norm, search), removestops=removestops)


def words_of_segments(segments: Iterable[tuple[str, int, int]], *,
                      removestops: bool = True) -> Iterator[tuple[str, int, int]]:
    """:func:`word_spans` of jieba's raw output, so one segmentation can serve several fields."""
    previous: tuple[str, int, int] | None = None
    for word, start, end in segments:
        if not _WORDLIKE.search(word):
            previous = None
            continue
        if previous is not None and previous[2] == start and previous[0].isdigit() and word in _NUMBER_UNITS:
            yield previous[0] + word, previous[1], end
        previous = (word, start, end)
        if removestops and word in STOP_WORDS:
            continue
        if word.isascii() and not word.isalnum():
            # 'c++', '3.5%': keep the token, minus punctuation that only wraps it.
            stripped = word.strip("%.,;:!?'\"-_/")
            if not stripped:
                continue
            offset = word.index(stripped)
            yield stripped, start + offset, start + offset + len(stripped)
            continue
        yield word, start, end
        if not has_cjk(word):
            parts = list(_MIXED_PARTS.finditer(word))
            if len(parts) > 1:
                for part in parts:
                    yield part.group(), start + part.start(), start + part.end()


# Latin/digit runs exclude CJK characters explicitly: [^\W_] alone would let "iphone手机壳"
# swallow the CJK run after the Latin letters as one token.
_BIGRAM_RUN = re.compile(f"([{CJK_CLASS}]+)|((?:(?![{CJK_CLASS}])[^\\W_])+)")
_GAP_IS_SPACE = re.compile(r"\s*")


def bigram_spans(norm: str) -> Iterator[tuple[int, str, int, int]]:
    """Substring tokens of normalized text as (position, text, start, end).

    A CJK run ``abcd`` gives ab, bc, cd and a final one-character token d, one
    position each, so a query phrase of any length >= 2 is a phrase of bigrams
    and a single character is a prefix. Latin/digit runs are one token each.
    Punctuation between runs leaves a one-position gap, so a phrase never
    matches across it; plain whitespace does not.
    """
    pos = 0
    last_end = 0
    for match in _BIGRAM_RUN.finditer(norm):
        start, end = match.span()
        if start > last_end and not _GAP_IS_SPACE.fullmatch(norm, last_end, start):
            pos += 1
        last_end = end
        if match.group(1):
            for i in range(start, end):
                yield pos, norm[i:i + 2] if i + 1 < end else norm[i], i, min(i + 2, end)
                pos += 1
        else:
            yield pos, match.group(2), start, end
            pos += 1


def first_characters(tokens: Iterable[str]) -> list[str]:
    """The distinct first characters of substring tokens, in order of first appearance.

    A document has a token starting with character c exactly when c is among these: the
    character fields index them, so a one-character prefix of a substring field is one term.
    """
    return list(dict.fromkeys(token[0] for token in tokens if token))


def bigram_positions(norm: str) -> dict[str, int | list[int]]:
    """:func:`bigram_spans` grouped by token: token -> its position, or its positions when repeated.

    For index builds, which need only each token's positions: a single position stays a
    bare int (most bigrams occur once in a document), and no span tuple is made per token.
    """
    found: dict[str, int | list[int]] = {}
    get = found.get
    pos = 0
    last_end = 0
    gap_is_space = _GAP_IS_SPACE.fullmatch
    for match in _BIGRAM_RUN.finditer(norm):
        start, end = match.span()
        if start > last_end and not gap_is_space(norm, last_end, start):
            pos += 1
        last_end = end
        run = match.group(1)
        # run[i:i + 2] of the last character is that character alone, as bigram_spans gives.
        tokens = [run[i:i + 2] for i in range(len(run))] if run else [match.group(2)]
        for position, token in enumerate(tokens, pos):
            known = get(token)
            if known is None:
                found[token] = position
            elif known.__class__ is int:
                found[token] = [known, position]
            else:
                known.append(position)  # type: ignore[union-attr]
        pos += len(tokens)
    return found


@contextlib.contextmanager
def substring_runs(pattern: re.Pattern[str]) -> Iterator[None]:
    """Tokenize substrings with another run pattern while inside: a what-if for benchmarks
    (``bench.relevance`` measures the pattern before a fix with it), indexing and querying alike.

    Group 1 of ``pattern`` must match CJK runs (split into bigrams), group 2 any other run
    (one token). The whole process is affected: nothing else may index or search meanwhile.
    """
    global _BIGRAM_RUN
    saved = _BIGRAM_RUN
    _BIGRAM_RUN = pattern
    try:
        yield
    finally:
        _BIGRAM_RUN = saved


# --------------------------------------------------------------------------- query side


def query_words(text: str) -> list[str]:
    """Normalized precise-mode words of a query fragment, stop words removed."""
    return _unique(word for word, _, _ in word_spans(normalize(text), search=False))


def query_bigram_groups(text: str) -> list[list[str]]:
    """The substring phrase(s) a query fragment must match, as lists of bigram tokens.

    One list per stretch between punctuation (a phrase never spans punctuation in
    the index). A one-character CJK stretch is returned as ``[char]`` and is
    searched as a prefix.
    """
    groups: list[list[str]] = []
    current: list[tuple[int, str, int, int]] = []
    for item in bigram_spans(normalize(text)):
        if current and item[0] != current[-1][0] + 1:
            groups.append(_phrase_tokens(current))
            current = []
        current.append(item)
    if current:
        groups.append(_phrase_tokens(current))
    return [g for g in groups if g]


def _phrase_tokens(items: list[tuple[int, str, int, int]]) -> list[str]:
    # Drop the one-character token that ends the query's last CJK run (when the run is
    # longer than one character): the bigrams already cover that character, and the
    # text may continue where the query stops. Inner runs keep theirs: the index has
    # that token at that position too.
    tokens = [text for _, text, _, _ in items]
    if len(items) > 1:
        _, last, _, end = items[-1]
        before = items[-2]
        if len(last) == 1 and has_cjk(last) and has_cjk(before[1]) and before[3] == end:
            tokens.pop()
    return tokens


def _unique(items) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)
