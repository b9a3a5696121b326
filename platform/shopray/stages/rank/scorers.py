"""What the ranker scores with: the MiniLM bi-encoder, or the fine-tuned cross-encoder the config names.

``ranker.kind`` picks: biencoder (cosine between the query and the product
vectors carried from the index; needs no training), crossencoder (the model
``ranker.model`` names; while it is missing the ranker falls back to the
bi-encoder and says so) or auto (the cross-encoder when the model resolves,
else the bi-encoder). A registry alias is followed
(``shopray.follow``): a promoted model is loaded in full, then swapped in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from shopray.bootstrap.keys import AUTO, AutoModel
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


def resolver(cfg: RankerConfig, ref: str, auto: AutoModel):
    """What ``ranker.kind`` and a model reference name now: a cross-encoder directory, the bi-encoder, or (kind
    crossencoder) None while the model is missing."""

    def resolve() -> str | None:
        if cfg.kind == BIENCODER:
            return BIENCODER
        if ref == AUTO:
            found = auto.resolve()
        else:
            try:
                found = resolve_model("ranker", ref, cfg.registry)
            except ModelNotFound:
                found = None
        if found is not None:
            return str(found)
        return BIENCODER if cfg.kind == "auto" else None

    return resolve


def follow_scorer(config: AppConfig, auto: AutoModel) -> Follower[str, Scorer]:
    """The scorer ``ranker.kind`` and ``ranker.model`` name now, followed every ``ranker.refresh_s``; with kind
    crossencoder it holds nothing until the model exists."""
    cfg = config.ranker

    def build(key: str) -> Scorer:
        if key == BIENCODER:
            return BiEncoderScorer(shared_embedder(config.embedding))
        return CrossEncoderScorer(Path(key), device=cfg.device, quantize=cfg.quantize, max_length=cfg.max_length,
                                  batch_size=cfg.forward_batch_size, num_threads=cfg.num_threads)

    follower: Follower[str, Scorer] = Follower(resolver(cfg, cfg.model, auto), build, name="ranker-model", every_s=cfg.refresh_s)
    follower.check(wait=True)
    return follower
