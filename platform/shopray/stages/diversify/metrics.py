"""Diversity and relevance metrics for one result list (or a batch of them).

Conventions, fixed here so the evaluation code and the tests agree:
* ranks are 0-based in code; the discount of rank i is 1 / log2(i + 2).
* nDCG uses LINEAR gain g / log2(i + 2) (not 2^g - 1): graded labels are
  small integers and linear gain keeps a grade-2 item worth twice a grade-1
  item. Callers shift grades so that "irrelevant" is 0.
* Empty or degenerate inputs score 0.0 rather than NaN, so averages over
  queries stay finite.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from shopray.stages.diversify._common import normalise_rows


def _discounts(n: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(n) + 2.0)


def dcg_at_k(gains: Sequence[float], k: int) -> float:
    g = np.asarray(gains, dtype=np.float64)[: max(k, 0)]
    return float(g @ _discounts(g.size))


def ndcg_at_k(gains: Sequence[float], all_gains: Iterable[float], k: int) -> float:
    """DCG of ``gains`` (in ranked order) over the DCG of the best possible top k.

    ``all_gains`` is every judged item's gain for the query (not just the
    retrieved ones), so missing a relevant item is penalised. 0.0 if no item
    has positive gain.
    """
    ideal = dcg_at_k(sorted(all_gains, reverse=True), k)
    return dcg_at_k(gains, k) / ideal if ideal > 0 else 0.0


def intra_list_diversity(embeddings: np.ndarray) -> float:
    """Mean over unordered pairs of (1 - cosine); 0.0 for fewer than 2 items."""
    if len(embeddings) < 2:
        return 0.0
    e = normalise_rows(np.asarray(embeddings, dtype=np.float64))
    n = e.shape[0]
    sims = e @ e.T
    mean_sim = (sims.sum() - np.trace(sims)) / (n * (n - 1))
    return float(1.0 - mean_sim)


def coverage(payloads: Sequence[dict], field: str, k: int | None = None, normalize: bool = True) -> float:
    """Distinct non-empty values of ``field`` among the first k payloads.

    normalize=True divides by the number of slots looked at (min(k, len)), so
    1.0 means every slot shows a different brand/category; normalize=False
    returns the raw count. Missing values count as slots but not as values.
    Values are compared case-folded, as the diversifiers do.
    """
    top = list(payloads)[: len(payloads) if k is None else max(k, 0)]
    values = {str(p.get(field)).strip().casefold() for p in top if p and p.get(field) is not None}
    values.discard("")
    if not normalize:
        return float(len(values))
    return len(values) / len(top) if top else 0.0


def _alpha_dcg(ranking: Sequence[Iterable], k: int, alpha: float) -> float:
    seen: dict = {}
    total = 0.0
    for i, topics in enumerate(list(ranking)[:k]):
        topics = set(topics)
        total += sum((1.0 - alpha) ** seen.get(t, 0) for t in topics) / np.log2(i + 2)
        for t in topics:
            seen[t] = seen.get(t, 0) + 1
    return total


def alpha_ndcg_at_k(
    ranking: Sequence[Iterable],
    k: int,
    alpha: float = 0.5,
    pool: Sequence[Iterable] | None = None,
) -> float:
    """alpha-nDCG (Clarke et al. 2008) with the usual greedy ideal ranking.

    ``ranking[i]`` is the set of subtopics (intents, categories...) the i-th
    shown item covers. The ideal list is built greedily from ``pool`` (all
    judged items; defaults to ``ranking`` itself) by repeatedly taking the
    item with the largest marginal gain. Exact ideal is NP-hard, so like every
    published implementation the score can in rare cases exceed 1.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError("alpha must be in [0, 1]")
    remaining = [set(t) for t in (ranking if pool is None else pool)]
    seen: dict = {}
    ideal: list[set] = []
    for _ in range(min(k, len(remaining))):
        gains = [sum((1.0 - alpha) ** seen.get(t, 0) for t in s) for s in remaining]
        best = remaining.pop(int(np.argmax(gains)))
        ideal.append(best)
        for t in best:
            seen[t] = seen.get(t, 0) + 1
    denom = _alpha_dcg(ideal, k, alpha)
    return _alpha_dcg(ranking, k, alpha) / denom if denom > 0 else 0.0


def long_tail_exposure_share(
    result_lists: Iterable[Sequence[float | None]],
    catalog_popularity: Sequence[float] | None = None,
    *,
    threshold: float | None = None,
) -> float:
    """Share of displayed slots given to products less popular than the median.

    ``result_lists`` holds, per served query, the popularity of each shown
    product. The threshold is ``threshold`` if given, else the median of
    ``catalog_popularity`` (the whole catalog, not the shown items, so the
    metric is comparable between methods). "Long tail" is strictly below the
    threshold. Slots whose popularity is unknown (None/NaN) are left out of
    both numerator and denominator. 0.0 when nothing countable was shown.
    """
    if threshold is None:
        if catalog_popularity is None:
            raise ValueError("need catalog_popularity or threshold")
        cat = np.asarray([np.nan if v is None else v for v in catalog_popularity], dtype=np.float64)
        cat = cat[np.isfinite(cat)]
        if cat.size == 0:
            raise ValueError("catalog_popularity has no finite values")
        threshold = float(np.median(cat))
    shown = np.asarray(
        [np.nan if v is None else v for lst in result_lists for v in lst], dtype=np.float64
    )
    shown = shown[np.isfinite(shown)]
    return float((shown < threshold).mean()) if shown.size else 0.0
