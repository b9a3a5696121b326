"""Diversifiers and diversity metrics: contracts, properties, hand-computed values."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from shopray.stages.diversify.caps import cap_for, caps
from shopray.stages.diversify.dpp import dpp, dpp_kernel
from shopray.stages.diversify.methods import METHODS, diversify
from shopray.stages.diversify.metrics import alpha_ndcg_at_k, coverage, dcg_at_k, intra_list_diversity, long_tail_exposure_share, ndcg_at_k
from shopray.stages.diversify.mmr import mmr
from shopray.stages.diversify.window import window

ALL = sorted(METHODS)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make(rng, n, d=8, n_brands=3, n_cats=3, missing=0.0, sort=True):
    scores = rng.normal(size=n)
    if sort:
        scores = np.sort(scores)[::-1]
    emb = unit(rng.normal(size=(n, d)))
    payloads = []
    for _ in range(n):
        p = {"brand": f"b{rng.integers(n_brands)}", "category": f"c{rng.integers(n_cats)}"}
        if rng.random() < missing:
            p.pop("brand")
        payloads.append(p)
    return scores, emb, payloads


def clustered(rng, n_clusters=4, per=10, d=16, spread=0.05):
    """Each cluster's items are near-copies and rank next to each other."""
    centers = unit(rng.normal(size=(n_clusters, d)))
    emb = unit(np.repeat(centers, per, axis=0) + spread * rng.normal(size=(n_clusters * per, d)))
    scores = np.sort(rng.random(n_clusters * per))[::-1]
    return scores, emb, [{} for _ in range(len(scores))]


# --- contract shared by every method ----------------------------------------


@pytest.mark.parametrize("method", ALL)
def test_zero_diversity_is_ranker_order(method):
    rng = np.random.default_rng(0)
    for seed in range(20):
        n = int(rng.integers(1, 30))
        k = int(rng.integers(1, 40))
        s, e, pl = make(np.random.default_rng(seed), n, sort=bool(seed % 2))
        assert diversify(method, s, e, pl, k, 0.0) == list(range(min(k, n)))
        assert diversify(method, s, e, pl, k, -0.5) == list(range(min(k, n)))  # clipped to 0


@pytest.mark.parametrize("method", ALL)
def test_output_is_a_valid_permutation_prefix(method):
    for seed in range(15):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(1, 25))
        k = int(rng.integers(1, 30))
        s, e, pl = make(rng, n, missing=0.3)
        out = diversify(method, s, e, pl, k, float(rng.random()))
        assert len(out) == min(k, n) and len(set(out)) == len(out)
        assert all(isinstance(i, int) and 0 <= i < n for i in out)


@pytest.mark.parametrize("method", ALL)
def test_bad_inputs(method):
    rng = np.random.default_rng(1)
    s, e, pl = make(rng, 5)
    assert diversify(method, np.zeros(0), np.zeros((0, 8)), [], 10, 0.5) == []
    assert diversify(method, [], [], None, 3, 0.5) == []
    assert diversify(method, s, e, pl, 0, 0.5) == []
    assert diversify(method, s, e, pl, -3, 0.5) == []
    assert sorted(diversify(method, s, e, pl, 50, 0.5)) == list(range(5))
    assert diversify(method, s, e, pl, 5, 3.0) == diversify(method, s, e, pl, 5, 1.0)
    with pytest.raises(ValueError):
        diversify(method, s, e, pl, 3, float("nan"))
    with pytest.raises(ValueError):
        diversify(method, s, e[:4], pl, 3, 0.5)
    with pytest.raises(ValueError):
        diversify(method, s, e, pl[:4], 3, 0.5)


@pytest.mark.parametrize("method", ALL)
def test_non_finite_scores_go_last(method):
    rng = np.random.default_rng(2)
    _, e, pl = make(rng, 6)
    s = np.array([np.nan, 5.0, 4.0, np.inf, 3.0, -np.inf])
    assert diversify(method, s, e, pl, 6, 0.0) == [1, 2, 4, 0, 3, 5]
    out = diversify(method, s, e, pl, 6, 0.8)
    assert set(out[:3]) == {1, 2, 4} and out[3:] == [0, 3, 5]
    assert len(diversify(method, np.full(4, np.nan), e[:4], pl[:4], 3, 0.8)) == 3


