"""Mark query matches in stored text, and cut snippets around the best cluster of matches.

The query's normalized terms are found in the *normalized* text; since
:func:`analysis.normalize` keeps the length, each match's offsets are offsets in
the original text, which is what gets escaped and displayed. No re-segmentation,
so this costs a regex scan per hit instead of a jieba run.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable

from .analysis import CJK_CLASS, fold_width_and_case, has_cjk, normalize, normalize_ideographs

MARK_OPEN = "<mark>"
MARK_CLOSE = "</mark>"
ELLIPSIS = "…"
#: Characters of a body searched for a snippet's matches: the work per hit stays that of an
#: ordinary article however long the body (up to max_article_kb); beyond it the snippet is
#: the start of the text, as for a body without matches. The first SNIPPET_FIRST_SCAN_CHARS
#: are tried first (about a long news article): most bodies that match do so early.
SNIPPET_FIRST_SCAN_CHARS = 4_000
SNIPPET_SCAN_CHARS = 20_000
#: Characters marked on the article page (/doc/<id>?q=); the rest is shown unmarked.
MARK_SCAN_CHARS = 50_000
#: Up to this many distinct terms occurring up to this many times in a text, matches are found
#: by ``str.find``; beyond, by a regex (see :class:`Highlighter`).
FIND_TERMS = 8
FIND_MATCHES = 64
_IDEOGRAPHS = re.compile(f"[{CJK_CLASS}]+")
# The characters a Latin term may not touch on either side ("5g" is not a match in "15g").
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
# Where a snippet may start nicely: just after the end of a sentence or line.
_SENTENCE_END = re.compile(r"[。！？；!?;\n]")


class Highlighter:
    """Finds and marks a fixed set of normalized terms in any text."""

    def __init__(self, terms: Iterable[str]) -> None:
        unique = sorted({t for t in terms if t}, key=len, reverse=True)
        self.terms = unique
        # Latin words match whole words only: '5g' must not mark inside '15g'.
        self._whole_word = [not has_cjk(term) and term.isascii() and term[0].isalnum() for term in unique]
        # A few terms finding a few matches (nearly every hit) are found by str.find, a pass over
        # the text each: compiling the terms into a regex costs more (30-70 µs a query) than all
        # of a page's matching. Many terms (a long query, synonym groups) or many matches take
        # the regex, compiled once, the first time it is needed: one pass and a loop in C.
        self._pattern: re.Pattern | None = None
        if len(unique) > FIND_TERMS:
            self._compile()
        # Ideographs are left alone by width and case folding and made by neither: terms of
        # ideographs only (nearly all) match a script-stable text where they match its folded
        # form, at the same offsets (folding keeps the length), so such a text is not folded;
        # any other text is converted to Simplified without folding when that is exact (see
        # analysis.normalize_ideographs).
        self._ideographs_only = all(_IDEOGRAPHS.fullmatch(term) for term in unique)
        # Terms of letters, digits and CJK only (nearly all) match the same whether a text's
        # full-width punctuation is folded or not: a script-stable text can skip that fold.
        self._punctuation = any(0x20 <= ord(ch) <= 0x7E and not ch.isalnum() for term in unique for ch in term)

    def _compile(self) -> re.Pattern:
        parts = [rf"(?<![a-z0-9]){re.escape(term)}(?![a-z0-9])" if whole else re.escape(term)
                 for term, whole in zip(self.terms, self._whole_word)]
        self._pattern = pattern = re.compile("|".join(parts))
        return pattern

    def spans(self, text: str, script_stable: bool = False) -> list[tuple[int, int]]:
        """(start, end) of every match in ``text``, left to right, not overlapping."""
        return self._matches(text, script_stable)[0]

    def _matches(self, text: str, script_stable: bool = False) -> tuple[list[tuple[int, int]], list[str]]:
        """The spans and the normalized text of each match (normalization runs once per text).

        ``script_stable``: the caller knows OpenCC leaves ``text`` as it is (see
        :func:`script_stable`), so normalizing it needs no conversion.
        """
        if not self.terms or not text:
            return [], []
        if not script_stable:
            normalized = normalize_ideographs(text) if self._ideographs_only else normalize(text)
        elif self._ideographs_only:
            normalized = text
        else:
            normalized = fold_width_and_case(text, self._punctuation)
        pattern = self._pattern
        if pattern is None:
            by_find = _found(normalized, self.terms, self._whole_word, FIND_MATCHES)
            if by_find is not None:
                return by_find
            pattern = self._compile()
        found = list(pattern.finditer(normalized))
        return [m.span() for m in found], [m.group() for m in found]

    def mark(self, text: str, limit: int | None = None, script_stable: bool = False) -> str:
        """The whole text, HTML-escaped, with every match in ``<mark>`` (only within the first
        ``limit`` characters when given: the work of marking stays bounded)."""
        scanned = text if limit is None or len(text) <= limit else text[:limit]
        return _render(text, self.spans(scanned, script_stable and scanned is text), 0, len(text))

    def snippet(self, text: str, length: int = 120, script_stable: bool = False) -> str:
        """About ``length`` characters around the densest cluster of matches, escaped and marked.

        Without any match, the start of the text. ``…`` stands where text was cut.
        ``script_stable``: OpenCC leaves every text this scans as it is (:func:`script_stable`).
        """
        if not text:
            return ""
        # Matches are looked for in a bounded prefix only (the cost of a hit): a short one first.
        spans, matched = self._matches(text[:SNIPPET_FIRST_SCAN_CHARS], script_stable)
        if not spans and len(text) > SNIPPET_FIRST_SCAN_CHARS:
            spans, matched = self._matches(text[:SNIPPET_SCAN_CHARS], script_stable)
        if len(text) <= length:
            return _render(text, spans, 0, len(text))
        if not spans:
            return _render(text, [], 0, length) + ELLIPSIS
        start = _best_window(text, spans, matched, length)
        end = min(len(text), start + length)
        inside = [(s, e) for s, e in spans if s >= start and e <= end]
        rendered = _render(text, inside, start, end)
        return (ELLIPSIS if start > 0 else "") + rendered + (ELLIPSIS if end < len(text) else "")


def _found(text: str, terms: list[str], whole_word: list[bool],
           limit: int | None = None) -> tuple[list[tuple[int, int]], list[str]] | None:
    """What the regex ``term1|term2|...`` (longest term first) finds in ``text`` with ``finditer``:
    left to right, not overlapping, the longest term where several start at one place.

    None when the terms occur more than ``limit`` times (overlapping occurrences count): then the
    regex's one pass in C costs less than this loop in Python."""
    starts = []
    seen = 0
    for term, whole in zip(terms, whole_word):
        size = len(term)
        at = text.find(term)
        while at >= 0:
            seen += 1
            if limit is not None and seen > limit:
                return None
            end = at + size
            if not whole or ((at == 0 or text[at - 1] not in _WORD_CHARS)
                             and (end == len(text) or text[end] not in _WORD_CHARS)):
                starts.append((at, -size))
            at = text.find(term, at + 1)  # overlapping ones too: another term may end where this starts
    starts.sort()
    spans: list[tuple[int, int]] = []
    matched: list[str] = []
    reached = 0
    for at, negative_size in starts:
        if at >= reached:
            reached = at - negative_size
            spans.append((at, reached))
            matched.append(text[at:reached])
    return spans, matched


