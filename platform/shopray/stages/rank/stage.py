"""Stage 3, rank: re-score the retriever's top N and fuse the scorer's order with the retriever's.

The scorer (``scorers``) gives each of the top ``top_n`` candidates a score.
The final order of the top N is a reciprocal-rank fusion of the scorer's order
and the retriever's (``retriever_weight``), plus two behaviour features in the
fusion's units: session affinity (cosine to the session's clicked products)
and popularity (from the event log, ``Popularity``). Fusing ranks rather than
adding to raw scores keeps the weights meaningful whichever scorer answers: a
cross-encoder's logits and a bi-encoder's cosines differ in scale, so weights
tuned with one carry over to the other. With no fusion weight and no feature,
the scorer's order stands. Where a learned fusion (``fusion``) was trained for
the cross-encoder that scores, its order replaces the rank fusion. The rest keep retriever order below. ``arun`` takes
the scoring coroutine the Serve deployment batches across requests with.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Awaitable, Callable, Protocol, Sequence

import lightgbm
import numpy as np

from shopray.bootstrap.keys import AUTO, AutoModel
from shopray.config import AppConfig, RankerConfig
from shopray.domain import CandidateSet
from shopray.embedding import shared_embedder
from shopray.events import Behaviour, open_event_log
from shopray.follow import Follower
from shopray.graph import SearchContext
from shopray.registry import ModelNotFound
from shopray.stages.rank.cross_encoder import model_of
from shopray.stages.rank.fusion import LearnedFusion, fusion_dir
from shopray.stages.rank.scorers import BIENCODER, BiEncoderScorer, Scorer, follow_scorer, resolver
from shopray.stages.retrieve.index import IndexManifest, open_store

log = logging.getLogger(__name__)
# (query, head) -> (scores, version of the model that scored)
RANK_FUSION = "rrf"  # the fusion follower's key while no learned fusion applies
ScoreFn = Callable[[str, CandidateSet], Awaitable[tuple[np.ndarray, str]]]


class Popularity(Protocol):
    """What the ranker reads of shoppers' behaviour (``shopray.events.Behaviour``)."""

    def follow(self, every_s: float) -> None: ...

    def log_popularity(self, product_ids: Sequence[str]) -> np.ndarray: ...


def follow_catalog(config: AppConfig) -> Follower[str, IndexManifest]:
    """The manifest of the served index, which ``model: auto`` is keyed by."""
    store = open_store(config.index)
    return store.follow(store.manifest, "ranker-catalog", config.ranker.refresh_s)


