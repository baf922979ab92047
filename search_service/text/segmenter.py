"""jieba's segmentation, computed faster and cached, with jieba's exact output.

jieba stays the reference: the dictionary, the HMM for unknown words (``jieba.finalseg``)
and the user dictionaries are jieba's own. What this module replaces is jieba's
pure-Python glue, which is where an index build spent most of its segmentation time:

* ``Tokenizer.get_DAG`` + ``Tokenizer.calc`` build a dict of lists and then take a
  ``max`` over a generator of tuples for every character. :meth:`Segmenter._cut_block`
  finds the same best route in one pass, comparing the same floating-point scores
  computed by the same expression in the same order (``log(freq) - logtotal + next``),
  so ties and rounding resolve exactly as in jieba;
* ``Tokenizer.cut`` splits text into blocks of Han characters and ASCII words, which
  are segmented independently of their context. Repeated blocks (clauses such as
  "依照本法规定" in laws, "新闻联播" in news) are looked up in a per-process cache
  instead of segmented again.

``tests/text/test_segmenter.py`` compares the output with ``jieba.Tokenizer.tokenize`` on
tricky strings and on a sample of ../shared; ``bench/segmenter.py`` compares every
article of ../shared and measures the speed-up.
"""

from __future__ import annotations

import logging
import threading
from math import log
from pathlib import Path

import jieba
from jieba import finalseg

# jieba's own block patterns (jieba.re_han_default, jieba.re_skip_default), used so the
# blocks are exactly the ones jieba.cut segments.
_RE_HAN = jieba.re_han_default
_RE_SKIP = jieba.re_skip_default

Span = tuple[str, int, int]

BUILTIN_USER_DICT = Path(__file__).parent / "data" / "user_dict.txt"

#: Blocks kept per mode before the cache starts again (a block averages ~12 characters:
#: about 15 MB when full).
DEFAULT_CACHE_BLOCKS = 50_000


