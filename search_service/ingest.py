"""Readers that turn source files into cleaned, validated :class:`Article` records.

Three input formats, chosen by file suffix:

``.jsonl`` ``.ndjson`` (optionally ``.gz``)
    JSON Lines: one object per line with ``id``, ``title``, ``body`` and the
    optional ``category``, ``date`` (string or null), ``url``, ``source``: the
    format of ``../shared/corpora/*.jsonl.gz``. Unknown keys are ignored.
``.txt``
    A page's text as scraped from the site (see ``../shared/seed``): menu lines
    starting with ``- ``, an optional breadcrumb line (``主页 > 新闻中心 > 行业洞见``),
    the title line, a meta line ``來源:高新院 achie.org 日期:2025-09-11 點擊:次``,
    then one body paragraph per line.
``.html`` ``.htm``
    An article page of the site's template (see :func:`_parse_html_page`).

Every record is cleaned (ruby pinyin stripped, whitespace collapsed with
paragraphs kept, category canonical) and validated. A record that cannot be
used is *rejected*, never silently dropped: it becomes an
:class:`IngestProblem` ``path:line: reason`` in :attr:`Ingest.report`, is
logged as a warning, and reading carries on with the next record.

Reading streams: JSON Lines files are read line by line (also when gzipped),
so the 42,000-article corpora never sit in memory at once. Only the set of ids
seen so far is kept, to reject duplicates.

Typical use::

    ingest = Ingest(default_category="行业洞见")
    for article in ingest.read(["samples/"]):
        writer.add(article)
    print(ingest.report.summary())
    for problem in ingest.report.problems:
        print(problem)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
import logging
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Union

from .article import TEXT_FIELDS, Article, character_problem, id_problem, length_problem
from .categories import canonical_category
from .cleaning import collapse_to_line, collapse_whitespace, parse_date, strip_ruby
from .extract import (
    META_LINE,
    DecodeProblem,
    UnparsableHTML,
    breadcrumb_category,
    decode_html,
    extract_page,
    meta_fields,
)

__all__ = [
    "SUPPORTED_SUFFIXES",
    "IngestProblem",
    "IngestReport",
    "Ingest",
    "read_articles",
    "JsonProblem",
    "decode_json",
]

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

# Suffix -> reader kind. Longest suffixes first so ".jsonl.gz" wins over ".gz".
_SUFFIX_KINDS: tuple[tuple[str, str], ...] = (
    (".jsonl.gz", "jsonl.gz"),
    (".ndjson.gz", "jsonl.gz"),
    (".jsonl", "jsonl"),
    (".ndjson", "jsonl"),
    (".txt", "txt"),
    (".html", "html"),
    (".htm", "html"),
)
#: The file suffixes :class:`Ingest` can read (matched case-insensitively).
SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(suffix for suffix, _ in _SUFFIX_KINDS)
_SUPPORTED_TEXT = ", ".join(SUPPORTED_SUFFIXES)


def _kind_of(path: Path) -> str | None:
    """The reader kind for a file name, or None when the suffix is not supported."""
    name = path.name.lower()
    for suffix, kind in _SUFFIX_KINDS:
        if name.endswith(suffix) and len(name) > len(suffix):
            return kind
    return None


def _stem(path: Path) -> str:
    """The file name without its (possibly double) supported suffix: the default id."""
    name = path.name
    for suffix, _ in _SUFFIX_KINDS:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class IngestProblem:
    """One thing that went wrong, located as ``path:line``.

    ``line`` is 1-based: the JSON Lines line of the record, the line of a page
    where the problem is (the title line, the 日期 line …), or 1 when the
    problem concerns a whole file or path.
    """

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else (plural or word + 's')}"


@dataclasses.dataclass(slots=True)
class IngestReport:
    """What one :meth:`Ingest.read` run did; filled while its iterator is consumed.

    ``read`` counts records met (JSON Lines lines that are not blank, one per
    page file); ``accepted + rejected == read``. ``problems`` holds one entry per
    rejected record plus one per path- or file-level problem (missing path,
    unreadable file, unknown file type given explicitly, damaged gzip…), so it
    can be longer than ``rejected``. ``skipped`` lists files found while walking
    a folder whose type is not supported (they are not errors: a folder may hold
    a README), so that nothing is left out without a trace.
    """

    files: int = 0
    read: int = 0
    accepted: int = 0
    rejected: int = 0
    problems: list[IngestProblem] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when there was no problem at all."""
        return not self.problems

    def summary(self) -> str:
        """One line for a log or a CLI, e.g.
        ``3 files, 12 records read: 10 accepted, 2 rejected; 1 other problem``."""
        text = (
            f"{_plural(self.files, 'file')}, {_plural(self.read, 'record')} read: "
            f"{self.accepted} accepted, {self.rejected} rejected"
        )
        other = len(self.problems) - self.rejected
        extras = []
        if other > 0:
            extras.append(_plural(other, "other problem"))
        if self.skipped:
            extras.append(f"{_plural(len(self.skipped), 'file')} of unsupported type skipped")
        if extras:
            text += "; " + ", ".join(extras)
        return text


