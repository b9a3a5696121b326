"""Facet counts of a query's result set: brand, category, color and price band.

The result set of a hybrid query is its fused candidates (``candidates`` of
them, within the filters), not every product a filter matches, so the counts
come from the candidates' payloads rather than Qdrant's facet API, which
counts a filter's matches; counting 100 payloads also costs no round trip.
Price bands adapt to what the query found: quantiles of its prices, rounded to
numbers a shopper reads (1, 2, 2.5, 5 times a power of ten), so a shop of
furniture and a shop of socks both get useful bands without configuration.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from shopray.api import FacetCount, Facets, PriceBand

FIELDS = ("brand", "category", "color")


def nice(x: float) -> float:
    """The largest of 1, 2, 2.5 and 5 times a power of ten that is at most ``x`` (0 for x <= 0)."""
    if x <= 0:
        return 0.0
    power = 10 ** math.floor(math.log10(x))
    return max(m * power for m in (1, 2, 2.5, 5) if m * power <= x * (1 + 1e-9))


def price_bands(prices: list[float], bands: int) -> list[PriceBand]:
    """Up to ``bands`` contiguous bands over ``prices``, split at rounded quantiles; the first is open below, the last above."""
    if not prices:
        return []
    cuts = sorted({nice(q) for q in np.quantile(prices, np.linspace(0, 1, bands + 1)[1:-1])} - {0.0})
    edges: list[float | None] = [None, *cuts, None]
    out = []
    for lo, hi in zip(edges, edges[1:]):
        # A band includes its lower edge and stops below its upper one; as a filter, price_max is inclusive, so the
        # counts are of the half-open band and filtering on it may add products priced exactly at the upper edge.
        n = sum((lo is None or p >= lo) and (hi is None or p < hi) for p in prices)
        if n:
            out.append(PriceBand(price_min=lo, price_max=hi, count=n))
    return out


def count_facets(payloads: list[dict], limit: int, bands: int) -> Facets:
    """Counts of each field's values (the ``limit`` commonest, ties by value) and the price bands, over ``payloads``."""
    counts = {}
    for f in FIELDS:
        c = Counter(p[f] for p in payloads if p.get(f))
        counts[f] = [FacetCount(value=v, count=n) for v, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]
    prices = [float(p["price"]) for p in payloads if p.get("price") is not None]
    return Facets(**counts, price=price_bands(prices, bands))
