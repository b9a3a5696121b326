"""Every stage in-process (no Ray Serve), and the graph's wiring check."""

import numpy as np
import pytest

from shopray.api import Filters, SearchRequest, SessionSignal
from shopray.domain import CandidateSet, Intent
from shopray.graph import GraphError, SearchContext, check_wiring
from shopray.pipeline import DIVERSIFY, PARSE, RANK, RETRIEVE, Pipeline
from shopray.stages.rank.stage import Ranker

pytestmark = pytest.mark.ray  # the fixture index is built with Ray Data


@pytest.fixture(scope="module")
def pipeline(app_config):
    return Pipeline.from_config(app_config)


def _pick(catalog, **kw):
    return next(p for p in catalog if all(getattr(p, k) == v for k, v in kw.items()))


def test_wiring_rejects_a_miswired_graph():
    check_wiring([PARSE, RETRIEVE, RANK, DIVERSIFY])
    with pytest.raises(GraphError, match="Ranker.*candidates"):
        check_wiring([PARSE, RANK, RETRIEVE, DIVERSIFY])
    with pytest.raises(GraphError, match="Retriever.*intent"):
        check_wiring([RETRIEVE, RANK])


def test_parser_stage_uses_index_vocabulary(pipeline, small_catalog):
    product = next(p for p in small_catalog if p.brand and p.color and p.category)
    ctx = pipeline["parse"].run(SearchContext(request=SearchRequest(query=f"{product.color} {product.brand} under 500")))
    assert ctx.intent.brand == product.brand
    assert ctx.intent.color == product.color
    assert ctx.intent.price_max == 500


def test_retriever_applies_intent_as_filters(pipeline, small_catalog):
    retriever = pipeline["retrieve"]
    brands = [p.brand for p in small_catalog]
    brand = max(set(brands), key=brands.count)
    assert brands.count(brand) >= retriever.config.min_filtered
    cands = retriever.retrieve("anything", Intent(keywords="gift", brand=brand), k=retriever.config.min_filtered)
    assert cands.tiers.relaxed() == []
    assert len(cands) == brands.count(brand) and all(p["brand"] == brand for p in cands.payloads)
    assert cands.embeddings.shape == (len(cands), 384)
    np.testing.assert_allclose(cands.query_vector, retriever.embedder.encode(["gift"])[0], atol=1e-5)  # the ranker reuses it


def test_retriever_relaxes_filters_that_leave_too_few(pipeline):
    retriever = pipeline["retrieve"]
    cands = retriever.retrieve("shoes", Intent(keywords="shoes", price_min=999_000))
    assert cands.tiers.relaxed() == ["price"]
    assert len(cands) == retriever.config.candidates


def test_hard_filters_always_hold(pipeline, small_catalog):
    brand = small_catalog[3].brand
    response = pipeline.search(SearchRequest(query="cheap red stuff", k=20, filters=Filters(brand=brand, price_max=10_000)))
    assert response.results and all(r.brand == brand for r in response.results)


def test_ranker_reorders_head_and_keeps_tail(pipeline):
    ranker = pipeline["rank"]
    n = ranker.config.top_n
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(n + 5, 384)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    cands = CandidateSet(ids=[str(i) for i in range(n + 5)], payloads=[{}] * (n + 5), scores=np.arange(n + 5, 0, -1.0), embeddings=emb)
    ranked = ranker.rank("running shoes", cands)
    assert ranked.ids[n:] == cands.ids[n:]  # unscored tail keeps retriever order below
    assert np.all(np.diff(ranked.scores) <= 0)
    assert sorted(ranked.ids[:n], key=int) == cands.ids[:n]


class _FixedScorer:
    version = "fixed"

    def __init__(self, scores):
        self.scores = np.asarray(scores, dtype=float)

    def score_many(self, requests):
        return [self.scores[: len(c)] for _, c in requests]