class _Rejected(Exception):
    """Internal: a record cannot be used; ``reasons`` say why, ``line`` where."""

    def __init__(self, line: int, *reasons: str) -> None:
        super().__init__("; ".join(reasons))
        self.line = line
        self.reasons = reasons


# --------------------------------------------------------------------------
# The raw record every reader produces, before cleaning and validation
# --------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _Raw:
    """Field values as found in the file, with the line each came from.

    Text values are uncleaned strings; ``date`` is a string (unparsed), a date,
    or None. ``title``/``body`` are None when absent from the input.
    """

    line: int
    id: str
    title: str | None
    body: str | None
    category: str = ""
    date: str | dt.date | None = None
    url: str = ""
    source: str = ""
    title_line: int | None = None
    body_line: int | None = None
    date_line: int | None = None
    missing_title_reason: str = "missing title: no title line found"
    missing_body_reason: str = "missing body: no text after the title"
    # Problems found while reading the fields (wrong JSON types …), and the
    # fields they concern, which are then not checked again for emptiness.
    problems: list[str] = dataclasses.field(default_factory=list)
    bad_fields: set[str] = dataclasses.field(default_factory=set)


# --------------------------------------------------------------------------
# The ingest object
# --------------------------------------------------------------------------


class Ingest:
    """Reads files and folders into :class:`Article` records and keeps a report.

    ``category``: if given, every article gets this category (overriding what
    the input says). ``default_category``: used when the input gives none.
    Both are canonicalized with :func:`canonical_category`.
    ``id_override``: the id for a page file (``.txt``/``.html``) instead of the
    file name's stem; meant for reading a single page (JSON Lines records always
    keep their own ids).
    ``allow_untitled``: accept records whose title is missing or empty (the
    title is then ``""``) instead of rejecting them.
    ``max_id_length``, ``max_article_kb``: the settings of the same names (longest id in
    characters; largest title + body in KB of UTF-8).
    ``log_problems``: also log each problem as a warning on the
    ``search_service.ingest`` logger (turn off when the caller prints
    :attr:`report` itself, to avoid seeing every problem twice).
    """

    def __init__(
        self,
        default_category: str = "",
        category: str | None = None,
        *,
        id_override: str | None = None,
        allow_untitled: bool = False,
        log_problems: bool = True,
        max_id_length: int = 256,
        max_article_kb: int = 1024,
    ) -> None:
        self.log_problems = log_problems
        self.max_id_length = max_id_length
        self.max_article_kb = max_article_kb
        self.default_category = canonical_category(default_category)
        self.category = canonical_category(category) if category else None
        self.id_override = id_override.strip() if id_override else None
        self.allow_untitled = allow_untitled
        self.report = IngestReport()
        # id -> "path:line" of the record that used it first, for this run.
        self._seen: dict[str, str] = {}

    # -- public ------------------------------------------------------------

    def read(
        self, paths: PathLike | Iterable[PathLike], report: IngestReport | None = None
    ) -> Iterator[Article]:
        """Yield the accepted articles of ``paths`` (files and/or folders), lazily.

        Folders are walked recursively in sorted name order; hidden files and
        folders (name starting with ``.``) are skipped, files of unsupported type
        are listed in ``report.skipped``. A file named explicitly must have a
        supported suffix (:data:`SUPPORTED_SUFFIXES`).

        Each call is one run: it starts a fresh :attr:`report` (or fills the
        given one) and a fresh set of seen ids, so duplicates are detected across
        all files of the run. The report is complete once the iterator is
        exhausted. One run at a time per object: do not interleave two
        iterators of the same ``Ingest`` (use two objects).
        """
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        self.report = report if report is not None else IngestReport()
        self._seen = {}
        return self._run(list(paths))

    def validate_records(self, records: Iterable[Any], label: str = "request") -> list[Article]:
        """Validate already-decoded JSON records (the write API) with the rules of a file run.

        A record's "line" in ``report.problems`` is its 0-based index in ``records``,
        which is how the API names bad records. Starts a fresh report and id set.
        """
        self.report = IngestReport(files=1)
        self._seen = {}
        articles = []
        for index, record in enumerate(records):
            self.report.read += 1
            try:
                if not isinstance(record, dict):
                    raise _Rejected(
                        index,
                        f'expected a JSON object like {{"id": …, "title": …, "body": …}}, got {_json_type(record)}',
                    )
                articles.append(self._accept(label, _raw_from_json(record, index)))
            except _Rejected as rejected:
                self._reject(label, index, "; ".join(rejected.reasons))
        return articles

    # -- walking -----------------------------------------------------------

    def _run(self, paths: list[PathLike]) -> Iterator[Article]:
        for given in paths:
            label = os.fspath(given)
            path = Path(label)
            if not path.exists():
                self._problem(label, 1, "no such file or directory; check the path")
            elif path.is_dir():
                found = False
                for file in self._walk(path, set()):
                    found = True
                    yield from self._read_file(file, _kind_of(file))
                if not found:
                    self._problem(
                        label, 1, f"no article files in this folder (looked for {_SUPPORTED_TEXT})"
                    )
            else:
                kind = _kind_of(path)
                if kind is None:
                    self._problem(
                        label,
                        1,
                        f"unknown file type {_suffix_text(path)}; "
                        f"supported: {_SUPPORTED_TEXT} (rename the file or convert it)",
                    )
                else:
                    yield from self._read_file(path, kind)

    def _walk(self, folder: Path, visited: set[str]) -> Iterator[Path]:
        """Supported files under ``folder``, sorted, recursively, skipping hidden names."""
        real = os.path.realpath(folder)
        if real in visited:  # a symlink loop: each real folder is read once
            return
        visited.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as exc:
            self._problem(str(folder), 1, f"cannot read folder ({_os_reason(exc)})")
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            child = folder / entry.name
            if entry.is_dir():
                yield from self._walk(child, visited)
            elif _kind_of(child) is not None:
                yield child
            else:
                self.report.skipped.append(str(child))
                log.info("skipped %s: unsupported file type", child)

    def _read_file(self, path: Path, kind: str | None) -> Iterator[Article]:
        self.report.files += 1
        if kind == "jsonl":
            yield from self._read_jsonl(path, compressed=False)
        elif kind == "jsonl.gz":
            yield from self._read_jsonl(path, compressed=True)
        elif kind in ("txt", "html"):
            yield from self._read_page(path, kind)

    # -- bookkeeping -------------------------------------------------------

    def _problem(self, path: str, line: int, reason: str) -> None:
        problem = IngestProblem(path, line, reason)
        self.report.problems.append(problem)
        if self.log_problems:
            log.warning("%s", problem)

    def _reject(self, path: str, line: int, reason: str) -> None:
        self.report.rejected += 1
        self._problem(path, line, reason)

    # -- JSON Lines --------------------------------------------------------

    def _read_jsonl(self, path: Path, *, compressed: bool) -> Iterator[Article]:
        label = str(path)
        try:
            handle = gzip.open(path, "rb") if compressed else open(path, "rb")
        except OSError as exc:
            self._problem(label, 1, f"cannot read file ({_os_reason(exc)})")
            return
        lineno = 0
        with handle:
            try:
                # Binary lines: only b"\n" ends a record (U+2028 inside a JSON
                # string must not), and a bad byte costs one line, not the file.
                for raw in handle:
                    lineno += 1
                    article = self._jsonl_line(label, lineno, raw)
                    if article is not None:
                        yield article
            except (OSError, EOFError, zlib.error) as exc:
                # gzip.BadGzipFile is an OSError; a truncated stream is EOFError.
                self._problem(label, lineno + 1, _stream_reason(exc, compressed))

    def _jsonl_line(self, label: str, lineno: int, raw: bytes) -> Article | None:
        """Decode, parse and validate one line; None when blank or rejected."""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if not raw.strip():
                return None
            self.report.read += 1
            self._reject(label, lineno, _utf8_reason(raw, exc))
            return None
        if lineno == 1:
            text = text.removeprefix("\ufeff")  # a BOM written by some editors
        if not text.strip():
            return None  # blank lines separate nothing in JSON Lines; not a record
        self.report.read += 1
        try:
            record = _decode_json_record(text, lineno)
            raw_record = _raw_from_json(record, lineno)
            return self._accept(label, raw_record)
        except _Rejected as rejected:
            self._reject(label, rejected.line, "; ".join(rejected.reasons))
            return None

    # -- page files --------------------------------------------------------

    def _read_page(self, path: Path, kind: str) -> Iterator[Article]:
        label = str(path)
        try:
            data = path.read_bytes()  # a page is small; read it whole
        except OSError as exc:
            self._problem(label, 1, f"cannot read file ({_os_reason(exc)})")
            return
        self.report.read += 1
        page_id = self.id_override or _stem(path)
        try:
            if kind == "txt":
                raw = _parse_text_page(_decode_utf8_page(data), page_id)
            else:
                raw = _parse_html_page(data, page_id)
            article = self._accept(label, raw)
        except _Rejected as rejected:
            self._reject(label, rejected.line, "; ".join(rejected.reasons))
            return
        yield article

    # -- cleaning and validation common to all readers ----------------------

    def _character_problems(self, raw: _Raw) -> list[tuple[int, str]]:
        """Ids and text fields that may not be stored as given (see :mod:`article`), with their lines."""
        lines = {"title": raw.title_line, "body": raw.body_line, "date": raw.date_line}
        found = []
        if raw.id.strip() and "id" not in raw.bad_fields:
            problem = id_problem(raw.id, self.max_id_length)
            if problem:
                found.append((raw.line, problem))
        for name, multiline in TEXT_FIELDS:
            value = getattr(raw, name)
            if name == "id" or not isinstance(value, str):
                continue
            problem = character_problem(name, value, multiline=multiline) or length_problem(name, value)
            if problem:
                line = lines.get(name) or raw.line
                if multiline and line == raw.body_line and raw.body_line != raw.line:
                    # A page file: the body's lines follow one another from body_line.
                    line += value.count("\n", 0, _first_bad(value))
                found.append((line, problem))
        return found

    def _accept(self, label: str, raw: _Raw) -> Article:
        """Clean and validate ``raw``; return the Article or raise :class:`_Rejected`."""
        problems: list[tuple[int, str]] = [(raw.line, reason) for reason in raw.problems]
        characters = self._character_problems(raw)
        if characters:
            problems.extend(characters)
            # Invalid characters first: cleaning such text could fail or hide what was sent.
            problems.sort(key=lambda item: item[0])
            raise _Rejected(problems[0][0], *(reason for _, reason in problems))

        article_id = raw.id
        if not article_id.strip() and "id" not in raw.bad_fields:
            problems.append((raw.line, 'empty "id"; every record needs a unique, non-empty id'))

        title = collapse_to_line(strip_ruby(raw.title)) if raw.title is not None else ""
        if not title and not self.allow_untitled and "title" not in raw.bad_fields:
            reason = raw.missing_title_reason if raw.title is None else (
                'empty "title" (nothing left after cleaning); give the record a title'
            )
            problems.append((raw.title_line or raw.line, reason))

        body = collapse_whitespace(strip_ruby(raw.body)) if raw.body is not None else ""
        if not body and "body" not in raw.bad_fields:
            reason = raw.missing_body_reason if raw.body is None else (
                'empty "body" (nothing left after cleaning); an article needs text to be found'
            )
            problems.append((raw.body_line or raw.line, reason))

        date: dt.date | None = None
        if isinstance(raw.date, dt.date):
            date = raw.date
        elif isinstance(raw.date, str) and raw.date.strip():
            try:
                date = parse_date(raw.date.strip())
            except ValueError as exc:
                problems.append((raw.date_line or raw.line, str(exc)))

        size = len(title.encode("utf-8")) + len(body.encode("utf-8"))
        if size > self.max_article_kb * 1024:
            problems.append((raw.body_line or raw.line,
                             f"the article is {size} bytes of text (title + body, UTF-8); the limit is "
                             f"{self.max_article_kb * 1024} bytes (setting max_article_kb); split it into "
                             "several articles"))

        if problems:
            # One problem entry per record, at the line of its first problem.
            problems.sort(key=lambda item: item[0])
            raise _Rejected(problems[0][0], *(reason for _, reason in problems))

        first = self._seen.get(article_id)
        if first is not None:
            raise _Rejected(
                raw.line,
                f'duplicate id "{article_id}" (first used at {first}); '
                "ids must be unique across all files of one run",
            )
        self._seen[article_id] = f"{label}:{raw.line}"

        if self.category is not None:
            category = self.category
        else:
            category = canonical_category(raw.category) or self.default_category
        article = Article(
            id=article_id,
            title=title,
            body=body,
            category=category,
            date=date,
            url=raw.url.strip(),
            source=collapse_to_line(strip_ruby(raw.source)),
        )
        self.report.accepted += 1
        return article


