"""Stage 3: re-score the retriever's top N.

Today the scorer is the MiniLM bi-encoder: cosine between the query and the
product vectors carried from the index, plus similarity to the session's
clicked products. The top N are re-ordered; the rest keep retriever order below.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from shopray.config import AppConfig, RankerConfig
from shopray.embedding import Embedder, shared_embedder
from shopray.models import CandidateSet
from shopray.pipeline import SearchContext, Stage


class BiEncoderScorer:
    def __init__(self, embedder: Embedder):
        self.embedder = embedder
        self.version = f"biencoder:{embedder.model_path.rstrip('/').split('/')[-2]}"

    def score(self, query: str, candidates: CandidateSet) -> np.ndarray:
        q = self.embedder.encode([query])[0]
        return candidates.embeddings @ q


class Ranker(Stage):
    name: ClassVar[str] = "Ranker"
    timing_key: ClassVar[str] = "rank"
    consumes: ClassVar[frozenset[str]] = frozenset({"request", "intent", "candidates"})
    produces: ClassVar[frozenset[str]] = frozenset({"candidates"})

    def __init__(self, scorer: BiEncoderScorer, config: RankerConfig):
        self.scorer, self.config = scorer, config

    @classmethod
    def from_config(cls, config: AppConfig) -> "Ranker":
        return cls(BiEncoderScorer(shared_embedder(config.embedding)), config.ranker)

    def rank(self, query: str, candidates: CandidateSet) -> CandidateSet:
        n = min(self.config.top_n, len(candidates))
        if n == 0:
            return candidates
        head = candidates.take(range(n))
        scores = self.scorer.score(query, head)
        if candidates.session_vector is not None and self.config.session_weight > 0:
            scores = scores + self.config.session_weight * (head.embeddings @ candidates.session_vector)
        order = np.argsort(-scores, kind="stable")
        ranked = head.take(order, scores=scores[order])
        if n == len(candidates):
            return ranked
        # Unscored tail stays below every scored item, in retriever order.
        tail = candidates.take(range(n, len(candidates)))
        tail_scores = float(scores.min()) - 1.0 - np.arange(len(tail)) * 1e-6
        return _concat(ranked, tail.take(range(len(tail)), scores=tail_scores))

    def run(self, ctx: SearchContext) -> SearchContext:
        assert ctx.candidates is not None and ctx.intent is not None
        ctx.candidates = self.rank(ctx.intent.keywords or ctx.request.query, ctx.candidates)
        ctx.versions["ranker"] = self.scorer.version
        return ctx


def _concat(a: CandidateSet, b: CandidateSet) -> CandidateSet:
    return CandidateSet(
        ids=a.ids + b.ids,
        payloads=a.payloads + b.payloads,
        scores=np.concatenate([a.scores, b.scores]),
        embeddings=np.concatenate([a.embeddings, b.embeddings]),
        session_vector=a.session_vector,
        notes=a.notes,
    )