@pytest.mark.parametrize("method", ALL)
def test_embeddings_are_renormalised_and_sanitised(method):
    rng = np.random.default_rng(9)
    s, e, pl = make(rng, 12, missing=0.5)
    out = diversify(method, s, e, pl, 6, 0.6)
    assert diversify(method, s, 3.0 * e.astype(np.float32), pl, 6, 0.6) == out
    bad = e.copy()
    bad[2] = np.nan
    bad[3] = 0.0
    assert len(diversify(method, s, bad, pl, 6, 0.6)) == 6


def test_unknown_method():
    with pytest.raises(ValueError):
        diversify("nope", [1.0], [[1.0]], None, 1, 0.5)


@pytest.mark.parametrize("fn", [mmr, dpp])
def test_tiny_diversity_approaches_ranker_order(fn):
    rng = np.random.default_rng(3)
    s, e, pl = make(rng, 40)
    assert fn(s, e, pl, 10, 1e-12) == list(range(10))  # no overflow, no reorder


# --- MMR / DPP ---------------------------------------------------------------


@pytest.mark.parametrize("fn", [mmr, dpp])
def test_diversity_raises_intra_list_diversity(fn):
    gains = []
    for seed in range(5):
        s, e, pl = clustered(np.random.default_rng(seed))
        base = intra_list_diversity(e[fn(s, e, pl, 8, 0.0)])
        div = intra_list_diversity(e[fn(s, e, pl, 8, 0.7)])
        gains.append(div - base)
    assert min(gains) > 0.2


def test_mmr_full_diversity_picks_one_per_cluster_first():
    s, e, pl = clustered(np.random.default_rng(4), n_clusters=4, per=10)
    out = mmr(s, e, pl, 4, 1.0)
    assert sorted(i // 10 for i in out) == [0, 1, 2, 3]


def _greedy_det(L: np.ndarray, k: int) -> list[int]:
    chosen: list[int] = []
    for _ in range(k):
        dets = [
            np.linalg.det(L[np.ix_(chosen + [i], chosen + [i])]) if i not in chosen else -np.inf
            for i in range(len(L))
        ]
        chosen.append(int(np.argmax(dets)))
    return chosen


def test_dpp_matches_brute_force_greedy_and_is_near_optimal():
    ratios = []
    for seed in range(60):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(2, 9))
        k = int(rng.integers(1, min(4, n) + 1))
        div = float(rng.choice([0.2, 0.5, 1.0]))
        s, e, pl = make(rng, n, d=3)  # d small: similarities matter
        L = dpp_kernel(s, e, div)
        got = dpp(s, e, pl, k, div)
        assert got == _greedy_det(L, k), seed
        best = max(np.linalg.det(L[np.ix_(c, c)]) for c in itertools.combinations(range(n), k))
        ratios.append(np.linalg.det(L[np.ix_(got, got)]) / best)
    assert np.mean(ratios) > 0.9  # greedy is a (1 - 1/e)-ish heuristic, usually much closer


def test_dpp_kernel_is_psd():
    rng = np.random.default_rng(5)
    s, e, _ = make(rng, 30, d=4)
    assert np.linalg.eigvalsh(dpp_kernel(s, e, 0.5)).min() > 0


def test_dpp_duplicates_are_picked_last():
    rng = np.random.default_rng(6)
    e = unit(rng.normal(size=(3, 8)))
    e = np.vstack([e[0], e[0], e[0], e[1], e[2]])  # 3 exact copies of the best item
    s = np.array([5.0, 4.9, 4.8, 1.0, 0.9])
    assert dpp(s, e, None, 5, 0.5)[:3] == [0, 3, 4]
    # without jitter the copies are singular: DPP stops, ranker order fills
    assert dpp(s, e, None, 5, 0.5, jitter=0.0) == [0, 3, 4, 1, 2]


