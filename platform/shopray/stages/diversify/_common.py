"""Input handling shared by every diversifier.

Every method funnels its arguments through :func:`prepare`, so bad inputs get
one behaviour everywhere: k is clamped to [0, N], diversity is clipped to
[0, 1] (NaN is a caller bug and raises), and non-finite scores count as the
lowest possible score. The "base order" is the input order with non-finite
scores moved to the end (stable), i.e. the ranker's order; diversity=0 returns
its first k entries by contract rather than by numerical coincidence. Items
with non-finite scores are broken data: every method diversifies the finite
ones only and uses the rest, in input order, solely to fill remaining slots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Prepared:
    """Inputs permuted into base order; local index i is original ``order[i]``."""

    scores: np.ndarray  # (N,) float64, non-finite replaced by -inf
    embeddings: np.ndarray  # (N, d) float64, rows re-normalised (zero rows stay zero)
    payloads: list[dict]
    k: int
    diversity: float
    order: np.ndarray  # (N,) original indices, finite scores first
    n_finite: int

    def to_original(self, local: list[int] | np.ndarray) -> list[int]:
        return [int(i) for i in self.order[np.asarray(local, dtype=int)]]

    def identity(self) -> list[int]:
        return self.to_original(np.arange(self.k))


def clip_diversity(diversity: float) -> float:
    d = float(diversity)
    if math.isnan(d):
        raise ValueError("diversity is NaN")
    return min(1.0, max(0.0, d))


def normalise_rows(x: np.ndarray) -> np.ndarray:
    # Embeddings should already be unit rows, but a corrupt or zero vector must
    # not turn a similarity into NaN: bad entries become 0 and zero rows stay
    # zero (cosine 0). Fast path first: this runs on every request.
    x = np.asarray(x, dtype=np.float64)
    sq = np.einsum("ij,ij->i", x, x)
    if not np.isfinite(sq).all():  # a NaN/inf anywhere in a row shows in its norm
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        sq = np.einsum("ij,ij->i", x, x)
    if np.all(np.abs(sq - 1.0) < 1e-6):
        return x
    with np.errstate(divide="ignore", over="ignore"):
        scale = np.where(sq > 0, 1.0 / np.sqrt(sq), 0.0)
    return x * scale[:, None]


def prepare(scores, embeddings, payloads, k: int, diversity: float) -> Prepared:
    div = clip_diversity(diversity)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    n = s.size
    emb = np.asarray(embeddings, dtype=np.float64)
    if n == 0:
        emb = emb.reshape(0, emb.shape[-1] if emb.ndim == 2 else 0)
    if emb.ndim != 2 or emb.shape[0] != n:
        raise ValueError(f"embeddings shape {emb.shape} does not match {n} scores")
    pl = [{}] * n if payloads is None else list(payloads)
    if len(pl) != n:
        raise ValueError(f"{len(pl)} payloads for {n} scores")
    finite = np.isfinite(s)
    order = np.concatenate([np.flatnonzero(finite), np.flatnonzero(~finite)])
    s = np.where(finite, s, -np.inf)[order]
    if not finite.all():  # skip the (N, d) copy in the common all-finite case
        emb = emb[order]
    return Prepared(
        scores=s,
        embeddings=normalise_rows(emb),
        payloads=[pl[i] or {} for i in order],
        k=min(max(int(k), 0), n),
        diversity=div,
        order=order,
        n_finite=int(finite.sum()),
    )


def minmax(x: np.ndarray) -> np.ndarray:
    """Scores to [0, 1]; a constant vector maps to zeros (nothing to prefer)."""
    if x.size == 0:
        return x.astype(np.float64)
    lo, hi = float(x.min()), float(x.max())
    if hi - lo <= 0:
        return np.zeros_like(x, dtype=np.float64)
    return (x - lo) / (hi - lo)


def fill(selected: list[int], n: int, k: int) -> list[int]:
    """Top up ``selected`` to k with unused indices in base order."""
    if len(selected) >= k:
        return selected[:k]
    used = np.zeros(n, dtype=bool)
    used[selected] = True
    rest = np.flatnonzero(~used)[: k - len(selected)]
    return selected + [int(i) for i in rest]


def group_ids(
    payloads: list[dict], embeddings: np.ndarray, field: str, sim_threshold: float
) -> np.ndarray:
    """One integer group per item for ``field`` (items in base order).

    Items carrying the field group by its case-folded value. Items lacking it
    (the Home Depot catalog has titles only) join the group of the first
    earlier item they near-duplicate (cosine >= sim_threshold), else open a
    new group; "earlier" keeps the assignment deterministic and lets a
    brandless copy of a branded product count against that brand.
    """
    n = len(payloads)
    ids = np.empty(n, dtype=np.int64)
    names: dict[str, int] = {}
    missing = []
    for i, p in enumerate(payloads):
        v = p.get(field)
        key = str(v).strip().casefold() if v is not None else ""
        if key:
            ids[i] = names.setdefault(key, len(names))
        else:
            missing.append(i)
    if not missing:
        return ids
    next_id = len(names)
    sims = embeddings[missing] @ embeddings.T  # one matmul instead of N small ones
    for row, i in enumerate(missing):
        dup = np.flatnonzero(sims[row, :i] >= sim_threshold)
        if dup.size:
            ids[i] = ids[dup[0]]
        else:
            ids[i] = next_id
            next_id += 1
    return ids
