"""Maximal Marginal Relevance (Carbonell & Goldstein 1998).

Pick i maximising  lambda * rel_i - (1 - lambda) * max_{j in S} cos(i, j)
with lambda = 1 - diversity and rel = min-max normalised scores, so both terms
live on comparable scales whatever the ranker's score range is.
"""

from __future__ import annotations

import numpy as np

from shopray.stages.diversify._common import fill, minmax, prepare


def mmr(
    scores: np.ndarray,
    embeddings: np.ndarray,
    payloads: list[dict] | None,
    k: int,
    diversity: float,
) -> list[int]:
    """Indices of min(k, N) candidates in display order. O(N k d)."""
    p = prepare(scores, embeddings, payloads, k, diversity)
    if p.k == 0:
        return []
    # Non-finite scores have no relevance to trade off; they only ever fill.
    nf = p.n_finite
    kk = min(p.k, nf)
    if p.diversity == 0.0 or kk == 0:
        return p.identity()
    lam = 1.0 - p.diversity
    rel = lam * minmax(p.scores[:nf])
    emb = p.embeddings[:nf]
    # Running max similarity to the selection: one (N, d) @ (d,) per pick
    # instead of recomputing against the whole selection.
    taken = np.zeros(nf, dtype=bool)
    j = int(np.argmax(rel))  # empty selection: pure relevance
    selected = [j]
    taken[j] = True
    max_sim = emb @ emb[j]
    for _ in range(kk - 1):
        obj = rel - (1.0 - lam) * max_sim
        obj[taken] = -np.inf
        j = int(np.argmax(obj))  # first max: ties go to the better-ranked item
        selected.append(j)
        taken[j] = True
        np.maximum(max_sim, emb @ emb[j], out=max_sim)
    return p.to_original(fill(selected, len(p.scores), p.k))
