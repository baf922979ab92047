"""Readers that turn source files into cleaned, validated :class:`Article` records.

Three input formats, chosen by file suffix, one module each (:mod:`.jsonl`,
:mod:`.text_page`, :mod:`.html_page`); the run, its validation and its report are
:mod:`.driver`:

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
    An article page of the site's template (see :func:`search_service.ingest.extract.extract_page`).

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

from .driver import SUPPORTED_SUFFIXES, Ingest, IngestProblem, IngestReport, PathLike, read_articles
from .jsonl import MAX_JSON_DEPTH, MAX_JSON_INT_DIGITS, JsonProblem, decode_json

__all__ = [
    "SUPPORTED_SUFFIXES",
    "IngestProblem",
    "IngestReport",
    "Ingest",
    "read_articles",
    "JsonProblem",
    "decode_json",
    "MAX_JSON_DEPTH",
    "MAX_JSON_INT_DIGITS",
    "PathLike",
]