def read_articles(
    paths: PathLike | Iterable[PathLike],
    *,
    default_category: str = "",
    category: str | None = None,
    id_override: str | None = None,
    allow_untitled: bool = False,
    report: IngestReport | None = None,
) -> Iterator[Article]:
    """Convenience wrapper: ``Ingest(...).read(paths, report)``.

    Pass an :class:`IngestReport` to collect the problems; either way each
    problem is also logged as a warning on the ``search_service.ingest`` logger.
    """
    ingest = Ingest(
        default_category,
        category,
        id_override=id_override,
        allow_untitled=allow_untitled,
    )
    return ingest.read(paths, report)


# --------------------------------------------------------------------------
# JSON Lines records
# --------------------------------------------------------------------------

_JSON_TYPE_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def _json_type(value: Any) -> str:
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


def _first_bad(value: str) -> int:
    match = re.search("[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", value)
    return match.start() if match else len(value)


def _decode_json_record(text: str, lineno: int) -> dict[str, Any]:
    """Parse one JSON Lines line into a dict; raise _Rejected when it is not one."""
    try:
        record = decode_json(text.rstrip())
    except JsonProblem as exc:
        raise _Rejected(lineno, f"bad JSON: {exc}; each line must be one complete JSON object") from None
    if not isinstance(record, dict):
        raise _Rejected(
            lineno,
            f'expected a JSON object like {{"id": …, "title": …, "body": …}}, got {_json_type(record)}',
        )
    return record


