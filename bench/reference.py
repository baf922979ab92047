"""The two reference engines ``bench.speed`` measures ours against, built from the same articles.

Both answer the same request as ours (``q``, optional ``category`` list, ``date_from``,
``date_to``) with the same page: the total, category and year counts, and the 10 best hits
with a highlighted title and a highlighted body snippet (``<mark>``, HTML-escaped).
Both use jieba's own analysis, ``jieba.analyse.ChineseAnalyzer`` (search mode, lower case,
stop words, Porter stems), so both find exactly the same articles for a query: AND of the
query's words, a word matching when all of its tokens occur in the title or all in the body
(the query tree Whoosh's ``MultifieldParser`` builds with its default ``AndGroup``).

* :class:`TunedWhoosh` -- stock Whoosh-Reloaded as a competent user writes it after reading
  Whoosh's documentation: title and body ``TEXT(stored=True, chars=True)`` (character offsets
  stored, so the highlighter never re-runs jieba: "Highlighting" guide), searched with
  ``terms=True`` and highlighted with ``PinpointFragmenter``; one searcher opened once and
  reused; category and year counted by ``groupedby`` over sortable (column) fields with
  ``maptype=Count`` during the same collection that ranks the hits; the index built with
  ``procs=N`` and merged into one segment.
* :class:`TantivyEngine` -- tantivy (Rust; ``tantivy`` on PyPI), the compiled engine's limit
  for this work. Each title and body is cut once by jieba; the ChineseAnalyzer tokens are
  indexed as whitespace-separated pre-split text (tantivy's ``whitespace`` tokenizer and a
  lower-case filter; the field is the tokens, not stored); the display text is jieba's
  default-mode words joined by spaces (the text's own ASCII whitespace encoded as control
  characters, which the whitespace tokenizer keeps inside tokens), stored as bytes, so
  tantivy's ``SnippetGenerator`` on the indexed field finds the query's tokens among its
  words; the separators are removed and the whitespace decoded afterwards. As in our engine
  (``highlight.SNIPPET_FIRST_SCAN_CHARS``, ``SNIPPET_SCAN_CHARS``), the snippet generator is
  given the start of the body (about 4,000 characters, then 20,000 when nothing matched
  there), not a whole 100,000-character law: tantivy re-tokenizes the text it highlights.
  Categories and years are counted by one ``terms`` aggregation over fast fields
  (``Searcher.aggregate``); filters are a term set on the category and a range on the date.

Neither reference folds Traditional and Simplified script, expands synonyms or finds
substrings, as ours does: their totals are smaller for some queries (the benchmark reports
them). Old ``bench/baseline.py`` is the same Whoosh without those fast paths ("Whoosh,
re-analyzing highlighter"); it is no reference for speed.
"""

from __future__ import annotations

import html
import logging
import multiprocessing
import re
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import jieba

PAGE_SIZE = 10
#: Body snippet length in characters (ours: setting snippet_length, 120 by default).
SNIPPET_CHARS = 120
#: Each body snippet keeps this many characters of context around its matches.
SNIPPET_SURROUND = 40
#: Titles are highlighted whole (up to this many characters).
TITLE_CHARS = 300
#: Facet sizes asked of tantivy's terms aggregation (more than any corpus has).
CATEGORY_BUCKETS = 1000
YEAR_BUCKETS = 300
#: Separates jieba's words in the text tantivy indexes and highlights (its whitespace tokenizer
#: splits on ASCII whitespace only); the text's own whitespace is encoded as control characters.
SEP = " "
_ENCODE_SPACE = str.maketrans({" ": "\x1f", "\n": "\x1e", "\t": "\x1d", "\r": "\x1c", "\f": "\x1b"})
_DECODE_SPACE = str.maketrans({v: k for k, v in {" ": "\x1f", "\n": "\x1e", "\t": "\x1d", "\r": "\x1c",
                                                  "\f": "\x1b"}.items()})
#: The body text given to tantivy's snippet generator: first this many characters of the joined
#: words (at least ours' SNIPPET_FIRST_SCAN_CHARS of the text), then the second bound if none matched.
SNIPPET_SCAN = (2 * 4_000, 2 * 20_000)


def initialize(cache_dir: Path) -> None:
    """Load jieba's default dictionary (what ChineseAnalyzer uses), cached in ``cache_dir``."""
    jieba.setLogLevel(logging.WARNING)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    jieba.dt.tmp_dir = str(cache_dir)
    jieba.initialize()


def day_number(article) -> tuple[int, int]:
    """(YYYYMMDD, year) of an article's date; (0, 0) when undated."""
    date = article.date
    if date is None:
        return 0, 0
    return date.year * 10000 + date.month * 100 + date.day, date.year


