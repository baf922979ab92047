"""The ingest run: which files to read, cleaning and validation common to every format, the report.

Each format's reader (:mod:`.jsonl`, :mod:`.text_page`, :mod:`.html_page`) turns a
file into raw records; this module walks the paths given, cleans and validates
every record into an :class:`Article`, rejects duplicates, and keeps the
:class:`IngestReport`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Union

from ..article import TEXT_FIELDS, Article, character_problem, id_problem, length_problem
from ..categories import canonical_category
from ..text.cleaning import collapse_to_line, collapse_whitespace, parse_date, strip_ruby
from . import html_page, jsonl, text_page
from .raw import FileProblem, RawRecord, Rejected, os_reason

# The package's name, as before it was a package: logging settings and tests name it.
log = logging.getLogger("search_service.ingest")

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
                    raise Rejected(
                        index,
                        'expected a JSON object like {"id": …, "title": …, "body": …}, '
                        f"got {jsonl.json_type(record)}",
                    )
                articles.append(self._accept(label, jsonl.raw_from_json(record, index)))
            except Rejected as rejected:
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
            self._problem(str(folder), 1, f"cannot read folder ({os_reason(exc)})")
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
            yield from self._take(str(path), jsonl.records(path, compressed=False))
        elif kind == "jsonl.gz":
            yield from self._take(str(path), jsonl.records(path, compressed=True))
        elif kind == "txt":
            yield from self._read_page(path, text_page.parse_page)
        elif kind == "html":
            yield from self._read_page(path, html_page.parse_page)

    # -- bookkeeping -------------------------------------------------------

    def _problem(self, path: str, line: int, reason: str) -> None:
        problem = IngestProblem(path, line, reason)
        self.report.problems.append(problem)
        if self.log_problems:
            log.warning("%s", problem)

    def _reject(self, path: str, line: int, reason: str) -> None:
        self.report.rejected += 1
        self._problem(path, line, reason)

    # -- records of any format ----------------------------------------------

    def _take(self, label: str, found: Iterable[RawRecord | Rejected | FileProblem]) -> Iterator[Article]:
        """Accept or reject each record a reader found, and note its file-level problems."""
        for item in found:
            if isinstance(item, FileProblem):
                self._problem(label, item.line, item.reason)
                continue
            self.report.read += 1
            try:
                if isinstance(item, Rejected):
                    raise item
                article = self._accept(label, item)
            except Rejected as rejected:
                self._reject(label, rejected.line, "; ".join(rejected.reasons))
                continue
            yield article

    def _read_page(self, path: Path, parse: Callable[[bytes, str], RawRecord]) -> Iterator[Article]:
        """One page file is one record (read whole: a page is small); its id is the file's stem."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            yield from self._take(str(path), [FileProblem(1, f"cannot read file ({os_reason(exc)})")])
            return
        try:
            found: RawRecord | Rejected = parse(data, self.id_override or _stem(path))
        except Rejected as rejected:
            found = rejected
        yield from self._take(str(path), [found])

    # -- cleaning and validation common to all readers ----------------------

    def _character_problems(self, raw: RawRecord) -> list[tuple[int, str]]:
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

    def _accept(self, label: str, raw: RawRecord) -> Article:
        """Clean and validate ``raw``; return the Article or raise :class:`Rejected`."""
        problems: list[tuple[int, str]] = [(raw.line, reason) for reason in raw.problems]
        characters = self._character_problems(raw)
        if characters:
            problems.extend(characters)
            # Invalid characters first: cleaning such text could fail or hide what was sent.
            problems.sort(key=lambda item: item[0])
            raise Rejected(problems[0][0], *(reason for _, reason in problems))

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
            raise Rejected(problems[0][0], *(reason for _, reason in problems))

        first = self._seen.get(article_id)
        if first is not None:
            raise Rejected(
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


def _first_bad(value: str) -> int:
    match = re.search("[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", value)
    return match.start() if match else len(value)


def _suffix_text(path: Path) -> str:
    suffixes = "".join(path.suffixes)
    return f'"{suffixes}"' if suffixes else "(no suffix)"