class Ranker:
    def __init__(self, scorer: Scorer | Follower[str, Scorer], config: RankerConfig, fallback: Callable[[], Scorer] | None = None,
                 auto: AutoModel | None = None, catalog: Follower[str, IndexManifest] | None = None,
                 popularity: Popularity | None = None, popularity_every_s: float = 1.0):
        """``fallback`` makes the scorer that answers while the followed model is missing; ``auto`` and the served
        ``catalog`` say whether that model is being trained; ``popularity`` is followed every ``popularity_every_s``."""
        self.scorers = scorer if isinstance(scorer, Follower) else Follower.fixed(scorer, scorer.version)
        self.config, self.auto, self.catalog = config, auto, catalog
        self._fallback, self._fallback_scorer = fallback, None
        self.popularity, self._popularity_every_s = popularity, popularity_every_s
        # The learned fusion for the cross-encoder now scoring, or None (key RANK_FUSION): the rank fusion answers.
        self.fusions: Follower[str, LearnedFusion | None] = Follower(self._fusion_ref, self._load_fusion, name="ranker-fusion", every_s=config.refresh_s)
        self.fusions.check(wait=True)

    @classmethod
    def from_config(cls, config: AppConfig) -> "Ranker":
        auto = AutoModel("ranker", config.bootstrap.ranker, config.ranker.registry)
        catalog = follow_catalog(config) if config.ranker.model == AUTO and config.ranker.kind != BIENCODER else None
        popularity = None
        if config.ranker.popularity_weight > 0:
            popularity = Behaviour(open_event_log(config.events), config.events, popularity_only=True)
            popularity.refresh()
        ranker = cls(follow_scorer(config, auto, catalog), config.ranker, lambda: BiEncoderScorer(shared_embedder(config.embedding)), auto, catalog,
                     popularity, config.events.refresh_s)
        if (why := ranker.missing()) is not None:
            log.warning("no cross-encoder %r yet: the bi-encoder answers (degraded: %s)", config.ranker.model, why)
            assert ranker.scorer is not None  # load the fallback now, not on the first request
        return ranker

    def missing(self) -> str | None:
        """Why the configured model is not answering (the degraded label), or None when it is."""
        if self.scorers.current is not None:
            return None
        training = self.config.model == AUTO and self.auto is not None and self.catalog is not None and self.auto.training(self.catalog.current.catalog_sha256)
        return "ranker_warming" if training or self.scorers.building else "ranker_unavailable"

    @property
    def scorer(self) -> Scorer:
        current = self.scorers.current
        if current is not None:
            return current
        if self._fallback_scorer is None:
            self._fallback_scorer = self._fallback()
        return self._fallback_scorer

    def ready(self) -> bool:
        return self.scorers.current is not None or self._fallback is not None

    def retarget(self, model: str) -> None:
        """Serve's reconfigure: score with another model reference (alias, version or directory), loaded before it answers."""
        self.scorers.retarget(resolver(self.config, model, self.auto, self.catalog), wait=True)
        self.fusions.check(wait=True)

    def head(self, candidates: CandidateSet) -> CandidateSet:
        """The candidates the scorer sees."""
        return candidates.take(range(min(self.config.top_n, len(candidates))))

    def _fusion_ref(self) -> str:
        """The directory of the fusion model ``ranker.fusion`` names for the cross-encoder now scoring, or RANK_FUSION."""
        scorer = self.scorers.current
        try:
            path = fusion_dir(self.config.fusion, model_of(scorer.version) if scorer is not None else None, self.config.registry)
        except ModelNotFound:
            path = None
        return str(path) if path else RANK_FUSION

    @staticmethod
    def _load_fusion(ref: str) -> LearnedFusion | None:
        if ref == RANK_FUSION:
            return None
        try:
            return LearnedFusion.load(Path(ref))
        except (ValueError, lightgbm.basic.LightGBMError) as exc:  # a broken or foreign model must not fail searches
            log.warning("fusion model %s not used, the rank fusion answers: %s", ref, exc)
            return None

    def fusion(self, scorer_version: str) -> LearnedFusion | None:
        """The learned fusion for the scorer that answered, or None: the one followed is fitted for the current
        cross-encoder, and a request scored by another (a promotion under way) keeps the rank fusion."""
        fusion = self.fusions.current
        return fusion if fusion is not None and fusion.ranker == model_of(scorer_version) else None

    def rank(self, query: str, candidates: CandidateSet, head_scores: np.ndarray | None = None, fusion: LearnedFusion | None = None) -> CandidateSet:
        """Re-order the head; ``head_scores`` are the scorer's for ``head(candidates)`` when already computed; ``fusion``
        orders it from them instead of the rank fusion."""
        n = min(self.config.top_n, len(candidates))
        if n == 0:
            return candidates
        head = candidates.take(range(n))
        scores = raw = self.scorer.score_many([(query, head)])[0] if head_scores is None else np.asarray(head_scores, dtype=float)
        affinity, popularity = self.behaviour(head)
        cfg = self.config
        if fusion is not None or cfg.retriever_weight > 0 or affinity is not None or popularity is not None:
            # A learned fusion's order counts as one fused list, so the behaviour features keep their units.
            scores = fuse_with_retriever(fusion(query, head, raw), 0.0, cfg.rrf_k) if fusion is not None else fuse_with_retriever(scores, cfg.retriever_weight, cfg.rrf_k)
            for weight, feature in ((cfg.session_weight, affinity), (cfg.popularity_weight, popularity)):
                if feature is not None:
                    scores = scores + weight * feature / (cfg.rrf_k + 1)
        order = np.lexsort((-scores, head.groups()))  # by score within each constraint group, never across
        # The unscored tail stays below every scored item, in retriever order (which is by group too).
        tail_scores = float(scores.min()) - 1.0 - np.arange(len(candidates) - n) * 1e-6
        taken = np.concatenate([order, np.arange(n, len(candidates))])
        ranked = candidates.take(taken, scores=np.concatenate([scores[order], tail_scores]))
        for e, i in zip(ranked.explanations or (), taken):
            scored = i < n
            e.update(retriever_rank=int(i) + 1, scorer=float(raw[i]) if scored else None, ranked=float(scores[i]) if scored else None,
                     session_affinity=float(affinity[i]) if scored and affinity is not None else None,
                     popularity=float(popularity[i]) if scored and popularity is not None else None)
        return ranked

    def behaviour(self, head: CandidateSet) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The head's session affinity and popularity, each None where its weight is 0 or there is nothing to read."""
        affinity = popularity = None
        if head.session_vector is not None and self.config.session_weight > 0:
            affinity = head.embeddings @ head.session_vector
        if self.popularity is not None and self.config.popularity_weight > 0:
            self.popularity.follow(self._popularity_every_s)
            popularity = self.popularity.log_popularity(list(head.ids))
            if not popularity.any():
                popularity = None
        return affinity, popularity

    @staticmethod
    def scored_query(ctx: SearchContext) -> str:
        """The text the scorer reads: the retriever's (repaired) query, else the parsed keywords, else the query."""
        assert ctx.intent is not None and ctx.candidates is not None
        return ctx.candidates.query_text or ctx.intent.keywords or ctx.request.query

    def _apply(self, ctx: SearchContext, scores: np.ndarray | None, version: str) -> SearchContext:
        fusion = self.fusion(version) if scores is not None else None
        ctx.candidates = self.rank(self.scored_query(ctx), ctx.candidates, scores, fusion)
        ctx.versions["ranker"] = version
        if fusion is not None:
            ctx.versions["fusion"] = fusion.version
        if self._fallback_scorer is not None and version == self._fallback_scorer.version:
            # The fallback answered: the model was missing then, whether or not it has arrived since.
            ctx.degraded.append(self.missing() or "ranker_warming")
        return ctx

    def run(self, ctx: SearchContext) -> SearchContext:
        assert ctx.candidates is not None
        scorer = self.scorer  # one model for the whole request, whatever a promotion does meanwhile
        head = self.head(ctx.candidates)
        scores = scorer.score_many([(self.scored_query(ctx), head)])[0] if len(head) else None
        return self._apply(ctx, scores, scorer.version)

    async def arun(self, ctx: SearchContext, score: ScoreFn | None = None) -> SearchContext:
        """``score``: a coroutine that scores one request's head, e.g. batched with others; default: in a worker thread."""
        if score is None:
            return await asyncio.to_thread(self.run, ctx)
        assert ctx.candidates is not None
        head = self.head(ctx.candidates)
        if not len(head):
            return self._apply(ctx, None, self.scorer.version)
        scores, version = await score(self.scored_query(ctx), head)
        return self._apply(ctx, scores, version)


def fuse_with_retriever(scores: np.ndarray, weight: float, k: int) -> np.ndarray:
    """Weighted RRF of the scorer's order (weight 1) and the retriever's, which is the head's input order."""
    scorer_rank = np.empty(len(scores), dtype=float)
    scorer_rank[np.argsort(-scores, kind="stable")] = np.arange(len(scores))
    return 1.0 / (k + 1 + scorer_rank) + weight / (k + 1 + np.arange(len(scores)))
