"""Stage 4: choose the k shown products so they do not collapse onto one brand or category."""

from __future__ import annotations

import math
from typing import ClassVar

from shopray.config import AppConfig, DiversifierConfig
from shopray.diversity import diversify
from shopray.pipeline import SearchContext, Stage


class Diversifier(Stage):
    name: ClassVar[str] = "Diversifier"
    timing_key: ClassVar[str] = "diversify"
    consumes: ClassVar[frozenset[str]] = frozenset({"request", "candidates"})
    produces: ClassVar[frozenset[str]] = frozenset({"candidates"})

    def __init__(self, config: DiversifierConfig):
        self.config = config

    @classmethod
    def from_config(cls, config: AppConfig) -> "Diversifier":
        return cls(config.diversifier)

    def run(self, ctx: SearchContext) -> SearchContext:
        assert ctx.candidates is not None
        req = ctx.request
        diversity = self.config.default_diversity if req.diversity is None else req.diversity
        if math.isnan(diversity):
            raise ValueError("diversity must be a number in [0, 1]")
        c = ctx.candidates
        order = diversify(self.config.method, c.scores, c.embeddings, c.payloads, req.k, diversity)
        ctx.candidates = c.take(order)
        return ctx
