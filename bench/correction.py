"""Correction benchmark: homophone slips and toneless pinyin answered with the meant word's results.

Run from the project root::

    .venv/bin/python -m bench.correction generate   # (re)write bench/correction_set.tsv from the index
    .venv/bin/python -m bench.correction             # measure; rewrites the docs/BENCHMARKS.md section
    .venv/bin/python -m bench.correction --quick     # the tuning half only, no relevance sets; docs untouched

Add ``--shared DIR`` when ``shared`` does not sit next to the project (a git worktree).

**The judged set** (``bench/correction_set.tsv``, made by ``generate`` from the sample index of
:mod:`bench.correction_index`, deterministic): *meant words* are jieba words of real titles (2–4 CJK
characters, in at least 3 titles, at least 5 exact results). For each:

* a **homophone slip**: one character replaced by another of the same toneless reading (a character
  common in the index, as an input method offers it) such that the result is no word of the index and
  occurs nowhere verbatim (智慧 → 智惠);
* its **toneless pinyin** as one string (``zhihui``), from pypinyin's reading of the word in context.

Besides, **correct queries** that have no exact match: two real title words from different articles,
with a space and without, that no article holds together. Correcting any of them is a false correction.

The set is split by CRC32 of the meant word: ``tune`` (the constants of ``search_service/engine/correction.py``
were chosen looking at this half only) and ``held-out`` (reported, never tuned on).

**Answered** = the top 5 of the query (default settings) shares at least 3 articles with the top 5 of
the meant word searched as typed. Also reported: the same without correction (``correct=0``, the engine
before), the share corrected to exactly the meant word, the false-correction rate on the correct queries
and on the relevance benchmark's judged sets (ecom, site), their MRR/nDCG with correction on and off,
the median latency with correction on and off, the vocabulary's build time and memory.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import sys
import time
import zlib
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from . import common
from .correction_index import DEFAULT_SAMPLE, add_shared_argument, prepare_index, use_shared

SECTION = "correction"
SET_FILE = Path(__file__).with_name("correction_set.tsv")
MEANT_WORDS = 300
CORRECT_PAIRS = 200
TOP = 5
OVERLAP = 3
TARGETS = {"homophone": 0.90, "pinyin": 0.80}


# --------------------------------------------------------------------------- engine helpers


def _engine(index_dir: Path, **options):
    from search_service.engine.searcher import EngineOptions, SearchEngine

    return SearchEngine(index_dir, EngineOptions(cache_entries=0, **options))


def _search(engine, text: str, correct: bool = True, size: int = TOP):
    from search_service.engine.request import SearchRequest

    return engine.search(SearchRequest(q=text, page_size=size, correct=correct))


def _split(word: str) -> str:
    return "held-out" if zlib.crc32(word.encode("utf-8")) % 2 else "tune"


def _syllables(word: str) -> list[str]:
    """The toneless reading of each character of ``word`` (the phrase reading when pypinyin has one)."""
    from pypinyin import lazy_pinyin

    return [s for s in lazy_pinyin(word)]


# --------------------------------------------------------------------------- generate


def generate(index_dir: Path) -> list[dict]:
    """The judged set, from the titles and vocabulary of the index."""
    from search_service.engine import correction
    from search_service.text import analysis

    engine = _engine(index_dir)
    vocabulary = engine.vocabulary()
    snap = engine.snapshot()
    searcher = snap.searcher
    titles: list[str] = []
    for docnum in snap.arrays.live_docnums.tolist():
        titles.append(searcher.stored_fields(int(docnum)).get("title", ""))
    in_titles: Counter[str] = Counter()
    words_of: list[list[str]] = []
    for title in titles:
        words = [w for w in dict.fromkeys(analysis.query_words(title))
                 if 2 <= len(w) <= 4 and all(analysis.has_cjk(c) for c in w)]
        words_of.append(words)
        in_titles.update(words)
    # Characters an input method would offer for a syllable: the common single-character words of
    # the index whose usual (first) reading it is (家 is offered for jia, not for its rare jie).
    by_reading: dict[str, list[str]] = defaultdict(list)
    for segment in vocabulary.segments:
        for word, df in segment.counts.items():
            readings = correction.char_readings(word) if len(word) == 1 and df >= 20 else ()
            if readings and word not in by_reading[readings[0]]:
                by_reading[readings[0]].append(word)
    meant = sorted((w for w, n in in_titles.items() if n >= 3), key=lambda w: zlib.crc32(w.encode("utf-8")))
    rows: list[dict] = []
    chosen = 0
    for word in meant:
        if chosen >= MEANT_WORDS:
            break
        results = _search(engine, word, correct=False)
        if results.total < TOP or results.relaxed is not None:
            continue
        syllables = _syllables(word)
        if len(syllables) != len(word) or not all(s.isalpha() for s in syllables):
            continue
        slip = _slip(engine, vocabulary, word, syllables, by_reading)
        if slip is None:
            continue
        split = _split(word)
        chosen += 1
        rows.append({"kind": "homophone", "split": split, "typed": slip, "meant": word})
        rows.append({"kind": "pinyin", "split": split, "typed": "".join(syllables), "meant": word})
    rows += _correct_queries(engine, words_of)
    for number, row in enumerate(rows, 1):
        row["id"] = f"c{number:04d}"
    return rows


def _slip(engine, vocabulary, word: str, syllables: list[str], by_reading) -> str | None:
    """``word`` with one character replaced by a same-sound one, making no word and no verbatim match."""
    seed = zlib.crc32(word.encode("utf-8"))
    positions = sorted(range(len(word)), key=lambda i: (seed >> i) % 7 + i / 10)
    for i in positions:
        choices = sorted((c for c in by_reading.get(syllables[i], ()) if c != word[i]),
                         key=lambda c: zlib.crc32((word + c).encode("utf-8")))
        for char in choices[:6]:
            slip = word[:i] + char + word[i + 1:]
            if vocabulary.frequency(slip):
                continue
            if _search(engine, f'"{slip}"', correct=False, size=1).total:
                continue  # occurs verbatim somewhere: not a non-word
            return slip
    return None


def _correct_queries(engine, words_of: list[list[str]]) -> list[dict]:
    """Pairs of real title words from different articles that no article holds together."""
    pool = [words for words in words_of if words]
    rows: list[dict] = []
    step = 0
    while len(rows) < CORRECT_PAIRS and step < 20 * CORRECT_PAIRS:
        step += 1
        a_words = pool[zlib.crc32(f"a{step}".encode()) % len(pool)]
        b_words = pool[zlib.crc32(f"b{step}".encode()) % len(pool)]
        a = a_words[zlib.crc32(f"x{step}".encode()) % len(a_words)]
        b = b_words[zlib.crc32(f"y{step}".encode()) % len(b_words)]
        if a == b:
            continue
        typed = f"{a} {b}" if step % 2 else f"{a}{b}"
        results = _search(engine, typed, correct=False, size=1)
        if results.relaxed != "any_word":
            continue  # has an exact match: correction is never even tried
        rows.append({"kind": "correct", "split": _split(a + b), "typed": typed, "meant": typed})
    return rows


def write_set(rows: list[dict], path: Path = SET_FILE) -> None:
    header = ("# Judged set of bench/correction.py (python -m bench.correction generate): id, split, kind, typed, meant.\n"
              "# kind: homophone (a same-sound slip of a title word), pinyin (its toneless pinyin), correct (a correct\n"
              "# query with no exact match: must not be corrected). split: tune | held-out (never tuned on).\n")
    lines = [f"{r['id']}\t{r['split']}\t{r['kind']}\t{r['typed']}\t{r['meant']}" for r in rows]
    path.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")


def read_set(path: Path = SET_FILE) -> list[dict]:
    if not path.exists():
        sys.exit(f"bench.correction: {path} is missing; run `python -m bench.correction generate` first")
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        qid, split, kind, typed, meant = line.split("\t")
        rows.append({"id": qid, "split": split, "kind": kind, "typed": typed, "meant": meant})
    return rows


# --------------------------------------------------------------------------- measure


def judge(engine, rows: list[dict]) -> dict:
    """Per kind and split: answered (with and without correction), corrected, exactly the meant word."""
    meant_top: dict[str, list[str]] = {}
    cells: dict[tuple[str, str], Counter] = defaultdict(Counter)
    failures: list[dict] = []
    for row in rows:
        key = (row["kind"], row["split"])
        on = _search(engine, row["typed"])
        off = _search(engine, row["typed"], correct=False)
        cell = cells[key]
        cell["queries"] += 1
        cell["corrected"] += on.correction is not None
        if row["kind"] == "correct":
            if on.correction is not None:
                failures.append({**row, "searched": on.searched})
            continue
        if row["meant"] not in meant_top:
            meant_top[row["meant"]] = [h.id for h in _search(engine, row["meant"], correct=False).hits]
        target = set(meant_top[row["meant"]])
        cell["answered"] += len(target & {h.id for h in on.hits}) >= OVERLAP
        cell["answered_before"] += len(target & {h.id for h in off.hits}) >= OVERLAP
        cell["exact_word"] += on.searched is not None and on.searched.replace(" ", "") == row["meant"]
        if len(target & {h.id for h in on.hits}) < OVERLAP:
            failures.append({**row, "searched": on.searched})
    return {"cells": {f"{k}|{s}": dict(c) for (k, s), c in cells.items()}, "failures": failures}


def latency(engine, queries: list[str], rounds: int = 3) -> dict:
    """Median page-1 latency over ``queries``, correction on and off interleaved (median of rounds each)."""
    for text in queries[:20]:
        _search(engine, text, size=10)
        _search(engine, text, correct=False, size=10)
    on, off = [], []
    for text in queries:
        a, b = [], []
        for _ in range(rounds):
            started = time.perf_counter()
            _search(engine, text, size=10)
            a.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            _search(engine, text, correct=False, size=10)
            b.append((time.perf_counter() - started) * 1000)
        on.append(float(np.median(a)))
        off.append(float(np.median(b)))
    return {"queries": len(queries), "on_p50": common.median(on), "off_p50": common.median(off),
            "on_p95": common.percentiles(on, (95,))[95], "off_p95": common.percentiles(off, (95,))[95],
            "rss_mb": common.current_rss_mb()}


def vocabulary_cost(index_dir: Path) -> dict:
    """Cold build of the vocabulary in a fresh engine: seconds, words, resident memory added."""
    from search_service.engine import correction

    engine = _engine(index_dir)
    engine.snapshot()
    _search(engine, "城市", correct=False)
    gc.collect()
    before = common.current_rss_mb()
    started = time.perf_counter()
    vocabulary = engine.vocabulary()
    correction.syllables()
    seconds = time.perf_counter() - started
    gc.collect()
    after = common.current_rss_mb()
    return {"seconds": seconds, "words": len(vocabulary), "rss_before_mb": before, "rss_after_mb": after}


def bench_queries() -> list[str]:
    path = Path(__file__).with_name("queries.txt")
    return [line.split("\t")[0].strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]


def relevance_sets(quick: bool, names: list[str]) -> dict:
    """False corrections and MRR/nDCG with correction on and off on bench.relevance's judged sets."""
    from . import relevance

    out = {}
    for name, loader in (("ecom", relevance.load_ecom), ("site", relevance.load_site)):
        if name not in names:
            continue
        evalset = loader()
        index_dir, meta = relevance.prepare_index(evalset, rebuild=False)
        queries = evalset.queries[: relevance.QUICK_QUERIES] if quick else evalset.queries
        row: dict = {"queries": len(queries), "articles": meta.get("articles")}

        @dataclasses.dataclass(frozen=True)
        class WithCorrection(relevance.Config):
            correction: bool = True

            def options(self):
                return dataclasses.replace(super().options(), correction=self.correction)

        for label, enabled in (("on", True), ("off", False)):
            config = WithCorrection(f"default-correction-{label}", correction=enabled)
            result = relevance.evaluate_config(index_dir, evalset, config, queries)
            row[label] = result["metrics"]
            row[f"{label}_ms"] = result["mean_ms"]
        # evaluate_config builds its own Runner: count corrections with our own engine.
        engine = _engine(index_dir)
        corrected = []
        for qid, text in queries:
            results = _search(engine, text, size=10)
            if results.correction is not None:
                corrected.append({"id": qid, "typed": text, "searched": results.searched})
        row["corrected"] = corrected
        out[name] = row
    return out


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}% ({part}/{whole})" if whole else "–"


