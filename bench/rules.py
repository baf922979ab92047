"""What staff rules cost a search, at the site's full size (issue 28, docs/ADMIN.md#storage-workers-and-cost).

Run from the project root::

    .venv/bin/python -m bench.rules            # measure; rewrites the docs/BENCHMARKS.md section
    .venv/bin/python -m bench.rules --quick    # fewer rounds and queries; docs untouched

The index is the one ``python -m bench.speed`` builds of every article of ``../shared/corpora``
(``bench/out/speed/all-s1/ours``; ``--index-dir`` for another). It is never changed: the run works on
a copy made of hard links (segments are immutable) beside it, whose ``rules.sqlite3`` gets 4,990
curations of other queries — the desk's limit is 5,000 — so that every lookup searches a full table.

For each query of ``bench/queries.txt`` (the speed benchmark's), an engine that applies rules and one
that does not (``Strategy(curations=False)``) are called alternately, so both see the same machine,
with the result cache off (every call is a first pass): the paired median difference of whole
searches, first with no rule for the query, then with a rule of 3 pinned and 100 hidden ids from
the query's own results: ranks 8-10 pinned, ranks 11-110 hidden, so that page 1 shows the same ten
articles (the pinned first) and the difference is the rule's work — resolving, masking, reordering —
not the snippets of other articles.
Also timed alone: the per-request check and lookup, and resolving a rule's ids into document
numbers (once per commit).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

from bench import common, search
from search_service.engine.docsets import DocSetEvaluator
from search_service.engine.request import SearchRequest
from search_service.engine.schema import ID
from search_service.engine.searcher import EngineOptions, SearchEngine, Strategy
from search_service.rules import edits
from search_service.rules.curations import resolve
from search_service.rules.store import RulesDB, rules_path

SECTION = "rules"
DEFAULT_INDEX = common.OUT_DIR / "speed" / "all-s1" / "ours"
OTHER_CURATIONS = 4990
PINNED, HIDDEN = 3, 100


def working_copy(index_dir: Path) -> Path:
    """A copy of ``index_dir`` made of hard links (fresh each run), without any rules file."""
    copy = index_dir.with_name(index_dir.name + "-rules-bench")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(index_dir, copy, copy_function=os.link)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{rules_path(copy)}{suffix}").unlink(missing_ok=True)
    return copy


def paired(on: SearchEngine, off: SearchEngine, request: SearchRequest, rounds: int) -> dict:
    """Median ms with rules, without, and the median of the paired differences (alternating order)."""
    ons, offs, diffs = [], [], []
    for n in range(rounds):
        first, second = (on, off) if n % 2 == 0 else (off, on)
        a = time.perf_counter()
        first.search(request)
        b = time.perf_counter()
        second.search(request)
        c = time.perf_counter()
        with_rules, without = ((b - a), (c - b)) if first is on else ((c - b), (b - a))
        ons.append(with_rules * 1000)
        offs.append(without * 1000)
        diffs.append((with_rules - without) * 1000)
    return {"with": statistics.median(ons), "without": statistics.median(offs), "diff": statistics.median(diffs)}


def measure(index_dir: Path, queries: list[str], rounds: int) -> dict:
    copy = working_copy(index_dir)
    try:
        db = RulesDB(rules_path(copy))
        db.change("bench", "other queries' rules",
                  [("curation", f"别的词{i}", {"pin": [f"no-such-{i}"], "hide": []}) for i in range(OTHER_CURATIONS)])
        options = EngineOptions(reload_interval=0, cache_entries=0)
        on, off = SearchEngine(copy, options), SearchEngine(copy, options, Strategy(curations=False))
        try:
            for engine in (on, off):
                engine.warm()
            reps = 20000
            started = time.perf_counter()
            for _ in range(reps):
                on.curation_for("园区规划")
            lookup_us = (time.perf_counter() - started) / reps * 1e6

            rows = []
            for query in queries:
                request = SearchRequest(q=query)
                top = [hit.id for page in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
                       for hit in off.search(SearchRequest(q=query, page=page)).hits]
                for _ in range(3):  # both engines warm for this query
                    on.search(request), off.search(request)
                no_rule = paired(on, off, request, rounds)
                # Pinned: ranks 8-10; hidden: the next 100. Page 1 holds the same ten articles, reordered,
                # so the difference is the rule's work, not other articles' snippets.
                page_one = top[:10]
                pin, hide = page_one[-PINNED:], top[10:10 + HIDDEN]
                edits.set_curation(db, query, {"pin": pin, "hide": hide}, "bench")
                on.search(request)  # the new rule read (once per change) before timing
                with_rule = paired(on, off, request, rounds)
                hits = on.search(request).hits
                assert [h.id for h in hits[:len(pin)]] == pin and {h.id for h in hits} == set(page_one), query
                rows.append({"query": query, "matches": off.search(request).total, "no_rule": no_rule,
                             "rule": with_rule})
                edits.delete_curation(db, query, "bench")  # the next query finds 4,990 other rules again
                print(f"{query:12s} {rows[-1]['matches']:7,d} matches  no rule {no_rule['diff']:+.3f} ms  "
                      f"a rule {with_rule['diff']:+.3f} ms", file=sys.stderr, flush=True)

            snap = on.snapshot()
            evaluator = DocSetEvaluator(snap.commit, snap.arrays.live)
            ids = [hit.id for page in range(1, 13) for hit in off.search(SearchRequest(q="发展", page=page)).hits]
            started = time.perf_counter()
            for _ in range(20):
                resolve(ids[:20], ids[20:120], lambda doc_id: evaluator.term(ID, doc_id))
            resolve_ms = (time.perf_counter() - started) / 20 * 1000
            articles = off.search(SearchRequest()).total
        finally:
            on.close()
            off.close()
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    return {"rows": rows, "lookup_us": lookup_us, "resolve_ms": resolve_ms, "rss_mb": common.current_rss_mb(),
            "articles": articles, "index_mb": common.dir_megabytes(index_dir)}


def render(raw: dict) -> str:
    rows = raw["rows"]
    no_rule = statistics.median(r["no_rule"]["diff"] for r in rows)
    rule = statistics.median(r["rule"]["diff"] for r in rows)
    table = common.markdown_table(
        ["query", "matches", "no rule: with rules, ms", "without, ms", "difference, ms",
         "a rule: with rules, ms", "without, ms", "difference, ms"],
        [[r["query"], f"{r['matches']:,}", common.fmt(r["no_rule"]["with"], 2), common.fmt(r["no_rule"]["without"], 2),
          f"{r['no_rule']['diff']:+.3f}", common.fmt(r["rule"]["with"], 2), common.fmt(r["rule"]["without"], 2),
          f"{r['rule']['diff']:+.3f}"] for r in rows])
    return "\n".join([
        "## Staff rules: what pinned and hidden results cost a search",
        "",
        common.provenance(raw["command"], raw["date"], raw["machine"],
                          f"{raw['articles']:,} articles (all corpora; the index of `bench.speed`, "
                          f"{raw['index_mb']:,.0f} MB on disk)"),
        f"- Method: one process, result cache off; an engine applying rules and one that does not, "
        f"called alternately {raw['rounds']} times per query and row (paired medians). The rules file "
        f"holds {OTHER_CURATIONS:,} curations of other queries; a rule is {PINNED} pinned and {HIDDEN} "
        f"hidden ids from the query's own results (ranks 8–10 pinned, 11–110 hidden: page 1 shows the same ten "
        f"articles, reordered). RSS of the process at the end: "
        f"{raw['rss_mb']:,.0f} MB.",
        "",
        f"**Per request, no rule for the query: median {no_rule:+.3f} ms** (goal ≤ 0.1 ms); "
        f"**with a rule: median {rule:+.3f} ms** (goal ≤ 1 ms more). The check and lookup alone: "
        f"{raw['lookup_us']:.1f} µs; resolving a rule's 20 pinned + 100 hidden ids into document numbers "
        f"(once per commit): {raw['resolve_ms']:.2f} ms.",
        "",
        table,
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rules", description=__doc__.split("\n\n")[0])
    parser.add_argument("--index-dir", type=Path, default=DEFAULT_INDEX,
                        help="an index of every article (default: the one bench.speed builds)")
    parser.add_argument("--rounds", type=int, default=60, help="paired calls per query and row (default 60)")
    parser.add_argument("--quick", action="store_true", help="5 queries, 30 rounds; docs untouched")
    args = parser.parse_args(argv)
    if not (args.index_dir / "CURRENT").exists():
        print(f"bench.rules: no index in {args.index_dir}; build it with "
              "`.venv/bin/python -m bench.speed --build-only --sizes 42k`", file=sys.stderr)
        return 2
    common.initialize_analysis()
    queries = list(dict.fromkeys(q.q for q in search.load_queries() if not q.categories and not q.date_from
                                 and not q.date_to))
    rounds = args.rounds
    if args.quick:
        queries, rounds = queries[:5], 30
    raw = {"command": common.command_line("bench.rules"), "date": common.now_utc(), "machine": common.machine_info(),
           "rounds": rounds, **measure(args.index_dir, queries, rounds)}
    common.save_raw("rules", raw)
    text = render(raw)
    print(text)
    if not args.quick:
        common.update_section(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
