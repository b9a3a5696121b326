"""The learned fusion: its features, and when the ranker uses a registered one (only for the cross-encoder it was fitted for)."""

import tempfile
from pathlib import Path

import lightgbm
import numpy as np
import pytest

from shopray.api import SearchRequest
from shopray.config import RankerConfig
from shopray.domain import CandidateSet, Intent
from shopray.graph import SearchContext
from shopray.registry import ModelCard, Registry
from shopray.stages.rank.fusion import FEATURES, MODEL_FILE, LearnedFusion, head_features
from shopray.stages.rank.stage import Ranker

TITLES = ["Lag Screw Pack", "Anchor Bolt Kit", "Wood Screws", "Anchor Bolts 10-Pack"]


class _Scorer:
    def __init__(self, version, scores):
        self.version, self.scores = version, np.asarray(scores, dtype=float)

    def score_many(self, requests):
        return [self.scores[: len(c)] for _, c in requests]


def _head() -> CandidateSet:
    vectors = np.eye(4, 384, dtype=np.float32)
    return CandidateSet(ids=list("abcd"), payloads=[{"title": t} for t in TITLES], scores=np.array([0.04, 0.03, 0.02, 0.01]),
                        embeddings=vectors, query_vector=vectors[1] * 0.5 + vectors[3] * 0.5)


def test_features_of_a_head():
    x = head_features("anchor bolts", _head(), np.array([2.0, 0.5, 1.0, -1.0]))
    row = {f: x[1, i] for i, f in enumerate(FEATURES)}
    assert x.shape == (4, len(FEATURES))
    assert row["scorer_gap"] == 1.5 and row["scorer_rank"] == 2 and row["retriever_rank"] == 2 and row["fused"] == 0.03
    assert row["dense_cosine"] == 0.5 and row["query_in_title"] == 1.0  # "bolts" matches "bolt"
    assert row["title_in_query"] == pytest.approx(2 / 3) and row["title_words"] == 3 and row["query_words"] == 2
    assert x[0, FEATURES.index("query_in_title")] == 0.0
    # Logits are often all negative: the gap is to the head's best, not to 0.
    gaps = head_features("anchor bolts", _head(), np.array([-2.0, -0.5, -1.0, -3.0]))[:, FEATURES.index("scorer_gap")]
    assert gaps.tolist() == [1.5, 0.0, 0.5, 2.5]


def _booster(feature: str = "query_in_title", names=FEATURES) -> lightgbm.Booster:
    """A model that learned: relevant is what has the whole query in its title."""
    rng = np.random.default_rng(0)
    xs, ys = [], []
    for _ in range(200):
        titles = [f"w{rng.integers(4)} thing" for _ in range(10)]
        head = CandidateSet(ids=[str(i) for i in range(10)], payloads=[{"title": t} for t in titles], scores=np.sort(rng.random(10))[::-1],
                            embeddings=np.zeros((10, 384), np.float32))
        xs.append(head_features("w1 thing", head, rng.normal(size=10)))
        ys.append((xs[-1][:, FEATURES.index(feature)] == 1).astype(int))
    data = lightgbm.Dataset(np.vstack(xs), np.concatenate(ys), group=[10] * len(xs), feature_name=list(names))
    return lightgbm.train({"objective": "lambdarank", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5}, data, 20)


def test_a_fusion_model_must_read_this_release_features():
    with pytest.raises(ValueError, match="reads features"):
        LearnedFusion(_booster(names=[f"x{i}" for i in range(len(FEATURES))]), "old")


def _register(registry: Path, ranker: str) -> str:
    card = ModelCard(kind="fusion", base_model="LightGBM lambdarank", metric="ndcg@10", data={"ranker": ranker})
    with tempfile.TemporaryDirectory() as tmp:
        _booster().save_model(str(Path(tmp) / MODEL_FILE))
        return Registry(registry).register("fusion", Path(tmp), card, alias=None)


def _ranked(ranker: Ranker) -> tuple[list[str], dict]:
    ctx = SearchContext(request=SearchRequest(query="anchor bolts"))
    ctx.candidates, ctx.intent = _head(), Intent(keywords="anchor bolts")
    scores, version = ranker.scorer.score_many([("anchor bolts", ctx.candidates)])[0], ranker.scorer.version
    ctx = ranker._apply(ctx, scores, version)
    return ctx.candidates.ids, ctx.versions


def test_the_ranker_uses_the_fusion_fitted_for_the_cross_encoder_that_scores(tmp_path):
    scores = [2.0, 0.5, 1.0, -1.0]  # the scorer prefers the lag screws; the learned fusion, the titles holding the query
    served = Ranker(_Scorer("crossencoder:v1:bf16", scores), RankerConfig(registry=tmp_path, popularity_weight=0))
    assert _ranked(served) == (list("abcd"), {"ranker": "crossencoder:v1:bf16"})  # rank fusion while no fusion model exists
    version = _register(tmp_path, "v1")
    served.fusions.check(wait=True)  # what the replica's follower does within ranker.refresh_s
    ids, versions = _ranked(served)
    assert set(ids[:2]) == {"b", "d"} and versions["fusion"] == f"lambdamart:{version}"
    # Another cross-encoder's scores are on another scale: its fusion model is not used, named or not.
    other = Ranker(_Scorer("crossencoder:v2:bf16", scores), RankerConfig(registry=tmp_path, popularity_weight=0))
    assert "fusion" not in _ranked(other)[1]
    named = Ranker(_Scorer("crossencoder:v2:bf16", scores), RankerConfig(registry=tmp_path, popularity_weight=0, fusion=version))
    assert "fusion" not in _ranked(named)[1]
    # rrf turns it off; the bi-encoder and the retriever's order never get one.
    assert "fusion" not in _ranked(Ranker(_Scorer("crossencoder:v1:bf16", scores), RankerConfig(registry=tmp_path, popularity_weight=0, fusion="rrf")))[1]
    assert "fusion" not in _ranked(Ranker(_Scorer("retriever-order", scores), RankerConfig(registry=tmp_path, popularity_weight=0)))[1]


def test_a_broken_or_foreign_fusion_model_leaves_the_rank_fusion_answering(tmp_path, caplog):
    scores = [2.0, 0.5, 1.0, -1.0]
    expected = _ranked(Ranker(_Scorer("crossencoder:v1:bf16", scores), RankerConfig(registry=tmp_path / "none", popularity_weight=0)))
    version = _register(tmp_path, "v1")
    model = Registry(tmp_path).path("fusion", version) / MODEL_FILE
    for text in ("not a model", model.read_text().replace("feature_names=scorer ", "feature_names=other ")):
        model.write_text(text)
        with caplog.at_level("WARNING"):
            assert _ranked(Ranker(_Scorer("crossencoder:v1:bf16", scores), RankerConfig(registry=tmp_path, popularity_weight=0))) == expected
        assert "not used" in caplog.text
        caplog.clear()
