"""Traditional -> Simplified exactly as OpenCC's ``t2s`` converts, mostly without OpenCC.

OpenCC costs about 48 ns a character: a 4,000-character Traditional body costs ~190 µs,
the largest part of highlighting a hit from the Taiwanese law corpus (a search at the
site's size looks at ten such bodies). Nearly all of that work is per character, and a
character table does it with numpy in ~15 µs. What makes OpenCC more than a table is its
phrases (計畫 -> 计划, where 畫 alone -> 画); this module finds where they can matter and
leaves only those places to OpenCC.

Why the answer is OpenCC's own, character for character:

* **Characters.** The table holds OpenCC's answer for every code point below
  :data:`TABLE_LIMIT`, converted alone (one call over all of them, newline-separated).
* **Phrases.** The multi-character keys of the ``t2s`` dictionaries are read from
  OpenCC's own files (marisa tries). A phrase's conversion differs from its characters'
  only at some positions, on 38 characters today (於, 畫, 乾, ...). OpenCC converts a text
  by matching the longest key at each position; when no *differing* phrase occurs in the
  text, every phrase it matches converts like its characters, so the table's answer is
  OpenCC's.
* **Where a differing phrase occurs**, OpenCC converts the run of phrase characters
  around it (maximal, so a character in no key bounds it on each side): no key spans a
  character that is in none, so OpenCC's matching restarts after one, and the run converts
  alone exactly as it does within the text.
* Anything it cannot vouch for -- code points at or above the table's limit, a run whose
  conversion changes length, dictionaries it cannot read, a configuration shaped
  differently -- returns None and the caller asks OpenCC for the whole text.

The tables are built once per process, on first use (~0.1 s).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: Code points the character table covers: the BMP and planes 1-3 (every CJK extension).
TABLE_LIMIT = 0x40000
#: Beyond these the phrase checks (Python, per risky character and per character of a run) would
#: cost more than OpenCC on the whole text, which then converts it: a Traditional article has
#: about one risky character in a hundred and runs of a few characters; a megabyte of 計畫 has
#: one in two (measured: 1 MB of law text 234 ms by the checks, 37 ms by OpenCC).
MAX_RISKY_SHARE = 1 / 32
MAX_RUN_CHARS = 64
_OCD2_HEADER = b"OPENCC_MARISA_0.2.5"

Convert = Callable[[str], str]


@dataclasses.dataclass(frozen=True)
class _Risky:
    """Where a character's conversion may differ from the table's: the differing keys holding
    it, as (offset of the character, key), and their bigrams at it, a quick "not here"."""

    keys: tuple[tuple[int, str], ...]
    ending_here: frozenset[str]  # key[offset - 1:offset + 1]
    starting_here: frozenset[str]  # key[offset:offset + 2]
    always: bool = False  # OpenCC converts it in every context (normalized, or not one character)

    def occurs(self, text: str, position: int) -> bool:
        """Whether a differing key holds ``text[position]`` (at the offset it differs at)."""
        if self.always:
            return True
        if (position == 0 or text[position - 1:position + 1] not in self.ending_here) and \
                text[position:position + 2] not in self.starting_here:
            return False
        return any(position >= offset and text.startswith(key, position - offset) for offset, key in self.keys)


class ScriptFolder:
    """OpenCC's ``t2s`` for a text as a character table plus OpenCC on a few phrase runs."""

    def __init__(self, table: np.ndarray, in_phrase: np.ndarray, risky: dict[str, _Risky]) -> None:
        self._table = table
        #: True for a code point that is in some multi-character key (or that OpenCC must see).
        self._in_phrase = in_phrase
        self._risky = risky
        risky_mask = np.zeros(TABLE_LIMIT, dtype=bool)
        risky_mask[[ord(ch) for ch in risky]] = True
        self._risky_mask = risky_mask

    def alone(self, point: int) -> int:
        """The code point OpenCC converts ``point`` to when it stands alone (below :data:`TABLE_LIMIT`)."""
        return int(self._table[point])

    def in_phrase(self, point: int) -> bool:
        """Whether ``point`` is in some multi-character key, or is a character OpenCC must see."""
        return bool(self._in_phrase[point])

    def convert(self, text: str, opencc_convert: Convert) -> str | None:
        """``text`` as OpenCC's ``t2s`` converts it, if that keeps every run's length; else None.

        ``opencc_convert`` converts the runs around differing phrases (one call for all).
        """
        try:
            points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        except UnicodeEncodeError:  # a lone surrogate
            return None
        if not points.size:
            return text
        if int(points.max()) >= TABLE_LIMIT:
            return None
        runs = self._phrase_runs(text, points)
        if runs is None:
            return None
        out = self._table[points]
        if runs:
            converted = opencc_convert("\n".join(text[start:end] for start, end in runs)).split("\n")
            if len(converted) != len(runs):
                return None
            for (start, end), run in zip(runs, converted):
                if len(run) != end - start:
                    return None  # OpenCC changed a length: the caller decides how to keep offsets
                out[start:end] = np.frombuffer(run.encode("utf-32-le"), dtype=np.uint32)
        return out.tobytes().decode("utf-32-le")

    def _phrase_runs(self, text: str, points: np.ndarray) -> list[tuple[int, int]] | None:
        """(start, end) of each maximal run of phrase characters that holds a differing phrase;
        None when finding them would cost more than OpenCC converting the text (the checks are
        Python: many risky characters, or a run longer than :data:`MAX_RUN_CHARS`)."""
        risky = np.flatnonzero(self._risky_mask[points])
        if risky.size > MAX_RISKY_SHARE * points.size:
            return None
        runs: list[tuple[int, int]] = []
        covered = -1
        in_phrase = self._in_phrase
        for position in risky.tolist():
            if position < covered:
                continue  # inside a run already taken
            if not self._risky[text[position]].occurs(text, position):
                continue
            start = position
            while start > 0 and in_phrase[points[start - 1]]:
                start -= 1
                if position - start > MAX_RUN_CHARS:
                    return None
            end = position + 1
            while end < len(text) and in_phrase[points[end]]:
                end += 1
                if end - start > MAX_RUN_CHARS:
                    return None
            runs.append((start, end))
            covered = end
        return runs