@pytest.mark.parametrize(
    "weight, expected",
    [(0.0, list("bcda")), (1.0, list("bacd")), (100.0, list("abcd"))],
)
def test_ranker_fuses_its_order_with_the_retriever_order(weight, expected):
    """Retriever order a b c d, scorer order b c d a: the weight moves the final order between the two."""
    from shopray.config import RankerConfig

    cands = CandidateSet(ids=list("abcd"), payloads=[{}] * 4, scores=np.array([4.0, 3, 2, 1]), embeddings=np.zeros((4, 384), np.float32))
    ranker = Ranker(_FixedScorer([0.0, 3, 2, 1]), RankerConfig(retriever_weight=weight, session_weight=0))
    ranked = ranker.rank("q", cands)
    assert ranked.ids == expected and np.all(np.diff(ranked.scores) <= 0)


class _Popularity:
    def __init__(self, values: dict[str, float]):
        self.values, self.reads = values, 0

    def follow(self, every_s: float) -> None:
        pass

    def log_popularity(self, product_ids):
        self.reads += 1
        return np.array([self.values.get(p, 0.0) for p in product_ids])


def test_popularity_and_session_affinity_are_features_weighted_in_the_fusion():
    """Retriever and scorer agree on a b c d; "d" is popular, "c" is like the session's clicks. Each weight lifts its
    product in fusion units (weight x feature / (rrf_k + 1)), and the explanation carries both features."""
    from shopray.config import RankerConfig

    vectors = np.eye(4, 384, dtype=np.float32)
    cands = CandidateSet(ids=list("abcd"), payloads=[{}] * 4, scores=np.array([4.0, 3, 2, 1]), embeddings=vectors,
                         session_vector=vectors[2], explanations=[{} for _ in range(4)])
    popularity = _Popularity({"d": 1.0, "a": 0.1})

    def order(session: float, pop: float, source=popularity) -> list[str]:
        return Ranker(_FixedScorer([4.0, 3, 2, 1]), RankerConfig(session_weight=session, popularity_weight=pop), popularity=source).rank("q", cands).ids

    assert order(0, 0) == list("abcd") and popularity.reads == 0  # weight 0: the log is never read
    assert order(0, 0.05)[:2] == ["a", "b"]  # 0.05 / 61 breaks a near tie (c, d) but not the gap from first to fourth (2/61 - 2/64)
    assert order(0, 3.0)[0] == "d" and order(3.0, 0)[0] == "c"
    assert order(3.0, 3.0, _Popularity({}))[0] == "c"  # no product has events: popularity is left out, not a tie of zeros
    ranked = Ranker(_FixedScorer([4.0, 3, 2, 1]), RankerConfig(session_weight=1, popularity_weight=1), popularity=popularity).rank("q", cands)
    explained = dict(zip(ranked.ids, ranked.explanations))
    assert explained["c"]["session_affinity"] == pytest.approx(1.0) and explained["a"]["session_affinity"] == pytest.approx(0.0)
    assert explained["d"]["popularity"] == 1.0 and explained["b"]["popularity"] == 0.0


def test_diversity_zero_keeps_ranker_order_and_one_spreads_brands(pipeline):
    # 25 results: the test catalog's 35 shoes come in 20 brands, so the ranker's order must repeat some; at k=10
    # whether it did was down to near-ties between bf16 vectors.
    request = SearchRequest(query="shoes", k=25, diversity=0)
    base = pipeline.search(request)
    assert [r.score for r in base.results] == sorted((r.score for r in base.results), reverse=True)
    diverse = pipeline.search(request.model_copy(update={"diversity": 1.0}))
    base_brands, diverse_brands = [r.brand for r in base.results], [r.brand for r in diverse.results]
    assert len(set(base_brands)) < len(base_brands), base_brands  # the ranker's top 25 repeats brands...
    assert len(set(diverse_brands)) > len(set(base_brands)), (base_brands, diverse_brands)  # ...diversity spreads them
    assert [r.product_id for r in diverse.results] != [r.product_id for r in base.results]


