"""Greedy MAP inference for a DPP (Chen, Zhang & Zhou, NeurIPS 2018).

Kernel L = diag(q) S diag(q) with
  S_ij = (1 + cos_ij) / 2, S_ii = 1 (+ jitter)   -- PSD: (Gram + ones) / 2 plus a
                                                   non-negative diagonal
  q_i  = exp(alpha * rel_i), rel = min-max scores, alpha = (1 - div) / (2 div)
so log det L_Y = ((1 - div) / div) * sum_Y rel + log det S_Y: the paper's
relevance/diversity trade-off with theta = 1 - diversity.

Because L is S rescaled by q, the Schur complement (the marginal gain of the
greedy step) factorises: d_i^2(L) = q_i^2 d_i^2(S). We therefore run the
incremental Cholesky on S only and maximise 2 alpha rel_i + log d_i^2(S);
that is the same argmax as det L_{Y+i} but never overflows exp() when
diversity is tiny and alpha huge.
"""

from __future__ import annotations

import numpy as np

from shopray.stages.diversify._common import fill, minmax, normalise_rows, prepare


def quality_alpha(diversity: float) -> float:
    return np.inf if diversity <= 0 else (1.0 - diversity) / (2.0 * diversity)


def dpp_kernel(
    scores: np.ndarray, embeddings: np.ndarray, diversity: float, jitter: float = 1e-6
) -> np.ndarray:
    """Dense L for inspection and brute-force tests (scores assumed finite)."""
    e = normalise_rows(embeddings)
    s = 0.5 * (1.0 + e @ e.T)
    np.fill_diagonal(s, 1.0 + jitter)
    q = np.exp(quality_alpha(float(diversity)) * minmax(np.asarray(scores, dtype=np.float64)))
    return q[:, None] * s * q[None, :]


def dpp(
    scores: np.ndarray,
    embeddings: np.ndarray,
    payloads: list[dict] | None,
    k: int,
    diversity: float,
    *,
    jitter: float = 1e-6,
    eps: float = 1e-9,
) -> list[int]:
    """Indices of min(k, N) candidates in display order. O(N k d + N k^2).

    Items whose conditional variance d^2(S) falls to ``eps`` are numerically in
    the span of the selection; they are never picked by the DPP, and if nothing
    else is left the remaining slots are filled in ranker order.
    """
    p = prepare(scores, embeddings, payloads, k, diversity)
    if p.k == 0:
        return []
    nf = p.n_finite
    kk = min(p.k, nf)
    if p.diversity == 0.0 or kk == 0:
        return p.identity()
    emb = p.embeddings[:nf]
    bias = 2.0 * quality_alpha(p.diversity) * minmax(p.scores[:nf])
    d2 = np.full(nf, 1.0 + jitter)
    chol = np.zeros((kk, nf))  # row t: t-th column of the incremental Cholesky factor
    taken = np.zeros(nf, dtype=bool)
    selected: list[int] = []
    for t in range(kk):
        with np.errstate(divide="ignore"):
            obj = bias + np.log(np.maximum(d2, 0.0))
        obj[taken | (d2 <= eps)] = -np.inf
        j = int(np.argmax(obj))  # first max: ties go to the better-ranked item
        if not np.isfinite(obj[j]):
            break
        selected.append(j)
        taken[j] = True
        if t == kk - 1:
            break
        # Row j of S built on the fly: O(N d) per step, no N x N Gram matrix.
        s_row = 0.5 * (1.0 + emb @ emb[j])
        s_row[j] = 1.0 + jitter
        e = (s_row - chol[:t, j] @ chol[:t]) / np.sqrt(d2[j])
        chol[t] = e
        d2 -= e * e
    return p.to_original(fill(selected, len(p.scores), p.k))