def _ocd2_keys(path: Path) -> list[str]:
    """The keys of one OpenCC ``.ocd2`` dictionary (a marisa trie after OpenCC's header)."""
    import marisa_trie  # only here: reading OpenCC's dictionaries is all it is for

    data = path.read_bytes()
    if not data.startswith(_OCD2_HEADER):
        raise ValueError(f"{path.name}: not an OpenCC marisa dictionary")
    return list(marisa_trie.Trie().frombytes(data[len(_OCD2_HEADER):]).keys())


def _dictionary_files(config_dir: Path) -> tuple[list[Path], list[Path]]:
    """(normalization dictionaries, conversion dictionaries) of ``t2s.json``; ValueError for
    any shape this module's reasoning does not cover (one conversion step of ocd2 dicts)."""
    config = json.loads((config_dir / "t2s.json").read_text(encoding="utf-8"))

    def files(entry: dict) -> list[Path]:
        spec = entry["dict"]
        if spec.get("type") == "ocd2":
            return [config_dir / spec["file"]]
        if spec.get("type") == "group":
            return [path for member in spec["dicts"] for path in files({"dict": member})]
        raise ValueError(f"dictionary type {spec.get('type')!r}")

    chain = config.get("conversion_chain", [])
    if len(chain) != 1:
        raise ValueError(f"{len(chain)} conversion steps")
    return [p for entry in config.get("normalization", []) for p in files(entry)], files(chain[0])


def build(config_dir: Path, opencc_convert: Convert) -> ScriptFolder:
    """The folder for OpenCC's ``t2s`` in ``config_dir``, checked against ``opencc_convert``."""
    normalization, conversion = _dictionary_files(config_dir)
    phrases = [key for path in conversion for key in _ocd2_keys(path) if len(key) > 1]
    # Normalization (compatibility ideographs -> unified) runs before phrases are matched: a
    # character it changes may become part of a phrase, so OpenCC sees those itself.
    always = {key for path in normalization for key in _ocd2_keys(path)}
    if any(len(key) != 1 for key in always):
        raise ValueError("multi-character normalization keys")

    points = [p for p in range(0x80, TABLE_LIMIT) if not 0xD800 <= p <= 0xDFFF]
    alone = opencc_convert("\n".join(map(chr, points))).split("\n")
    if len(alone) != len(points):
        raise ValueError("characters did not convert one by one")
    table = np.arange(TABLE_LIMIT, dtype=np.uint32)
    for point, converted in zip(points, alone):
        if len(converted) == 1:
            table[point] = ord(converted)
        else:
            always.add(chr(point))  # converts to another length: OpenCC decides
    in_phrase = np.zeros(TABLE_LIMIT, dtype=bool)
    for ch in {ch for key in phrases for ch in key} | always:
        if ord(ch) < TABLE_LIMIT:
            in_phrase[ord(ch)] = True

    differing: dict[str, list[tuple[int, str]]] = {ch: [(0, ch)] for ch in always}
    for key in phrases:
        value = opencc_convert(key)
        offsets = (range(len(key)) if len(value) != len(key) else
                   [i for i, ch in enumerate(key) if ord(ch) >= TABLE_LIMIT or value[i] != chr(table[ord(ch)])])
        for offset in offsets:
            differing.setdefault(key[offset], []).append((offset, key))
    risky = {
        ch: _Risky(tuple(sorted(set(keys))),
                   frozenset(key[offset - 1:offset + 1] for offset, key in keys if offset > 0),
                   frozenset(key[offset:offset + 2] for offset, key in keys if len(key) > offset + 1),
                   always=ch in always)
        for ch, keys in differing.items()
        if ord(ch) < TABLE_LIMIT  # a text with a character beyond the table goes to OpenCC whole
    }
    folder = ScriptFolder(table, in_phrase, risky)
    # A last check of the reasoning on the phrases themselves, alone and within text.
    for key in phrases:
        for sample in (key, f"在{key}中", f"{key}，{key}"):
            if folder.convert(sample, opencc_convert) not in (None, opencc_convert(sample)):
                raise ValueError(f"the table disagrees with OpenCC on {sample!r}")
    return folder


_lock = threading.Lock()
_folder: ScriptFolder | None = None
_tried = False


def folder(opencc_convert: Convert) -> ScriptFolder | None:
    """This process's folder (built on first use), or None when OpenCC's dictionaries cannot be
    read as expected: then every text goes to OpenCC, as before this module."""
    global _folder, _tried
    if _tried:
        return _folder
    with _lock:
        if not _tried:
            try:
                import opencc

                _folder = build(Path(opencc.__file__).parent / "clib" / "share" / "opencc", opencc_convert)
            except Exception as error:  # noqa: BLE001 - any surprise means: OpenCC for everything
                log.warning("Traditional->Simplified table not built (%s); OpenCC converts every text", error)
                _folder = None
            _tried = True
    return _folder
