"""Hard caps: at most m items per brand and/or per category in the top k.

m = max(1, round(k * (1 - diversity))) unless given explicitly, so diversity=1
means one item per brand/category; diversity=0 switches caps off, explicit
ones included. Items lacking a field are grouped by
embedding near-duplication (see ``group_ids``).

Guarantee: the caps hold for the whole top k whenever some k-subset of the
candidates satisfies them. A cap that no k items can meet even alone (a
category cap on a query filtered to one category) is dropped and the other
still holds. Otherwise as many items as possible satisfy them, displayed
first, and the remaining slots are filled from the leftovers in ranker order
(a short list beats an empty slot).

One capped field is a partition matroid, so plain score-order greedy is
already optimal. Two fields (brand AND category) intersect two matroids, where
greedy can get stuck short of k although a feasible set exists; only then do we
redo the greedy with a max-flow look-ahead ("accept the next item only if the
rest can still be completed"), which keeps the result the lexicographically
best feasible set in ranker order. More than two fields: plain greedy only.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from shopray.stages.diversify._common import fill, group_ids, prepare


def cap_for(k: int, diversity: float) -> int:
    return max(1, int(np.floor(k * (1.0 - diversity) + 0.5)))


def _or(value, default):
    return default if value is None else int(value)


def caps(
    scores: np.ndarray,
    embeddings: np.ndarray,
    payloads: list[dict] | None,
    k: int,
    diversity: float,
    *,
    fields: tuple[str, ...] = ("brand", "category"),
    max_per_brand: int | None = None,
    max_per_category: int | None = None,
    sim_threshold: float = 0.9,
) -> list[int]:
    """Indices of min(k, N) candidates in display order."""
    p = prepare(scores, embeddings, payloads, k, diversity)
    if p.k == 0:
        return []
    if p.diversity == 0.0 or not fields:
        return p.identity()
    explicit = {"brand": max_per_brand, "category": max_per_category}
    limits = [_or(explicit.get(f), cap_for(p.k, p.diversity)) for f in fields]
    if any(m < 1 for m in limits):
        raise ValueError(f"caps must be >= 1, got {limits}")
    # Non-finite scores only ever fill (see _common), so caps see finite ones.
    nf = p.n_finite
    if nf == 0:
        return p.identity()
    groups = [group_ids(p.payloads[:nf], p.embeddings[:nf], f, sim_threshold) for f in fields]
    groups, limits = _satisfiable(groups, limits, min(p.k, nf))
    chosen = capped_greedy(groups, limits, min(p.k, nf))
    return p.to_original(fill(chosen, len(p.scores), p.k))


def _satisfiable(groups: list[np.ndarray], limits: list[int], k: int) -> tuple[list[np.ndarray], list[int]]:
    """Drop a cap no k items can meet even on its own, while another cap is left to hold.

    A query filtered to one category cannot have a category cap; without this
    it would switch the brand cap off too (the list would only ever be filled).
    """
    keep = [i for i, (g, m) in enumerate(zip(groups, limits)) if np.minimum(np.bincount(g), m).sum() >= k]
    if not keep or len(keep) == len(groups):
        return groups, limits
    return [groups[i] for i in keep], [limits[i] for i in keep]


def capped_greedy(groups: list[np.ndarray], limits: list[int], k: int) -> list[int]:
    """Largest (up to k) cap-respecting subset, best-ranked first."""
    n = len(groups[0])
    chosen = _greedy(groups, limits, k, n)
    if len(chosen) == k or len(groups) != 2:
        return chosen
    used0 = [np.zeros(g.max() + 1, dtype=np.int64) for g in groups]
    target = min(k, _max_flow(groups, limits, used0, np.arange(n), k))
    if len(chosen) >= target:
        return chosen
    used = [u.copy() for u in used0]
    chosen = []
    for i in range(n):
        if any(u[g[i]] >= m for u, g, m in zip(used, groups, limits)):
            continue
        for u, g in zip(used, groups):
            u[g[i]] += 1
        need = target - len(chosen) - 1
        if need == 0 or _max_flow(groups, limits, used, np.arange(i + 1, n), need) >= need:
            chosen.append(i)
            if len(chosen) == target:
                break
        else:
            for u, g in zip(used, groups):
                u[g[i]] -= 1
    return chosen


def _greedy(groups, limits, k, n) -> list[int]:
    used = [dict() for _ in groups]
    chosen = []
    for i in range(n):
        if all(u.get(g[i], 0) < m for u, g, m in zip(used, groups, limits)):
            for u, g in zip(used, groups):
                u[g[i]] = u.get(g[i], 0) + 1
            chosen.append(i)
            if len(chosen) == k:
                break
    return chosen


def _max_flow(groups, limits, used, items: np.ndarray, need: int) -> int:
    """How many of ``items`` can still be added under both caps (capped at need).

    Bipartite b-matching as a flow: source -> brand group (remaining cap) ->
    category group (one unit per item) -> sink (remaining cap). Edmonds-Karp
    with at most ``need`` augmentations; graphs are tiny (<= 2N + 2 nodes).
    """
    ga, gb = groups
    res: dict = {}

    def add(u, v, c):
        res.setdefault(u, {}).setdefault(v, 0)
        res.setdefault(v, {}).setdefault(u, 0)
        res[u][v] += c

    for i in items:
        a, b = ("a", int(ga[i])), ("b", int(gb[i]))
        ra, rb = limits[0] - used[0][a[1]], limits[1] - used[1][b[1]]
        if ra <= 0 or rb <= 0:
            continue
        if a not in res.get("s", {}):
            add("s", a, ra)
        if b not in res or "t" not in res[b]:
            add(b, "t", rb)
        add(a, b, 1)
    flow = 0
    while flow < need:
        parent = {"s": None}
        queue = deque(["s"])
        while queue and "t" not in parent:
            u = queue.popleft()
            for v, c in res.get(u, {}).items():
                if c > 0 and v not in parent:
                    parent[v] = u
                    queue.append(v)
        if "t" not in parent:
            break
        v = "t"
        while parent[v] is not None:  # one unit per pass: flow <= need <= k passes
            u = parent[v]
            res[u][v] -= 1
            res[v][u] += 1
            v = u
        flow += 1
    return flow
