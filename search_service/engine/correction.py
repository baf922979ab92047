"""Answer what the reader meant: homophone slips and toneless pinyin, corrected from the index.

Nearly all Chinese is typed through a pinyin input method, so the commonest slip is the
right sound with the wrong character (智惠城市 for 智慧城市, 可普 for 科普), and the next is
pinyin left untranslated (``zhihuichengshi``, ``kepu``, ``qiye xinyong``). Both are corrected
here against the index's own vocabulary, never a fixed list:

* :class:`Vocabulary`: the title and body words of one snapshot (jieba search mode, so
  whole words and their sub-words) with their document frequencies, grouped by toneless
  pinyin key. Built per segment (segments never change) and cached by segment id, so a
  commit that adds a segment reads only that segment's term list.
* :class:`Corrector`: for each whitespace-separated word of a plain query, a small beam
  search over the characters (or letters) that covers them with vocabulary words of the
  same pinyin, syllable by syllable. A typed character covered by a word as typed costs
  nothing; one left on its own costs :data:`UNCOVERED`; every changed character costs
  :data:`CHANGE`; among equals the more frequent words win. The best few corrected queries
  are then checked against the index by the caller (``exact``): the first one with exact
  matches is the answer. A query that has exact matches as typed is never corrected (the
  searcher does not ask).

Pinyin keys come straight from pypinyin's dictionaries (a word's phrase reading when it has
one, else every reading combination of its characters, bounded): ``lazy_pinyin`` costs
~0.7 ms a word, far too slow for a vocabulary of a few hundred thousand words.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable

from pypinyin.phrases_dict import phrases_dict
from pypinyin.pinyin_dict import pinyin_dict

from ..text.analysis import CJK_CLASS, normalize

# -- costs of the search (tuned on the tuning half of bench/correction_set.tsv only) --------
#: A typed CJK character not covered by any vocabulary word (as typed or corrected).
UNCOVERED = 1.0
#: A character changed into another of the same sound.
CHANGE = 1.5
#: Weight of log(document frequency) of each word used (more evidence, lower cost).
FREQUENCY = 0.15
#: Extra cost of each typed character read by one of its rare readings (遗 as wei, not yi).
RARE_READING = 0.75
#: Extra cost of a one-character word standing for pinyin letters (a syllable alone is a weak reading).
SINGLE_SYLLABLE = 1.5
#: Each word a pinyin string is read as (fewer, longer words are the likelier reading).
PINYIN_WORD = 1.0
#: Hypotheses kept at each position of the beam search, and corrected queries offered for checking.
BEAM = 8
CANDIDATES = 4
#: Longest word (in characters) the vocabulary keeps and the search tries.
MAX_WORD_CHARS = 8
#: Reading combinations tried for one word or span (heteronyms multiply them).
MAX_KEY_VARIANTS = 8
#: Longest CJK run / pinyin string corrected: longer text is pasted, not mistyped.
MAX_RUN_CHARS = 24
MAX_PINYIN_LETTERS = 72

_CJK_RUN = re.compile(f"[{CJK_CLASS}]+")
_CJK_WORD = re.compile(f"[{CJK_CLASS}]{{1,{MAX_WORD_CHARS}}}")
_LATIN_TOKEN = re.compile(r"[a-z']+")
_FIRST_CJK = "\u3400"
_FUZZY = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("ng", "n"), ("l", "n"))


# --------------------------------------------------------------------------- pinyin keys

_U_UMLAUT = str.maketrans({c: "v" for c in "üǖǘǚǜ"})


@functools.lru_cache(maxsize=4096)
def to_normal(reading: str) -> str:
    """A toned reading without its tone (``lǜ`` → ``lv``, as input methods type ü)."""
    bare = unicodedata.normalize("NFD", reading.translate(_U_UMLAUT))
    return "".join(c for c in bare if not unicodedata.combining(c))



@functools.lru_cache(maxsize=65536)
def char_readings(char: str) -> tuple[str, ...]:
    """Toneless readings of one character, most common first (``行`` → xing, hang, heng); () if none."""
    raw = pinyin_dict.get(ord(char))
    if not raw:
        return ()
    readings = dict.fromkeys(to_normal(r) for r in raw.split(","))
    return tuple(r for r in readings if r.isalpha())


def word_keys(word: str) -> tuple[str, ...]:
    """Toneless pinyin keys of a CJK word: its phrase reading when pypinyin has one, and the usual
    (first) reading of each character. Rare readings are left out: with them 派出 would also read
    maichu (派 has a rare reading mai) and stand in for 迈出."""
    keys: dict[str, None] = {}
    phrase = phrases_dict.get(word)
    if phrase and len(phrase) == len(word):
        keys["".join(to_normal(r[0]) for r in phrase)] = None
    readings = [char_readings(c) for c in word]
    if all(readings):
        keys.setdefault("".join(r[0] for r in readings), None)
    return tuple(keys)


def fuzzy(key: str) -> str:
    """The key with the southern confusions folded: z/zh, c/ch, s/sh, n/l, -n/-ng."""
    for a, b in _FUZZY:
        key = key.replace(a, b)
    return key


@functools.lru_cache(maxsize=1)
def syllables() -> frozenset[str]:
    """Every toneless syllable pypinyin knows (about 410)."""
    found = set()
    for reading in set(",".join(set(pinyin_dict.values())).split(",")):
        normal = to_normal(reading)
        # Interjections without a vowel (m, n, ng, hm) would let any consonant cluster read as pinyin.
        if normal.isalpha() and any(v in normal for v in "aeiouv"):
            found.add(normal)
    return frozenset(found)


def syllabify(letters: str) -> list[str] | None:
    """``letters`` split into pinyin syllables (longest first, backtracking), or None."""
    known = syllables()

    @functools.cache
    def split(start: int) -> tuple[str, ...] | None:
        if start == len(letters):
            return ()
        for end in range(min(len(letters), start + 6), start, -1):
            if letters[start:end] in known:
                rest = split(end)
                if rest is not None:
                    return (letters[start:end],) + rest
        return None

    result = split(0)
    return list(result) if result is not None else None


def looks_like_pinyin(text: str) -> bool:
    """True when ``text`` (Latin letters, spaces, ') reads as toneless pinyin of two syllables or more
    in every part: ``kepu``, ``qiye xinyong``; not ``zhcs`` (initials) or ``ok``."""
    parts = [p for p in re.split(r"[\s']+", text.strip().lower()) if p]
    if not parts or not all(p.isascii() and p.isalpha() for p in parts):
        return False
    counted = 0
    for part in parts:
        split = syllabify(part)
        if split is None:
            return False
        counted += len(split)
    return counted >= 2


# --------------------------------------------------------------------------- vocabulary


class SegmentVocabulary:
    """The CJK words of one segment's title and body fields, with document frequencies, by pinyin key."""

    def __init__(self, segment, fields: Iterable[str]) -> None:
        counts: dict[str, int] = {}
        for field in fields:
            if not segment.has_field(field):
                continue
            for text, frequency in segment.term_frequencies(field, _FIRST_CJK):
                if _CJK_WORD.fullmatch(text):
                    counts[text] = counts.get(text, 0) + frequency
        by_key: dict[str, list[str]] = {}
        for word in counts:
            for key in word_keys(word):
                by_key.setdefault(key, []).append(word)
        self.counts = counts
        self.by_key = by_key
        self._fuzzy: dict[str, list[str]] | None = None
        self._lock = threading.Lock()

    def fuzzy_keys(self) -> dict[str, list[str]]:
        """The same words by fuzzy key (built on first use: only when fuzzy pinyin is on)."""
        with self._lock:
            if self._fuzzy is None:
                table: dict[str, list[str]] = {}
                for key, words in self.by_key.items():
                    table.setdefault(fuzzy(key), []).extend(words)
                self._fuzzy = table
            return self._fuzzy


class Vocabulary:
    """The words of one snapshot: its segments' vocabularies, looked up together."""

    def __init__(self, segments: list[SegmentVocabulary]) -> None:
        self.segments = segments

    @classmethod
    def of_segments(cls, segments: Iterable, fields: Iterable[str],
                    cache: dict[str, SegmentVocabulary] | None = None,
                    lock: threading.Lock | None = None) -> Vocabulary:
        """The vocabulary of a commit's segments (``backend.commit.Segment``); ``cache`` (by
        segment id) keeps unchanged segments'."""
        cache = cache if cache is not None else {}
        fields = tuple(fields)
        vocabularies, current = [], set()
        for segment in segments:
            vocabulary = cache.get(segment.id)
            if vocabulary is None:
                vocabulary = cache[segment.id] = SegmentVocabulary(segment, fields)
            current.add(segment.id)
            vocabularies.append(vocabulary)
        # Segments gone from this commit will not come back.
        with lock or threading.Lock():
            for key in [k for k in cache if k not in current]:
                cache.pop(key, None)
        return cls(vocabularies)

    def frequency(self, word: str) -> int:
        """Document frequency of ``word`` in title + body (0 when it is not a word of the index)."""
        return sum(s.counts.get(word, 0) for s in self.segments)

    def words(self, key: str, fuzzy_pinyin: bool = False) -> dict[str, int]:
        """Words read as ``key`` with their frequencies (``key`` already folded when fuzzy)."""
        found: dict[str, int] = {}
        for segment in self.segments:
            table = segment.fuzzy_keys() if fuzzy_pinyin else segment.by_key
            for word in table.get(key, ()):
                found[word] = found.get(word, 0) + segment.counts[word]
        return found

    def __len__(self) -> int:
        return sum(len(s.counts) for s in self.segments)


# --------------------------------------------------------------------------- correcting


@dataclasses.dataclass(frozen=True)
class Correction:
    """A corrected query: the text to search, what kind of slip it was, and the words changed."""

    text: str
    kind: str                                  # "homophone" or "pinyin"
    changes: tuple[tuple[str, str], ...]       # (typed, corrected) per changed word of the query
    exact: int = 0                             # exact matches of the corrected query


@dataclasses.dataclass(order=True)
class _Hypothesis:
    cost: float
    text: str = dataclasses.field(compare=False)


class Corrector:
    """Corrections of plain queries against one :class:`Vocabulary`."""

    def __init__(self, vocabulary: Vocabulary, fuzzy_pinyin: bool = False) -> None:
        self.vocabulary = vocabulary
        self.fuzzy_pinyin = fuzzy_pinyin

    def correct(self, query: str, exact: Callable[[str, bool], int]) -> Correction | None:
        """The best correction of ``query`` with exact matches, or None.

        ``exact(text, verbatim)`` counts the documents the text matches exactly (every word, or
        verbatim); with ``verbatim`` only the verbatim matches count (pinyin read as characters
        must occur as such, or "china" could become any two common characters).
        """
        tokens = query.split()
        options: list[list[tuple[str, float]]] = []
        kinds: set[str] = set()
        if tokens and all(looks_like_pinyin(t) for t in tokens) and len(tokens) > 1:
            # Pinyin typed with spaces is one phrase first (zhihui chengshi → 智慧城市), then word by word.
            joined = self._pinyin("".join(tokens).lower().replace("'", ""))
            for text, _ in joined:
                count = exact(text, True)
                if count:
                    return Correction(text, "pinyin", ((query, text),), count)
        for token in tokens:
            if token.startswith("-") or token in ("OR", "AND", "NOT"):
                options.append([(token, 0.0)])
                continue
            if looks_like_pinyin(token):
                found = self._pinyin(token.lower().replace("'", ""))
                if found:
                    kinds.add("pinyin")
                options.append(found or [(token, 0.0)])
            elif _CJK_RUN.search(normalize(token)):
                found = self._homophones(token)
                if found and found[0][0] != token:
                    kinds.add("homophone")
                options.append(found or [(token, 0.0)])
            else:
                options.append([(token, 0.0)])
        if not kinds:
            return None
        verbatim = "pinyin" in kinds
        tried = 0
        for combination in _best_combinations(options, CANDIDATES):
            text = " ".join(t for t, _ in combination)
            if normalize(text) == normalize(" ".join(tokens)):
                continue
            tried += 1
            count = exact(text, verbatim)
            if count:
                changes = tuple((typed, fixed) for typed, (fixed, _) in zip(tokens, combination) if typed != fixed)
                kind = "pinyin" if any(looks_like_pinyin(t) for t, _ in changes) else "homophone"
                return Correction(text, kind, changes, count)
            if tried >= CANDIDATES:
                break
        return None

    # -- one word ---------------------------------------------------------------------------

    def _lookup(self, key: str) -> dict[str, int]:
        if self.fuzzy_pinyin:
            return self.vocabulary.words(fuzzy(key), True)
        return self.vocabulary.words(key)

    def _homophones(self, token: str) -> list[tuple[str, float]]:
        """Readings of a word with CJK characters: each CJK run searched, the rest kept."""
        norm = normalize(token)
        pieces: list[list[tuple[str, float]]] = []
        last = 0
        for match in _CJK_RUN.finditer(norm):
            if match.start() > last:
                pieces.append([(token[last:match.start()], 0.0)])
            run = match.group()
            original = token[match.start():match.end()]
            found = self._run(run)
            # The run as typed, when the search found something else: its own cost, for ranking.
            pieces.append([(original if text == run else text, cost) for text, cost in found] or [(original, 0.0)])
            last = match.end()
        if last < len(token):
            pieces.append([(token[last:], 0.0)])
        return [("".join(t for t, _ in combo), sum(c for _, c in combo))
                for combo in _best_combinations(pieces, CANDIDATES)]

    def _run(self, run: str) -> list[tuple[str, float]]:
        """Best readings of a CJK run: typed characters covered by words, or changed to homophones."""
        n = len(run)
        if n < 2 or n > MAX_RUN_CHARS:
            return []
        beams: list[dict[str, float]] = [dict() for _ in range(n + 1)]
        beams[0][""] = 0.0
        readings = [char_readings(c) or (c,) for c in run]
        for start in range(n):
            if not beams[start]:
                continue
            hypotheses = sorted(beams[start].items(), key=lambda item: item[1])[:BEAM]
            edges: list[tuple[int, str, float]] = [(start + 1, run[start], UNCOVERED)]
            for end in range(start + 1, min(n, start + MAX_WORD_CHARS) + 1):
                span = run[start:end]
                seen: set[str] = set()
                choices = [range(len(r)) for r in readings[start:end]]
                for picks in itertools.islice(itertools.product(*choices), MAX_KEY_VARIANTS):
                    key = "".join(readings[start + i][pick] for i, pick in enumerate(picks))
                    # A typed character read by one of its rare readings is a weaker reading.
                    rare = RARE_READING * sum(1 for pick in picks if pick)
                    for word, df in self._lookup(key).items():
                        if word in seen or len(word) != end - start:
                            continue
                        seen.add(word)
                        if len(word) == 1:
                            continue  # a character alone is no evidence for itself or another
                        changed = sum(a != b for a, b in zip(word, span))
                        cost = changed * CHANGE - FREQUENCY * math.log1p(df)
                        edges.append((end, word, cost + (rare if changed else 0.0)))
            for end, text, cost in edges:
                beam = beams[end]
                for prefix, prefix_cost in hypotheses:
                    candidate = prefix + text
                    total = prefix_cost + cost
                    if total < beam.get(candidate, math.inf):
                        beam[candidate] = total
        ranked = sorted(beams[n].items(), key=lambda item: item[1])
        return ranked[:CANDIDATES]

    def _pinyin(self, letters: str) -> list[tuple[str, float]]:
        """Best readings of toneless pinyin letters as vocabulary words (concatenated)."""
        n = len(letters)
        if n < 2 or n > MAX_PINYIN_LETTERS:
            return []
        longest = 6 * MAX_WORD_CHARS
        beams: list[dict[str, float]] = [dict() for _ in range(n + 1)]
        beams[0][""] = 0.0
        for start in range(n):
            if not beams[start]:
                continue
            hypotheses = sorted(beams[start].items(), key=lambda item: item[1])[:BEAM]
            for end in range(start + 1, min(n, start + longest) + 1):
                words = self._lookup(letters[start:end])
                if not words:
                    continue
                best = sorted(words.items(), key=lambda item: -item[1])[:BEAM]
                for word, df in best:
                    cost = PINYIN_WORD - FREQUENCY * math.log1p(df) + (SINGLE_SYLLABLE if len(word) == 1 else 0.0)
                    beam = beams[end]
                    for prefix, prefix_cost in hypotheses:
                        candidate = prefix + word
                        total = prefix_cost + cost
                        if total < beam.get(candidate, math.inf):
                            beam[candidate] = total
        return sorted(beams[n].items(), key=lambda item: item[1])[:CANDIDATES]


def _best_combinations(options: list[list[tuple[str, float]]], limit: int) -> list[tuple[tuple[str, float], ...]]:
    """The ``limit`` cheapest picks of one option per position (options sorted by cost)."""
    combos: list[tuple[float, tuple[tuple[str, float], ...]]] = [(0.0, ())]
    for choices in options:
        extended = [(cost + c, picked + ((text, c),)) for cost, picked in combos for text, c in choices[:limit]]
        extended.sort(key=lambda item: item[0])
        combos = extended[:limit]
    return [picked for _, picked in combos]
