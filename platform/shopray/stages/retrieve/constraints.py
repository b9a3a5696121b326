"""What the shopper stated, and how far each product is from it.

The parsed intent's brand, category, color and price bounds are the stated
constraints (a field the client's hard filters fix is not one: it always
holds). A product's tier is how many of them, given up in ``relax_order``
(least important first), it takes before the product fits: tier 0 keeps them
all. The retriever relaxes one constraint at a time while exact matches run
short, and the ranker and the diversifier order within a tier, never across
one, so nothing that breaks a stated constraint shows above a product that
keeps them all. Within a tier that gives up the price, nearer misses come
first ("under 90": $92 before $169), in bands of ``price_band`` of the bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from shopray.domain import Constraint, Intent
from shopray.stages.retrieve.index import FilterSpec

# A price miss past this many bands is as far as any.
MAX_BANDS = 100


def _price_miss(lo: float | None, hi: float | None, price: float | None) -> float:
    """How far outside [lo, hi] a price is, relative to the bound it breaks; inf without a price."""
    if price is None:
        return math.inf
    if hi is not None and price > hi:
        return (price - hi) / max(hi, 1e-9)
    if lo is not None and price < lo:
        return (lo - price) / max(lo, 1e-9)
    return 0.0


@dataclass(frozen=True)
class Constraints:
    """The filter every product must pass (``hard``), the one an exact match passes (``exact``), and the stated
    constraints between them in the order they are given up."""

    hard: FilterSpec
    exact: FilterSpec
    stated: tuple[Constraint, ...]
    price_band: float = 0.1

    @classmethod
    def of(cls, intent: Intent, hard: FilterSpec, relax_order: tuple[Constraint, ...] | list[Constraint], price_band: float) -> "Constraints":
        exact = replace(
            hard,
            brand=hard.brand or intent.brand,
            category=hard.category or intent.category,
            color=hard.color or intent.color,
            price_min=hard.price_min if hard.price_min is not None else intent.price_min,
            price_max=hard.price_max if hard.price_max is not None else intent.price_max,
        )
        stated = tuple(c for c in relax_order if cls._fields(exact, c) != cls._fields(hard, c))
        return cls(hard=hard, exact=exact, stated=stated, price_band=price_band)

    @staticmethod
    def _fields(spec: FilterSpec, name: Constraint) -> tuple:
        return (spec.price_min, spec.price_max) if name == "price" else (getattr(spec, name),)

    def relaxed(self, n: int) -> FilterSpec:
        """The exact filter with the first ``n`` stated constraints given up (back to the hard filter's value)."""
        spec = self.exact
        for name in self.stated[:n]:
            spec = replace(spec, price_min=self.hard.price_min, price_max=self.hard.price_max) if name == "price" else replace(spec, **{name: getattr(self.hard, name)})
        return spec

    def meets(self, payload: dict) -> list[Constraint]:
        """The stated constraints a product keeps."""
        return [c for c in self.stated if self._keeps(c, payload)]

    def _keeps(self, name: Constraint, payload: dict) -> bool:
        if name == "price":
            return _price_miss(self.exact.price_min, self.exact.price_max, payload.get("price")) == 0.0
        return payload.get(name) == getattr(self.exact, name)

    def tier(self, met: list[Constraint]) -> int:
        """How many stated constraints, in relax order, must be given up before a product keeping ``met`` fits."""
        i = len(self.stated)
        while i > 0 and self.stated[i - 1] in met:
            i -= 1
        return i

    def groups(self, payloads: list[dict]) -> tuple[np.ndarray, list[list[Constraint]]]:
        """Per product: its group (ascending: the tier, then the price-miss band inside a tier that gives up the
        price; order never crosses a group) and the stated constraints it keeps."""
        met = [self.meets(p) for p in payloads]
        keys = []
        for payload, m in zip(payloads, met):
            band = 0
            if "price" in self.stated and "price" not in m:
                miss = _price_miss(self.exact.price_min, self.exact.price_max, payload.get("price"))
                band = MAX_BANDS if math.isinf(miss) else min(MAX_BANDS, 1 + int(miss / self.price_band))
            keys.append(self.tier(m) * (MAX_BANDS + 1) + band)
        return np.asarray(keys, dtype=np.int64), met
