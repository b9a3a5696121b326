import math

import pytest

from shopray.evaluation import evaluate, load_judgments, ndcg_at_k, recall_at_k, reciprocal_rank


def test_load_judgments_gain_is_relevance_minus_min_grade(tmp_path):
    path = tmp_path / "j.csv"
    path.write_text("query,product_id,relevance\nq,1,3\nq,2,1\nr,3,2.5\n")
    assert load_judgments(path) == {"q": {"1": 2.0, "2": 0.0}, "r": {"3": 1.5}}


def test_ndcg_hand_computed():
    gains = {"a": 2.0, "b": 1.0, "c": 0.0}
    assert ndcg_at_k(["a", "b", "c"], gains, 3) == pytest.approx(1.0)
    # b first, a second: (1 + 2/log2(3)) / (2 + 1/log2(3))
    expected = (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    assert ndcg_at_k(["b", "a"], gains, 10) == pytest.approx(expected)
    assert ndcg_at_k(["x", "y"], gains, 10) == 0.0  # unjudged count as 0
    assert ndcg_at_k(["a"], {"a": 0.0}, 10) == 0.0


def test_recall_and_mrr():
    gains = {"a": 2.0, "b": 1.0, "c": 0.0}
    assert recall_at_k(["c", "a", "x"], gains, 2) == 0.5
    assert reciprocal_rank(["c", "x", "b"], gains) == pytest.approx(1 / 3)
    assert reciprocal_rank(["c"], gains) == 0.0


def test_evaluate_skips_queries_without_positive_gain():
    judgments = {"q1": {"a": 1.0}, "q2": {"b": 0.0}}
    result = evaluate(judgments, lambda q: ["a"], k=10)
    assert result["queries"] == 1 and result["ndcg@10"] == 1.0 and result["mrr"] == 1.0


def test_evaluate_per_query_ndcg_is_in_judgment_order_for_paired_comparisons():
    judgments = {"q1": {"a": 1.0}, "q2": {"b": 0.0}, "q3": {"c": 1.0}}
    result = evaluate(judgments, lambda q: ["a"], per_query=True)
    assert result["per_query_ndcg"].tolist() == [1.0, 0.0]
    assert "per_query_ndcg" not in evaluate(judgments, lambda q: ["a"])
