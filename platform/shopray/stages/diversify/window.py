"""Sliding window: no two items of one brand within any w consecutive slots.

w = round(diversity * k) unless given, so diversity=1 makes the whole top k
brand-distinct and w <= 1 means no constraint. Items lacking the field are
grouped by embedding near-duplication (see ``group_ids``).

Plain score-order greedy can paint itself into a corner (w=2, brands
B, C, A, A: it places B C A and then only A is left, although B A C A works).
When that happens we redo the greedy with a look-ahead: at each slot take the
best-ranked allowed item whose brand still leaves a completable tail, checked
by simulating "place the eligible brand with most items left". The look-ahead
always finds a candidate once the start state passes it, so the constraint
holds whenever that check says feasible (checked against brute force in the
tests). Otherwise each slot takes the best allowed item, or, if none, the item
whose brand was shown longest ago (least violation).
"""

from __future__ import annotations

import numpy as np

from shopray.stages.diversify._common import fill, group_ids, prepare


def window_for(k: int, diversity: float) -> int:
    return int(np.floor(k * diversity + 0.5))


def window(
    scores: np.ndarray,
    embeddings: np.ndarray,
    payloads: list[dict] | None,
    k: int,
    diversity: float,
    *,
    w: int | None = None,
    field: str = "brand",
    sim_threshold: float = 0.9,
) -> list[int]:
    """Indices of min(k, N) candidates in display order."""
    p = prepare(scores, embeddings, payloads, k, diversity)
    if p.k == 0:
        return []
    w = window_for(p.k, p.diversity) if w is None else int(w)
    if p.diversity == 0.0 or w <= 1:
        return p.identity()
    # Non-finite scores only ever fill (see _common): arrange the finite ones.
    nf = p.n_finite
    if nf == 0:
        return p.identity()
    groups = group_ids(p.payloads[:nf], p.embeddings[:nf], field, sim_threshold)
    return p.to_original(fill(windowed(groups, min(p.k, nf), w), len(p.scores), p.k))


def windowed(groups: np.ndarray, k: int, w: int) -> list[int]:
    """Order of k items (indices into base order) respecting window w if possible."""
    plain = _place(groups, k, w, lookahead=False)
    if plain is not None:
        return plain
    return _place(groups, k, w, lookahead=True)


def _place(groups: np.ndarray, k: int, w: int, lookahead: bool) -> list[int] | None:
    n_groups = int(groups.max()) + 1
    last = np.full(n_groups, -(10**9), dtype=np.int64)
    avail = np.bincount(groups, minlength=n_groups)
    free = np.ones(len(groups), dtype=bool)
    check = lookahead and _completable(avail, last, 0, k, w)
    out: list[int] = []
    for pos in range(k):
        cand = np.flatnonzero(free & (last[groups] <= pos - w))
        pick = _first_completable(cand, groups, avail, last, pos, k, w) if check else None
        if pick is None:
            if cand.size:
                pick = int(cand[0])
            elif not lookahead:
                return None  # stuck: the caller retries with look-ahead
            else:
                rest = np.flatnonzero(free)
                pick = int(rest[np.argmin(last[groups[rest]])])  # first min = best ranked
        avail[groups[pick]] -= 1
        last[groups[pick]] = pos
        free[pick] = False
        out.append(pick)
    return out


def _first_completable(cand, groups, avail, last, pos, k, w) -> int | None:
    seen: set[int] = set()
    for i in cand:
        g = int(groups[i])
        if g in seen:  # same brand, same tail: one check per brand
            continue
        seen.add(g)
        a, l = avail.copy(), last.copy()
        a[g] -= 1
        l[g] = pos
        if _completable(a, l, pos + 1, k - pos - 1, w):
            return int(i)
    return None


def _completable(avail: np.ndarray, last: np.ndarray, pos: int, r: int, w: int) -> bool:
    """Can r more slots from ``pos`` be filled without breaking the window?"""
    avail, last = avail.copy(), last.copy()
    for t in range(pos, pos + r):
        ok = (avail > 0) & (last <= t - w)
        if not ok.any():
            return False
        # Most items left first: scarce brands are kept as spacers for later.
        g = int(np.argmax(np.where(ok, avail, -1)))
        avail[g] -= 1
        last[g] = t
    return True
