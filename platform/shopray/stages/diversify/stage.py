"""Stage 4, diversify: choose the k shown products so they do not collapse onto one brand or category."""

from __future__ import annotations

import math

import numpy as np

from shopray.config import AppConfig, DiversifierConfig
from shopray.graph import SearchContext
from shopray.stages.diversify.methods import diversify


class Diversifier:
    def __init__(self, config: DiversifierConfig):
        self.config = config

    @classmethod
    def from_config(cls, config: AppConfig) -> "Diversifier":
        return cls(config.diversifier)

    def ready(self) -> bool:
        return True

    def run(self, ctx: SearchContext) -> SearchContext:
        assert ctx.candidates is not None
        req = ctx.request
        diversity = self.config.default_diversity if req.diversity is None else req.diversity
        if math.isnan(diversity):
            raise ValueError("diversity must be a number in [0, 1]")
        c, order = ctx.candidates, []
        groups = c.groups()
        for group in np.unique(groups):  # each constraint group in turn: diversity never lifts a near miss above an exact match
            if len(order) >= req.k:
                break
            idx = np.flatnonzero(groups == group)
            chosen = diversify(self.config.method, c.scores[idx], c.embeddings[idx], [c.payloads[i] for i in idx], req.k - len(order), diversity)
            order += [int(idx[i]) for i in chosen]
        ctx.candidates = c.take(order)
        for shown, (e, before) in enumerate(zip(ctx.candidates.explanations or (), order), 1):
            e.update(rank_before_diversity=before + 1, rank=shown)
        return ctx
