"""Regional vocabulary: the Taiwan (and Hong Kong) word and the mainland word for the same thing.

Script is folded at index and query time (``normalize``: 軟體 is 软体), but vocabulary is not:
Taiwan writes 人工智慧, 軟體, 資訊, 計程車, 雷射 where the mainland writes 人工智能, 软件, 信息,
出租车, 激光, so a reader of one finds nothing of the other. OpenCC ships phrase tables for exactly
this (``TWPhrases`` and their reverse, used by its ``s2twp`` and ``tw2sp`` configurations); they are
applied here to a query term, phrase by phrase, and what changed becomes an alternative of the term,
searched and shown like a synonym (``expansions``).

The tables map more than regional vocabulary. 智慧 → 智能 (Taiwan's 智慧 is also the mainland's
word for wisdom), 資料 → 数据, 影片 → 视频, and chains (程序 → 进程, 程式 → 程序) would broaden
ordinary mainland queries with other words. So a pair is kept only when:

* it converts both ways (the mainland word's Taiwan form is the Taiwan word, and back), and neither
  word is itself changed by the other direction (which rules out 程序 ↔ 进程 ↔ 程式);
* the Taiwan word is rare in mainland usage: jieba's dictionary (counted on mainland text) has it at
  most 1/:data:`MAINLAND_RATIO` as often as the mainland word and at most :data:`TAIWAN_MAX` times
  (人工智慧 3 against 151, 軟體 30 against 4,601; but 资料 9,021 against 数据 5,232, 智慧 1,581
  against 智能 778, and 资讯 561 against 信息 12,256: 资讯 is a mainland word as well).

Hong Kong: OpenCC has no Hong Kong phrase table (only character variants, which ``normalize``
already folds); Hong Kong texts share most of Taiwan's terms (軟件 aside, which is the mainland's).
"""

from __future__ import annotations

import difflib
import functools
import threading

import opencc

from .analysis import SEGMENTER

#: The mainland word must be at least this many times as common as the Taiwan word in jieba's
#: dictionary (mainland usage) for the two to be regional variants of one word...
MAINLAND_RATIO = 10
#: ... and the Taiwan word at most this common there: 区域性 (200), 效能 (325), 开启 (399), 讯息
#: (411), 资讯 (561) are mainland words too, whatever OpenCC maps them to.
TAIWAN_MAX = 100
#: Characters a changed phrase may extend beyond OpenCC's change on each side.
WINDOW_REACH = 4
#: Longest query term converted (longer text is pasted, and its phrases stand on their own).
MAX_TERM_CHARS = 40

_converters: dict[str, opencc.OpenCC] = {}
# One converter per configuration for the process, used under a lock: the binding gives no
# thread-safety guarantee, a conversion takes microseconds, and loading one takes tens of
# milliseconds (a converter per thread would make every thread's first query pay for it).
_lock = threading.Lock()


def _convert(config: str, text: str) -> str:
    with _lock:
        converter = _converters.get(config)
        if converter is None:
            converter = _converters[config] = opencc.OpenCC(config)
        return converter.convert(text)


@functools.lru_cache(maxsize=65536)
def to_mainland(text: str) -> str:
    """``text`` (Simplified script) read as Taiwan usage and written as the mainland's."""
    return _convert("tw2sp", _convert("s2tw", text))


@functools.lru_cache(maxsize=65536)
def to_taiwan(text: str) -> str:
    """``text`` (Simplified script) read as mainland usage and written as Taiwan's, in Simplified script."""
    return _convert("t2s", _convert("s2twp", text))


def is_regional_pair(mainland: str, taiwan: str) -> bool:
    """Whether ``mainland`` and ``taiwan`` (both Simplified script) are one word's two regional forms."""
    if not mainland or not taiwan or mainland == taiwan:
        return False
    if to_taiwan(mainland) != taiwan or to_mainland(taiwan) != mainland:
        return False
    if to_mainland(mainland) != mainland or to_taiwan(taiwan) != taiwan:
        return False  # a chain: one of them is also another word's regional form
    frequency = SEGMENTER.dictionary()
    taiwan_count = frequency.get(taiwan) or 0
    return taiwan_count <= TAIWAN_MAX and (frequency.get(mainland) or 0) >= MAINLAND_RATIO * max(taiwan_count, 1)


def counterparts(text: str) -> list[tuple[str, str]]:
    """The regional words of ``text`` (normalized, Simplified) and their counterparts, in order:
    ``人工智慧发展`` → [("人工智慧", "人工智能")], ``软件`` → [("软件", "软体")]."""
    if len(text) > MAX_TERM_CHARS:
        return []
    found: list[tuple[str, str]] = []
    bounds: set[int] | None = None
    for convert, mainland_side in ((to_mainland, False), (to_taiwan, True)):
        converted = convert(text)
        if converted == text:
            continue
        if bounds is None:
            bounds = {0, len(text)}
            for _, start, end in SEGMENTER.spans(text, False):
                bounds.update((start, end))
        for typed, other in _changed_windows(text, converted, convert, mainland_side, bounds):
            if (typed, other) not in found:
                found.append((typed, other))
    return found


def _changed_windows(text: str, converted: str, convert, mainland_side: bool,
                     bounds: set[int]) -> list[tuple[str, str]]:
    """For each change ``convert`` made, the smallest window of ``text`` around it that starts and ends
    where words do (``bounds``: 发布 inside the word 发布会 is no word of its own) and converts by itself
    into a regional pair (人工智慧, not its 智慧 → 智能), with what it becomes."""
    windows = []
    matcher = difflib.SequenceMatcher(None, text, converted, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        found = None
        for grow in range(2 * WINDOW_REACH + 1):
            for left in range(0, min(grow, WINDOW_REACH) + 1):
                right = grow - left
                if right > WINDOW_REACH or i1 - left < 0 or i2 + right > len(text):
                    continue
                if i1 - left not in bounds or i2 + right not in bounds:
                    continue
                window, other = text[i1 - left:i2 + right], converted[j1 - left:j2 + right]
                if window == other or convert(window) != other:
                    continue
                if is_regional_pair(*((window, other) if mainland_side else (other, window))):
                    found = (window, other)
                    break
            if found is not None:
                break
        if found is not None:
            windows.append(found)
    return windows


def alternative(text: str, pairs: list[tuple[str, str]]) -> str:
    """``text`` with each regional word of ``pairs`` replaced by its counterpart."""
    for typed, other in pairs:
        text = text.replace(typed, other)
    return text
