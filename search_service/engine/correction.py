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

from ..text import regional
from ..text.analysis import CJK_CLASS, SEGMENTER, normalize

# -- costs of the search (tuned on the tuning half of bench/correction_set.tsv only) --------
#: A typed CJK character not covered by any vocabulary word (as typed or corrected).
UNCOVERED = 1.0
#: A character changed into another of the same sound.
CHANGE = 1.5
#: Weight of log(document frequency) of each word used (more evidence, lower cost)...
FREQUENCY = 0.15
#: ... and of log(frequency in titles): what articles are about is what readers look for
#: (jianju: 检举 in 32 titles, 检具 in none, though in twice as many bodies).
TITLE_FREQUENCY = 0.1
#: Extra cost of each typed character read by one of its rare readings (遗 as wei, not yi).
RARE_READING = 0.75
#: Extra cost of a one-character word standing for pinyin letters (a syllable alone is a weak reading).
SINGLE_SYLLABLE = 1.5
#: Each word a pinyin string is read as (fewer, longer words are the likelier reading).
PINYIN_WORD = 1.0
#: Hypotheses kept at each position of the beam search, and corrected queries offered for checking.
BEAM = 8
CANDIDATES = 4
#: A reading whose cost is within this of the answer's is offered beside it (did-you-mean).
RUNNER_UP_MARGIN = 0.3
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

    def __init__(self, segment, fields: Iterable[str], title_field: str | None = None) -> None:
        counts: dict[str, int] = {}
        titles: dict[str, int] = {}
        for field in fields:
            if not segment.has_field(field):
                continue
            for text, frequency in segment.term_frequencies(field, _FIRST_CJK):
                if _CJK_WORD.fullmatch(text):
                    counts[text] = counts.get(text, 0) + frequency
                    if field == title_field:
                        titles[text] = frequency
        by_key: dict[str, list[str]] = {}
        for word in counts:
            for key in word_keys(word):
                by_key.setdefault(key, []).append(word)
        self.counts = counts
        #: Document frequency in titles alone: a word of titles is a topic readers search for.
        self.titles = titles
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
                    lock: threading.Lock | None = None, title_field: str | None = None) -> Vocabulary:
        """The vocabulary of a commit's segments (``backend.commit.Segment``); ``cache`` (by
        segment id) keeps unchanged segments'. ``title_field``: the field whose frequencies are
        also kept apart (:meth:`title_frequency`)."""
        cache = cache if cache is not None else {}
        fields = tuple(fields)
        vocabularies, current = [], set()
        for segment in segments:
            vocabulary = cache.get(segment.id)
            if vocabulary is None:
                vocabulary = cache[segment.id] = SegmentVocabulary(segment, fields, title_field)
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

    def title_frequency(self, word: str) -> int:
        """Document frequency of ``word`` in titles."""
        return sum(s.titles.get(word, 0) for s in self.segments)

    def weight(self, word: str, df: int) -> float:
        """How much the index speaks for ``word`` (its document frequency ``df``), as the searches
        of :class:`Corrector` count it: log(1 + df), and :data:`TITLE_FREQUENCY` for titles."""
        return FREQUENCY * math.log1p(df) + TITLE_FREQUENCY * math.log1p(self.title_frequency(word))

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
    #: Another reading nearly as likely (shengji: 升级, or 省级), offered beside the answer.
    alternative: str | None = None


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
            answer: Correction | None = None
            best_cost = math.inf
            for text, cost in joined:
                if answer is not None and cost > best_cost + RUNNER_UP_MARGIN:
                    break
                count = exact(text, True)
                if not count:
                    continue
                if answer is not None:
                    return dataclasses.replace(answer, alternative=text)
                answer, best_cost = Correction(text, "pinyin", ((query, text),), count), cost
            if answer is not None:
                return answer
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
        best: Correction | None = None
        lowest = math.inf
        for combination in _best_combinations(options, CANDIDATES):
            text = " ".join(t for t, _ in combination)
            if normalize(text) == normalize(" ".join(tokens)):
                continue
            cost = sum(c for _, c in combination)
            if best is not None and cost > lowest + RUNNER_UP_MARGIN:
                break
            tried += 1
            count = exact(text, verbatim)
            if count:
                if best is not None:
                    # A reading nearly as likely: answered with the best, this one offered.
                    return dataclasses.replace(best, alternative=text)
                changes = tuple((typed, fixed) for typed, (fixed, _) in zip(tokens, combination) if typed != fixed)
                kind = "pinyin" if any(looks_like_pinyin(t) for t, _ in changes) else "homophone"
                best, lowest = Correction(text, kind, changes, count), cost
            if tried >= CANDIDATES:
                break
        return best

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
                        cost = changed * CHANGE - self.vocabulary.weight(word, df)
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
                    cost = PINYIN_WORD - self.vocabulary.weight(word, df) + (SINGLE_SYLLABLE if len(word) == 1 else 0.0)
                    beam = beams[end]
                    for prefix, prefix_cost in hypotheses:
                        candidate = prefix + word
                        total = prefix_cost + cost
                        if total < beam.get(candidate, math.inf):
                            beam[candidate] = total
        return sorted(beams[n].items(), key=lambda item: item[1])[:CANDIDATES]

    # -- weighing the typed text against its homophones --------------------------------------

    def weigh(self, query: str, evidence: Evidence) -> Weighing:
        """The typed query against its same-sound alternatives, on the index's evidence.

        Every window of every word of a plain query is compared with the vocabulary words of the
        same pinyin: the window as typed (the typed words the alternative overlaps) and the same
        window with the alternative in place are counted verbatim in the index. The alternative
        is answered with when it wins clearly (:data:`CLEAR_RATIO`; a typed window that is one
        word of the index only when that word is nearly absent), offered when it wins
        (:data:`OFFER_RATIO`), and ignored otherwise: a real phrase of the corpus with many
        matches is never corrected. Latin letters that read as pinyin are weighed against
        their Chinese reading the same way (:data:`LATIN_RATIO`).
        """
        tokens = query.split()
        corrected, offered = list(tokens), list(tokens)
        found: list[Alternative] = []
        kinds: set[str] = set()
        for index, token in enumerate(tokens):
            if token.startswith("-") or token in ("OR", "AND", "NOT"):
                continue
            if looks_like_pinyin(token) and token.isascii():
                latin = self._latin(token, evidence)
                if latin is not None:
                    found.append(latin)
                    corrected[index] = offered[index] = latin.meant
                    kinds.add("pinyin")
                continue
            chosen = _non_overlapping(self.alternatives(token, evidence))
            if not chosen:
                continue
            found += chosen
            clear = [a for a in chosen if a.clear]
            corrected[index] = _apply(token, clear)
            offered[index] = _apply(token, chosen)
            if clear:
                kinds.add("homophone")
        correction = None
        if kinds and corrected != tokens:
            changes = tuple((a, b) for a, b in zip(tokens, corrected) if a != b)
            kind = "pinyin" if "pinyin" in kinds and "homophone" not in kinds else "homophone"
            correction = Correction(" ".join(corrected), kind, changes)
        suggestion = " ".join(offered) if offered != tokens and offered != corrected else None
        return Weighing(correction, suggestion, tuple(found))

    def alternatives(self, token: str, evidence: Evidence) -> list[Alternative]:
        """Windows of ``token``'s CJK runs whose same-sound alternative is better supported."""
        norm = normalize(token)
        found = []
        for match in _CJK_RUN.finditer(norm):
            run = match.group()
            if not 2 <= len(run) <= MAX_RUN_CHARS:
                continue
            chosen = _non_overlapping(self._run_alternatives(run, evidence))
            if chosen and (chosen[0].start, chosen[-1].end) != (0, len(run)) or len(chosen) > 1:
                # The rest of the run is context: a typed run found verbatim (a title searched as it
                # is) is evidence for every window of it, unless the meant run is found more still.
                typed_run = evidence.verbatim(run)
                if typed_run and evidence.verbatim(_apply(run, chosen)) < OFFER_RATIO * typed_run:
                    continue
            shift = match.start()
            for alt in chosen:
                start, end = alt.start + shift, alt.end + shift
                found.append(dataclasses.replace(alt, start=start, end=end, typed=token[start:end]))
        return found

    def _run_alternatives(self, run: str, evidence: Evidence) -> list[Alternative]:
        """Alternatives of the windows of a CJK run that start and end where typed words do.

        An alternative cutting into a typed word (济发 → 激发 in 经济发展) would leave its other
        characters orphaned: a slip makes the typed word itself wrong, so windows follow the
        typed words (one or several, up to :data:`MAX_WORD_CHARS` characters)."""
        bounds = _word_bounds(run)
        readings = [char_readings(c) or (c,) for c in run]
        frequency = self.vocabulary.frequency
        best: dict[tuple[int, int], tuple[tuple, Alternative]] = {}
        for a, start in enumerate(bounds[:-1]):
            for end in bounds[a + 1:]:
                length = end - start
                if length > MAX_WORD_CHARS:
                    break
                if length < 2:
                    continue
                typed = run[start:end]
                one_word = end == bounds[a + 1]
                typed_df = frequency(typed) if one_word else 0
                seen: set[str] = set()
                choices = [range(len(r)) for r in readings[start:end]]
                for picks in itertools.islice(itertools.product(*choices), MAX_KEY_VARIANTS):
                    key = "".join(readings[start + i][pick] for i, pick in enumerate(picks))
                    for word, df in self._lookup(key).items():
                        if len(word) != length or word == typed or word in seen or df < MEANT_MIN:
                            continue
                        seen.add(word)
                        changed = [i for i, (x, y) in enumerate(zip(word, typed)) if x != y]
                        if any(picks[i] for i in changed):
                            # A character changed by one of its rare readings (碟 as she: 硬碟 → 应设):
                            # the reader typed its usual one.
                            continue
                        whole = len(changed) > _changed_limit(length)
                        if whole and not one_word:
                            continue  # (a typed word may be another word entirely: 程式 for 城市)
                        if typed_df and df < OFFER_RATIO * typed_df:
                            continue  # a word of the index against a not much commoner one
                        alt = self._judge(start, end, typed, word, df, typed_df > 0, evidence)
                        if alt is None:
                            continue
                        if whole and alt.clear:
                            alt = dataclasses.replace(alt, clear=False)  # a whole other word: offered only
                        # Among the alternatives of one window: the fewest characters changed (宜举 →
                        # 宜居, not 依据), then the evidence.
                        rank = (alt.clear, -len(changed), alt.meant_count)
                        held = best.get((start, end))
                        if held is None or rank > held[0]:
                            best[(start, end)] = (rank, alt)
        return [alt for _, alt in best.values()]

    @staticmethod
    def _judge(start: int, end: int, typed: str, meant: str, meant_df: int, typed_is_word: bool,
               evidence: Evidence) -> Alternative | None:
        # The meant word counts where it stands as a word: two characters that only meet across
        # words (人及 in 个人及其) are no word a reader meant, however often they meet.
        meant_count = min(evidence.verbatim(meant), meant_df)
        if meant_count < MEANT_MIN:
            return None
        typed_count = evidence.verbatim(typed)
        pairs = regional.counterparts(typed)
        if pairs:
            # Taiwan's word for the mainland's (附著 for 附着): the typed text is that word too.
            typed_count += evidence.verbatim(regional.alternative(typed, pairs))
        if meant_count < (WORD_OFFER_RATIO if typed_is_word else OFFER_RATIO) * max(typed_count, 1):
            return None
        if typed_is_word:
            clear = typed_count <= WORD_RARE and meant_count >= WORD_CLEAR_RATIO * max(typed_count, 1)
        else:
            clear = meant_count >= CLEAR_RATIO * max(typed_count, 1)
        return Alternative(start, end, typed, meant, typed_count, meant_count, clear)

    def _latin(self, token: str, evidence: Evidence) -> Alternative | None:
        """Pinyin letters answered with their Chinese reading when the letters are rare in the index."""
        letters = token.lower().replace("'", "")
        typed_count = evidence.verbatim(letters)
        if typed_count >= LATIN_COMMON:
            return None
        for text, _ in self._pinyin(letters)[:2]:
            meant_count = evidence.verbatim(text)
            if meant_count < MEANT_MIN:
                continue
            if meant_count >= LATIN_RATIO * max(typed_count, 1):
                return Alternative(0, len(token), token, text, typed_count, meant_count, True)
            return None
        return None