# --- caps --------------------------------------------------------------------


def _counts_ok(out, payloads, field, m):
    vals = [payloads[i][field] for i in out]
    return all(vals.count(v) <= m for v in set(vals))


def test_caps_hold_whenever_feasible():
    feasible_seen = 0
    for seed in range(150):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(1, 9))
        k = int(rng.integers(1, n + 1))
        div = float(rng.random())
        s, e, pl = make(rng, n, n_brands=int(rng.integers(1, 4)), n_cats=int(rng.integers(1, 4)))
        m = cap_for(k, div)
        out = caps(s, e, pl, k, div)
        assert len(out) == k

        def ok(sub):
            return _counts_ok(sub, pl, "brand", m) and _counts_ok(sub, pl, "category", m)

        if any(ok(c) for c in itertools.combinations(range(n), k)):
            feasible_seen += 1
            assert ok(out), seed
        else:
            # caps hold on the longest feasible prefix; leftovers only fill the tail
            assert ok(out[: max(r for r in range(k) if ok(out[:r]))])
    assert feasible_seen > 50


def test_caps_two_fields_beat_plain_greedy():
    e = unit(np.eye(4))
    s = np.array([4.0, 3.0, 2.0, 1.0])
    pl2 = [
        {"brand": "A", "category": "X"},
        {"brand": "B", "category": "X"},
        {"brand": "A", "category": "Y"},
        {"brand": "C", "category": "Z"},
    ]
    # greedy: 0 (A,X), skip 1 (X full), skip 2 (A full), 3 -> only 2 items;
    # {1, 2, 3} satisfies both caps and must be found.
    assert caps(s, e, pl2, 3, 1.0) == [1, 2, 3]


def test_caps_explicit_and_infeasible_fill():
    pl = [{"brand": "A"}] * 4 + [{"brand": "B"}]
    e = unit(np.eye(5))
    s = np.arange(5, 0, -1.0)
    assert caps(s, e, pl, 3, 0.5, fields=("brand",), max_per_brand=1) == [0, 4, 1]
    assert caps(s, e, pl, 3, 0.5, fields=("brand",), max_per_brand=2) == [0, 1, 4]


def test_caps_missing_brand_uses_near_duplicates():
    rng = np.random.default_rng(7)
    base = unit(rng.normal(size=(3, 16)))
    e = unit(np.vstack([base[0], base[0] + 0.01, base[0] + 0.02, base[1], base[2]]))
    s = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    out = caps(s, e, [{}] * 5, 3, 1.0, fields=("brand",))
    assert out == [0, 3, 4]
    # a brandless near-copy of a branded item counts against that brand
    pl = [{"brand": "A"}, {}, {}, {"brand": "B"}, {"brand": "C"}]
    assert caps(s, e, pl, 3, 1.0, fields=("brand",)) == [0, 3, 4]


# --- sliding window -----------------------------------------------------------


def _window_ok(seq, groups, w):
    return all(
        groups[seq[a]] != groups[seq[b]] for a in range(len(seq)) for b in range(a + 1, min(len(seq), a + w))
    )


def test_window_holds_whenever_feasible():
    feasible_seen = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(2, 7))
        k = int(rng.integers(2, n + 1))
        w = int(rng.integers(2, k + 1))
        s, e, pl = make(rng, n, n_brands=int(rng.integers(1, 5)))
        brands = [p["brand"] for p in pl]
        out = window(s, e, pl, k, 0.5, w=w)
        assert len(out) == k and len(set(out)) == k
        if any(_window_ok(p, brands, w) for p in itertools.permutations(range(n), k)):
            feasible_seen += 1
            assert _window_ok(out, brands, w), seed
    assert feasible_seen > 80


