"""What the ranker scores with: the MiniLM bi-encoder, or the fine-tuned cross-encoder the config names.

``ranker.kind`` picks: biencoder (cosine between the query and the product
vectors carried from the index; needs no training), crossencoder (the model
``ranker.model`` names; start-up fails without one) or auto (the cross-encoder
when the model resolves, else the bi-encoder). A registry alias is followed
(``shopray.follow``): a promoted model is loaded in full, then swapped in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from shopray.config import AppConfig, RankerConfig
from shopray.domain import CandidateSet
from shopray.embedding import Embedder, shared_embedder
from shopray.follow import Follower
from shopray.registry import ModelNotFound, resolve_model
from shopray.stages.rank.cross_encoder import CrossEncoderScorer

BIENCODER = "biencoder"


class Scorer(Protocol):
    version: str

    def score_many(self, requests: Sequence[tuple[str, CandidateSet]]) -> list[np.ndarray]:
        """Several requests' (query, candidates) at once; one score array each."""


class BiEncoderScorer:
    def __init__(self, embedder: Embedder):
        self.embedder = embedder
        self.version = f"biencoder:{embedder.model_path.rstrip('/').split('/')[-2]}"

    def score(self, query: str, candidates: CandidateSet) -> np.ndarray:
        return self.score_many([(query, candidates)])[0]

    def score_many(self, requests: Sequence[tuple[str, CandidateSet]]) -> list[np.ndarray]:
        vectors = self.embedder.encode([query for query, _ in requests])
        return [candidates.embeddings @ v for v, (_, candidates) in zip(vectors, requests)]


def resolver(cfg: RankerConfig, ref: str):
    """What ``ranker.kind`` and a model reference name now: a cross-encoder directory or the bi-encoder."""

    def resolve() -> str:
        if cfg.kind == BIENCODER:
            return BIENCODER
        try:
            return str(resolve_model("ranker", ref, cfg.registry))
        except ModelNotFound:
            if cfg.kind == "crossencoder":
                raise
            return BIENCODER

    return resolve


def follow_scorer(config: AppConfig) -> Follower[str, Scorer]:
    """The scorer ``ranker.kind`` and ``ranker.model`` name now, followed every ``ranker.refresh_s``."""
    cfg = config.ranker

    def build(key: str) -> Scorer:
        if key == BIENCODER:
            return BiEncoderScorer(shared_embedder(config.embedding))
        return CrossEncoderScorer(Path(key), device=cfg.device, quantize=cfg.quantize, max_length=cfg.max_length,
                                  batch_size=cfg.forward_batch_size, num_threads=cfg.num_threads)

    resolve = resolver(cfg, cfg.model)
    resolve()  # kind crossencoder without a model fails here, at start, loudly
    follower: Follower[str, Scorer] = Follower(resolve, build, name="ranker-model", every_s=cfg.refresh_s)
    follower.check(wait=True)
    return follower