def test_response_shape(pipeline):
    response = pipeline.search(SearchRequest(query="red running shoes under 80", k=5))
    assert len(response.results) == 5
    assert set(response.timings_ms) == {"parse", "retrieve", "rank", "diversify", "total"}
    assert response.intent.source == "rule"
    assert {"index", "parser", "ranker"} <= set(response.versions)
    first = response.results[0].model_dump()
    assert {"product_id", "title", "score"} <= set(first)


def test_session_clicks_move_that_brand_up(pipeline, small_catalog):
    """Clicking three products of one brand lifts that brand in a generic query's results."""
    query = SearchRequest(query="gift ideas", k=20, diversity=0)
    before = pipeline.search(query)
    counts = {}
    for r in before.results:
        counts[r.brand] = counts.get(r.brand, 0) + 1
    # a brand that is present in the catalog but weak in the unpersonalised results
    brand = next(p.brand for p in small_catalog if p.brand and counts.get(p.brand, 0) == 0)
    clicked = [p.product_id for p in small_catalog if p.brand == brand][:3]
    after = pipeline.search(query.model_copy(update={"session": SessionSignal(clicked=clicked + ["no-such-id"])}))
    share_before = sum(r.brand == brand for r in before.results)
    share_after = sum(r.brand == brand for r in after.results)
    assert share_after > share_before, (brand, share_before, share_after)


def test_explain_says_how_each_result_got_its_place(pipeline, small_catalog):
    target = next(p for p in small_catalog if p.brand)
    plain = pipeline.search(SearchRequest(query=target.title, k=5))
    assert all(r.explanation is None for r in plain.results)
    resp = pipeline.search(SearchRequest(query=target.title, k=5, explain=True, diversity=0.5, filters=Filters(brand=target.brand)))
    assert [r.product_id for r in resp.results]
    for shown, r in enumerate(resp.results, 1):
        e = r.explanation
        assert e.rank == shown and e.rank_before_diversity >= 1 and e.retriever_rank >= 1
        assert e.dense_rank is not None or e.bm25_rank is not None  # fusion only ranks what one of its lists found
        assert e.filters == {"brand": target.brand, "in_stock": True}
        assert e.session_pull is None
    top = next(r for r in resp.results if r.product_id == target.product_id)
    assert top.explanation.bm25_rank == 1 and top.explanation.dense_rank <= 3  # its own title
    scored = [r.explanation for r in resp.results if r.explanation.scorer is not None]
    assert scored and all(e.ranked is not None for e in scored)
    moved = pipeline.search(SearchRequest(query="shoes", k=10, explain=True, diversity=1.0))
    assert any(r.explanation.rank != r.explanation.rank_before_diversity for r in moved.results)  # diversity moved something
    with_session = pipeline.search(SearchRequest(query="shoes", k=3, explain=True, session=SessionSignal(clicked=[target.product_id])))
    assert all(r.explanation.session_pull is not None for r in with_session.results)


def test_synthetic_shoppers_search_with_their_sessions_and_behaviour_lifts_ndcg(app_config, tmp_path):
    """pipeline-hpo's ``sessions`` judgments: the trial's own event log, each search with its session's clicks."""
    from shopray.config import RankerConfig
    from shopray.tuning.pipeline_trial import evaluate_pipeline, prepare
    from shopray.tuning.trials import JudgmentsSpec, PipelineTrialSettings

    cases, app = prepare(JudgmentsSpec(source="sessions", queries=60, seed=0), app_config, tmp_path)
    assert app.events.path == tmp_path / "events.sqlite" and app_config.events.path != app.events.path
    assert len(cases) == 60 and all(c.clicked for c in cases)
    settings = PipelineTrialSettings(diversity_weight=0.0)
    off = app.model_copy(update={"ranker": RankerConfig(session_weight=0, popularity_weight=0), "retriever": app.retriever.model_copy(update={"session_weight": 0})})
    on = app.model_copy(update={"ranker": RankerConfig(session_weight=1.5, popularity_weight=1.5)})
    without, with_behaviour = (evaluate_pipeline(settings, cases, a)["per_query"] for a in (off, on))
    assert np.mean(with_behaviour) > np.mean(without) + 0.05, (np.mean(with_behaviour), np.mean(without))
