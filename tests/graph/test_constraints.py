"""What the shopper stated is honoured through retrieve, rank and diversify: exact matches first, then one
relaxed constraint at a time, and the answer says what was relaxed (in process)."""

import pytest

from shopray.api import Filters, SearchRequest
from shopray.domain import Intent
from shopray.graph import SearchContext
from shopray.pipeline import Pipeline
from shopray.stages.retrieve.constraints import Constraints
from shopray.stages.retrieve.index import FilterSpec

pytestmark = pytest.mark.ray  # the fixture index is built with Ray Data


@pytest.fixture(scope="module")
def pipeline(app_config):
    return Pipeline.from_config(app_config)


def _answer(pipeline, intent, **request):
    ctx = SearchContext(request=SearchRequest(query=intent.keywords, **request), intent=intent)
    for key in ("retrieve", "rank", "diversify"):
        ctx = pipeline[key].run(ctx)
    return ctx.response({})


def _tiers(pipeline, intent, response):
    constraints = Constraints.of(intent, FilterSpec(), pipeline["retrieve"].config.relax_order, 0.1)
    return [constraints.tier(r.meets) for r in response.results]


@pytest.mark.parametrize("diversity", [0.0, 1.0])
def test_exact_matches_come_first_then_one_relaxed_constraint_at_a_time(pipeline, small_catalog, scarce, diversity):
    intent, exact_ids = scarce
    response = _answer(pipeline, intent, k=10, diversity=diversity)
    ids = [r.product_id for r in response.results]
    assert len(ids) == 10 and set(ids[: len(exact_ids)]) == set(exact_ids), (ids, exact_ids)
    assert all(r.meets == ["color", "brand", "price", "category"] for r in response.results[: len(exact_ids)])
    order = pipeline["retrieve"].config.relax_order
    assert order == ["color", "brand", "price", "category"]  # the default
    assert response.stated == order
    tiers = _tiers(pipeline, intent, response)
    assert tiers == sorted(tiers) and tiers[len(exact_ids)] == 1  # the next best: the same brand, category and budget in other colors
    by_id = {p.product_id: p for p in small_catalog}
    for r in response.results:  # each result says truthfully what it keeps
        p = by_id[r.product_id]
        kept = {"color": p.color == intent.color, "brand": p.brand == intent.brand, "category": p.category == intent.category, "price": p.price <= intent.price_max}
        assert r.meets == [c for c in order if kept[c]]
    missing = {c for r in response.results for c in order if c not in r.meets}
    assert response.relaxed == [c for c in order if c in missing] and response.relaxed[0] == "color"


def test_strict_answers_exact_matches_only(pipeline, scarce):
    intent, exact_ids = scarce
    response = _answer(pipeline, intent, k=10, strict=True)
    assert sorted(r.product_id for r in response.results) == sorted(exact_ids) and response.relaxed == []


def test_a_near_miss_on_price_ranks_by_how_far_it_misses(pipeline, small_catalog):
    leaf = max({p.category for p in small_catalog if p.category}, key=lambda c: sum(p.category == c for p in small_catalog))
    prices = sorted(p.price for p in small_catalog if p.category == leaf)
    bound = prices[0]  # one exact match, every other product of the category over budget
    intent = Intent(keywords=leaf.split(" > ")[-1], category=leaf, price_max=bound)
    response = _answer(pipeline, intent, k=10, diversity=0)
    over = [r.price for r in response.results if r.meets == ["category"]]
    assert response.results[0].price <= bound and response.relaxed == ["price"]
    bands = [int((price - bound) / bound / 0.1) for price in over]
    assert len(over) >= 3 and bands == sorted(bands), over  # $92 before $169 for "under 90"


def test_hard_filters_are_never_relaxed(pipeline, scarce):
    intent, _ = scarce
    response = _answer(pipeline, intent, k=20, filters=Filters(brand=intent.brand))
    assert all(r.brand == intent.brand for r in response.results)
    assert "brand" not in response.relaxed and all("brand" not in r.meets for r in response.results)


def test_a_query_without_constraints_has_no_tiers(pipeline):
    response = _answer(pipeline, Intent(keywords="gift"), k=5)
    assert response.stated == response.relaxed == [] and all(r.meets is None for r in response.results)
