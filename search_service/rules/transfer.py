"""``search-service rules export FILE`` / ``rules import FILE``: every staff rule as one JSON document.

The document (``format`` and ``version`` say what it is)::

    {
      "format": "search_service.rules", "version": 1, "exported_at": "2025-06-01T08:00:00+00:00",
      "curations": {"高新区": {"pin": ["id1", "id2"], "hide": ["id3"]}},
      "synonyms": [{"kind": "two_way", "terms": ["经开区", "经济技术开发区"]},
                   {"kind": "one_way", "from": "双碳", "to": ["碳达峰", "碳中和"]}],
      "hot": {"settings": {"length": 10, "days": 7, "min_searches": 3}, "pins": ["园区规划"], "blocks": ["测试"]},
      "words": {"accepted": ["链长制"], "rejected": ["的发展"]}
    }

An import checks the whole document first, with the rules of the desk and the API
(:mod:`.model`), and reports every problem as ``FILE:LINE: what, how to fix``
(:class:`ImportProblems`); only a valid document is written, in one transaction that replaces
every rule and records one history entry (so the import itself can be undone). The history and
the dictionary-word evidence stay with the server they were made on.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter, SearchError
from . import model
from .edits import synonym_changes
from .store import HistoryEntry, RulesDB, dumps

FORMAT = "search_service.rules"
VERSION = 1
SECTIONS = ("curations", "synonyms", "hot", "words")
#: Problems listed before an import gives up listing.
MAX_PROBLEMS = 50


class ImportProblems(SearchError):
    """A rules document that cannot be imported; ``problems`` are ``FILE:LINE: message`` lines."""

    status = 400
    code = "invalid_rules"

    def __init__(self, problems: list[str]) -> None:
        shown = problems[:MAX_PROBLEMS]
        more = len(problems) - len(shown)
        super().__init__("\n".join(shown + ([f"... and {more} more"] if more else [])),
                         details={"problems": shown})
        self.problems = problems


# --------------------------------------------------------------------------- JSON with line numbers


_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_MAX_DEPTH = 32


class _Located:
    """Parse JSON keeping the line each value starts on: ``lines[path] = line`` (path: keys and indexes)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines: dict[tuple, int] = {}
        self._decoder = json.JSONDecoder()

    def line_of(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    def fail(self, pos: int, message: str) -> ValueError:
        return ValueError(f"{self.line_of(pos)}:{message}")

    def parse(self) -> Any:
        value, pos = self.value(_WS.match(self.text, 0).end(), (), 0)  # type: ignore[union-attr]
        pos = _WS.match(self.text, pos).end()  # type: ignore[union-attr]
        if pos != len(self.text):
            raise self.fail(pos, "extra text after the JSON document")
        return value

    def value(self, pos: int, path: tuple, depth: int) -> tuple[Any, int]:
        if depth > _MAX_DEPTH:
            raise self.fail(pos, f"nested deeper than {_MAX_DEPTH} levels")
        self.lines[path] = self.line_of(pos)
        char = self.text[pos:pos + 1]
        if char == "{":
            return self.object(pos + 1, path, depth)
        if char == "[":
            return self.array(pos + 1, path, depth)
        if char == '"':
            try:
                return json.decoder.scanstring(self.text, pos + 1)  # type: ignore[attr-defined]
            except json.JSONDecodeError as exc:
                raise self.fail(exc.pos, exc.msg) from None
        for literal, value in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(literal, pos):
                return value, pos + len(literal)
        match = _NUMBER.match(self.text, pos)
        if match and len(match.group()) <= 32:
            return json.loads(match.group()), match.end()
        raise self.fail(pos, "expected a JSON value (object, list, string, number, true, false or null)")

    def object(self, pos: int, path: tuple, depth: int) -> tuple[dict, int]:
        out: dict = {}
        pos = _WS.match(self.text, pos).end()  # type: ignore[union-attr]
        if self.text.startswith("}", pos):
            return out, pos + 1
        while True:
            if not self.text.startswith('"', pos):
                raise self.fail(pos, "expected a quoted key")
            key_pos = pos
            try:
                key, pos = json.decoder.scanstring(self.text, pos + 1)  # type: ignore[attr-defined]
            except json.JSONDecodeError as exc:
                raise self.fail(exc.pos, exc.msg) from None
            if key in out:
                raise self.fail(key_pos, f"the key {key!r} appears twice in one object")
            pos = _WS.match(self.text, pos).end()  # type: ignore[union-attr]
            if not self.text.startswith(":", pos):
                raise self.fail(pos, "expected ':' after a key")
            pos = _WS.match(self.text, pos + 1).end()  # type: ignore[union-attr]
            out[key], pos = self.value(pos, (*path, key), depth + 1)
            self.lines[(*path, key)] = self.line_of(key_pos)
            pos = _WS.match(self.text, pos).end()  # type: ignore[union-attr]
            if self.text.startswith(",", pos):
                pos = _WS.match(self.text, pos + 1).end()  # type: ignore[union-attr]
                continue
            if self.text.startswith("}", pos):
                return out, pos + 1
            raise self.fail(pos, "expected ',' or '}' in an object")

    def array(self, pos: int, path: tuple, depth: int) -> tuple[list, int]:
        out: list = []
        pos = _WS.match(self.text, pos).end()  # type: ignore[union-attr]
        if self.text.startswith("]", pos):
            return out, pos + 1
        while True:
            item, pos = self.value(pos, (*path, len(out)), depth + 1)
            out.append(item)
            pos = _WS.match(self.text, pos).end()  # type: ignore[union-attr]
            if self.text.startswith(",", pos):
                pos = _WS.match(self.text, pos + 1).end()  # type: ignore[union-attr]
                continue
            if self.text.startswith("]", pos):
                return out, pos + 1
            raise self.fail(pos, "expected ',' or ']' in a list")


# --------------------------------------------------------------------------- export


def export_document(db: RulesDB) -> dict:
    """Every rule of ``db`` as the export document."""
    curations = {item.key: item.value for item in db.items("curation")}
    synonyms = [item.value for item in db.items("synonym")]
    hot_items = {item.key: item.value for item in db.items("hot")}
    words: dict[str, list[str]] = {"accepted": [], "rejected": []}
    for item in db.items("word"):
        status = item.value.get("status")
        if status in words:
            words[status].append(item.key)
    return {
        "format": FORMAT, "version": VERSION,
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "curations": curations,
        "synonyms": synonyms,
        "hot": {"settings": {**model.HOT_DEFAULTS, **hot_items.get("settings", {})},
                "pins": list(hot_items.get("pins", [])),
                "blocks": sorted(key[len("block:"):] for key in hot_items if key.startswith("block:"))},
        "words": {status: sorted(found) for status, found in words.items()},
    }


def export_text(db: RulesDB) -> str:
    """The export document as text: one rule per line, so an import's errors point at one."""
    doc = export_document(db)
    lines = ["{"]
    head = [f'  "format": {dumps(doc["format"])}', f'  "version": {doc["version"]}',
            f'  "exported_at": {dumps(doc["exported_at"])}']
    curations = [f"    {dumps(q)}: {dumps(v)}" for q, v in doc["curations"].items()]
    synonyms = [f"    {dumps(g)}" for g in doc["synonyms"]]
    hot = [f'    "settings": {dumps(doc["hot"]["settings"])}', f'    "pins": {dumps(doc["hot"]["pins"])}',
           f'    "blocks": {dumps(doc["hot"]["blocks"])}']
    words = [f'    "accepted": {dumps(doc["words"]["accepted"])}', f'    "rejected": {dumps(doc["words"]["rejected"])}']
    sections = head + [
        '  "curations": {' + ("\n" + ",\n".join(curations) + "\n  }" if curations else "}"),
        '  "synonyms": [' + ("\n" + ",\n".join(synonyms) + "\n  ]" if synonyms else "]"),
        '  "hot": {\n' + ",\n".join(hot) + "\n  }",
        '  "words": {\n' + ",\n".join(words) + "\n  }",
    ]
    lines.append(",\n".join(sections))
    lines.append("}")
    return "\n".join(lines) + "\n"


def export_rules(path: str | Path, db: RulesDB) -> dict:
    """Write every rule to ``path`` (UTF-8 JSON; written to a temporary file, then renamed); counts."""
    target = Path(path)
    text = export_text(db)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(target)
    return _counts(json.loads(text))


def _counts(doc: dict) -> dict:
    return {"curations": len(doc.get("curations", {})), "synonyms": len(doc.get("synonyms", [])),
            "hot_pins": len(doc.get("hot", {}).get("pins", [])),
            "hot_blocks": len(doc.get("hot", {}).get("blocks", [])),
            "words": sum(len(v) for v in doc.get("words", {}).values())}


# --------------------------------------------------------------------------- import


def _param_path(param: str | None) -> tuple:
    """``groups[3].terms[2]`` -> ("groups", 2, "terms", 1): the JSON path an error's param names."""
    out: list = []
    for name, index in re.findall(r"([A-Za-z_]+)|\[(\d+)\]", param or ""):
        out.append(name if name else int(index) - 1)
    return tuple(out)


class _Checker:
    def __init__(self, source: str, located: _Located) -> None:
        self.source = source
        self.lines = located.lines
        self.problems: list[str] = []

    def line(self, path: tuple) -> int:
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    def problem(self, path: tuple, message: str) -> None:
        self.problems.append(f"{self.source}:{self.line(path)}: {message}")

    def check(self, path: tuple, work, *, context: str = ""):
        """``work()``; an InvalidParameter becomes a problem at the line of the value its param names."""
        try:
            return work()
        except InvalidParameter as exc:
            self.problem((*path, *_param_path(exc.param)), context + exc.message)
            return None


def parse_document(text: str, source: str = "rules.json") -> dict:
    """The validated contents of an export document: ``{"curations": {key: value}, "synonyms": [...],
    "hot": {...}, "words": {...}}``; :class:`ImportProblems` listing every problem otherwise."""
    located = _Located(text)
    try:
        doc = located.parse()
    except ValueError as exc:
        line, _, message = str(exc).partition(":")
        raise ImportProblems([f"{source}:{line}: not valid JSON: {message}"]) from None
    checker = _Checker(source, located)
    if not isinstance(doc, dict):
        raise ImportProblems([f"{source}:1: the document must be a JSON object (made by `rules export`)."])
    if doc.get("format") != FORMAT:
        checker.problem(("format",), f'"format" must be "{FORMAT}" (a file made by `search-service rules export`).')
    if doc.get("version") != VERSION:
        checker.problem(("version",), f'"version" must be {VERSION}; this program reads version {VERSION} documents.')
    for key in doc:
        if key not in (*SECTIONS, "format", "version", "exported_at"):
            checker.problem((key,), f"unknown section {key!r}; the sections are {', '.join(SECTIONS)}.")
    out: dict = {"curations": {}, "synonyms": [], "hot": {}, "words": {"accepted": [], "rejected": []}}

    curations = doc.get("curations", {})
    if not isinstance(curations, dict):
        checker.problem(("curations",), '"curations" must be an object: {"query": {"pin": [...], "hide": [...]}}.')
        curations = {}
    if len(curations) > model.MAX_CURATIONS:
        checker.problem(("curations",), f"{len(curations)} curations; the limit is {model.MAX_CURATIONS} "
                                        "(rules.model.MAX_CURATIONS).")
    seen: dict[str, str] = {}
    for query, value in curations.items():
        path = ("curations", query)
        key = checker.check(path, lambda q=query: model.rule_query(q), context=f"curation {query[:40]!r}: ")
        rule = checker.check(path, lambda v=value: model.curation(v), context=f"curation {query[:40]!r}: ")
        if key is None or rule is None:
            continue
        if key in seen:
            checker.problem(path, f"curation {query[:40]!r} is the same query as {seen[key][:40]!r} once normalized "
                                  "(width, case, Traditional/Simplified, spaces); keep one.")
            continue
        seen[key] = query
        out["curations"][key] = rule

    synonyms = doc.get("synonyms", [])
    if not isinstance(synonyms, list):
        checker.problem(("synonyms",), '"synonyms" must be a list of groups.')
        synonyms = []
    if len(synonyms) > model.MAX_SYNONYM_GROUPS:
        checker.problem(("synonyms",), f"{len(synonyms)} synonym groups; the limit is {model.MAX_SYNONYM_GROUPS} "
                                       "(rules.model.MAX_SYNONYM_GROUPS).")
    identities: dict[tuple, int] = {}
    for index, raw in enumerate(synonyms):
        group = checker.check(("synonyms", index), lambda g=raw: model.synonym_group(g, "group"),
                              context=f"synonym group {index + 1}: ")
        if group is None:
            continue
        identity = model.group_identity(group)
        if identity in identities:
            checker.problem(("synonyms", index), f"synonym group {index + 1} repeats group {identities[identity]}.")
            continue
        identities[identity] = index + 1
        out["synonyms"].append(group)

    hot = doc.get("hot", {})
    if not isinstance(hot, dict):
        checker.problem(("hot",), '"hot" must be an object with settings, pins and blocks.')
        hot = {}
    for key in hot:
        if key not in ("settings", "pins", "blocks"):
            checker.problem(("hot", key), f"unknown hot field {key!r}; hot has settings, pins and blocks.")
    settings = checker.check(("hot", "settings"), lambda: model.hot_settings(hot.get("settings", {})),
                             context="hot settings: ")
    pins = checker.check(("hot", "pins"), lambda: model.hot_pins(hot.get("pins", [])), context="hot pins: ")
    blocks_raw = hot.get("blocks", [])
    blocks: list[str] = []
    if not isinstance(blocks_raw, list):
        checker.problem(("hot", "blocks"), "hot blocks must be a list of queries.")
    elif len(blocks_raw) > model.MAX_HOT_BLOCKS:
        checker.problem(("hot", "blocks"), f"{len(blocks_raw)} blocked entries; the limit is {model.MAX_HOT_BLOCKS} "
                                           "(rules.model.MAX_HOT_BLOCKS).")
    else:
        for index, entry in enumerate(blocks_raw):
            key = checker.check(("hot", "blocks", index), lambda e=entry: model.hot_entry(e, "entry"),
                                context=f"hot block {index + 1}: ")
            if key is not None:
                blocks.append(key)
    out["hot"] = {"settings": settings or dict(model.HOT_DEFAULTS), "pins": pins or [],
                  "blocks": sorted(set(blocks))}

    words = doc.get("words", {})
    if not isinstance(words, dict):
        checker.problem(("words",), '"words" must be an object: {"accepted": [...], "rejected": [...]}.')
        words = {}
    decided: dict[str, str] = {}
    for status in words:
        if status not in ("accepted", "rejected"):
            checker.problem(("words", status), f"unknown word list {status!r}; the lists are accepted and rejected.")
            continue
        entries = words[status]
        if not isinstance(entries, list):
            checker.problem(("words", status), f"words.{status} must be a list of words.")
            continue
        for index, entry in enumerate(entries):
            text = checker.check(("words", status, index), lambda e=entry: model.word(e), context=f"word {index + 1}: ")
            if text is None:
                continue
            if text in decided and decided[text] != status:
                checker.problem(("words", status, index), f"{text!r} is both accepted and rejected; keep one.")
                continue
            decided[text] = status
    for text, status in decided.items():
        out["words"][status].append(text)

    if checker.problems:
        raise ImportProblems(checker.problems)
    return out


def import_changes(db: RulesDB, contents: dict) -> list[tuple[str, str, Any]]:
    """The changes that make ``db`` hold exactly ``contents`` (from :func:`parse_document`)."""
    changes: list[tuple[str, str, Any]] = []
    wanted = contents["curations"]
    for item in db.items("curation"):
        if item.key not in wanted:
            changes.append(("curation", item.key, None))
    changes += [("curation", key, value) for key, value in wanted.items()]
    changes += synonym_changes(db, contents["synonyms"])
    hot = contents["hot"]
    blocks = {f"block:{b}" for b in hot["blocks"]}
    for item in db.items("hot"):
        if item.key.startswith("block:") and item.key not in blocks:
            changes.append(("hot", item.key, None))
    changes += [("hot", key, True) for key in sorted(blocks)]
    changes.append(("hot", "settings", hot["settings"]))
    changes.append(("hot", "pins", hot["pins"] or None))
    decided = {w: s for s, found in contents["words"].items() for w in found}
    for item in db.items("word"):
        if item.key not in decided:
            changes.append(("word", item.key, None))
    changes += [("word", w, {"status": s}) for w, s in decided.items()]
    return changes


def import_rules(path: str | Path, db: RulesDB, actor: str = "rules import") -> tuple[dict, HistoryEntry | None]:
    """Replace every rule of ``db`` with the document at ``path``: (counts, the history entry or None
    when nothing changed). :class:`ImportProblems` (``FILE:LINE: ...``) when the file is not valid;
    nothing is written then."""
    source = Path(path)
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise ImportProblems([f"{source}:1: cannot read the file ({exc.strerror or exc})."]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ImportProblems([f"{source}:{line}: not UTF-8 text (byte {exc.start + 1}); save the file as UTF-8."]) \
            from None
    contents = parse_document(text, str(source))
    entry = db.change(actor, f"导入规则（{source.name}）", import_changes(db, contents))
    return _counts(contents), entry


# --------------------------------------------------------------------------- the command


def run_command(action: str, path: str | Path, index_dir: str | Path, *, rules_db: str = "",
                actor: str | None = None, stream=None) -> int:
    """``search-service rules export|import FILE``: 0 when done, 1 when the file had problems (each
    printed as ``FILE:LINE: ...``; nothing imported), 2 when the rules file cannot be used."""
    import getpass
    import sys

    from .store import RulesUnavailable, rules_path

    out = stream or sys.stderr
    db = RulesDB(rules_path(index_dir, rules_db))
    try:
        if action == "export":
            counts = export_rules(path, db)
            print(f"exported {_describe(counts)} to {path}", file=out)
            return 0
        if action != "import":
            raise ValueError(f"unknown action {action!r}")
        who = actor or f"rules import ({_user(getpass)})"
        try:
            counts, entry = import_rules(path, db, who)
        except ImportProblems as exc:
            for problem in exc.problems:
                print(problem, file=out)
            print(f"search-service: error: {len(exc.problems)} problem(s) in {path}; nothing was imported",
                  file=out)
            return 1
        if entry is None:
            print(f"{path} holds the rules already in effect ({_describe(counts)}); nothing changed", file=out)
        else:
            print(f"imported {_describe(counts)} from {path}: {len(entry.changes)} change(s), recorded as change "
                  f"#{entry.id} (undo it on the desk's history page)", file=out)
        return 0
    except (RulesUnavailable, OSError) as exc:
        print(f"search-service: error: {getattr(exc, 'message', exc)}", file=out)
        return 2


def _describe(counts: dict) -> str:
    return (f"{counts['curations']} curation(s), {counts['synonyms']} synonym group(s), {counts['hot_pins']} pinned "
            f"and {counts['hot_blocks']} blocked hot entries, {counts['words']} word decision(s)")


def _user(getpass_module) -> str:
    try:
        return getpass_module.getuser()
    except Exception:  # noqa: BLE001 - no user name in this environment
        return "cli"
