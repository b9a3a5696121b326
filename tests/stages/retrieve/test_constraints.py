"""Stated constraints, tiers and price bands, without an index."""

import numpy as np

from shopray.domain import CandidateSet, Intent, Tiers
from shopray.stages.retrieve.constraints import MAX_BANDS, Constraints
from shopray.stages.retrieve.index import FilterSpec

ORDER = ["color", "brand", "category", "price"]
INTENT = Intent(keywords="running shoes", brand="Nike", color="blue", category="Shoes > Running", price_max=90)


def _shoe(brand="Nike", color="blue", category="Shoes > Running", price=80.0):
    return {"brand": brand, "color": color, "category": category, "price": price}


def test_the_intent_states_what_the_hard_filters_leave_open():
    c = Constraints.of(INTENT, FilterSpec(), ORDER, 0.1)
    assert c.stated == ("color", "brand", "category", "price")
    assert c.exact == FilterSpec(brand="Nike", category="Shoes > Running", color="blue", price_max=90)
    hard = Constraints.of(INTENT, FilterSpec(brand="Nike", price_max=200), ORDER, 0.1)
    assert hard.stated == ("color", "category")  # the client's brand and price hold always; never relaxed, never "stated"
    assert hard.exact.price_max == 200 and hard.relaxed(2) == FilterSpec(brand="Nike", price_max=200)
    assert Constraints.of(Intent(keywords="shoes"), FilterSpec(), ORDER, 0.1).stated == ()
    assert Constraints.of(INTENT, FilterSpec(), ["price"], 0.1).stated == ("price",)  # the rest are never relaxed


def test_relaxation_gives_up_one_constraint_at_a_time_in_order():
    c = Constraints.of(INTENT, FilterSpec(), ORDER, 0.1)
    assert [c.relaxed(n) for n in range(5)] == [
        FilterSpec(brand="Nike", category="Shoes > Running", color="blue", price_max=90),
        FilterSpec(brand="Nike", category="Shoes > Running", price_max=90),
        FilterSpec(category="Shoes > Running", price_max=90),
        FilterSpec(price_max=90),
        FilterSpec(),
    ]


def test_tiers_follow_the_relax_order_and_price_misses_band_by_distance():
    c = Constraints.of(INTENT, FilterSpec(), ORDER, 0.1)
    shoes = [
        _shoe(),  # exact
        _shoe(color="red"),  # gives up color: tier 1
        _shoe(brand="Adidas"),  # blue running under 90, other brand: tier 2 (brand goes after color)
        _shoe(brand="Adidas", color="red"),  # tier 2 as well
        _shoe(price=92.0),  # only the price, by 2%: tier 4, first band
        _shoe(price=169.99),  # only the price, by 89%: tier 4, a later band
        _shoe(category="Shoes > Trail", price=92.0),  # price and category: tier 4, same band as 92
        {"brand": "Nike", "color": "blue", "category": "Shoes > Running"},  # no price: last
    ]
    groups, meets = c.groups(shoes)
    assert meets[0] == ["color", "brand", "category", "price"] and meets[1] == ["brand", "category", "price"]
    assert meets[4] == ["color", "brand", "category"] and meets[7] == ["color", "brand", "category"]
    tiers = groups // (MAX_BANDS + 1)
    assert tiers.tolist() == [0, 1, 2, 2, 4, 4, 4, 4]
    assert groups[4] < groups[5] < groups[7] and groups[4] == groups[6]
    assert groups[0] < groups[1] < groups[2] == groups[3] < groups[4]


def test_a_price_floor_misses_by_how_far_below():
    c = Constraints.of(Intent(keywords="tv", price_min=500), FilterSpec(), ORDER, 0.1)
    groups, meets = c.groups([{"price": 600.0}, {"price": 480.0}, {"price": 100.0}])
    assert meets == [["price"], [], []] and groups[0] < groups[1] < groups[2]


def test_relaxed_lists_what_some_candidate_gives_up_in_order():
    tiers = Tiers(stated=("color", "brand", "price"), groups=np.array([0, 1, 2]), meets=[["color", "brand", "price"], ["brand", "price"], ["price"]])
    assert tiers.relaxed() == ["color", "brand"]
    assert tiers.take(np.array([0])).relaxed() == []
    assert Tiers(stated=("color",), groups=np.zeros(0, dtype=int), meets=[]).relaxed() == []


def test_candidates_carry_their_tiers_through_take():
    tiers = Tiers(stated=("color",), groups=np.array([0, 1, 1]), meets=[["color"], [], []])
    c = CandidateSet(ids=list("abc"), payloads=[{}, {}, {}], scores=np.array([3.0, 2, 1]), embeddings=np.eye(3, 4), tiers=tiers)
    picked = c.take([2, 0])
    assert picked.groups().tolist() == [1, 0] and picked.tiers.meets == [[], ["color"]]
    assert CandidateSet(ids=list("ab"), payloads=[{}, {}], scores=np.zeros(2), embeddings=np.zeros((2, 4))).groups().tolist() == [0, 0]
