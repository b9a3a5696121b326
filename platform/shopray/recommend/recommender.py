"""The four recommendation modes over one index reader and one shopper-behaviour view, diversified like search.

- ``similar``: Qdrant's recommend query from the product's vector.
- ``for_you``: the same query from the session's most recent products (``history``), less what it bought.
- ``bought_together``: sessions that put the product (or the session's recent ones) in a cart or bought it, and
  what else they did; a product nobody bought with anything gets ``similar``, saying so.
- ``popular``: decayed popularity; the answer for a session without events.
Behaviour-chosen products are filtered in hand with the index's own filter semantics (``FilterSpec.admits``).
"""

from __future__ import annotations

import time
import uuid
from typing import Protocol, Sequence

import numpy as np

from shopray.api import RecommendRequest, RecommendResponse, SearchResult
from shopray.config import DiversifierConfig, RecommendConfig
from shopray.stages.diversify.methods import diversify
from shopray.stages.retrieve.index import FilterSpec, Hit, IndexReader

QDRANT, COOCCURRENCE, POPULARITY = "qdrant-recommend", "co-occurrence", "popularity"


class Behaviour(Protocol):
    """What shoppers did, as the events package computes it."""

    def recent(self, session_id: str, k: int = 20) -> list[str]: ...

    def purchased(self, session_id: str) -> set[str]: ...

    def bought_together(self, product_ids: Sequence[str], k: int, exclude: Sequence[str] = ()) -> list[tuple[str, float]]: ...

    def popular(self, k: int, exclude: Sequence[str] = ()) -> list[tuple[str, float]]: ...


class Recommender:
    def __init__(self, behaviour: Behaviour, config: RecommendConfig, diversifier: DiversifierConfig, out_of_stock: str):
        self.behaviour, self.config, self.diversifier, self.out_of_stock = behaviour, config, diversifier, out_of_stock

    def recommend(self, req: RecommendRequest, reader: IndexReader) -> RecommendResponse:
        start = time.perf_counter()
        bought = sorted(self.behaviour.purchased(req.session_id)) if req.session_id else []
        stock = req.out_of_stock or ("show" if self.out_of_stock == "show" else "hide")
        filters = FilterSpec(**(req.filters.model_dump() if req.filters else {}), in_stock=True if stock == "hide" else None, exclude=tuple(bought))
        n = max(self.config.candidates, req.k)
        mode, fallback = req.mode, None
        recent = self.behaviour.recent(req.session_id, self.config.history) if req.session_id else []
        seeds = [req.product_id] if req.product_id else recent
        if mode == "for_you" and not recent:
            mode, fallback = "popular", "no_history"
        hits: list[Hit] = []
        if mode == "bought_together":
            hits = self._chosen(reader, self.behaviour.bought_together(seeds, 4 * n, exclude=[*seeds, *bought]), filters)
            if not hits:
                mode, fallback = "similar", "no_co_occurrence"
        if mode in ("similar", "for_you"):
            hits = reader.recommend(seeds if mode == "similar" else recent, [], n, filters)
        if mode == "popular":
            hits = self._chosen(reader, self.behaviour.popular(4 * n, exclude=bought), filters)
        model = {"popular": POPULARITY, "bought_together": COOCCURRENCE}.get(mode, QDRANT)
        return RecommendResponse(
            request_id=uuid.uuid4().hex,
            mode=req.mode,
            model=model,
            fallback=fallback,
            based_on=[] if mode == "popular" else (seeds if mode != "for_you" else recent),
            results=self._diversified(hits[:n], req),
            timings_ms={"total": round((time.perf_counter() - start) * 1000, 3)},
            versions={"index": reader.label},
        )

    @staticmethod
    def _chosen(reader: IndexReader, scored: list[tuple[str, float]], filters: FilterSpec) -> list[Hit]:
        """Products behaviour chose, in its order and with its scores, that exist and pass the filters."""
        found = {h.product_id: h for h in reader.retrieve([p for p, _ in scored])}
        return [Hit(p, s, found[p].payload, found[p].vector) for p, s in scored if p in found and filters.admits(found[p].payload)]

    def _diversified(self, hits: list[Hit], req: RecommendRequest) -> list[SearchResult]:
        if not hits:
            return []
        diversity = self.config.default_diversity if req.diversity is None else req.diversity
        scores = np.array([h.score for h in hits], dtype=float)
        chosen = diversify(self.diversifier.method, scores, np.stack([h.vector for h in hits]), [h.payload for h in hits], req.k, diversity)
        return [SearchResult(**{**hits[i].payload, "product_id": hits[i].product_id, "score": round(float(hits[i].score), 6)})
                for i in chosen]