def render(raw: dict) -> str:
    cells = raw["judged"]["cells"]
    lines = ["## Correction (homophone slips and toneless pinyin)", "",
             common.provenance(raw["command"], raw["date"], raw["machine"], raw["corpus"]),
             f"- Judged set: `bench/correction_set.tsv` ({raw['set_size']} queries, made by "
             "`python -m bench.correction generate`; see the docstring of `bench/correction.py`). "
             f"Answered = the query's top {TOP} shares ≥ {OVERLAP} articles with the meant word's top {TOP}. "
             "The constants of `search_service/engine/correction.py` were chosen on the `tune` half only.",
             f"- Settings: default (`correction = true`, `correction_fuzzy_pinyin = {raw['fuzzy']}`); "
             "\"before\" is the same engine with `correct=0` (the engine without correction), same run.", ""]
    headers = ["kind", "split", "queries", "answered", "answered before (correct=0)", "corrected",
               "corrected to the meant word", "target"]
    body = []
    for kind in ("homophone", "pinyin", "correct"):
        for split in ("held-out", "tune"):
            c = cells.get(f"{kind}|{split}")
            if not c:
                continue
            n = c["queries"]
            if kind == "correct":
                body.append([kind, split, n, "–", "–", f"**{_pct(c.get('corrected', 0), n)}** false corrections",
                             "–", "0"])
                continue
            target = f"≥ {TARGETS[kind]:.0%}" if split == "held-out" else ""
            body.append([kind, split, n, f"**{_pct(c.get('answered', 0), n)}**" if split == "held-out"
                         else _pct(c.get("answered", 0), n), _pct(c.get("answered_before", 0), n),
                         _pct(c.get("corrected", 0), n), _pct(c.get("exact_word", 0), n), target])
    lines += [common.markdown_table(headers, body, "llrrrrrl"), ""]
    rel = raw.get("relevance") or {}
    if rel:
        lines += ["False corrections and ranking on the relevance benchmark's judged sets (every query is a "
                  "correct query; `bench.relevance` indexes; MRR@10 / nDCG@10 / R@100 with correction on and off):", ""]
        body = []
        for name, row in rel.items():
            on, off = row["on"], row["off"]
            body.append([name, row["queries"], _pct(len(row["corrected"]), row["queries"]),
                         f"{on['mrr@10']:.4f} / {on['ndcg@10']:.4f} / {on['recall@100']:.4f}",
                         f"{off['mrr@10']:.4f} / {off['ndcg@10']:.4f} / {off['recall@100']:.4f}"])
        lines += [common.markdown_table(["set", "queries", "corrected (false)", "on", "off"], body, "lrrrr"), ""]
        if raw.get("relevance_command"):
            lines += [f"(Sets added by `{raw['relevance_command']}` on {raw.get('relevance_date', 'a later run')}.)", ""]
        for name, row in rel.items():
            if row["corrected"]:
                shown = "; ".join(f"{c['typed']} → {c['searched']}" for c in row["corrected"][:8])
                lines.append(f"- {name}, corrected: {shown}")
        lines.append("")
    lat = raw["latency"]
    slips = raw["latency_slips"]
    vocab = raw["vocabulary"]
    lines += [
        "Cost (one process, warm: every query run once before timing; per query the median of 3 rounds, "
        "correction on and off interleaved; the machine is shared with other jobs):", "",
        common.markdown_table(
            ["queries", "on p50 ms", "off p50 ms", "p50 added", "on p95 ms", "off p95 ms", "RSS MB"],
            [[f"`bench/queries.txt` ({lat['queries']}, ordinary queries)", f"{lat['on_p50']:.2f}",
              f"{lat['off_p50']:.2f}", f"{lat['on_p50'] - lat['off_p50']:+.2f}", f"{lat['on_p95']:.1f}",
              f"{lat['off_p95']:.1f}", f"{lat['rss_mb']:.0f}"],
             [f"held-out slips and pinyin ({slips['queries']})", f"{slips['on_p50']:.2f}", f"{slips['off_p50']:.2f}",
              f"{slips['on_p50'] - slips['off_p50']:+.2f}", f"{slips['on_p95']:.1f}", f"{slips['off_p95']:.1f}",
              f"{slips['rss_mb']:.0f}"]], "lrrrrrr"), "",
        *([f"- Latency re-measured alone by `{raw['latency_command']}`."] if raw.get("latency_command") else []),
        f"- Vocabulary (cold, fresh engine): {vocab['words']:,} CJK words of title + body built in "
        f"{vocab['seconds']:.2f} s; resident memory {vocab['rss_before_mb']:.0f} → {vocab['rss_after_mb']:.0f} MB. "
        "Built once per commit (per segment, cached by segment id); `SearchEngine.vocabulary()` warms it.",
    ]
    fuzzy = raw.get("fuzzy_run")
    if fuzzy:
        cells_f = fuzzy["cells"]
        parts = []
        for kind in ("homophone", "pinyin", "correct"):
            c = cells_f.get(f"{kind}|held-out")
            if c:
                value = c.get("corrected", 0) if kind == "correct" else c.get("answered", 0)
                parts.append(f"{kind} {_pct(value, c['queries'])}" + (" corrected" if kind == "correct" else ""))
        lines.append(f"- With `correction_fuzzy_pinyin = true` (held-out): {', '.join(parts)}.")
    failures = [f for f in raw["judged"]["failures"] if f["split"] == "held-out"]
    if failures:
        shown = "; ".join(f"{f['typed']} (meant {f['meant']}) → {f['searched'] or 'not corrected'}"
                          for f in failures[:12])
        lines.append(f"- Held-out misses ({len(failures)}), first ones: {shown}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.correction", description=__doc__.splitlines()[0])
    parser.add_argument("action", nargs="?", default="measure", choices=("measure", "generate"))
    common.add_sample_arguments(parser, fraction=DEFAULT_SAMPLE)
    add_shared_argument(parser)
    parser.add_argument("--quick", action="store_true", help="tuning half only, no relevance sets; docs untouched")
    parser.add_argument("--fuzzy", action="store_true", help="also measure with correction_fuzzy_pinyin on")
    parser.add_argument("--relevance-sets", nargs="*", default=["ecom", "site"], choices=("ecom", "site"),
                        help="bench.relevance sets to count false corrections and MRR on (default both)")
    parser.add_argument("--latency-only", action="store_true",
                        help="measure only the latency again and rewrite the docs section with the last run's other figures")
    parser.add_argument("--add-relevance", nargs="+", default=None, choices=("ecom", "site"), metavar="SET",
                        help="measure only these relevance sets and add them to the last run's figures "
                             "(bench/out/correction.json), then rewrite the docs section")
    args = parser.parse_args(argv)
    use_shared(args.shared)
    common.initialize_analysis()
    if args.latency_only:
        raw = json.loads((common.OUT_DIR / "correction.json").read_text(encoding="utf-8"))
        index_dir, _ = prepare_index(common.sample_from_args(args))
        engine = _engine(index_dir)
        engine.vocabulary()
        rows = read_set()
        raw["latency"] = latency(engine, bench_queries())
        raw["latency_slips"] = latency(engine, [r["typed"] for r in rows
                                                if r["split"] == "held-out" and r["kind"] != "correct"])
        command = common.command_line("bench.correction")
        if args.shared is not None:
            command = command.replace(str(args.shared), "../shared")
        raw["latency_command"] = f"{command} on {common.now_utc()}, load average at start " + \
            " / ".join(f"{x:.2f}" for x in __import__("os").getloadavg())
        common.save_raw("correction", raw)
        text = render(raw)
        print(text)
        common.update_section(SECTION, text)
        return 0
    if args.add_relevance:
        raw = json.loads((common.OUT_DIR / "correction.json").read_text(encoding="utf-8"))
        raw.setdefault("relevance", {}).update(relevance_sets(quick=False, names=args.add_relevance))
        command = common.command_line("bench.correction")
        if args.shared is not None:
            command = command.replace(str(args.shared), "../shared")
        raw["relevance_command"] = command
        raw["relevance_date"] = common.now_utc()
        common.save_raw("correction", raw)
        text = render(raw)
        print(text)
        common.update_section(SECTION, text)
        return 0
    sample = common.sample_from_args(args)
    index_dir, meta = prepare_index(sample)
    if args.action == "generate":
        rows = generate(index_dir)
        write_set(rows)
        print(f"bench.correction: wrote {len(rows)} queries to {SET_FILE}", file=sys.stderr)
        return 0
    machine = common.machine_info()
    rows = read_set()
    if args.quick:
        rows = [r for r in rows if r["split"] == "tune"]
    vocab = vocabulary_cost(index_dir)
    engine = _engine(index_dir)
    judged = judge(engine, rows)
    # The command as typed from the project root, with the shared folder named as the project knows it.
    command = common.command_line("bench.correction")
    if args.shared is not None:
        command = command.replace(str(args.shared), "../shared")
    raw = {"command": command, "date": common.now_utc(), "machine": machine,
           "corpus": f"{meta['articles']:,} articles ({meta.get('sample', sample.describe())})",
           "set_size": len(rows), "fuzzy": "false", "judged": judged, "vocabulary": vocab}
    if args.fuzzy:
        raw["fuzzy_run"] = judge(_engine(index_dir, fuzzy_pinyin=True), [r for r in rows if r["split"] == "held-out"])
    raw["latency"] = latency(engine, bench_queries())
    raw["latency_slips"] = latency(engine, [r["typed"] for r in rows
                                            if r["split"] == "held-out" and r["kind"] != "correct"])
    if not args.quick:
        raw["relevance"] = relevance_sets(quick=False, names=args.relevance_sets)
    common.save_raw("correction", raw)
    text = render(raw)
    print(text)
    if not args.quick:
        common.update_section(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