def _raw_from_json(record: dict[str, Any], lineno: int) -> _Raw:
    """Take the fields of one JSON record, noting absent, null and mistyped ones.

    Nothing is raised here: problems go into ``_Raw.problems`` so that
    :meth:`Ingest._accept` reports all of a record's problems in one message.
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
            problems.append(f'"{name}" must be a string, got {_json_type(value)}{hint}')
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
    return _Raw(
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


# --------------------------------------------------------------------------
# Page text (.txt), the layout of ../shared/seed/achie_article_page.txt
# --------------------------------------------------------------------------

# Menu items as flattened by the scraper: "- 高新院新聞".
_MENU_LINE = re.compile(r"^[-*•]\s")
# "主页 > 新闻中心 > 行业洞见", optionally after "当前位置：".
_BREADCRUMB_LINE = re.compile(
    r"^(?:(?:当前位置|當前位置|您的位置|你的位置)\s*[:：]\s*)?"
    r"(?:主页|主頁|首页|首頁|网站首页|網站首頁|Home)\s*[>＞›»]",
    re.IGNORECASE,
)
# The breadcrumb and 來源/日期 line are read as in HTML pages (search_service.extract).
_META_LINE = META_LINE
_breadcrumb_category = breadcrumb_category
_meta_fields = meta_fields


def _decode_utf8_page(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        raise _Rejected(
            line,
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at byte {exc.start - line_start + 1} "
            "of the line); save the file as UTF-8",
        ) from None


def _parse_text_page(text: str, page_id: str) -> _Raw:
    """Split a scraped page's text into title, meta and body."""
    text = strip_ruby(text)  # before parsing, so "來(lái)源:" is found too
    lines = [line.strip() for line in text.split("\n")]

    category = ""
    title: str | None = None
    title_line: int | None = None
    meta_line: int | None = None
    source = ""
    date: str | None = None
    body: list[str] = []
    body_line: int | None = None
    state = "header"  # header -> (title seen) after_title -> body

    for number, line in enumerate(lines, start=1):
        if not line:
            continue
        if state == "header":
            if _MENU_LINE.match(line):
                continue
            if _BREADCRUMB_LINE.match(line):
                category = _breadcrumb_category(line) or category
                continue
            if _META_LINE.search(line):
                # The meta line came first: the page has no title line.
                meta_line = number
                source, date = _meta_fields(line)
                state = "body"
                continue
            title, title_line = line, number
            state = "after_title"
        elif state == "after_title" and _META_LINE.search(line):
            meta_line = number
            source, date = _meta_fields(line)
            state = "body"
        else:
            state = "body"
            if body_line is None:
                body_line = number
            body.append(line)

    last_line = max(1, len(lines) - (1 if lines and lines[-1] == "" else 0))
    return _Raw(
        line=title_line or meta_line or 1,
        id=page_id,
        title=title,
        body="\n".join(body) if body else None,
        category=category,
        date=date,
        source=source,
        title_line=title_line or meta_line or last_line,
        body_line=body_line or meta_line or title_line or last_line,
        date_line=meta_line,
        missing_title_reason=(
            "missing title: expected a title line before the 來源/日期 line"
            if meta_line is not None and title is None
            else "missing title: the page has no text besides menu lines ('- …')"
        ),
        missing_body_reason="missing body: no paragraphs after the title and 來源/日期 line",
    )