def _day(iso: str | None) -> int | None:
    return int(iso.replace("-", "")) if iso else None


def _categories(params: dict) -> list[str]:
    value = params.get("category") or []
    return [value] if isinstance(value, str) else list(value)


# =========================================================================== tuned Whoosh


def whoosh_schema():
    """Title and body with jieba's ChineseAnalyzer and character offsets; sortable facet fields."""
    from jieba.analyse import ChineseAnalyzer
    from whoosh import fields

    analyzer = ChineseAnalyzer()
    return fields.Schema(
        id=fields.ID(stored=True, unique=True),
        title=fields.TEXT(analyzer=analyzer, stored=True, chars=True),
        body=fields.TEXT(analyzer=analyzer, stored=True, chars=True),
        category=fields.ID(stored=True, sortable=True),
        date=fields.NUMERIC(int, bits=32, stored=True, sortable=True, default=0),
        year=fields.NUMERIC(int, bits=32, sortable=True, default=0),
    )


def build_whoosh(index_dir: Path, articles: Iterable, procs: int = 1, limitmb: int = 256) -> int:
    """Create the tuned Whoosh index in ``index_dir`` (replaced); returns the document count.

    ``procs > 1`` uses Whoosh's multiprocess writer, which merges into one segment at the end.
    """
    from whoosh import index as whoosh_index

    index_dir = Path(index_dir)
    shutil.rmtree(index_dir, ignore_errors=True)
    index_dir.mkdir(parents=True)
    ix = whoosh_index.create_in(str(index_dir), whoosh_schema())
    writer = ix.writer(procs=procs, limitmb=limitmb, multisegment=False) if procs > 1 else ix.writer(limitmb=limitmb)
    count = 0
    try:
        for article in articles:
            date, year = day_number(article)
            writer.add_document(id=article.id, title=article.title, body=article.body, category=article.category,
                                date=date, year=year)
            count += 1
    except BaseException:
        writer.cancel()
        raise
    writer.commit()
    ix.close()
    return count


class TunedWhoosh:
    """Page-1 searches on a tuned Whoosh index, one searcher for the life of the object."""

    name = "tuned Whoosh"

    def __init__(self, index_dir: Path) -> None:
        from whoosh import highlight, sorting
        from whoosh import index as whoosh_index
        from whoosh.qparser import MultifieldParser

        self.index = whoosh_index.open_dir(str(index_dir))
        self.searcher = self.index.searcher()  # cached: reused by every search
        self.parser = MultifieldParser(["title", "body"], self.index.schema)  # AndGroup by default
        self.facets = sorting.Facets()
        self.facets.add_field("category", maptype=sorting.Count)
        self.facets.add_field("year", maptype=sorting.Count)
        formatter = highlight.HtmlFormatter(tagname="mark", between=" … ")
        self.body_highlighter = highlight.Highlighter(
            fragmenter=highlight.PinpointFragmenter(maxchars=SNIPPET_CHARS, surround=SNIPPET_SURROUND),
            formatter=formatter)
        self.title_highlighter = highlight.Highlighter(
            fragmenter=highlight.PinpointFragmenter(maxchars=TITLE_CHARS, surround=TITLE_CHARS), formatter=formatter)

    def segments(self) -> int:
        return len(self.index._segments())

    def search(self, params: dict) -> dict:
        """One page-1 request given as API parameters."""
        query = self.parser.parse(params.get("q", ""))
        results = self.searcher.search(query, limit=PAGE_SIZE, filter=self._filter(params), groupedby=self.facets,
                                       terms=True)
        hits = []
        for hit in results:
            results.highlighter = self.title_highlighter
            title = hit.highlights("title", top=1) or html.escape(hit["title"])
            results.highlighter = self.body_highlighter
            snippet = hit.highlights("body", top=1) or html.escape(hit["body"][:SNIPPET_CHARS])
            hits.append({"id": hit["id"], "title_html": title, "snippet_html": snippet})
        facets = {name: sorted(results.groups(name).items(), key=lambda kv: (-kv[1], str(kv[0])))
                  for name in ("category", "year")}
        return {"total": len(results), "hits": hits, "facets": facets}

    @staticmethod
    def _filter(params: dict):
        from whoosh import query as wq

        clauses = []
        categories = _categories(params)
        if categories:
            clauses.append(wq.Or([wq.Term("category", c) for c in categories]))
        low, high = _day(params.get("date_from")), _day(params.get("date_to"))
        if low or high:
            clauses.append(wq.NumericRange("date", low, high))
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else wq.And(clauses)

    def close(self) -> None:
        self.searcher.close()
        self.index.close()


