"""What the ranker scores with: the MiniLM bi-encoder, or the fine-tuned cross-encoder the config names.

``ranker.kind`` picks: biencoder (cosine between the query and the product
vectors carried from the index; needs no training), crossencoder (the model
``ranker.model`` names; while it is missing the ranker falls back to the
bi-encoder and says so) or auto (the cross-encoder when the model resolves,
else the bi-encoder). ``model: auto`` names the cross-encoder trained for the
served catalog; a catalog the bootstrap cannot make training queries for
(no categories) keeps the retriever's order (``RetrieverOrder``): on Home
Depot's titles a cross-encoder trained on another catalog, and the bi-encoder,
both ranked below it. A registry alias is followed
(``shopray.follow``): a promoted model is loaded in full, then swapped in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from shopray.bootstrap.keys import AUTO, AutoModel, can_train, find
from shopray.config import AppConfig, RankerConfig
from shopray.domain import CandidateSet
from shopray.embedding import Embedder, encoder_label, shared_embedder
from shopray.follow import Follower
from shopray.registry import ModelNotFound, resolve_model
from shopray.stages.rank.cross_encoder import CrossEncoderScorer
from shopray.stages.retrieve.index import IndexManifest

BIENCODER, RETRIEVER_ORDER = "biencoder", "retriever-order"


class Scorer(Protocol):
    version: str

    def score_many(self, requests: Sequence[tuple[str, CandidateSet]]) -> list[np.ndarray]:
        """Several requests' (query, candidates) at once; one score array each."""


class BiEncoderScorer:
    def __init__(self, embedder: Embedder):
        self.embedder = embedder
        self.version = f"biencoder:{encoder_label(embedder.config.model)}"

    def score(self, query: str, candidates: CandidateSet) -> np.ndarray:
        return self.score_many([(query, candidates)])[0]

    def score_many(self, requests: Sequence[tuple[str, CandidateSet]]) -> list[np.ndarray]:
        """Candidates carry the retriever's embedding of the same query text (the intent's keywords, else the query):
        only queries without one are embedded here."""
        missing = [query for query, candidates in requests if candidates.query_vector is None]
        encoded = iter(self.embedder.encode(missing) if missing else [])
        return [candidates.embeddings @ (candidates.query_vector if candidates.query_vector is not None else next(encoded)) for _, candidates in requests]


class RetrieverOrder:
    """Scores that keep the retriever's order: the ranker for a catalog no model fits."""

    version = RETRIEVER_ORDER

    def score_many(self, requests: Sequence[tuple[str, CandidateSet]]) -> list[np.ndarray]:
        return [np.asarray(candidates.scores, dtype=float) for _, candidates in requests]


def resolver(cfg: RankerConfig, ref: str, auto: AutoModel | None, catalog: Follower[str, IndexManifest] | None):
    """What ``ranker.kind`` and a model reference name now: a cross-encoder directory, the bi-encoder, the
    retriever's order, or (kind crossencoder) None while the model is missing. ``auto`` needs the served ``catalog``."""
    if ref == AUTO and cfg.kind != BIENCODER and (auto is None or catalog is None):
        raise ValueError("ranker model 'auto' is keyed by the served catalog: this ranker was built without it")

    def resolve() -> str | None:
        if cfg.kind == BIENCODER:
            return BIENCODER
        if ref == AUTO:
            manifest = catalog.current
            if not can_train("ranker", manifest.vocabulary):
                # No training queries can be made from it, but an ML engineer may have trained one on its judged queries.
                judged = find(auto.registry, "ranker", manifest.catalog_sha256, field="catalog_sha256")
                return str(judged) if judged else RETRIEVER_ORDER
            found = auto.resolve(manifest.catalog_sha256)
        else:
            try:
                found = resolve_model("ranker", ref, cfg.registry)
            except ModelNotFound:
                found = None
        if found is not None:
            return str(found)
        return BIENCODER if cfg.kind == "auto" else None

    return resolve


def follow_scorer(config: AppConfig, auto: AutoModel, catalog: Follower[str, IndexManifest] | None) -> Follower[str, Scorer]:
    """The scorer ``ranker.kind`` and ``ranker.model`` name now, followed every ``ranker.refresh_s``; with kind
    crossencoder it holds nothing until the model exists."""
    cfg = config.ranker

    def build(key: str) -> Scorer:
        if key == RETRIEVER_ORDER:
            return RetrieverOrder()
        if key == BIENCODER:
            return BiEncoderScorer(shared_embedder(config.embedding))
        return CrossEncoderScorer(Path(key), device=cfg.device, precision=cfg.precision, max_length=cfg.max_length,
                                  batch_size=cfg.forward_batch_size, num_threads=cfg.num_threads, backend=cfg.backend)

    follower: Follower[str, Scorer] = Follower(resolver(cfg, cfg.model, auto, catalog), build, name="ranker-model", every_s=cfg.refresh_s)
    follower.check(wait=True)
    return follower
