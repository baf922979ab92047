"""The ranking metrics, checked against values computed by hand."""

from __future__ import annotations

import math

import pytest

from bench import evaluation as ev

LOG2_3 = math.log2(3)  # discount at rank 2
LOG2_5 = math.log2(5)  # discount at rank 4


def test_reciprocal_rank_is_one_over_the_first_relevant_rank():
    judged = {"d1": 1}
    assert ev.reciprocal_rank(["d1", "x"], judged) == 1.0
    assert ev.reciprocal_rank(["x", "y", "d1"], judged) == pytest.approx(1 / 3)
    # Only the first relevant document counts.
    assert ev.reciprocal_rank(["x", "d2", "d1"], {"d1": 1, "d2": 1}) == pytest.approx(1 / 2)


def test_reciprocal_rank_outside_the_cut_or_missing_is_zero():
    ranking = [f"x{i}" for i in range(10)] + ["d1"]  # d1 at rank 11
    assert ev.reciprocal_rank(ranking, {"d1": 1}, k=10) == 0.0
    assert ev.reciprocal_rank(ranking, {"d1": 1}, k=11) == pytest.approx(1 / 11)
    assert ev.reciprocal_rank([], {"d1": 1}) == 0.0


def test_grade_zero_is_judged_not_relevant():
    judged = {"bad": 0, "good": 1}
    assert ev.reciprocal_rank(["bad", "good"], judged) == pytest.approx(1 / 2)
    assert ev.recall(["bad"], judged, 10) == 0.0
    assert ev.ndcg(["bad", "good"], judged) == pytest.approx(1 / LOG2_3)


def test_duplicates_count_once_at_their_first_rank():
    judged = {"d1": 1, "d2": 1}
    # The second "x" does not push d1 down, and the repeated d1 is not a second hit.
    assert ev.reciprocal_rank(["x", "x", "d1"], judged) == pytest.approx(1 / 2)
    assert ev.recall(["d1", "d1", "d1"], judged, 10) == pytest.approx(0.5)
    assert ev.ndcg(["d1", "d1"], judged) == pytest.approx(1 / (1 + 1 / LOG2_3))


def test_ndcg_binary_one_relevant():
    # Relevant at rank 2: DCG = 1/log2(3) = 0.6309; ideal DCG = 1.
    assert ev.ndcg(["x", "d1", "y"], {"d1": 1}) == pytest.approx(0.6309297535714575)
    assert ev.ndcg(["d1"], {"d1": 1}) == 1.0
    assert ev.ndcg(["x"], {"d1": 1}) == 0.0


def test_ndcg_binary_two_relevant():
    # Relevant at ranks 1 and 3: DCG = 1 + 1/log2(4) = 1.5; ideal = 1 + 1/log2(3) = 1.6309.
    value = ev.ndcg(["d5", "x", "d6"], {"d5": 1, "d6": 1})
    assert value == pytest.approx(1.5 / (1 + 1 / LOG2_3))
    assert value == pytest.approx(0.91972, abs=1e-5)


def test_ndcg_ideal_counts_relevant_documents_never_retrieved():
    # Three relevant, only one retrieved at rank 1: DCG = 1; ideal = 1 + 1/log2(3) + 1/2 = 2.1309.
    assert ev.ndcg(["a"], {"a": 1, "b": 1, "c": 1}) == pytest.approx(1 / (1 + 1 / LOG2_3 + 0.5))
    # The ideal is cut at k too: with k=1 the single perfect hit is a perfect score.
    assert ev.ndcg(["a"], {"a": 1, "b": 1, "c": 1}, k=1) == 1.0


def test_ndcg_graded_linear_and_exponential_gain():
    judged = {"a": 3, "b": 2, "c": 1}
    ranking = ["c", "a", "z", "b"]
    # Linear: DCG = 1 + 3/log2(3) + 0 + 2/log2(5) = 3.7541; ideal (a, b, c) = 3 + 2/log2(3) + 1/2 = 4.7619.
    linear = ev.ndcg(ranking, judged)
    assert linear == pytest.approx((1 + 3 / LOG2_3 + 2 / LOG2_5) / (3 + 2 / LOG2_3 + 0.5))
    assert linear == pytest.approx(0.78838, abs=1e-5)
    # Exponential (2^g - 1: 7, 3, 1): DCG = 1 + 7/log2(3) + 3/log2(5) = 6.7085; ideal = 7 + 3/log2(3) + 1/2.
    exponential = ev.ndcg(ranking, judged, gain="exponential")
    assert exponential == pytest.approx((1 + 7 / LOG2_3 + 3 / LOG2_5) / (7 + 3 / LOG2_3 + 0.5))
    assert exponential == pytest.approx(0.71422, abs=1e-5)
    with pytest.raises(ValueError):
        ev.ndcg(ranking, judged, gain="cubic")


