"""Summarise a cProfile of index building as "where the time goes", by pipeline stage.

Every function's *own* time (``tottime``) goes to one bucket, so the buckets add up to
the profiled total. Built-in functions (``zlib.compress``, ``str.translate``, ``re``
methods, ``pickle.dumps`` …) have no file of their own: their time is split among
their callers, in proportion to the time spent under each caller, and follows the
caller's bucket.
"""

from __future__ import annotations

import ast
import functools
import pstats
from collections import defaultdict
from pathlib import Path

from .common import REPO

NORMALIZE = "normalize: width/case fold + OpenCC t2s"
JIEBA = "jieba segmentation"
WORD_TOKENS = "word tokens: stop words, mixed/number tokens (analysis.word_spans)"
BIGRAMS = "bigram tokenization (analysis.bigram_spans)"
PINYIN = "pinyin of title words (pinyin.py, pypinyin)"
WHOOSH_PER_DOC = "postings per document: term counts, gathering (segments.py; Whoosh add_document)"
WHOOSH_STORED = "Whoosh stored fields + sortable columns"
WHOOSH_COMMIT = "segment files: sort postings, write terms + posting blocks (segments.py; Whoosh commit)"
OTHER = "other (harness, schema.to_document, gc)"

#: Bucket order in reports: the text pipeline first, then Whoosh.
BUCKETS = (NORMALIZE, JIEBA, WORD_TOKENS, BIGRAMS, PINYIN, WHOOSH_PER_DOC, WHOOSH_STORED, WHOOSH_COMMIT, OTHER)

_NORMALIZE_FUNCS = {"normalize", "_t2s", "_t2s_keep_length", "_lower_keep_length"}
_WORD_FUNCS = {"word_spans", "has_cjk", "WordTokenizer.__call__", "Segmenter.spans"}
_BIGRAM_FUNCS = {"bigram_spans", "bigram_positions", "BigramTokenizer.__call__"}
_PER_DOC_FILES = ("whoosh/formats.py", "whoosh/fields.py", "whoosh/analysis/")
#: segments.py, the fast builder: what gathers a document's postings (the rest writes segment files).
_SEGMENTS_PER_DOC_FUNCS = {"SegmentBuilder.add_analyzed", "SegmentBuilder._add_tokens", "SegmentBuilder._add_items",
                           "_FieldPostings.add_document", "_encode_position_value", "encode_positions",
                           "SegmentBuilder.add", "analyze"}
_PER_DOC_FUNCS = {"SegmentWriter.add_document", "PostingPool.add", "IndexWriter.add_document",
                  "SegmentWriter._check_fields", "SegmentWriter._doc_boost", "SegmentWriter._field_boost",
                  "SegmentWriter._check_state"}


@functools.cache
def _functions(filename: str) -> list[tuple[int, int, str]]:
    """(first line, last line, ``Class.method`` name) of each function in a source file, outermost first."""
    try:
        tree = ast.parse(Path(filename).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return []
    found: list[tuple[int, int, str]] = []

    def visit(node, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                # Decorated functions report the decorator's line in some Pythons.
                first = min([child.lineno] + [d.lineno for d in child.decorator_list])
                found.append((first, child.end_lineno or child.lineno, name))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")

    visit(tree, "")
    return found


def qualname(filename: str, lineno: int, funcname: str) -> str:
    """``Class.method`` for a profiled function when its source can be read, else its bare name.

    A comprehension or lambda (``<listcomp>`` …) is named after the function it is written in.
    """
    name = funcname
    for first, last, candidate in _functions(filename):
        if first <= lineno <= last:
            name = candidate  # later entries are nested deeper
    return name


def bucket_of(filename: str, lineno: int, funcname: str) -> str | None:
    """The bucket of a Python function, or None for a built-in (whose callers decide)."""
    if filename == "~" or filename.startswith("<"):
        return None
    path = filename.replace("\\", "/")
    name = qualname(filename, lineno, funcname)
    if "/opencc/" in path:
        return NORMALIZE
    if "/jieba/" in path or path.endswith("search_service/text/segmenter.py"):
        return JIEBA
    if path.endswith("search_service/engine/backend/segments.py") or path.endswith("search_service/engine/documents.py"):
        return WHOOSH_PER_DOC if name in _SEGMENTS_PER_DOC_FUNCS else WHOOSH_COMMIT
    if "/pypinyin/" in path or path.endswith("search_service/text/pinyin.py"):
        return PINYIN
    if path.endswith("search_service/text/analysis.py"):
        if name in _NORMALIZE_FUNCS:
            return NORMALIZE
        if name in _BIGRAM_FUNCS:
            return BIGRAMS
        if name in _WORD_FUNCS:
            return WORD_TOKENS
        return WORD_TOKENS
    if "/whoosh/" in path:
        if any(part in path for part in _PER_DOC_FILES) or (path.endswith("whoosh/writing.py")
                                                             and name in _PER_DOC_FUNCS):
            return WHOOSH_PER_DOC
        if "W3PerDocWriter" in name or (path.endswith("whoosh/columns.py") and "Writer" in name):
            return WHOOSH_STORED
        return WHOOSH_COMMIT
    return OTHER


def summarize(stats: pstats.Stats) -> dict:
    """Seconds per bucket, the profiled total, and the functions with the most own time.

    Returns ``{"total": s, "buckets": {bucket: s}, "top": [(name, bucket, s), ...]}``.
    """
    raw = stats.stats  # type: ignore[attr-defined]
    own: dict[tuple, float] = defaultdict(float)  # python function -> own time incl. attributed built-ins
    unattributed = 0.0
    for func, (_, _, tottime, _, callers) in raw.items():
        if bucket_of(*func) is not None:
            own[func] += tottime
            continue
        python_callers = {c: edge for c, edge in callers.items() if bucket_of(*c) is not None}
        weights = {c: edge[2] or edge[3] for c, edge in python_callers.items()}
        total_weight = sum(weights.values())
        if not python_callers or total_weight <= 0:
            unattributed += tottime
            continue
        for caller, weight in weights.items():
            own[caller] += tottime * weight / total_weight
    buckets = {name: 0.0 for name in BUCKETS}
    for func, seconds in own.items():
        buckets[bucket_of(*func)] += seconds
    buckets[OTHER] += unattributed
    top = sorted(own.items(), key=lambda item: item[1], reverse=True)[:12]
    return {
        "total": sum(buckets.values()),
        "buckets": buckets,
        "top": [(_describe(func), bucket_of(*func), seconds) for func, seconds in top],
    }


def _describe(func: tuple) -> str:
    filename, lineno, funcname = func
    path = filename.replace("\\", "/")
    for marker in ("/site-packages/", f"{REPO.as_posix()}/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{qualname(filename, lineno, funcname)}"