def test_window_lookahead_case_and_default_width():
    pl = [{"brand": b} for b in "BCAA"]
    e = unit(np.eye(4))
    s = np.array([4.0, 3.0, 2.0, 1.0])
    # plain greedy would place B C A and get stuck on A; look-ahead keeps B first
    assert window(s, e, pl, 4, 0.5, w=2) == [0, 2, 1, 3]  # B A C A
    # diversity=1 -> w=k: the top k all differ in brand
    pl = [{"brand": b} for b in "AABBCCDD"]
    out = window(np.arange(8, 0, -1.0), unit(np.eye(8)), pl, 4, 1.0)
    assert out == [0, 2, 4, 6]


def test_window_missing_brand_uses_near_duplicates():
    rng = np.random.default_rng(8)
    base = unit(rng.normal(size=(2, 16)))
    e = unit(np.vstack([base[0], base[0] + 0.01, base[1], base[1] + 0.01]))
    out = window(np.array([4.0, 3.0, 2.0, 1.0]), e, None, 4, 0.5, w=2)
    assert out == [0, 2, 1, 3]


# --- metrics -------------------------------------------------------------------


def test_ndcg_linear_gain():
    assert dcg_at_k([3, 2, 0], 3) == pytest.approx(3 + 2 / math.log2(3))
    # ideal over all judged items [3, 2, 1, 0]: 3 + 2/log2(3) + 1/2
    assert ndcg_at_k([3, 2, 0], [3, 2, 0, 1], 3) == pytest.approx(4.2618595 / 4.7618595, rel=1e-6)
    assert ndcg_at_k([1, 0], [1, 0], 2) == 1.0
    assert ndcg_at_k([0, 0], [0, 0], 2) == 0.0
    assert ndcg_at_k([0, 1], [1], 1) == 0.0


def test_intra_list_diversity():
    assert intra_list_diversity(np.eye(3)) == pytest.approx(1.0)
    assert intra_list_diversity(np.array([[1.0, 0], [2.0, 0], [0, 1.0]])) == pytest.approx(2 / 3)
    assert intra_list_diversity(np.eye(3)[:1]) == 0.0
    assert intra_list_diversity(np.zeros((0, 3))) == 0.0


def test_coverage():
    pl = [{"brand": "A"}, {"brand": "a "}, {"brand": "B"}, {}]
    assert coverage(pl, "brand") == 0.5  # {a, b} over 4 slots
    assert coverage(pl, "brand", k=2) == 0.5
    assert coverage(pl, "brand", normalize=False) == 2
    assert coverage([], "brand") == 0.0


def test_alpha_ndcg():
    ranking = [{"a"}, {"a"}, {"b"}]
    dcg = 1 + 0.5 / math.log2(3) + 1 / 2
    ideal = 1 + 1 / math.log2(3) + 0.5 / 2  # greedy ideal: {a}, {b}, {a}
    assert alpha_ndcg_at_k(ranking, 3, alpha=0.5) == pytest.approx(dcg / ideal)
    assert alpha_ndcg_at_k([{"a"}, {"b"}, {"a"}], 3) == pytest.approx(1.0)
    assert alpha_ndcg_at_k([set(), {"a"}], 2, pool=[{"a"}, {"b"}, set()]) == pytest.approx(
        (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    )
    assert alpha_ndcg_at_k([set()], 1) == 0.0


def test_long_tail_exposure_share():
    lists = [[1.0, 5.0], [2.0, 3.0, None]]
    assert long_tail_exposure_share(lists, [1, 2, 3, 4, 5]) == 0.5  # median 3, strictly below
    assert long_tail_exposure_share(lists, threshold=10) == 1.0
    assert long_tail_exposure_share([[]], [1, 2]) == 0.0
    with pytest.raises(ValueError):
        long_tail_exposure_share(lists)


def test_caps_an_unsatisfiable_category_cap_leaves_the_brand_cap_holding():
    # One category only (a category-filtered query): the brand cap must still hold.
    pl = [{"brand": b, "category": "X"} for b in "AAABBC"]
    e = unit(np.eye(6))
    s = np.arange(6, 0, -1.0)
    out = caps(s, e, pl, 3, 1.0)
    assert out == [0, 3, 5]