def test_recall_at_cutoffs():
    judged = {"d1": 1, "d2": 1, "d3": 2, "d4": 1}
    ranking = ["d1", "x", "d3"] + [f"y{i}" for i in range(97)] + ["d2"]  # d2 at rank 101
    assert ev.recall(ranking, judged, 1) == pytest.approx(1 / 4)
    assert ev.recall(ranking, judged, 10) == pytest.approx(2 / 4)
    assert ev.recall(ranking, judged, 100) == pytest.approx(2 / 4)
    assert ev.recall(ranking, judged, 101) == pytest.approx(3 / 4)


def test_metric_names():
    assert ev.metric("mrr@10", ["x", "d"], {"d": 1}) == pytest.approx(0.5)
    assert ev.metric("recall@1", ["x", "d"], {"d": 1}) == 0.0
    for bad in ("mrr", "mrr@0", "map@10", "recall@x"):
        with pytest.raises(ValueError):
            ev.metric(bad, [], {"d": 1})


def test_evaluate_averages_over_judged_queries():
    qrels = {
        "q1": {"d1": 1},                # rank 2
        "q2": {"d5": 1, "d6": 1},       # ranks 1 and 3
        "q3": {"d9": 1},                # not in the run at all
        "q4": {"d7": 1},                # rank 11
        "q5": {"n": 0},                 # nothing relevant: left out of the averages
    }
    run = {
        "q1": ["x", "d1", "y"],
        "q2": ["d5", "x", "d6"],
        "q4": [f"x{i}" for i in range(10)] + ["d7"],
        "q5": ["n"],
        "extra": ["d1"],                # not judged: ignored
    }
    result = ev.evaluate(run, qrels)
    assert result["queries"] == 4
    assert result["mrr@10"] == pytest.approx((1 / 2 + 1 + 0 + 0) / 4)
    assert result["ndcg@10"] == pytest.approx((1 / LOG2_3 + 1.5 / (1 + 1 / LOG2_3) + 0 + 0) / 4)
    assert result["recall@10"] == pytest.approx((1 + 1 + 0 + 0) / 4)
    assert result["recall@100"] == pytest.approx((1 + 1 + 0 + 1) / 4)
    per = ev.per_query(run, qrels)
    assert set(per) == {"q1", "q2", "q3", "q4"}
    assert per["q3"] == {"mrr@10": 0.0, "ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 0.0}


def test_evaluate_empty():
    assert ev.evaluate({}, {}) == {"mrr@10": 0.0, "ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 0.0,
                                   "queries": 0}


def test_read_qrels_both_formats(tmp_path):
    path = tmp_path / "qrels.tsv"
    path.write_text("# comment\nq1\td1\t1\n\nq1\td2\t0\nq2 0 d3 2\n", encoding="utf-8")
    assert ev.read_qrels(path) == {"q1": {"d1": 1, "d2": 0}, "q2": {"d3": 2}}
    path.write_text("q1\td1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=":1:"):
        ev.read_qrels(path)
    path.write_text("q1\td1\thigh\n", encoding="utf-8")
    with pytest.raises(ValueError, match="integer"):
        ev.read_qrels(path)


def test_write_run_trec_format(tmp_path):
    path = tmp_path / "run.txt"
    ev.write_run(path, {"q1": ["a", "b", "a"]}, tag="t")
    assert path.read_text(encoding="utf-8") == "q1 Q0 a 1 -1 t\nq1 Q0 b 2 -2 t\n"


def test_against_the_shared_qrels_file(shared_dir):
    qrels = ev.read_qrels(shared_dir / "eval" / "multicpr_ecom_subset" / "qrels.tsv")
    assert len(qrels) == 1000
    assert all(len(judged) == 1 and set(judged.values()) == {1} for judged in qrels.values())