def snippet_scans(body: str) -> list[str]:
    """The texts :meth:`Highlighter.snippet` may normalize for ``body``."""
    scans = [body[:SNIPPET_FIRST_SCAN_CHARS]]
    if len(body) > SNIPPET_FIRST_SCAN_CHARS:
        scans.append(body[:SNIPPET_SCAN_CHARS])
    return scans


def script_stable(title: str, body: str) -> bool:
    """True when OpenCC's Traditional -> Simplified step leaves the title and every text a
    snippet scans of the body (:func:`snippet_scans`) as they are: marking them then needs
    only width and case folding. Recorded per article at index time (most of the site's
    articles are Simplified), so a hit's highlighting skips the conversion; checked on those
    exact texts, since a cut can change how OpenCC reads the characters at it."""
    return all(normalize(text) == fold_width_and_case(text) for text in (title, *snippet_scans(body)))


def _best_window(text: str, spans: list[tuple[int, int]], matched: list[str], length: int) -> int:
    """Start offset of the window that holds the most distinct matched terms, then the most matches.

    ``matched`` holds each span's normalized text, so 發展 and 发展 count as one term.
    """
    best_start, best_end = _densest_cluster(spans, matched, length)
    # Centre the cluster, then prefer to start right after a sentence end close by.
    slack = max(0, length - (best_end - best_start))
    start = max(0, min(best_start - slack // 3, len(text) - length))
    boundary = None
    for match in _SENTENCE_END.finditer(text, max(0, start - 15), best_start):
        boundary = match.end()
    if boundary is not None and boundary <= best_start and best_end - boundary <= length:
        start = boundary
    return start


def _densest_cluster(spans: list[tuple[int, int]], matched: list[str], length: int) -> tuple[int, int]:
    """(start, end) of the matches from one match to the last ending within ``length`` of it that
    hold the most distinct terms, then the most matches; the first such cluster wins."""
    best = (-1, -1)
    best_start = best_end = 0
    count = len(spans)
    right = -1
    in_window: dict[str, int] = {}  # each matched term's occurrences in matches left..right
    # Two pointers over matches. The counts follow the window, so a body with hundreds of
    # matches costs one pass, not a set per match.
    for left in range(count):
        if right < left:
            right = left
            in_window = {matched[left]: 1}
        while right + 1 < count and spans[right + 1][1] - spans[left][0] <= length:
            right += 1
            in_window[matched[right]] = in_window.get(matched[right], 0) + 1
        score = (len(in_window), right - left + 1)
        if score > best:
            best = score
            best_start = spans[left][0]
            best_end = spans[right][1]
        term = matched[left]
        if in_window[term] == 1:
            del in_window[term]
        else:
            in_window[term] -= 1
    return best_start, best_end


_LINE_BREAK = re.compile(r"[ \t\u3000]*[\r\n][\s\u3000]*")


def _is_wide(char: str) -> bool:
    """Chinese (and other full-width) text: no space is written next to it."""
    return unicodedata.east_asian_width(char) in ("W", "F")


def _flow(text: str, start: int, end: int) -> str:
    """``text[start:end]`` with its line breaks joined as running text.

    A snippet shows several paragraphs on one line. Chinese text joins them with nothing
    ("产业。从案例看"); a space stays only between Latin words ("5G network"). The
    characters on either side are read from the whole ``text``, so a cut never decides.
    """
    piece = text[start:end]
    if "\n" not in piece and "\r" not in piece:
        return piece

    def join(match: re.Match) -> str:
        before = start + match.start() - 1
        after = start + match.end()
        if before < 0 or after >= len(text):
            return ""
        return "" if _is_wide(text[before]) or _is_wide(text[after]) else " "

    return _LINE_BREAK.sub(join, piece)


#: What ``html.escape`` changes: a window of text without any of these is escaped as it is.
_HTML_SPECIAL = re.compile("[&<>\"']")


def _render(text: str, spans: list[tuple[int, int]], start: int, end: int) -> str:
    # Nearly every window of Chinese text has nothing to escape: one look at it instead of an
    # escape (five replaces) per piece, a dozen pieces a hit. Joining lines adds no such character.
    escape = html.escape if _HTML_SPECIAL.search(text, start, end) is not None else None
    out = []
    cursor = start
    for s, e in spans:
        if s < cursor or e > end:
            continue
        piece, marked = _flow(text, cursor, s), text[s:e]
        if escape is not None:
            piece, marked = escape(piece), escape(marked)
        out.append(piece)
        out.append(MARK_OPEN + marked + MARK_CLOSE)
        cursor = e
    piece = _flow(text, cursor, end)
    out.append(piece if escape is None else escape(piece))
    return "".join(out)