# =========================================================================== tantivy

_ANALYZER = None


def _analyzer():
    global _ANALYZER
    if _ANALYZER is None:
        from jieba.analyse import ChineseAnalyzer

        _ANALYZER = ChineseAnalyzer()
    return _ANALYZER


_ACCEPTED = re.compile(r"[\u4E00-\u9FD5]+")


def analyze(text: str) -> tuple[list[str], list[str]]:
    """jieba's default-mode words of ``text`` and ChineseAnalyzer's tokens of it, from one cut.

    The tokens are exactly ``[t.text for t in ChineseAnalyzer()(text)]``: jieba's search mode
    (each word, preceded by its 2- and 3-character dictionary words, as ``jieba.tokenize``
    yields them) through ChineseTokenizer's filter and the analyzer's lower-case, stop-word and
    stemming filters -- computed from one ``jieba.cut`` instead of two.
    """
    from whoosh.analysis import Token

    words = list(jieba.cut(text))
    freq = jieba.dt.FREQ

    def search_mode() -> Iterator:
        token = Token()
        start = 0
        for w in words:
            width = len(w)
            grams = []
            if width > 2:
                grams += [(w[i:i + 2], i, i + 2) for i in range(width - 1) if freq.get(w[i:i + 2])]
            if width > 3:
                grams += [(w[i:i + 3], i, i + 3) for i in range(width - 2) if freq.get(w[i:i + 3])]
            for gram, low, high in grams + [(w, 0, width)]:
                if not _ACCEPTED.match(gram) and len(gram) <= 1:
                    continue
                token.original = token.text = gram
                token.pos = token.startchar = start + low
                token.endchar = start + high
                yield token
            start += width

    stream = search_mode()
    for item in _analyzer().items[1:]:  # LowercaseFilter, StopFilter, StemFilter
        stream = item(stream)
    return words, [t.text for t in stream]


def display_text(words: list[str]) -> str:
    """jieba's words joined by spaces, the text's own ASCII whitespace encoded (see :data:`SEP`)."""
    return SEP.join(word.translate(_ENCODE_SPACE) for word in words)


def query_tokens(word: str) -> list[str]:
    """ChineseAnalyzer's tokens of one query word (what Whoosh's parser ANDs within a field)."""
    return [t.text for t in _analyzer()(word)]


def tantivy_fields(article) -> dict:
    """What tantivy stores and indexes for one article (runs in the build's worker processes)."""
    title_words, title_tokens = analyze(article.title)
    body_words, body_tokens = analyze(article.body)
    date, year = day_number(article)
    return {
        "id": article.id,
        "title": SEP.join(title_tokens),
        "body": SEP.join(body_tokens),
        "title_text": display_text(title_words).encode("utf-8"),
        "body_text": display_text(body_words).encode("utf-8"),
        "category": article.category,
        "date": date,
        "year": year,
    }


TOKENIZER = "jieba_presplit"


def tantivy_schema():
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("title", stored=False, tokenizer_name=TOKENIZER)
    builder.add_text_field("body", stored=False, tokenizer_name=TOKENIZER)
    builder.add_bytes_field("title_text", stored=True)
    builder.add_bytes_field("body_text", stored=True)
    builder.add_text_field("category", stored=True, fast=True, tokenizer_name="raw", index_option="basic")
    builder.add_integer_field("date", stored=True, indexed=True, fast=True)
    builder.add_integer_field("year", indexed=True, fast=True)
    return builder.build()


def _register(index) -> None:
    import tantivy

    index.register_tokenizer(TOKENIZER, tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace())
                             .filter(tantivy.Filter.lowercase()).build())


def build_tantivy(index_dir: Path, articles: list, procs: int = 1, heap_mb: int = 512) -> int:
    """Create the tantivy index in ``index_dir`` (replaced); returns the document count.

    jieba runs in ``procs`` worker processes (forked: the dictionary is loaded once); tantivy
    indexes in this process with one writer thread, then waits for its merges.
    """
    import tantivy

    index_dir = Path(index_dir)
    shutil.rmtree(index_dir, ignore_errors=True)
    index_dir.mkdir(parents=True)
    index = tantivy.Index(tantivy_schema(), path=str(index_dir))
    _register(index)
    writer = index.writer(heap_size=heap_mb * 1_000_000, num_threads=1)
    _analyzer()
    count = 0
    pool = multiprocessing.get_context("fork").Pool(procs) if procs > 1 else None
    try:
        fields = pool.imap(tantivy_fields, articles, chunksize=8) if pool else map(tantivy_fields, articles)
        for values in fields:
            writer.add_document(tantivy.Document(**{k: [v] for k, v in values.items()}))
            count += 1
        writer.commit()
        writer.wait_merging_threads()
    finally:
        if pool:
            pool.close()
            pool.join()
    return count


