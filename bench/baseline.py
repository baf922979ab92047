"""Whoosh, re-analyzing highlighter: Whoosh as its tutorial and jieba's README suggest (the naive baseline).

Its highlighter re-runs jieba over every hit's stored body, so a ratio against it measures that
mistake more than any engine: it is no reference for search speed (``bench.speed`` measures ours
against tantivy and Whoosh tuned as its documentation says, ``bench/reference.py``). The indexing
and serving benchmarks still use it as the baseline of an index build and of a first pass.

* Analysis: ``jieba.analyse.ChineseAnalyzer`` (jieba search mode, lower-case, stop words,
  Porter stemming) on title and body, both ``TEXT(stored=True)``; no Traditional/Simplified
  folding, no bigram field.
* Schema: ``id`` (ID, unique), ``category`` (ID, sortable), ``date`` (YYYYMMDD, sortable) and
  ``year`` (sortable, for the year facet).
* Indexing: one process, Whoosh's default writer.
* Searching: ``MultifieldParser`` over title and body, top 10, facets with ``groupedby`` on
  category and year, snippets with Whoosh's own highlighter (``hit.highlights``), which
  re-analyzes every stored body it highlights.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import jieba
from jieba.analyse import ChineseAnalyzer
from whoosh import fields, highlight, sorting
from whoosh import index as whoosh_index
from whoosh import query as wq
from whoosh.qparser import MultifieldParser

PAGE_SIZE = 10
SNIPPET_CHARS = 120


def initialize(cache_dir: Path) -> None:
    """Load jieba's default dictionary (the one ChineseAnalyzer uses), cached in ``cache_dir``."""
    jieba.setLogLevel(logging.WARNING)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    jieba.dt.tmp_dir = str(cache_dir)
    jieba.initialize()


def schema() -> fields.Schema:
    """The baseline schema."""
    analyzer = ChineseAnalyzer()
    return fields.Schema(
        id=fields.ID(stored=True, unique=True),
        title=fields.TEXT(analyzer=analyzer, stored=True),
        body=fields.TEXT(analyzer=analyzer, stored=True),
        category=fields.ID(stored=True, sortable=True),
        date=fields.NUMERIC(int, bits=32, stored=True, sortable=True, default=0),
        year=fields.NUMERIC(int, bits=32, sortable=True, default=0),
    )


def document(article) -> dict:
    """The ``add_document`` arguments for one :class:`search_service.article.Article`."""
    date = article.date
    return {
        "id": article.id,
        "title": article.title,
        "body": article.body,
        "category": article.category,
        "date": date.year * 10000 + date.month * 100 + date.day if date else 0,
        "year": date.year if date else 0,
    }


def build(index_dir: Path, articles: Iterable, procs: int = 1) -> int:
    """Create the baseline index in ``index_dir`` (must be empty or absent); returns the document count.

    ``procs=1`` is the measured baseline (default writer). ``procs>1`` only serves to build the
    search benchmark's index sooner: Whoosh's multiprocess writer merges into one segment, so the
    searched index has the same structure.
    """
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    ix = whoosh_index.create_in(str(index_dir), schema())
    writer = ix.writer(procs=procs) if procs > 1 else ix.writer()
    count = 0
    try:
        for article in articles:
            writer.add_document(**document(article))
            count += 1
    except BaseException:
        writer.cancel()
        raise
    writer.commit()
    ix.close()
    return count


class BaselineSearcher:
    """Page-1 searches on a baseline index: total, category and year facets, highlighted top 10."""

    def __init__(self, index_dir: Path) -> None:
        self.index = whoosh_index.open_dir(str(index_dir))
        self.searcher = self.index.searcher()
        self.parser = MultifieldParser(["title", "body"], self.index.schema)
        self.facets = {
            "category": sorting.FieldFacet("category", maptype=sorting.Count),
            "year": sorting.FieldFacet("year", maptype=sorting.Count),
        }

    def search(self, params: dict, snippets: bool = True) -> dict:
        """Run one request given as API parameters (``q``, ``category`` list, ``date_from``, ``date_to``).

        ``snippets=False`` skips the highlighter (to see what the rest of the request costs).
        """
        query = self.parser.parse(params.get("q", ""))
        results = self.searcher.search(query, limit=PAGE_SIZE, filter=self._filter(params),
                                       groupedby=self.facets, terms=True)
        results.fragmenter = highlight.ContextFragmenter(maxchars=SNIPPET_CHARS, surround=40)
        results.formatter = highlight.HtmlFormatter(tagname="mark")
        hits = [
            {"id": hit["id"], "title": hit.highlights("title") or hit["title"] if snippets else hit["title"],
             "snippet": hit.highlights("body", top=1) if snippets else ""}
            for hit in results
        ]
        return {
            "total": len(results),
            "hits": hits,
            "facets": {name: results.groups(name) for name in self.facets},
        }

    @staticmethod
    def _filter(params: dict) -> wq.Query | None:
        clauses = []
        categories = params.get("category") or []
        if categories:
            clauses.append(wq.Or([wq.Term("category", c) for c in categories]))
        low, high = params.get("date_from"), params.get("date_to")
        if low or high:
            clauses.append(wq.NumericRange("date", _day(low) if low else None, _day(high) if high else None))
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else wq.And(clauses)

    def close(self) -> None:
        self.searcher.close()
        self.index.close()


def _day(iso: str) -> int:
    return int(iso.replace("-", ""))
