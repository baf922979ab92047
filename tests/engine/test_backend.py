"""engine/backend: the one seam with Whoosh.

* Every Whoosh import of the package is in ``engine/backend`` (the seam is where the imports are).
* The fast paths that read Whoosh's W3 structures directly (posting blocks, length columns, the
  term table's document frequencies) are the paths taken on the service's own indexes: a Whoosh
  release that changes those structures makes them fall back to the slow public calls, and this
  test fails instead of every search silently getting slower.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from search_service.engine.backend import commit as backend_commit
from search_service.engine.request import SearchRequest
from search_service.engine.searcher import EngineOptions, SearchEngine

PACKAGE = Path(__file__).resolve().parents[2] / "search_service"
BACKEND = PACKAGE / "engine" / "backend"


def whoosh_imports() -> dict[str, list[str]]:
    """Modules of the package (outside the backend) that import Whoosh, with what they import."""
    found: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if BACKEND in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                if name == "whoosh" or name.startswith("whoosh."):
                    found.setdefault(str(path.relative_to(PACKAGE)), []).append(name)
    return found


def test_whoosh_is_imported_only_by_the_backend():
    assert whoosh_imports() == {}


def slow_paths() -> dict[str, int]:
    return {path: count for path, count in backend_commit.PATHS.items() if path.endswith(":slow")}


def exercise(engine: SearchEngine) -> None:
    """Every read path of a search: words, substring phrases, prefixes, pinyin, facets, snippets,
    suggestions, related articles, an article, the correction vocabulary."""
    for q in ("智慧城市", "\"高新区\"", "科技*", "zhihuichengshi", "园区 规划", "智惠城市"):
        engine.search(SearchRequest(q=q))
        engine.suggest(q)
    hit = engine.search(SearchRequest(q="高新区")).hits[0]
    engine.similar(hit.id)
    engine.document(hit.id)
    engine.vocabulary()


@pytest.fixture()
def engine(sample_settings):
    engine = SearchEngine(sample_settings.index_dir, EngineOptions(reload_interval=0, cache_entries=0))
    yield engine
    engine.close()


def test_the_services_index_is_read_through_the_fast_paths_only(engine):
    backend_commit.PATHS.clear()
    exercise(engine)
    assert slow_paths() == {}
    for path in ("postings:arrays", "lengths:fast", "term_frequencies:fast", "stored:fast"):
        assert backend_commit.PATHS[path] > 0, path


def test_stored_fields_read_directly_are_whoosh_s(engine):
    # ISA-L inflates Whoosh's own compressed pickles: every document reads as Whoosh reads it.
    segments = engine.snapshot().commit.segments
    checked = 0
    for segment in segments:
        for docnum in range(segment.doc_count):
            assert segment.stored_fields(docnum) == segment._reader.stored_fields(docnum)
            checked += 1
    assert checked == sum(segment.doc_count for segment in segments) > 0


def test_a_fast_path_that_falls_back_is_caught(engine, monkeypatch):
    # As if a Whoosh release renamed the length column: the slow path still answers, the test sees it.
    monkeypatch.setattr(backend_commit, "_length_column", lambda reader, field: None)
    backend_commit.PATHS.clear()
    exercise(engine)
    assert slow_paths().get("lengths:slow", 0) > 0
