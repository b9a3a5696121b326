"""Stage 3: re-score the retriever's top N.

The scorer is the MiniLM bi-encoder (cosine between the query and the product
vectors carried from the index) or the fine-tuned cross-encoder
(``shopray.cross_encoder``), chosen by ``RankerConfig.kind``; similarity to the
session's clicked products is added to either. The top N are re-ordered by a
reciprocal-rank fusion of the scorer's order and the retriever's
(``retriever_weight``; 0 keeps the scorer's order); the rest keep retriever
order below. Scorers take several requests at once
(``score_many``) so the Serve deployment can batch across requests.
"""

from __future__ import annotations

import logging
from typing import ClassVar, Protocol, Sequence

import numpy as np

from shopray.config import AppConfig, RankerConfig
from shopray.embedding import Embedder, shared_embedder
from shopray.models import CandidateSet
from shopray.pipeline import SearchContext, Stage

log = logging.getLogger(__name__)


class Scorer(Protocol):
    version: str

    def score_many(self, requests: Sequence[tuple[str, CandidateSet]]) -> list[np.ndarray]: ...


class BiEncoderScorer:
    def __init__(self, embedder: Embedder):
        self.embedder = embedder
        self.version = f"biencoder:{embedder.model_path.rstrip('/').split('/')[-2]}"

    def score(self, query: str, candidates: CandidateSet) -> np.ndarray:
        return self.score_many([(query, candidates)])[0]

    def score_many(self, requests: Sequence[tuple[str, CandidateSet]]) -> list[np.ndarray]:
        vectors = self.embedder.encode([query for query, _ in requests])
        return [candidates.embeddings @ v for v, (_, candidates) in zip(vectors, requests)]


def make_scorer(config: AppConfig) -> Scorer:
    cfg = config.ranker
    if cfg.kind != "biencoder":
        from shopray.cross_encoder import CrossEncoderScorer, resolve_model_dir

        try:
            model_dir = resolve_model_dir(cfg.model, cfg.registry)
        except (KeyError, FileNotFoundError) as exc:
            if cfg.kind == "crossencoder":
                raise
            log.warning("no cross-encoder %r (%s): ranking with the bi-encoder", cfg.model, exc)
        else:
            return CrossEncoderScorer(
                model_dir,
                device=cfg.device,
                quantize=cfg.quantize,
                max_length=cfg.max_length,
                batch_size=cfg.forward_batch_size,
                num_threads=cfg.num_threads,
            )
    return BiEncoderScorer(shared_embedder(config.embedding))


class ModelFollower:
    """Keeps a Ranker on the cross-encoder its model reference names now.

    A reference that is a registry alias moves when a model is promoted; ``check``
    (called every ``ranker.refresh_s`` by the Serve replica, or at once by
    ``reconfigure``) loads the newly named model in full and only then swaps it
    in with one assignment: a request already scoring keeps the scorer it
    started with, so none fails or mixes two models.
    """

    def __init__(self, ranker: "Ranker", config: AppConfig):
        import threading

        self.ranker, self.config = ranker, config
        self.ref = config.ranker.model
        self.loaded = getattr(ranker.scorer, "model_dir", None)
        self._lock = threading.Lock()

    def target(self):
        from shopray.cross_encoder import resolve_model_dir

        try:
            return resolve_model_dir(self.ref, self.config.ranker.registry)
        except (KeyError, FileNotFoundError):
            return None

    def set_ref(self, ref: str) -> bool:
        self.ref = ref
        return self.check()

    def check(self) -> bool:
        """True when a new model was swapped in."""
        if self.config.ranker.kind == "biencoder":
            return False
        with self._lock:
            target = self.target()
            if target is None or (self.loaded is not None and target.resolve() == self.loaded.resolve()):
                return False
            cfg = self.config.model_copy(update={"ranker": self.config.ranker.model_copy(update={"model": str(target)})})
            scorer = make_scorer(cfg)  # loaded before the swap: the old one answers meanwhile
            previous = self.ranker.scorer.version
            self.ranker.scorer, self.loaded = scorer, target
            log.info("ranker model switched: %s -> %s (%s)", previous, scorer.version, self.ref)
            return True


class Ranker(Stage):
    name: ClassVar[str] = "Ranker"
    timing_key: ClassVar[str] = "rank"
    consumes: ClassVar[frozenset[str]] = frozenset({"request", "intent", "candidates"})
    produces: ClassVar[frozenset[str]] = frozenset({"candidates"})

    def __init__(self, scorer: Scorer, config: RankerConfig):
        self.scorer, self.config = scorer, config

    @classmethod
    def from_config(cls, config: AppConfig) -> "Ranker":
        return cls(make_scorer(config), config.ranker)

    def head(self, candidates: CandidateSet) -> CandidateSet:
        """The candidates the scorer sees."""
        return candidates.take(range(min(self.config.top_n, len(candidates))))

    @staticmethod
    def query_of(ctx: SearchContext) -> str:
        assert ctx.intent is not None
        return ctx.intent.keywords or ctx.request.query

    def rank(self, query: str, candidates: CandidateSet, head_scores: np.ndarray | None = None) -> CandidateSet:
        """Re-order the head; ``head_scores`` are the scorer's for ``head(candidates)`` when already computed."""
        n = min(self.config.top_n, len(candidates))
        if n == 0:
            return candidates
        head = candidates.take(range(n))
        scores = self.scorer.score_many([(query, head)])[0] if head_scores is None else np.asarray(head_scores, dtype=float)
        if candidates.session_vector is not None and self.config.session_weight > 0:
            scores = scores + self.config.session_weight * (head.embeddings @ candidates.session_vector)
        if self.config.retriever_weight > 0:
            scores = fuse_with_retriever(scores, self.config.retriever_weight, self.config.rrf_k)
        order = np.argsort(-scores, kind="stable")
        ranked = head.take(order, scores=scores[order])
        if n == len(candidates):
            return ranked
        # Unscored tail stays below every scored item, in retriever order.
        tail = candidates.take(range(n, len(candidates)))
        tail_scores = float(scores.min()) - 1.0 - np.arange(len(tail)) * 1e-6
        return _concat(ranked, tail.take(range(len(tail)), scores=tail_scores))

    def run(self, ctx: SearchContext, head_scores: np.ndarray | None = None) -> SearchContext:
        assert ctx.candidates is not None and ctx.intent is not None
        ctx.candidates = self.rank(self.query_of(ctx), ctx.candidates, head_scores)
        ctx.versions["ranker"] = self.scorer.version
        return ctx


def fuse_with_retriever(scores: np.ndarray, weight: float, k: int) -> np.ndarray:
    """Weighted RRF of the scorer's order (weight 1) and the retriever's, which is the head's input order."""
    scorer_rank = np.empty(len(scores), dtype=float)
    scorer_rank[np.argsort(-scores, kind="stable")] = np.arange(len(scores))
    return 1.0 / (k + 1 + scorer_rank) + weight / (k + 1 + np.arange(len(scores)))


def _concat(a: CandidateSet, b: CandidateSet) -> CandidateSet:
    return CandidateSet(
        ids=a.ids + b.ids,
        payloads=a.payloads + b.payloads,
        scores=np.concatenate([a.scores, b.scores]),
        embeddings=np.concatenate([a.embeddings, b.embeddings]),
        session_vector=a.session_vector,
        notes=a.notes,
    )
