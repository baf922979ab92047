"""Segmenter benchmark: our segmenter against jieba itself, token for token, and how much faster.

Run from the project root::

    .venv/bin/python -m bench.segmenter                  # every article of ../shared/corpora
    .venv/bin/python -m bench.segmenter --sample 0.02    # a sample; --quick leaves the docs alone

Every article's normalized title and body go through ``jieba.Tokenizer.tokenize`` (HMM on,
search mode: what indexing uses) and through :meth:`search_service.text.segmenter.Segmenter.spans`;
any difference is counted and the first few are printed. Default mode (queries) is compared on
``--default-sample`` of the articles. Both sides run in the same worker processes on the same
texts, one after the other per chunk (jieba first), and are timed with process CPU time; our
side keeps its block cache across chunks, as an index build does. Writes the
``bench:segmenter`` section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time

from . import common

CHUNK = 200
SHOW = 5


def _compare(task: tuple[list[tuple[str, str]], bool]) -> dict:
    """Worker: both segmenters over one chunk of (id, text); counts, CPU seconds and differences."""
    from search_service.text import analysis

    texts, default_too = task
    segmenter = analysis.SEGMENTER
    reference = segmenter._jieba  # jieba's own Tokenizer, the same dictionary
    normalized = [(key, analysis.normalize(text)) for key, text in texts]
    out = {"texts": len(texts), "chars": sum(len(t) for _, t in normalized), "mismatches": 0, "examples": [],
           "jieba_s": 0.0, "ours_s": 0.0, "default_texts": 0, "default_mismatches": 0,
           "jieba_default_s": 0.0, "ours_default_s": 0.0}
    modes = [(True, "")] + ([(False, "default_")] if default_too else [])
    for search, prefix in modes:
        mode = "search" if search else "default"
        started = time.process_time()
        expected = [list(reference.tokenize(text, mode=mode)) for _, text in normalized]
        out[f"jieba_{prefix}s"] += time.process_time() - started
        started = time.process_time()
        got = [segmenter.spans(text, search) for _, text in normalized]
        out[f"ours_{prefix}s"] += time.process_time() - started
        bad_key = "mismatches" if search else "default_mismatches"
        if not search:
            out["default_texts"] = len(normalized)
        for (key, _), want, have in zip(normalized, expected, got):
            if want != have:
                out[bad_key] += 1
                if len(out["examples"]) < SHOW:
                    first = next(i for i, (a, b) in enumerate(zip(want + [None], have + [None])) if a != b)
                    out["examples"].append({"id": key, "mode": mode, "jieba": want[first:first + 3],
                                            "ours": have[first:first + 3]})
    return out


def _texts(corpus: common.LoadedCorpus) -> list[tuple[str, str]]:
    texts = []
    for article in corpus.articles:
        if article.title:
            texts.append((article.id + "#title", article.title))
        if article.body:
            texts.append((article.id + "#body", article.body))
    return texts


def run(sample: common.Sample, procs: int, default_every: int) -> dict:
    common.initialize_analysis()
    corpus = common.load_articles(sample)
    texts = _texts(corpus)
    chunks = [texts[i:i + CHUNK] for i in range(0, len(texts), CHUNK)]
    tasks = [(chunk, n % default_every == 0) for n, chunk in enumerate(chunks)]
    print(f"bench.segmenter: {corpus.count} articles, {len(texts)} texts, {procs} processes …",
          file=sys.stderr, flush=True)
    started = time.perf_counter()
    # fork: the workers inherit the loaded dictionary.
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        parts = pool.map(_compare, tasks, chunksize=1)
    total = {key: sum(p[key] for p in parts) for key in parts[0] if key != "examples"}
    total["examples"] = [e for p in parts for e in p["examples"]][:SHOW]
    total.update(articles=corpus.count, megabytes=corpus.megabytes, procs=procs,
                 wall_s=time.perf_counter() - started, peak_rss=common.peak_rss_mb(),
                 default_every=default_every)
    return total


def render(result: dict, command: str, machine: dict, corpus: str) -> str:
    mb = result["megabytes"]
    rows = [
        ["jieba 0.42.1 `Tokenizer.tokenize` (reference)", f"{result['texts']:,}",
         common.fmt(result["jieba_s"]), common.fmt(mb / result["jieba_s"], 2), "1.00×", "–"],
        ["ours `Segmenter.spans` (block cache on)", f"{result['texts']:,}",
         common.fmt(result["ours_s"]), common.fmt(mb / result["ours_s"], 2),
         f"{result['jieba_s'] / result['ours_s']:.2f}×", f"{result['mismatches']:,}"],
    ]
    if result["default_texts"]:
        share = result["default_texts"] / result["texts"]
        rows.append([f"default mode (queries) on {share:.0%} of the texts: jieba / ours CPU s",
                     f"{result['default_texts']:,}",
                     f"{common.fmt(result['jieba_default_s'])} / {common.fmt(result['ours_default_s'])}", "–",
                     f"{result['jieba_default_s'] / result['ours_default_s']:.2f}×",
                     f"{result['default_mismatches']:,}"])
    table = common.markdown_table(["segmenter (search mode unless said)", "texts", "CPU s", "MB/CPU s",
                                   "speed-up", "texts that differ from jieba"], rows)
    examples = "".join(f"\n- `{e['id']}` ({e['mode']}): jieba {e['jieba']!r}, ours {e['ours']!r}"
                       for e in result["examples"])
    verdict = ("Every text gives exactly jieba's tokens (word, start, end), in both modes compared."
               if not result["mismatches"] and not result["default_mismatches"]
               else f"**Differences found** (first ones):{examples}")
    return "\n".join([
        "## Segmenter: jieba's tokens, computed faster",
        "",
        common.provenance(command, result["date"], machine, corpus),
        "",
        f"{result['articles']:,} articles ({mb:.1f} MB of text), titles and bodies normalized as indexing "
        f"does, in {result['procs']} worker processes ({result['wall_s']:.0f} s wall; peak RSS "
        f"{result['peak_rss']['children']:.0f} MB per worker). Both sides segment the same chunk of "
        f"{CHUNK} texts one after the other (jieba first), timed in process CPU seconds; ours keeps its "
        "block cache across chunks as a build does.",
        "",
        table,
        "",
        verdict,
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.segmenter", description=__doc__.split("\n\n")[0])
    common.add_sample_arguments(parser, fraction=1.0)
    parser.add_argument("--procs", type=int, default=multiprocessing.cpu_count())
    parser.add_argument("--default-every", type=int, default=10, metavar="N",
                        help="compare default mode too on every Nth chunk (default 10)")
    parser.add_argument("--quick", action="store_true", help="1%% sample; docs untouched")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    sample = common.Sample((), 0.01) if args.quick else common.sample_from_args(args)
    machine = common.machine_info()
    command = common.command_line("bench.segmenter")
    result = run(sample, args.procs, args.default_every)
    result["date"] = common.now_utc()
    common.save_raw("segmenter", result)
    body = render(result, command, machine, sample.describe())
    if not args.quick and not args.no_docs:
        common.update_section("segmenter", body)
    print(body)
    return 1 if result["mismatches"] or result["default_mismatches"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
