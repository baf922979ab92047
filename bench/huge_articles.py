"""What the largest allowed article costs a search that finds it (issue 11, §6).

Run from the project root: ``.venv/bin/python -m bench.huge_articles [--articles N] [--repeats R]``.

Two indexes built in the same run from the same first N articles of ``xwlb_cctv``:

* **baseline**: those articles only;
* **with the huge article**: the same plus one article of ``max_article_kb`` (1 MB of UTF-8 by
  default), its body the next articles of the corpus one after another, its title the query
  words so that it is on page 1 of every query.

For each query (page 1, 10 hits, result cache off so every search runs in full) the median
latency in process on both indexes; the ratio is what the huge article adds. The same is
measured with the snippet scan unbounded (``highlight.SNIPPET_SCAN_CHARS`` raised to the
article's length), which is how every hit was highlighted before the bound. Then the article
page ``/doc/<id>?q=`` of the huge article against a normal one, through the Flask app.
One process, warm (each query run once before timing); RSS beside every figure.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import shutil
import time

from bench.common import (
    CACHE_DIR,
    OUT_DIR,
    command_line,
    corpus_files,
    current_rss_mb,
    fmt,
    initialize_analysis,
    machine_info,
    markdown_table,
    median,
    now_utc,
    provenance,
    require_corpora,
    save_raw,
    update_section,
)

QUERIES = ("经济", "发展", "会议", "合作", "建设", "国际")
TITLE = "经济 发展 会议 合作 建设 国际 汇编"


def _articles(count: int, kb: int):
    """The first ``count`` articles of xwlb_cctv, and one article of ``kb`` KB built from the next ones."""
    from search_service.article import Article
    from search_service.ingest import Ingest

    source = next(f for f in corpus_files(["xwlb_cctv"]))
    normal = list(itertools.islice(Ingest(log_problems=False).read([source]), count))
    budget = kb * 1024 - len(TITLE.encode("utf-8"))
    parts, size = [], 0
    with gzip.open(source, "rt", encoding="utf-8") as handle:
        for line in itertools.islice(handle, count, None):
            body = json.loads(line).get("body") or ""
            encoded = len(body.encode("utf-8")) + 1
            if size + encoded > budget:
                break
            parts.append(body)
            size += encoded
    huge = Article("huge-article", TITLE, "\n".join(parts))
    return normal, huge


def _build(path, articles) -> float:
    from search_service.engine import indexer
    from search_service.engine.store import IndexStore

    shutil.rmtree(path, ignore_errors=True)
    started = time.perf_counter()
    indexer.rebuild(IndexStore(path), articles, procs=1)
    return time.perf_counter() - started


def _set_scan(chars: tuple[int, int]) -> None:
    from search_service.text import highlight

    highlight.SNIPPET_FIRST_SCAN_CHARS, highlight.SNIPPET_SCAN_CHARS = chars


def _search_times(engines: dict, variants: dict, repeats: int) -> tuple[dict, dict[str, int | None]]:
    """Median page-1 latency (ms) of every (engine, scan variant), and the huge article's rank per query.

    Interleaved: each repeat of each query runs once on every combination in turn, so the other
    processes' load (the machine is shared) falls on all of them alike.
    """
    from search_service.engine.request import SearchRequest

    times = {(e, v): [] for e in engines for v in variants}
    ranks = {}
    for q in QUERIES:
        for engine in engines.values():  # warm
            engine.search(SearchRequest(q=q))
        for _ in range(repeats):
            for (name, variant), samples in times.items():
                scan, cold = variants[variant]
                _set_scan(scan)
                if cold:  # as for the first search that meets the article after a change
                    engines[name].snapshot().large_articles.clear()
                started = time.perf_counter()
                results = engines[name].search(SearchRequest(q=q))
                samples.append((time.perf_counter() - started) * 1000)
                if name == "huge":
                    ranks[q] = next((hit.rank for hit in results.hits if hit.id == "huge-article"), None)
    return {key: median(samples) for key, samples in times.items()}, ranks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=2000, help="normal articles in both indexes")
    parser.add_argument("--repeats", type=int, default=15, help="timed runs of each query")
    parser.add_argument("--quick", action="store_true", help="300 articles, 5 repeats; leaves the docs alone")
    args = parser.parse_args()
    if args.quick:
        args.articles, args.repeats = 300, 5
    require_corpora()
    initialize_analysis()
    from search_service.config import default_settings
    from search_service.engine.searcher import EngineOptions, SearchEngine
    from search_service.text import highlight
    from search_service.web import close_app, create_app

    settings0 = default_settings()
    normal, huge = _articles(args.articles, settings0.max_article_kb)
    huge_bytes = len(huge.title.encode("utf-8")) + len(huge.body.encode("utf-8"))
    work = OUT_DIR / "huge_articles"
    build_base = _build(work / "baseline", normal)
    build_huge = _build(work / "huge", [*normal, huge])

    def settings_for(name):
        return settings0.replace(index_dir=str(work / name), cache_dir=str(CACHE_DIR), cache_entries=0,
                                 reload_interval=0.0, rate_limit="", analytics=False, access_log=False)

    rows, raw = [], {}
    engines = {name: SearchEngine(str(work / name), EngineOptions.from_settings(settings_for(name)))
               for name in ("baseline", "huge")}
    bounded = (highlight.SNIPPET_FIRST_SCAN_CHARS, highlight.SNIPPET_SCAN_CHARS)
    variants = {"bounded (as shipped)": (bounded, False),
                "bounded, decoded-article cache empty (first search after a change)": (bounded, True),
                "unbounded, cache empty (before)": ((len(huge.body) + 1,) * 2, True)}
    medians, ranks = _search_times(engines, variants, args.repeats)
    _set_scan(bounded)
    rss = current_rss_mb()
    for label in variants:
        base_ms, huge_ms = medians[("baseline", label)], medians[("huge", label)]
        raw[label] = {"baseline_ms": base_ms, "huge_ms": huge_ms, "ranks": ranks}
        rows.append((f"search page 1: {label}", fmt(base_ms), fmt(rss, 0), fmt(huge_ms),
                     fmt(rss, 0), f"{huge_ms / base_ms:.2f}×"))
    for engine in engines.values():
        engine.close()

    app = create_app(settings_for("huge"))
    client = app.test_client()
    other = normal[0].id
    samples = {other: [], "huge-article": []}
    sizes = {}
    for doc_id in samples:
        client.get(f"/doc/{doc_id}", query_string={"q": "经济"})  # warm
    for _ in range(args.repeats):  # interleaved, as above
        for doc_id, times in samples.items():
            started = time.perf_counter()
            response = client.get(f"/doc/{doc_id}", query_string={"q": "经济"})
            times.append((time.perf_counter() - started) * 1000)
            sizes[doc_id] = len(response.get_data())
    page_times = {doc_id: (median(times), sizes[doc_id], current_rss_mb()) for doc_id, times in samples.items()}
    close_app(app)
    (n_ms, n_bytes, n_rss), (h_ms, h_bytes, h_rss) = page_times[other], page_times["huge-article"]
    rows.append((f"/doc/<id>?q=经济 (page of {n_bytes:,} vs {h_bytes:,} bytes)", fmt(n_ms), fmt(n_rss, 0),
                 fmt(h_ms), fmt(h_rss, 0), f"{h_ms / n_ms:.2f}×"))

    on_page = sum(1 for r in raw["bounded (as shipped)"]["ranks"].values() if r)
    machine = machine_info()
    body = "\n".join([
        "## Huge articles: what the largest allowed article costs a search",
        "",
        provenance(command_line("bench.huge_articles"), now_utc(), machine,
                   f"first {len(normal)} articles of xwlb_cctv; the huge article: {huge_bytes:,} bytes "
                   f"({len(huge.body):,} characters) of the following articles' bodies "
                   f"(max_article_kb = {settings0.max_article_kb})"),
        f"- One process, warm, result cache off; runs interleaved (each repeat of a query on every "
        f"index and variant in turn); medians of {args.repeats} runs of each of "
        f"{len(QUERIES)} queries ({', '.join(QUERIES)}); the huge article is on page 1 of {on_page} of "
        f"them. Index build (1 process): {build_base:.1f} s baseline, {build_huge:.1f} s with the huge "
        "article. RSS is this process's resident memory after the searches (both indexes open) and "
        "after the article pages.",
        "",
        markdown_table(["", "baseline ms", "RSS MB", "with the huge article ms", "RSS MB", "ratio"], rows),
        "",
        f"The bound: a snippet looks for matches in the first {bounded[0]:,} characters of a body, then "
        f"if none in the first {bounded[1]:,} (`highlight.SNIPPET_FIRST_SCAN_CHARS`, `SNIPPET_SCAN_CHARS`); "
        "what remains per hit is Whoosh decoding the stored fields (one compressed pickle per article, "
        "the whole body included), which the snapshot keeps for the 8 longest articles its searches met "
        "(`snapshot.LargeArticleCache`, bodies of 50,000 characters or more). The article page marks the first "
        f"{highlight.MARK_SCAN_CHARS:,} (`MARK_SCAN_CHARS`); the target is at most about 2× a normal "
        "search. The article page of the huge article sends the whole article, so it costs what its bytes cost.",
    ])
    save_raw("huge_articles", {"rows": rows, "raw": raw, "page_times": page_times, "machine": machine})
    if args.quick:
        print(body)
        return
    update_section("huge_articles", body)
    print(body)


if __name__ == "__main__":
    main()