class Segmenter:
    """One jieba dictionary for the whole process, loaded once.

    ``initialize`` must run before a threaded server starts (jieba's lazy
    initialization is not thread-safe) and before a process pool forks.
    """

    def __init__(self, cache_blocks: int = DEFAULT_CACHE_BLOCKS) -> None:
        self._jieba = jieba.Tokenizer()
        self._lock = threading.Lock()
        self._ready = False
        self.user_dicts: tuple[Path, ...] = ()
        self.cache_blocks = cache_blocks
        # Block -> its spans (offsets relative to the block), one cache per mode.
        self._caches: dict[bool, dict[str, tuple[Span, ...]]] = {False: {}, True: {}}
        self._logtotal = 0.0

    def initialize(self, cache_dir: Path | str | None = None, user_dicts: tuple[Path, ...] = ()) -> None:
        """Load the dictionary (cache in ``cache_dir``) and the domain dictionaries."""
        with self._lock:
            if self._ready and tuple(user_dicts) == self.user_dicts:
                return
            jieba.setLogLevel(logging.WARNING)
            if cache_dir:
                Path(cache_dir).mkdir(parents=True, exist_ok=True)
                # Our own folder, not the shared /tmp/jieba.cache another user could own.
                self._jieba.tmp_dir = str(cache_dir)
            self._jieba.initialize()
            dicts = (BUILTIN_USER_DICT, *user_dicts) if BUILTIN_USER_DICT.exists() else tuple(user_dicts)
            for path in dicts:
                # jieba leaves a file it opened itself unclosed; hand it an open one.
                with open(path, "rb") as handle:
                    self._jieba.load_userdict(handle)
            self.user_dicts = tuple(user_dicts)
            self._dictionary_changed()
            self._ready = True

    def _dictionary_changed(self) -> None:
        self._logtotal = log(self._jieba.total)
        for cache in self._caches.values():
            cache.clear()

    def spans(self, text: str, search: bool) -> list[Span]:
        """jieba tokens of ``text`` as (word, start, end); search mode adds sub-words.

        Equal to ``list(jieba.Tokenizer.tokenize(text, mode="search" if search else
        "default"))`` with the HMM on.
        """
        if not self._ready:
            self.initialize()
        out: list[Span] = []
        start = 0
        cache = self._caches[search]
        for block in _RE_HAN.split(text):
            if not block:
                continue
            if _RE_HAN.match(block):
                found = cache.get(block)
                if found is None:
                    found = self._block_spans(block, search)
                    if len(cache) >= self.cache_blocks:
                        cache.clear()  # cheaper than LRU bookkeeping; repeats come back quickly
                    cache[block] = found
                if start:
                    out.extend([(word, s + start, e + start) for word, s, e in found])
                else:
                    out.extend(found)
                start += len(block)
                continue
            # Outside Han/ASCII-word blocks jieba yields whitespace runs ("\r\n" or one
            # space) whole and every other character alone; none is longer than 2, so
            # search mode adds no sub-words here.
            for part in _RE_SKIP.split(block):
                if not part:
                    continue
                if _RE_SKIP.match(part):
                    out.append((part, start, start + len(part)))
                    start += len(part)
                else:
                    for char in part:
                        out.append((char, start, start + 1))
                        start += 1
        return out

    def dictionary(self) -> dict[str, int]:
        """jieba's word frequencies (prefixes of words appear with frequency 0)."""
        if not self._ready:
            self.initialize()
        return self._jieba.FREQ

    def add_word(self, word: str) -> None:
        """Teach the segmenter a word at run time (used by tests and the dictionary tools)."""
        if not self._ready:
            self.initialize()
        with self._lock:
            self._jieba.add_word(word)
            self._dictionary_changed()

    def remove_word(self, word: str) -> None:
        """Forget a word taught with :meth:`add_word` (the desk's dictionary words, docs/ADMIN.md)."""
        if not self._ready:
            self.initialize()
        with self._lock:
            self._jieba.del_word(word)
            self._dictionary_changed()

    # -- one block ---------------------------------------------------------------------------

    def _block_spans(self, block: str, search: bool) -> tuple[Span, ...]:
        """``tokenize`` of one block (offsets from the block's start)."""
        spans: list[Span] = []
        start = 0
        freq = self._jieba.FREQ
        for word in self._cut_block(block):
            width = len(word)
            if search and width > 2:
                for i in range(width - 1):
                    gram = word[i:i + 2]
                    if freq.get(gram):
                        spans.append((gram, start + i, start + i + 2))
                if width > 3:
                    for i in range(width - 2):
                        gram = word[i:i + 3]
                        if freq.get(gram):
                            spans.append((gram, start + i, start + i + 3))
            spans.append((word, start, start + width))
            start += width
        return tuple(spans)

    def _cut_block(self, sentence: str) -> list[str]:
        """``Tokenizer.__cut_DAG`` (the HMM variant) of one block, as a list."""
        freq = self._jieba.FREQ
        get = freq.get
        logtotal = self._logtotal
        n = len(sentence)
        # score[i], ends[i]: jieba's route[i] = (score, end) as two lists.
        score = [0.0] * (n + 1)
        ends = [0] * (n + 1)
        for idx in range(n - 1, -1, -1):
            best = 0.0
            best_end = -1
            i = idx
            frag = sentence[idx]
            while i < n:
                f = get(frag)
                if f is None:
                    break
                if f:
                    # jieba: max((log(FREQ.get(frag) or 1) - logtotal + route[x + 1][0], x) for x in DAG)
                    # over ascending x: a later x wins a tie, hence >=.
                    candidate = log(f) - logtotal + score[i + 1]
                    if best_end < 0 or candidate >= best:
                        best, best_end = candidate, i
                i += 1
                frag = sentence[idx:i + 1]
            if best_end < 0:
                # No dictionary word starts here: the character alone (jieba's DAG [k]).
                best = log(get(sentence[idx]) or 1) - logtotal + score[idx + 1]
                best_end = idx
            score[idx] = best
            ends[idx] = best_end
        words: list[str] = []
        x = 0
        buf = ""
        while x < n:
            y = ends[x] + 1
            if y - x == 1:
                buf += sentence[x]
            else:
                if buf:
                    self._flush(buf, words, get)
                    buf = ""
                words.append(sentence[x:y])
            x = y
        if buf:
            self._flush(buf, words, get)
        return words

    @staticmethod
    def _flush(buf: str, words: list[str], get) -> None:
        """Single characters in a row: jieba's HMM (``finalseg``) guesses unknown words."""
        if len(buf) == 1:
            words.append(buf)
        elif not get(buf):
            words.extend(finalseg.cut(buf))
        else:
            words.extend(buf)