# --------------------------------------------------------------------------
# HTML pages
# --------------------------------------------------------------------------


def _parse_html_page(data: bytes, page_id: str) -> _Raw:
    """Read an article page of the site's template (see :func:`search_service.extract.extract_page`).

    The crawler reads pages with the same two steps, so a page gives the same
    article from a file and from the website.
    """
    try:
        fields = extract_page(decode_html(data))
    except DecodeProblem as problem:
        raise _Rejected(problem.line, problem.reason) from None
    except UnparsableHTML as exc:
        raise _Rejected(1, str(exc)) from None
    return _Raw(
        line=fields.title_line or 1,
        id=page_id,
        title=fields.title,
        body=fields.body,
        category=fields.category,
        date=fields.date,
        url=fields.url,
        source=fields.source,
        title_line=fields.title_line or 1,
        body_line=fields.body_line or 1,
        date_line=fields.date_line,
        missing_title_reason='missing title: no <h1>, ".title", og:title or <title> in the page',
        missing_body_reason=(
            'missing body: no text in the ".content" / <article> / <main> / <body> element'
        ),
    )


# --------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------


def _suffix_text(path: Path) -> str:
    suffixes = "".join(path.suffixes)
    return f'"{suffixes}"' if suffixes else "(no suffix)"


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


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
    return f"cannot read file ({_os_reason(exc) if isinstance(exc, OSError) else exc})"