def _word_bounds(run: str) -> list[int]:
    """Where the typed words (jieba precise mode) of a CJK run start and end, 0 and len(run) included."""
    bounds = {0, len(run)}
    for _, start, end in SEGMENTER.spans(run, False):
        bounds.update((start, end))
    return sorted(bounds)


def _non_overlapping(alternatives: list[Alternative]) -> list[Alternative]:
    """The strongest alternatives whose windows do not overlap, clear ones first."""
    chosen: list[Alternative] = []
    for alt in sorted(alternatives, key=lambda a: (not a.clear, -a.ratio, a.start)):
        if all(alt.end <= c.start or alt.start >= c.end for c in chosen):
            chosen.append(alt)
    return sorted(chosen, key=lambda a: a.start)


def _apply(token: str, alternatives: list[Alternative]) -> str:
    """``token`` with each alternative's window replaced by its meant text."""
    out, last = [], 0
    for alt in sorted(alternatives, key=lambda a: a.start):
        out.append(token[last:alt.start])
        out.append(alt.meant)
        last = alt.end
    out.append(token[last:])
    return "".join(out)


def _best_combinations(options: list[list[tuple[str, float]]], limit: int) -> list[tuple[tuple[str, float], ...]]:
    """The ``limit`` cheapest picks of one option per position (options sorted by cost)."""
    combos: list[tuple[float, tuple[tuple[str, float], ...]]] = [(0.0, ())]
    for choices in options:
        extended = [(cost + c, picked + ((text, c),)) for cost, picked in combos for text, c in choices[:limit]]
        extended.sort(key=lambda item: item[0])
        combos = extended[:limit]
    return [picked for _, picked in combos]


