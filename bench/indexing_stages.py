"""Where an index build's CPU goes, stage by stage, and what an incremental commit costs.

Run from the project root::

    .venv/bin/python -m bench.indexing_stages                 # 3% of ../shared/corpora
    .venv/bin/python -m bench.indexing_stages --sample 0.1    # --quick leaves the docs alone

Part 1, the build pipeline of one worker (``segments.analyze`` and ``SegmentBuilder``), taken
apart: every stage runs over all the sample's articles before the next (each stage's input
computed by the stage before), timed with process CPU time and without a profiler, so the
shares are what a build pays. The naive baseline (Whoosh's default writer with jieba's
``ChineseAnalyzer``) builds the same articles in the same process, afterwards, for scale.

Part 2, incremental commits: batches of 10 short articles (bodies cut to 400 characters)
committed into an index of the sample's first articles, through ``indexer.open_writer``
(the fast builder, what every write now uses) and through Whoosh's own ``SegmentWriter``
(what every write used before), alternately into two copies of the same index, median of
the batches. Writes the ``bench:indexing-stages`` section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from . import baseline, common

SECTION = "indexing-stages"
DEFAULT_SAMPLE = 0.03
QUICK_LIMIT = 150
BATCH = 10
BATCHES = 20
BATCH_BODY_CHARS = 400
BASE_ARTICLES = 1000


def _timed(function):
    started = time.process_time()
    value = function()
    return value, time.process_time() - started


def measure_stages(articles: list) -> list[dict]:
    """CPU seconds of each build stage over ``articles``, with the process RSS after it."""
    from search_service.engine import schema as S
    from search_service.engine.backend import index as backend_index
    from search_service.engine.backend import segments
    from search_service.engine.documents import AnalyzedArticle, field_values
    from search_service.text.analysis import SEGMENTER, bigram_positions, normalize, words_of_segments
    from search_service.text.pinyin import pinyin_of_segments

    rows = []

    def stage(name: str, function):
        value, seconds = _timed(function)
        rows.append({"stage": name, "cpu_s": seconds, "rss_mb": common.current_rss_mb()})
        return value

    texts = stage("normalize: width/case fold + OpenCC t2s",
                  lambda: [(normalize(a.title), normalize(a.body)) for a in articles])
    spans = stage("segment: jieba's tokens, search mode (segmenter.py)",
                  lambda: [(list(SEGMENTER.spans(t, True)) if t else [], list(SEGMENTER.spans(b, True)) if b else [])
                           for t, b in texts])
    words = stage("word tokens: stop words, numbers with units, mixed tokens",
                  lambda: [([w for w, _, _ in words_of_segments(t)], [w for w, _, _ in words_of_segments(b)])
                           for t, b in spans])
    pinyin = stage("pinyin of title words",
                   lambda: [[w for w, _, _ in pinyin_of_segments(t)] for t, _ in spans])
    bigrams = stage("bigram tokens grouped by token (analysis.bigram_positions)",
                    lambda: [(bigram_positions(t), bigram_positions(b)) for t, b in texts])
    tokens = [{S.TITLE: w[0], S.BODY: w[1], S.TITLE_PINYIN: p, S.TITLE_BIGRAMS: g[0], S.BODY_BIGRAMS: g[1]}
              for w, p, g in zip(words, pinyin, bigrams)]
    folder = Path(tempfile.mkdtemp(prefix="bench-stages-"))
    try:
        backend_index.create(folder)
        builder = segments.SegmentBuilder(folder)

        def gather():
            for article, analyzed in zip(articles, tokens):
                size = len(article.title.encode("utf-8")) + len(article.body.encode("utf-8"))
                builder.add(AnalyzedArticle(article.id, field_values(article), analyzed, size))

        stage("postings gathered per field (flat arrays), stored fields, columns", gather)
        stage("segment files: postings sorted by term, blocks and term table written", builder.finish)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def measure_baseline(articles: list) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="bench-stages-baseline-"))
    try:
        _, seconds = _timed(lambda: baseline.build(folder / "ix", articles))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"cpu_s": seconds, "rss_mb": common.current_rss_mb()}


def measure_commits(articles: list) -> dict:
    """Median wall ms of a commit of BATCH short articles: the fast path against Whoosh's writer."""
    from whoosh import index as whoosh_index

    from search_service.engine import indexer
    from search_service.engine.backend.index import codec
    from search_service.engine.documents import field_values
    from search_service.engine.store import IndexStore

    split = min(BASE_ARTICLES, len(articles) // 2)
    base, rest = articles[:split], articles[split:]
    batches = [[dataclasses.replace(a, id=f"bench-{n}-{a.id}", body=a.body[:BATCH_BODY_CHARS])
                for a in rest[n * BATCH:(n + 1) * BATCH]] for n in range(BATCHES)]
    batches = [b for b in batches if len(b) == BATCH]
    if not batches:
        return {}
    folder = Path(tempfile.mkdtemp(prefix="bench-stages-commits-"))
    try:
        store = IndexStore(folder / "index")
        indexer.rebuild(store, base)
        fast_dir = store.current_path()
        assert fast_dir is not None
        whoosh_dir = folder / "whoosh-copy"
        shutil.copytree(fast_dir, whoosh_dir)
        times: dict[str, list[float]] = {"fast": [], "whoosh": []}
        for batch in batches:
            started = time.perf_counter()
            writer = indexer.open_writer(fast_dir)
            indexer.apply_changes(writer, [(a.id, a) for a in batch])
            writer.commit()
            times["fast"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            ix = whoosh_index.open_dir(str(whoosh_dir))
            whoosh_writer = ix.writer(codec=codec(), compound=False)
            for article in batch:
                whoosh_writer.delete_by_term("id", article.id)
                whoosh_writer.add_document(**field_values(article))
            whoosh_writer.commit(merge=False)
            times["whoosh"].append((time.perf_counter() - started) * 1000)
        return {"batches": len(batches), "base_articles": len(base),
                "fast_ms": statistics.median(times["fast"]), "whoosh_ms": statistics.median(times["whoosh"]),
                "rss_mb": common.current_rss_mb()}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def render(result: dict, command: str, machine: dict) -> str:
    fmt = common.fmt
    total = sum(r["cpu_s"] for r in result["stages"])
    mb = result["megabytes"]
    lines = ["## Indexing, stage by stage (one process)", "",
             common.provenance(command, result["date"], machine, result["corpus"]), "",
             "Each stage runs over every article of the sample before the next, in one process, timed with "
             "process CPU time (no profiler); its input is the stage before's output. RSS is the process's "
             "resident memory after the stage (the loaded sample, the segmenter's dictionary and cache, and what "
             "the stages kept).", ""]
    rows = [[r["stage"], fmt(r["cpu_s"], 2), f"{100 * r['cpu_s'] / total:.0f}%", fmt(mb / r["cpu_s"], 2),
             fmt(r["rss_mb"], 0)] for r in result["stages"]]
    rows.append(["**all stages (ours, one worker's work)**", fmt(total, 2), "100%", fmt(mb / total, 3), "–"])
    base = result["baseline"]
    rows.append(["baseline: Whoosh default writer + ChineseAnalyzer, same articles", fmt(base["cpu_s"], 2),
                 "–", fmt(mb / base["cpu_s"], 3), fmt(base["rss_mb"], 0)])
    lines.append(common.markdown_table(["stage", "CPU s", "share", "MB/s (CPU)", "RSS MB"], rows))
    lines += ["", f"Per CPU second ours indexes **{base['cpu_s'] / total:.2f}×** the text of the baseline on "
              f"this sample ({mb:.1f} MB). A whole build runs these stages in `workers` processes, with the "
              "reading and cleaning of the files in the parent (see the full rebuild above)."]
    commits = result.get("commits")
    if commits:
        lines += ["", f"Incremental commits: {commits['batches']} batches of {BATCH} articles (bodies cut to "
                  f"{BATCH_BODY_CHARS} characters), each committed into an index of {commits['base_articles']:,} "
                  "articles through both writers in turn (two copies of the same index; wall time from opening "
                  "the writer to the end of the commit; median).", "",
                  common.markdown_table(
                      ["writer", "commit ms (median)", "RSS MB"],
                      [["ours: `indexer.open_writer` (segments.ChangeWriter, what every write uses)",
                        fmt(commits["fast_ms"]), fmt(commits["rss_mb"], 0)],
                       ["Whoosh's own SegmentWriter (what every write used before)", fmt(commits["whoosh_ms"]),
                        fmt(commits["rss_mb"], 0)]]),
                  "", f"Whoosh's writer / ours: **{commits['whoosh_ms'] / commits['fast_ms']:.1f}×**."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.indexing_stages", description=__doc__.split("\n\n")[0])
    common.add_sample_arguments(parser, fraction=DEFAULT_SAMPLE)
    parser.add_argument("--quick", action="store_true", help=f"at most {QUICK_LIMIT} articles per file; docs untouched")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    common.require_corpora()
    sample = common.sample_from_args(args)
    if args.quick:
        sample = common.Sample(sample.corpora, sample.fraction, args.limit or QUICK_LIMIT)
    command, date, machine = common.command_line("bench.indexing_stages"), common.now_utc(), common.machine_info()
    common.initialize_analysis()
    baseline.initialize(common.CACHE_DIR)
    corpus = common.load_articles(sample)
    print(f"bench.indexing_stages: {corpus.count} articles, {corpus.megabytes:.1f} MB", file=sys.stderr)
    result = {"date": date, "corpus": f"{corpus.count:,} articles, {corpus.megabytes:.1f} MB of text "
                                      f"({sample.describe()})",
              "megabytes": corpus.megabytes}
    result["stages"] = measure_stages(corpus.articles)
    result["baseline"] = measure_baseline(corpus.articles)
    result["commits"] = measure_commits(corpus.articles)
    common.save_raw("indexing-stages-quick" if args.quick else "indexing-stages", result)
    markdown = render(result, command, machine)
    print(markdown)
    if not (args.quick or args.no_docs):
        common.update_section(SECTION, markdown)
        print(f"updated {common.BENCHMARKS_MD.relative_to(common.REPO)} (section {SECTION})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
