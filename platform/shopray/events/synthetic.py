"""Synthetic shoppers for a catalog: a history of events, and judged searches by sessions with a taste.

The behaviour features can only be measured where behaviour says something about relevance, and the demo has no
real shoppers. This is the story the simulation tells, stated because the effect it measures follows from it:

- every product has an appeal that shoppers' choices follow: the catalog's ``popularity`` where it has one (the
  demo's generator sets it), else a lognormal draw;
- background traffic: ``events`` events on products drawn in proportion to appeal, 70% views, 20% clicks, 7%
  add-to-carts, 3% purchases, spread over the last ``days`` days;
- a judged shopper has a taste, a brand within a leaf category that holds at least ``min_leaf`` products (and at
  least three of the brand). It clicks ``clicks`` products of that brand and leaf, drawn by appeal, and then
  searches for the leaf's name;
- grades: 0 outside the leaf; in it 1, plus 1 for the shopper's brand, plus 1 for an appeal in the leaf's top
  quarter.

With ``signal=False`` the grades come from another taste and another appeal than the ones that drew the clicks
and the traffic: the behaviour features then say nothing about relevance, and a run measures what they cost when
they are wrong.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from shopray.domain import Product
from shopray.events.model import Event, EventType

TYPES: tuple[tuple[EventType, float], ...] = (("view", 0.70), ("click", 0.20), ("add_to_cart", 0.07), ("purchase", 0.03))


@dataclass(frozen=True)
class JudgedSession:
    session_id: str
    query: str
    clicked: list[str]
    gains: dict[str, float]


@dataclass(frozen=True)
class SyntheticShoppers:
    events: list[Event]
    sessions: list[JudgedSession]


def _appeal(products: list[Product], rng: random.Random) -> dict[str, float]:
    return {p.product_id: p.popularity if p.popularity else rng.lognormvariate(0.0, 1.1) for p in products}


def synthetic_shoppers(products: list[Product], sessions: int, seed: int, events: int = 50_000, days: float = 14.0,
                       clicks: int = 3, min_leaf: int = 8, signal: bool = True, now: float | None = None) -> SyntheticShoppers:
    """Background events and ``sessions`` judged sessions over ``products``, their clicks among the events; event
    times end at ``now`` (unix seconds, default the present)."""
    rng = random.Random(seed)
    now = time.time() if now is None else now
    appeal = _appeal(products, rng)
    ids = [p.product_id for p in products]
    weights = [appeal[p] for p in ids]
    kinds, shares = zip(*TYPES)
    history = [
        Event(session_id=f"bg{rng.randrange(events // 4 + 1)}", type=kind, product_id=pid, ts=now - rng.random() * days * 86400)
        for pid, kind in zip(rng.choices(ids, weights, k=events), rng.choices(kinds, shares, k=events))
    ]
    history.sort(key=lambda e: e.ts or 0.0)

    leaves: dict[str, list[Product]] = {}
    for p in products:
        if p.leaf_category and p.brand:
            leaves.setdefault(p.leaf_category, []).append(p)
    tastes = [(leaf, brand) for leaf, members in sorted(leaves.items()) if len(members) >= min_leaf
              for brand in sorted({p.brand for p in members}) if sum(p.brand == brand for p in members) >= 3]
    if not tastes:
        raise ValueError(f"synthetic sessions need a leaf category with at least {min_leaf} products and a brand with 3 of them")
    graded_appeal = appeal if signal else _appeal([p.model_copy(update={"popularity": None}) for p in products], rng)

    judged: list[JudgedSession] = []
    for i in range(sessions):
        leaf, brand = rng.choice(tastes)
        members = leaves[leaf]
        liked = [p for p in members if p.brand == brand]
        clicked = []
        for p in rng.choices(liked, [appeal[q.product_id] for q in liked], k=clicks * 3):
            if p.product_id not in clicked and len(clicked) < clicks:
                clicked.append(p.product_id)
        graded_brand = brand if signal else rng.choice(sorted({p.brand for p in members if p.brand}))
        top = sorted((graded_appeal[p.product_id] for p in members), reverse=True)[max(0, len(members) // 4 - 1)]
        gains = {p.product_id: 1.0 + (p.brand == graded_brand) + (graded_appeal[p.product_id] >= top) for p in members}
        session = JudgedSession(f"judged{seed}-{i}", leaf.lower(), clicked, gains)
        judged.append(session)
        history += [Event(session_id=session.session_id, type="click", product_id=pid, ts=now - (clicks - j) * 60.0) for j, pid in enumerate(clicked)]
    return SyntheticShoppers(history, judged)