# --------------------------------------------------------------------------- weighing real-word slips


class Evidence:
    """What the index says about a text: the articles that hold it verbatim (title or body).

    The searcher gives the corrector one per request (counts cached per snapshot)."""

    def verbatim(self, text: str) -> int:  # pragma: no cover - an interface
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Alternative:
    """One window of a query word and what it likely meant, with the evidence for each."""

    start: int            # the window in the (whitespace) token, in characters
    end: int
    typed: str            # the window as typed
    meant: str            # the window with the alternative word in place
    typed_count: int      # articles holding ``typed`` verbatim
    meant_count: int      # articles holding ``meant`` verbatim
    clear: bool           # wins clearly (answer with it) rather than only plausibly (offer it)

    @property
    def ratio(self) -> float:
        return self.meant_count / max(self.typed_count, 1)


@dataclasses.dataclass(frozen=True)
class Weighing:
    """What the evidence says of a query: a correction to answer with, and/or text to offer."""

    correction: Correction | None = None
    suggestion: str | None = None
    alternatives: tuple[Alternative, ...] = ()


# -- constants of the weighing (tuned on the tune half of the judged sets only) ---------------
#: Fewest articles the meant word must be found in to be offered at all: below that, a ratio of
#: counts is chance (on a few thousand product titles 水草 → 水槽 is 1 against 9).
MEANT_MIN = 20
#: Times more articles than the typed text the meant text needs to be offered (「您是不是要找」)...
OFFER_RATIO = 5.0
#: ... or, when the typed window is a word of the index itself (食用, 公私), this many times.
WORD_OFFER_RATIO = 10.0
#: ... and to be answered with, when the typed window is several words or a word and characters
#: (现代花 = 现代 + 花, 一代一路 = 一代 + 一路): words that only happen to stand side by side.
CLEAR_RATIO = 10.0
#: A typed window that is one word of the index is answered with another only when it is this rare
#: (articles holding it) and the other this many times more common; otherwise only offered.
WORD_RARE = 1
WORD_CLEAR_RATIO = 100.0
#: Latin letters read as pinyin: the Chinese reading must be this many times more common than the
#: letters themselves (taiwan in 3 articles, 台湾 in 2,238); ai, 5g, iphone read as no pinyin...
LATIN_RATIO = 20.0
#: ... and letters found in this many articles are a word of the site's own (siri, mini, demo), kept.
LATIN_COMMON = 10


def _changed_limit(length: int) -> int:
    """Characters an alternative of ``length`` characters spanning several typed words may change (a
    slip is one character, an input method's wrong choice a short word: 只会城市 for 智慧城市). One
    typed word may be replaced whole (程式 for 城市)."""
    return max(1, length // 2)
