"""Propose new dictionary words: frequent character n-grams that jieba splits.

A domain term jieba does not know (链长制, 揭榜挂帅, a new park's name) is cut into
pieces, so its articles are found only through the substring fallback and rank
poorly. This module finds such terms in a corpus for staff to review:

1. count every 2..``max_len``-character n-gram inside CJK runs (normalized text);
2. keep those seen at least ``min_count`` times that jieba's precise mode splits
   into several tokens and that are not in its dictionary already;
3. require them to behave like words: free on both sides (the characters seen just
   before and after vary: boundary entropy) and cohesive inside (the n-gram occurs
   far more often than its two halves would by chance: pointwise mutual information);
4. drop an n-gram that is only part of a longer candidate seen about as often.

The output is a ranked list; nothing is added to any dictionary automatically.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable

from .analysis import CJK_CLASS, SEGMENTER, normalize

_CJK_RUN = re.compile(f"[{CJK_CLASS}]{{2,}}")


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A proposed word with the evidence for it."""

    word: str
    count: int
    left_entropy: float
    right_entropy: float
    cohesion: float
    jieba_split: tuple[str, ...]

    @property
    def score(self) -> float:
        return self.count * min(self.left_entropy, self.right_entropy) * math.log1p(self.cohesion)

    def dictionary_line(self) -> str:
        """The line to add to a jieba user dictionary (word, frequency, part of speech)."""
        return f"{self.word} {max(self.count, 3)} n"


def _entropy(counter: Counter) -> float:
    total = sum(counter.values())
    return -sum(c / total * math.log(c / total) for c in counter.values()) if total else 0.0


def mine_candidates(texts: Iterable[str], *, min_count: int = 5, max_len: int = 5, top: int = 50,
                    min_entropy: float = 1.0, min_cohesion: float = 20.0) -> list[Candidate]:
    """The ``top`` candidate words of ``texts`` (see the module docstring)."""
    counts: Counter = Counter()
    left: dict[str, Counter] = defaultdict(Counter)
    right: dict[str, Counter] = defaultdict(Counter)
    chars: Counter = Counter()
    for text in texts:
        for run in _CJK_RUN.findall(normalize(text)):
            chars.update(run)
            length = len(run)
            for n in range(2, max_len + 1):
                for i in range(length - n + 1):
                    gram = run[i:i + n]
                    counts[gram] += 1
                    # A run edge counts as a distinct neighbour each time (punctuation, space).
                    left[gram][run[i - 1] if i > 0 else f"^{counts[gram]}"] += 1
                    right[gram][run[i + n] if i + n < length else f"${counts[gram]}"] += 1
    total_chars = max(1, sum(chars.values()))
    known = SEGMENTER.dictionary()
    found: list[Candidate] = []
    for gram, count in counts.items():
        if count < min_count or known.get(gram, 0) > 0:
            continue
        split = tuple(word for word, _, _ in SEGMENTER.spans(gram, False))
        if len(split) < 2:
            continue
        left_entropy, right_entropy = _entropy(left[gram]), _entropy(right[gram])
        if min(left_entropy, right_entropy) < min_entropy:
            continue
        # The weakest split point decides: count(ab) * N / (count(a) * count(b)).
        cohesion = min(
            count * total_chars / (_gram_count(counts, chars, gram[:k]) * _gram_count(counts, chars, gram[k:]))
            for k in range(1, len(gram))
        )
        if cohesion < min_cohesion:
            continue
        found.append(Candidate(gram, count, round(left_entropy, 2), round(right_entropy, 2),
                               round(cohesion, 1), split))
    found.sort(key=lambda c: c.score, reverse=True)
    kept: list[Candidate] = []
    for candidate in found:
        # Part of a longer candidate that occurs about as often: the longer one is the word.
        if any(candidate.word in longer.word and longer.count >= 0.8 * candidate.count for longer in kept):
            continue
        kept = [k for k in kept if not (k.word in candidate.word and candidate.count >= 0.8 * k.count)]
        kept.append(candidate)
        if len(kept) >= top * 2:
            break
    kept.sort(key=lambda c: c.score, reverse=True)
    return kept[:top]


def _gram_count(counts: Counter, chars: Counter, gram: str) -> int:
    return max(1, chars[gram] if len(gram) == 1 else counts[gram])
