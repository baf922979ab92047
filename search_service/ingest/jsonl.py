"""JSON Lines (``.jsonl``, ``.ndjson``, optionally ``.gz``): one object per line.

Also the JSON decoding every input from outside goes through (:func:`decode_json`:
the write API and the tracking beacon use it too), with bounds on integer size and
nesting depth.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .raw import FileProblem, RawRecord, Rejected, os_reason

_JSON_TYPE_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def json_type(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


#: Longest integer literal accepted in JSON input: Python refuses to convert over 4,300
#: digits (with a ValueError that would surface as a 500), and no field needs more than a few.
MAX_JSON_INT_DIGITS = 32
#: Deepest nesting of arrays and objects accepted in JSON input (an article is one flat
#: object; a batch is one level more). Deeper values would make every later ``repr``, ``str``
#: or encoder call recurse that deep.
MAX_JSON_DEPTH = 32


class JsonProblem(ValueError):
    """JSON text that cannot be used; the message says why and where."""


def _bounded_int(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise JsonProblem(f"a number with {len(literal.lstrip('-'))} digits; "
                          f"integers may have at most {MAX_JSON_INT_DIGITS} digits")
    return int(literal)


def decode_json(text: str) -> Any:
    """``json.loads`` for input from outside: every failure is a :class:`JsonProblem`.

    Besides syntax errors, refuses integers over :data:`MAX_JSON_INT_DIGITS` digits and
    nesting deeper than the decoder can follow (its RecursionError), which ``json.loads``
    would otherwise raise as errors no caller expects.
    """
    try:
        value = json.loads(text, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}" if "\n" in text.rstrip() else f"column {exc.colno}"
        raise JsonProblem(f"{exc.msg} at {where}") from None
    except RecursionError:
        raise JsonProblem(f"arrays or objects nested too deeply; the limit is {MAX_JSON_DEPTH} levels "
                          "(an article is one flat object)") from None
    _check_depth(value)
    return value


def _check_depth(value: Any) -> None:
    """Refuse nesting deeper than :data:`MAX_JSON_DEPTH` (an iterative walk, no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise JsonProblem(f"arrays or objects nested more than {MAX_JSON_DEPTH} levels deep; "
                              "an article is one flat object")
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def _decode_json_record(text: str, lineno: int) -> dict[str, Any]:
    """Parse one JSON Lines line into a dict; raise Rejected when it is not one."""
    try:
        record = decode_json(text.rstrip())
    except JsonProblem as exc:
        raise Rejected(lineno, f"bad JSON: {exc}; each line must be one complete JSON object") from None
    if not isinstance(record, dict):
        raise Rejected(
            lineno,
            f'expected a JSON object like {{"id": …, "title": …, "body": …}}, got {json_type(record)}',
        )
    return record


def raw_from_json(record: dict[str, Any], lineno: int) -> RawRecord:
    """Take the fields of one JSON record, noting absent, null and mistyped ones.

    Nothing is raised here: problems go into ``RawRecord.problems`` so that
    :meth:`.driver.Ingest._accept` reports all of a record's problems in one message.
    """
    problems: list[str] = []
    bad: set[str] = set()
    absent: dict[str, str] = {}

    def text_field(name: str) -> str | None:
        if name not in record:
            absent[name] = f'missing "{name}"'
            return None
        value = record[name]
        if value is None:
            absent[name] = f'"{name}" is null'
            return None
        if not isinstance(value, str):
            hint = f'; quote it: "{value}"' if name == "id" and isinstance(value, int) else ""
            problems.append(f'"{name}" must be a string, got {json_type(value)}{hint}')
            bad.add(name)
            return None
        return value

    article_id = text_field("id")
    if "id" in absent:
        problems.insert(0, f"{absent['id']}; every record needs a unique string id")
        bad.add("id")
    title = text_field("title")
    body = text_field("body")
    category = text_field("category")
    date = text_field("date")
    url = text_field("url")
    source = text_field("source")
    return RawRecord(
        line=lineno,
        id=article_id or "",
        title=title,
        body=body,
        category=category or "",
        date=date,
        url=url or "",
        source=source or "",
        problems=problems,
        bad_fields=bad,
        missing_title_reason=absent.get("title", 'missing "title"')
        + "; every record needs a non-empty title",
        missing_body_reason=absent.get("body", 'missing "body"') + "; an article needs text to be found",
    )


def records(path: Path, *, compressed: bool) -> Iterator[RawRecord | Rejected | FileProblem]:
    """The records of a JSON Lines file (gzipped or not), lazily, one per line that is not blank.

    A line that cannot be a record is a :class:`Rejected` at its line; a file that
    cannot be read (or ends early, or is damaged) a :class:`FileProblem`.
    """
    try:
        handle = gzip.open(path, "rb") if compressed else open(path, "rb")
    except OSError as exc:
        yield FileProblem(1, f"cannot read file ({os_reason(exc)})")
        return
    lineno = 0
    with handle:
        try:
            # Binary lines: only b"\n" ends a record (U+2028 inside a JSON
            # string must not), and a bad byte costs one line, not the file.
            for raw in handle:
                lineno += 1
                record = _line_record(lineno, raw)
                if record is not None:
                    yield record
        except (OSError, EOFError, zlib.error) as exc:
            # gzip.BadGzipFile is an OSError; a truncated stream is EOFError.
            yield FileProblem(lineno + 1, _stream_reason(exc, compressed))


def _line_record(lineno: int, raw: bytes) -> RawRecord | Rejected | None:
    """Decode and parse one line; None when it is blank (not a record)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not raw.strip():
            return None
        return Rejected(lineno, _utf8_reason(raw, exc))
    if lineno == 1:
        text = text.removeprefix("\ufeff")  # a BOM written by some editors
    if not text.strip():
        return None  # blank lines separate nothing in JSON Lines; not a record
    try:
        return raw_from_json(_decode_json_record(text, lineno), lineno)
    except Rejected as rejected:
        return rejected


def _utf8_reason(raw: bytes, exc: UnicodeDecodeError) -> str:
    return (
        f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line); "
        "save the file as UTF-8"
    )


def _stream_reason(exc: BaseException, compressed: bool) -> str:
    if isinstance(exc, EOFError):
        return "the gzip file ends early (truncated download or copy?); records after this point are lost"
    if compressed and isinstance(exc, (gzip.BadGzipFile, zlib.error)):
        return (
            f"cannot decompress ({exc}); the file is damaged or not gzip-compressed "
            "(if it is plain text, drop the .gz suffix)"
        )
    return f"cannot read file ({os_reason(exc) if isinstance(exc, OSError) else exc})"
