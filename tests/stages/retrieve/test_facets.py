"""Facet counts of a result set, and filtering on what they name."""

import pytest

from shopray.api import Filters, SearchRequest
from shopray.pipeline import Pipeline
from shopray.stages.retrieve.facets import count_facets, nice, price_bands


@pytest.mark.parametrize("x, expected", [(0, 0), (0.7, 0.5), (1, 1), (19.99, 10), (24, 20), (26, 25), (999, 500), (1200, 1000)])
def test_band_edges_are_numbers_a_shopper_reads(x, expected):
    assert nice(x) == expected


def test_price_bands_cover_every_price_once():
    prices = [3.5, 9.99, 12, 18, 25, 40, 55, 80, 120, 480, 950, 1500]
    bands = price_bands(prices, 5)
    assert 1 < len(bands) <= 5
    assert bands[0].price_min is None and bands[-1].price_max is None
    assert all(a.price_max == b.price_min for a, b in zip(bands, bands[1:]))  # contiguous
    assert sum(b.count for b in bands) == len(prices)
    assert price_bands([], 5) == [] and [b.count for b in price_bands([7.0] * 4, 5)] == [4]


def test_counts_are_commonest_first_and_skip_missing_values():
    payloads = [{"brand": "Acme", "color": "red", "price": 5}, {"brand": "Acme"}, {"brand": "Zed", "color": None}, {"category": "A > B"}]
    facets = count_facets(payloads, limit=1, bands=3)
    assert [(c.value, c.count) for c in facets.brand] == [("Acme", 2)]
    assert [(c.value, c.count) for c in facets.color] == [("red", 1)]
    assert [(c.value, c.count) for c in facets.category] == [("A > B", 1)]
    assert sum(b.count for b in facets.price) == 1


@pytest.mark.ray
def test_a_search_counts_its_results_and_filters_on_any_facet_value(app_config):
    pipeline = Pipeline.from_config(app_config, keys=["retrieve"])
    assert pipeline.search(SearchRequest(query="shoes")).facets is None  # only when asked
    facets = pipeline.search(SearchRequest(query="shoes", facets=True)).facets
    assert facets.brand and facets.category and facets.price
    assert sum(b.count for b in facets.price) == app_config.retriever.candidates
    for field, counts in (("brand", facets.brand), ("category", facets.category), ("color", facets.color)):
        value = counts[0].value
        narrowed = pipeline.search(SearchRequest(query="shoes", k=100, filters=Filters(**{field: value}), facets=True))
        assert narrowed.results and all(r.model_dump()[field] == value for r in narrowed.results)
        assert [(c.value, c.count) for c in getattr(narrowed.facets, field)] == [(value, len(narrowed.results))]
    band = facets.price[0]
    cheap = pipeline.search(SearchRequest(query="shoes", k=100, filters=Filters(price_min=band.price_min, price_max=band.price_max)))
    assert cheap.results and all(r.model_dump()["price"] <= band.price_max for r in cheap.results)
