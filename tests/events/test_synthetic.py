"""Synthetic shoppers: the story shopray.events.synthetic states is the one its events and grades tell."""

from __future__ import annotations

from collections import Counter

import pytest

from shopray.catalog.demo import generate_demo_catalog
from shopray.events.synthetic import synthetic_shoppers


@pytest.fixture(scope="module")
def catalog():
    return generate_demo_catalog(n=1500, seed=3)


def test_the_same_seed_gives_the_same_shoppers(catalog):
    a, b = (synthetic_shoppers(catalog, 20, seed=5, events=2000, now=1.7e9) for _ in range(2))
    assert a == b
    assert synthetic_shoppers(catalog, 20, seed=6, events=2000, now=1.7e9).sessions != a.sessions


def test_sessions_click_their_taste_and_grades_follow_it(catalog):
    by_id = {p.product_id: p for p in catalog}
    shoppers = synthetic_shoppers(catalog, 50, seed=1, events=5000)
    for s in shoppers.sessions:
        leaf = {by_id[p].leaf_category for p in s.gains}
        assert len(leaf) == 1 and s.query == leaf.pop().lower()
        brands = {by_id[p].brand for p in s.clicked}
        assert len(brands) == 1 and 1 <= len(s.clicked) <= 3
        assert all(s.gains[p] >= 2 for p in s.clicked)  # the taste's brand is graded up
        assert set(s.gains.values()) <= {1.0, 2.0, 3.0}
    clicks = {(e.session_id, e.product_id) for e in shoppers.events if e.session_id.startswith("judged")}
    assert clicks == {(s.session_id, p) for s in shoppers.sessions for p in s.clicked}


def test_traffic_follows_appeal(catalog):
    shoppers = synthetic_shoppers(catalog, 1, seed=2, events=20_000)
    counts = Counter(e.product_id for e in shoppers.events)
    by_appeal = sorted(catalog, key=lambda p: p.popularity or 0.0)
    top, bottom = by_appeal[-len(catalog) // 10:], by_appeal[: len(catalog) // 10]
    assert sum(counts[p.product_id] for p in top) > 10 * sum(counts[p.product_id] for p in bottom)
    assert Counter(e.type for e in shoppers.events).most_common(1)[0][0] == "view"


def test_without_signal_the_grades_ignore_the_clicks(catalog):
    by_id = {p.product_id: p for p in catalog}
    shoppers = synthetic_shoppers(catalog, 80, seed=1, events=2000, signal=False)
    graded_up = [all(s.gains[p] >= 2 for p in s.clicked) for s in shoppers.sessions]
    assert sum(graded_up) < 0.7 * len(graded_up)  # with signal every session's clicks are graded up
    assert all(by_id[p].leaf_category == by_id[s.clicked[0]].leaf_category for s in shoppers.sessions for p in s.gains)


def test_a_catalog_without_categories_is_refused():
    plain = [p.model_copy(update={"category": None}) for p in generate_demo_catalog(n=50, seed=1)]
    with pytest.raises(ValueError, match="leaf category"):
        synthetic_shoppers(plain, 5, seed=0)
