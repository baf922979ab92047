"""What staff rules cost a search (issue 28, docs/ADMIN.md#storage-workers-and-cost).

    .venv/bin/python -m bench.rules [--articles 20000]

Builds (once, in /tmp) an index of synthetic articles made of the samples' sentences, stores 4,990
curations of other queries, and measures on the same index an engine that applies rules against one
that does not (``Strategy(curations=False)``), the two called alternately so that both see the same
machine: the per-request check and lookup alone, the paired median difference of whole searches
without a rule for the query and with one (3 pinned and 100 hidden ids), and the resolution of a
rule's ids into document numbers (done once per commit). Needs the engine's integration of the rules
(``Strategy.curations``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import sys
import time
from pathlib import Path

from search_service.article import Article
from search_service.engine import indexer
from search_service.engine.docsets import DocSetEvaluator
from search_service.engine.request import SearchRequest
from search_service.engine.schema import ID
from search_service.engine.searcher import EngineOptions, SearchEngine, Strategy
from search_service.engine.store import IndexStore
from search_service.rules import edits
from search_service.rules.curations import resolve
from search_service.rules.store import RulesDB, rules_path
from search_service.text import analysis

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "articles.jsonl"
QUERIES = ("园区规划", "高新区", "产业", "智慧城市 平台")
CATEGORIES = ("园区规划", "产业规划", "高新院新闻", "政策解读", "智慧城市案例")


def build(root: Path, count: int) -> None:
    rng = random.Random(1)
    records = [json.loads(line) for line in SAMPLES.read_text("utf-8").splitlines()]
    sentences = [s for r in records for s in r["body"].replace("\n", "。").split("。") if len(s) > 8]
    titles = [r["title"] for r in records]

    def articles():
        for i in range(count):
            body = "。".join(rng.choice(sentences) for _ in range(6)) + "。"
            yield Article(f"d{i}", f"{rng.choice(titles)}（{i}）", body, rng.choice(CATEGORIES))

    started = time.perf_counter()
    indexer.rebuild(IndexStore(root), articles(), procs=2)
    print(f"built {count} articles in {time.perf_counter() - started:.0f} s", flush=True)


def paired(on: SearchEngine, off: SearchEngine, query: str, reps: int) -> tuple[float, float, float]:
    """Median ms with rules, without, and the median of the paired differences."""
    ons, offs, diffs = [], [], []
    for _ in range(reps):
        a = time.perf_counter()
        on.search(SearchRequest(q=query))
        b = time.perf_counter()
        off.search(SearchRequest(q=query))
        c = time.perf_counter()
        ons.append((b - a) * 1000)
        offs.append((c - b) * 1000)
        diffs.append(((b - a) - (c - b)) * 1000)
    return statistics.median(ons), statistics.median(offs), statistics.median(diffs)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rules", description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=20000)
    parser.add_argument("--reps", type=int, default=300)
    args = parser.parse_args()
    if "curations" not in {f.name for f in dataclasses.fields(Strategy)}:
        print("bench.rules: the engine does not apply staff rules yet (docs/ADMIN.md#integration)", file=sys.stderr)
        return 2
    analysis.initialize(Path("/tmp/bench-rules-cache"))
    root = Path(f"/tmp/bench-rules-{args.articles}")
    if not (root / "CURRENT").exists():
        build(root, args.articles)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{rules_path(root)}{suffix}").unlink(missing_ok=True)
    db = RulesDB(rules_path(root))
    db.change("bench", "other queries' rules",
              [("curation", f"别的词{i}", {"pin": [f"d{i}"], "hide": []}) for i in range(4990)])
    options = EngineOptions(reload_interval=0, cache_entries=0)
    on, off = SearchEngine(root, options), SearchEngine(root, options, Strategy(curations=False))
    for engine in (on, off):
        engine.warm()
    reps = 20000
    started = time.perf_counter()
    for _ in range(reps):
        on.curation_for("园区规划")
    print(f"per-request check and lookup, no rule for the query: {(time.perf_counter() - started) / reps * 1e6:.1f} µs")
    for label in ("no rule", "a rule"):
        if label == "a rule":
            for query in QUERIES:
                edits.set_curation(db, query, {"pin": [f"d{i}" for i in range(100, 103)],
                                               "hide": [f"d{i}" for i in range(200, 300)]}, "bench")
        for query in QUERIES:
            total = on.search(SearchRequest(q=query)).total
            with_rules, without, difference = paired(on, off, query, args.reps)
            print(f"{label:8s} {query:8s} ({total:6d} matches)  with rules {with_rules:7.3f} ms  without "
                  f"{without:7.3f} ms  paired difference {difference:+.3f} ms", flush=True)
    snap = on.snapshot()
    evaluator = DocSetEvaluator(snap.commit, snap.arrays.live)
    started = time.perf_counter()
    for _ in range(20):
        resolve([f"d{i}" for i in range(100, 120)], [f"d{i}" for i in range(200, 300)],
                lambda doc_id: evaluator.term(ID, doc_id))
    print(f"resolving 20 pinned + 100 hidden ids (once per commit): {(time.perf_counter() - started) / 20 * 1000:.2f} ms")
    on.close()
    off.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