class TantivyEngine:
    """Page-1 searches on the tantivy index, one searcher for the life of the object."""

    name = "tantivy"

    def __init__(self, index_dir: Path) -> None:
        import tantivy

        self.t = tantivy
        self.index = tantivy.Index.open(str(index_dir))
        _register(self.index)
        self.schema = self.index.schema
        self.searcher = self.index.searcher()
        self.aggregation = {
            "category": {"terms": {"field": "category", "size": CATEGORY_BUCKETS}},
            "year": {"terms": {"field": "year", "size": YEAR_BUCKETS}},
        }
        _analyzer()

    def segments(self) -> int:
        return self.searcher.num_segments

    def _text_query(self, q: str):
        """AND over the query's words of (all tokens in the title OR all tokens in the body)."""
        t = self.t
        must = []
        for word in q.split():
            tokens = query_tokens(word)
            if not tokens:
                continue  # a stop word: Whoosh's parser drops it too
            per_field = []
            for field in ("title", "body"):
                terms = [t.Query.term_query(self.schema, field, token) for token in tokens]
                per_field.append(terms[0] if len(terms) == 1 else
                                 t.Query.boolean_query([(t.Occur.Must, term) for term in terms]))
            must.append(t.Query.boolean_query([(t.Occur.Should, f) for f in per_field]))
        if not must:
            return None
        return must[0] if len(must) == 1 else t.Query.boolean_query([(t.Occur.Must, m) for m in must])

    def _filters(self, params: dict) -> list:
        t = self.t
        clauses = []
        categories = _categories(params)
        if categories:
            clauses.append(t.Query.term_set_query(self.schema, "category", categories))
        low, high = _day(params.get("date_from")), _day(params.get("date_to"))
        if low or high:
            clauses.append(t.Query.range_query(self.schema, "date", t.FieldType.Integer, low, high))
        return clauses

    def search(self, params: dict) -> dict:
        """One page-1 request given as API parameters."""
        t = self.t
        text = self._text_query(params.get("q", ""))
        if text is None:
            return {"total": 0, "hits": [], "facets": {"category": [], "year": []}}
        filters = self._filters(params)
        query = text if not filters else t.Query.boolean_query(
            [(t.Occur.Must, text)] + [(t.Occur.Must, t.Query.const_score_query(f, 0.0)) for f in filters])
        searcher = self.searcher
        found = searcher.search(query, limit=PAGE_SIZE, count=True)
        counts = searcher.aggregate(query, self.aggregation)
        hits = []
        if found.hits:
            title_gen = t.SnippetGenerator.create(searcher, text, self.schema, "title")
            title_gen.set_max_num_chars(TITLE_CHARS)
            body_gen = t.SnippetGenerator.create(searcher, text, self.schema, "body")
            body_gen.set_max_num_chars(SNIPPET_CHARS + 2 * SNIPPET_SURROUND)
            for _score, address in found.hits:
                doc = searcher.doc(address)
                title = bytes(doc.get_first("title_text")).decode("utf-8")
                body = bytes(doc.get_first("body_text")).decode("utf-8")
                snippet = body_gen.snippet_from_doc(t.Document(body=[body[:SNIPPET_SCAN[0]]]))
                if not snippet.highlighted() and len(body) > SNIPPET_SCAN[0]:
                    snippet = body_gen.snippet_from_doc(t.Document(body=[body[:SNIPPET_SCAN[1]]]))
                hits.append({
                    "id": doc.get_first("id"),
                    "title_html": _html(title_gen.snippet_from_doc(t.Document(title=[title])), title, TITLE_CHARS),
                    "snippet_html": _html(snippet, body, SNIPPET_CHARS),
                })
        facets = {name: [(bucket["key"], bucket["doc_count"]) for bucket in counts[name]["buckets"]]
                  for name in ("category", "year")}
        return {"total": found.count, "hits": hits, "facets": facets}

    def close(self) -> None:
        self.searcher = None
        self.index = None


def _html(snippet, text: str, fallback_chars: int) -> str:
    """tantivy's snippet as HTML with ``<mark>``, jieba's separators removed; the text's start when none matched."""
    fragment = snippet.to_html()
    if not fragment:
        return html.escape(text[:2 * fallback_chars].replace(SEP, "").translate(_DECODE_SPACE)[:fallback_chars])
    return fragment.replace(SEP, "").translate(_DECODE_SPACE).replace("<b>", "<mark>").replace("</b>", "</mark>")
