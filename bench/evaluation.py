"""Ranking-quality metrics for judged query sets: MRR@k, nDCG@k, Recall@k.

Plain Python, no dependencies, so the benchmark (``bench/relevance.py``) and the
tests can use it anywhere. Conventions follow ``trec_eval``:

* *qrels* map a query id to ``{doc_id: grade}``; a grade > 0 is relevant, 0 (or
  negative) is judged not relevant. Binary qrels are grades of 1.
* a *run* maps a query id to its ranked list of document ids, best first. A
  document listed twice counts once, at its first rank.
* ``reciprocal_rank``: 1 / rank of the first relevant document within the top k, else 0.
* ``ndcg``: DCG@k / ideal DCG@k, with ``DCG = sum(gain(grade_i) / log2(i + 1))`` over
  ranks i = 1..k. The gain is the grade itself (``"linear"``, trec_eval's) or
  ``2**grade - 1`` (``"exponential"``); both are the same for binary qrels. The
  ideal ranking is every judged relevant document sorted by grade, cut at k.
* ``recall``: relevant documents in the top k / all relevant documents.

Averages are taken over the queries that have at least one relevant judgement; a
query of the qrels missing from the run scores 0 on every metric.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Sequence[str]]

#: The metrics :func:`evaluate` reports by default, in table order.
DEFAULT_METRICS = ("mrr@10", "ndcg@10", "recall@10", "recall@100")


def _dedupe(ranking: Iterable[str], k: int | None = None) -> list[str]:
    seen: dict[str, None] = {}
    for doc in ranking:
        if doc not in seen:
            seen[doc] = None
            if k is not None and len(seen) >= k:
                break
    return list(seen)


def _relevant(judged: Mapping[str, int]) -> set[str]:
    return {doc for doc, grade in judged.items() if grade > 0}


def reciprocal_rank(ranking: Sequence[str], judged: Mapping[str, int], k: int = 10) -> float:
    """1 / rank of the first relevant document among the top ``k``; 0 when there is none."""
    for rank, doc in enumerate(_dedupe(ranking, k), 1):
        if judged.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def _gain(grade: float, gain: str) -> float:
    if grade <= 0:
        return 0.0
    if gain == "linear":
        return float(grade)
    if gain == "exponential":
        return 2.0 ** grade - 1.0
    raise ValueError(f"gain must be 'linear' or 'exponential'; got {gain!r}")


def dcg(grades: Sequence[float], k: int, gain: str = "linear") -> float:
    """Discounted cumulative gain of grades listed in rank order, over the top ``k``."""
    return sum(_gain(g, gain) / math.log2(rank + 1) for rank, g in enumerate(grades[:k], 1))


def ndcg(ranking: Sequence[str], judged: Mapping[str, int], k: int = 10, gain: str = "linear") -> float:
    """Normalized DCG@k; 0 when nothing is relevant."""
    ideal = dcg(sorted((g for g in judged.values() if g > 0), reverse=True), k, gain)
    if ideal <= 0:
        return 0.0
    actual = dcg([judged.get(doc, 0) for doc in _dedupe(ranking, k)], k, gain)
    return actual / ideal


def recall(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    """Share of the relevant documents found in the top ``k``; 0 when nothing is relevant."""
    relevant = _relevant(judged)
    if not relevant:
        return 0.0
    return len(relevant.intersection(_dedupe(ranking, k))) / len(relevant)


def metric(name: str, ranking: Sequence[str], judged: Mapping[str, int], gain: str = "linear") -> float:
    """One metric by name: ``mrr@K``, ``ndcg@K`` or ``recall@K``."""
    kind, sep, cut = name.partition("@")
    if not sep or not cut.isdigit() or int(cut) < 1:
        raise ValueError(f"metric names look like mrr@10, ndcg@10, recall@100; got {name!r}")
    k = int(cut)
    if kind == "mrr":
        return reciprocal_rank(ranking, judged, k)
    if kind == "ndcg":
        return ndcg(ranking, judged, k, gain)
    if kind == "recall":
        return recall(ranking, judged, k)
    raise ValueError(f"unknown metric {kind!r}; use mrr, ndcg or recall")


def per_query(run: Run, qrels: Qrels, metrics: Sequence[str] = DEFAULT_METRICS,
              gain: str = "linear") -> dict[str, dict[str, float]]:
    """``{query_id: {metric: value}}`` for every query of ``qrels`` with a relevant document."""
    scores = {}
    for qid, judged in qrels.items():
        if not _relevant(judged):
            continue
        ranking = run.get(qid, ())
        scores[qid] = {name: metric(name, ranking, judged, gain) for name in metrics}
    return scores


def evaluate(run: Run, qrels: Qrels, metrics: Sequence[str] = DEFAULT_METRICS,
             gain: str = "linear") -> dict[str, float]:
    """Mean of each metric over the judged queries, plus ``queries`` (how many were averaged)."""
    scores = per_query(run, qrels, metrics, gain)
    means: dict[str, float] = {name: 0.0 for name in metrics}
    for values in scores.values():
        for name in metrics:
            means[name] += values[name]
    count = len(scores)
    result = {name: (total / count if count else 0.0) for name, total in means.items()}
    result["queries"] = count
    return result


def read_qrels(path: Path | str) -> dict[str, dict[str, int]]:
    """Qrels from a TSV file: ``query<TAB>doc<TAB>grade`` or TREC's ``query 0 doc grade``.

    Blank lines and lines starting with ``#`` are skipped; a later line for the same
    pair replaces an earlier one.
    """
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8", newline="") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split("\t") if "\t" in line else line.split()
            parts = [p.strip() for p in parts]
            if len(parts) == 4:
                qid, _, doc, grade = parts
            elif len(parts) == 3:
                qid, doc, grade = parts
            else:
                raise ValueError(f"{path}:{number}: expected 'query doc grade' or 'query 0 doc grade'")
            try:
                qrels.setdefault(qid, {})[doc] = int(grade)
            except ValueError:
                raise ValueError(f"{path}:{number}: grade must be an integer; got {grade!r}") from None
    return qrels


def write_run(path: Path | str, run: Run, tag: str = "search_service") -> None:
    """A run in TREC format (``qid Q0 doc rank score tag``, score = -rank), for trec_eval."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=" ", lineterminator="\n")
        for qid, ranking in run.items():
            for rank, doc in enumerate(_dedupe(ranking), 1):
                writer.writerow([qid, "Q0", doc, rank, -rank, tag])
