"""Learned fusion: LambdaMART (LightGBM ``lambdarank``) orders the ranker's head from what each request already has.

The default fusion is a weighted RRF of the cross-encoder's order and the
retriever's (``stage.fuse_with_retriever``): two ranks, one weight. A learned
fusion reads more of the evidence: the cross-encoder's score, its gap to the
head's best and its rank, the retriever's rank and fused score, the query's
cosine to the product (the retriever's own vectors, so no model runs again), and
how much of the query the title holds. ``shopray train fusion`` fits it on judged
queries the cross-encoder never trained on, for one cross-encoder: its card
names that model (``data.ranker``), and ``ranker.fusion: auto`` uses it only
while that model scores.
"""

from __future__ import annotations

import re
from pathlib import Path

import lightgbm
import numpy as np

from shopray.bootstrap.keys import find
from shopray.domain import CandidateSet
from shopray.registry import ModelCard, Registry, model_label, resolve_model

FEATURES = ("scorer", "scorer_gap", "scorer_rank", "retriever_rank", "fused", "dense_cosine", "query_in_title", "title_in_query", "title_words", "query_words")
MODEL_FILE = "model.txt"
_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> set[str]:
    # A plural matches its singular ("bolts" and "bolt"): the cheapest stemming that holds for product titles.
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in _WORD.findall(text.lower())}


def head_features(query: str, head: CandidateSet, scores: np.ndarray) -> np.ndarray:
    """(len(head), len(FEATURES)): ``head`` in the retriever's order, ``scores`` the scorer's for it."""
    scores = np.asarray(scores, dtype=float)
    n = len(head)
    cosine = head.embeddings @ head.query_vector if head.query_vector is not None else np.zeros(n)
    q = _words(query)
    titles = [_words(str(p.get("title", ""))) for p in head.payloads]
    shared = np.array([len(q & t) for t in titles], dtype=float)
    title_words = np.array([len(t) for t in titles], dtype=float)
    return np.column_stack([
        scores, scores.max() - scores, (scores[None, :] > scores[:, None]).sum(axis=1), np.arange(1, n + 1), head.scores, cosine,
        shared / max(1, len(q)), shared / np.maximum(1, title_words), title_words, np.full(n, len(q)),
    ]) if n else np.zeros((0, len(FEATURES)))


class LearnedFusion:
    """A fitted booster over ``FEATURES``; higher is better."""

    def __init__(self, booster: lightgbm.Booster, version: str, ranker: str | None = None):
        """``ranker``: the cross-encoder it was fitted for."""
        if tuple(booster.feature_name()) != FEATURES:
            raise ValueError(f"fusion model {version} reads features {booster.feature_name()}, this release computes {list(FEATURES)}")
        self.booster, self.version, self.ranker = booster, version, ranker

    @classmethod
    def load(cls, model_dir: Path) -> "LearnedFusion":
        return cls(lightgbm.Booster(model_file=str(model_dir / MODEL_FILE)), f"lambdamart:{model_label(model_dir)}", fitted_for(model_dir))

    def __call__(self, query: str, head: CandidateSet, scores: np.ndarray) -> np.ndarray:
        return self.booster.predict(head_features(query, head, scores), num_threads=1)


def fusion_dir(ref: str, ranker_model: str | None, registry: Path | None) -> Path | None:
    """The fusion model ``ranker.fusion`` names for the cross-encoder ``ranker_model`` (None: no cross-encoder
    scores): rrf, none; auto, the newest trained for that cross-encoder; else the model the reference names, if it
    was trained for that cross-encoder (another's scores are on another scale)."""
    if ref == "rrf" or ranker_model is None:
        return None
    if ref == "auto":
        return find(Registry(registry), "fusion", ranker_model, field="ranker")
    path = resolve_model("fusion", ref, registry)
    return path if fitted_for(path) == ranker_model else None


def fitted_for(model_dir: Path) -> str | None:
    """The cross-encoder a fusion model's card names."""
    card = model_dir / "card.json"
    return ModelCard.model_validate_json(card.read_text()).data.get("ranker") if card.exists() else None
