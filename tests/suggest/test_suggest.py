"""Search-box suggestions: completion, typo tolerance, popular queries, kinds and paths, on a hand-made catalog and on the demo."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shopray.catalog.demo import generate_demo_catalog
from shopray.config import SuggestConfig
from shopray.domain import Product, Vocabulary
from shopray.suggest import MAX_QUERY_CHARS, Suggester

ROWS = [
    ("Nike Pegasus 40 Men's Running Shoes - Black", "Nike", "Shoes > Running", "black"),
    ("Nike Pegasus 41 Women's Running Shoes - Blue", "Nike", "Shoes > Running", "blue"),
    ("Nike Revolution 7 Men's Running Shoes - Black", "Nike", "Shoes > Running", "black"),
    ("Nike Club Fleece Pullover Hoodie - Grey", "Nike", "Clothing > Tops > Hoodies", "grey"),
    ("Adidas Ultraboost Men's Running Shoes - White", "Adidas", "Shoes > Running", "white"),
    ("DeWalt 20V Cordless Drill Driver Kit", "DeWalt", "Tools > Power Tools > Drills", "yellow"),
    ("DeWalt Atomic Cordless Drill Driver Kit", "DeWalt", "Tools > Power Tools > Drills", "yellow"),
    ("Makita 18V Cordless Drill Driver Kit", "Makita", "Tools > Power Tools > Drills", "teal"),
    ('All-Clad 10" Stainless Steel Skillet', "All-Clad", "Home & Kitchen > Cookware > Skillets", "silver"),
    ('Lodge 12" Stainless Steel Skillet', "Lodge", "Home & Kitchen > Cookware > Skillets", "silver"),
    ("Tramontina Stainless Steel Saucepan", "Tramontina", "Home & Kitchen > Cookware > Saucepans", "silver"),
    ("Weber Spirit Gas Grill", "Weber", "Outdoor > Grills", "black"),
    ("Weber Kettle Charcoal Grill", "Weber", "Outdoor > Grills", "black"),
    ("Cosori Pro Air Fryer, 5 qt", "Cosori", "Home & Kitchen > Small Appliances > Air Fryers", "grey"),
    ("Ninja Max Air Fryer, 4 qt", "Ninja", "Home & Kitchen > Small Appliances > Air Fryers", "black"),
]
PRODUCTS = [Product(product_id=str(i), title=t, brand=b, category=c, color=col) for i, (t, b, c, col) in enumerate(ROWS)]
ODD = ["a" * 10_000, "中文", "😀" * 500, "\x00\u202e\ufeff", "'''", "-- ,, ", "ñandú über straße", "Ｎｉｋｅ " * 50, "1/2\" 3x4"]


@pytest.fixture
def small() -> Suggester:
    return Suggester.from_products(PRODUCTS, SuggestConfig(min_products=2))


@pytest.fixture(scope="module")
def demo() -> tuple[Suggester, list[Product]]:
    products = generate_demo_catalog()
    return Suggester.from_products(products, SuggestConfig()), products


def texts(suggester: Suggester, q: str, **kw) -> list[str]:
    return [s.text for s in suggester.suggest(q, **kw)]


def test_the_last_word_completes_as_a_prefix_case_insensitively(small):
    assert texts(small, "NIK")[0] == "nike"
    assert texts(small, "nike run") == ["nike running"]
    assert texts(small, "stainless ste") == ["stainless steel", "stainless steel skillet"]
    assert texts(small, "nike ") == ["nike", "nike running", "nike pegasus", "nike hoodies"]  # heaviest first
    assert texts(small, "drill") == ["drill driver kit", "drills"]  # equal weights: alphabetical
    assert texts(small, "drill ") == ["drill driver kit", "drills"]  # a complete word ends there ("drills" is also indexed as "drill")


def test_typos_in_earlier_words_and_in_the_word_being_typed(small):
    assert texts(small, "stainles ste") == ["stainless steel", "stainless steel skillet"]
    assert texts(small, "nik runn") == ["nike running"]
    assert texts(small, "drlil") == ["drill driver kit", "drills"]
    assert texts(small, "wbeer grils") == ["weber grills"]


def test_max_edits_two_reaches_further_on_long_words():
    two = Suggester.from_products(PRODUCTS, SuggestConfig(min_products=2, max_edits=2))
    one = Suggester.from_products(PRODUCTS, SuggestConfig(min_products=2, max_edits=1))
    assert texts(two, "crodelss dr") == ["cordless drill driver kit"] and texts(one, "crodelss dr") == []
    assert texts(two, "ncie") == []  # two edits only from eight letters


def test_a_word_that_begins_an_indexed_word_is_not_corrected(small):
    # "gril" begins "grill"; "drill" is one edit away but must not crowd in.
    assert texts(small, "gril") == ["grills"]
    assert texts(small, "nike xq") == []


def test_a_long_text_completes_from_its_tail_and_keeps_its_head(small):
    assert texts(small, "Nike Pegasus 40 Men's Runn") == ["nike pegasus 40 men's running shoes"]
    assert texts(small, "nike pegasus 40 x") == []  # a one-word tail would complete to anything


def test_the_last_word_completes_among_titles_holding_every_earlier_word(small):
    # No phrase runs "nike bl..." (the titles read "Nike ... - Black"): the titles holding every earlier word complete
    # the last one, most titles first.
    assert [(s.text, s.kind, s.score) for s in small.suggest("nike bl")] == [("nike black", "phrase", 2.0), ("nike blue", "phrase", 1.0)]
    assert texts(small, "stainles skil") == ["stainless skillet"]  # an earlier word is corrected to a title word
    assert texts(small, "nike bl ") == []  # a finished word is not completed
    assert texts(small, "weber fr") == []  # "fryer" never shares a title with "weber"


def test_kinds_and_category_paths(small):
    by_text = {s.text: s for q in ("weber", "grills", "black g", "drill", "nike") for s in small.suggest(q, k=20)}
    assert (by_text["weber"].kind, by_text["weber"].category) == ("brand", None)
    assert (by_text["grills"].kind, by_text["grills"].category) == ("category", "Outdoor > Grills")
    assert (by_text["black grills"].kind, by_text["black grills"].category) == ("category", "Outdoor > Grills")
    assert (by_text["weber grills"].kind, by_text["weber grills"].category) == ("category", "Outdoor > Grills")
    assert (by_text["drill driver kit"].kind, by_text["drill driver kit"].category) == ("phrase", None)
    assert by_text["nike running"].score == 3  # Nike products in Shoes > Running
    assert "black hoodies" not in by_text and "nike drills" not in by_text  # only pairs that occur


def test_plural_twins_are_one_suggestion_found_by_either_spelling(small):
    for q in ("air fryer", "air fryers", "air fr"):
        assert texts(small, q) == ["air fryers"], q
    assert small.suggest("air fryer")[0].category == "Home & Kitchen > Small Appliances > Air Fryers"


def test_popular_queries_join_only_from_min_count_and_replace_the_previous_set(small):
    small.update_queries([("trail running shoes", 5), ("Weber grill cover", 2), ("weber  GRILL cover", 1), ("my address 12 elm st", 2), ("Weber", 40)])
    assert small.suggest("trail")[0].model_dump() == {"text": "trail running shoes", "kind": "query", "category": None, "score": 5.0}
    assert "weber grill cover" in texts(small, "weber gr")  # 2 + 1 searches of one normalised query
    assert texts(small, "my") == []  # searched twice only: perhaps one shopper's
    weber = small.suggest("weber")[0]
    assert (weber.text, weber.kind, weber.score) == ("weber", "brand", 40.0)  # a catalog phrase keeps its kind, takes the query's weight
    small.update_queries([("trail running shoes", 2)])
    assert texts(small, "trail") == [] and small.suggest("weber")[0].score == 2


def test_queries_weight_sets_how_queries_rank_against_the_catalog():
    light = Suggester.from_products(PRODUCTS, SuggestConfig(min_products=2, queries_weight=0.1))
    heavy = Suggester.from_products(PRODUCTS, SuggestConfig(min_products=2, queries_weight=10))
    for s in (light, heavy):
        s.update_queries([("nike air max", 3)])
    assert texts(light, "nike ")[-1] == "nike air max" and texts(heavy, "nike ")[0] == "nike air max"


def test_k_is_respected_and_nothing_repeats(small):
    assert len(small.suggest("n", k=2)) == 2
    assert len(small.suggest("")) == SuggestConfig().k
    everything = texts(small, "", k=20)
    assert len(everything) == 20 == len(set(everything))
    with pytest.raises(ValueError):
        small.suggest("nike", k=0)


def test_empty_or_short_q_gets_the_most_popular(small):
    cold = small.suggest("   ")
    assert [s.score for s in cold] == sorted((s.score for s in cold), reverse=True)
    assert cold[0].text == "nike" and cold == small.suggest("")
    small.update_queries([("gift card", 100)])
    assert texts(small, "")[0] == "gift card"
    strict = Suggester.from_products(PRODUCTS, SuggestConfig(min_products=2, min_prefix=3))
    assert texts(strict, "ad") == texts(strict, "") and texts(strict, "adi") == ["adidas", "adidas running"]


def test_long_or_odd_input_is_read_not_refused(small):
    for q in ODD:
        assert all(s.text for s in small.suggest(q)), q
    assert texts(small, "Ｎｉｋｅ")[0] == "nike"
    assert texts(small, "nike" + " " * MAX_QUERY_CHARS + "zzz") == texts(small, "nike ")  # read up to MAX_QUERY_CHARS


def test_accents_and_full_width_forms_fold_on_both_sides():
    titles = [f"Café Bustelo Espresso Ground Coffee, {n} oz" for n in (6, 10, 36)]
    cafe = Suggester.from_products([Product(product_id=t, title=t, brand="Café Bustelo") for t in titles], SuggestConfig(min_products=2))
    for q in ("cafe bu", "CAFÉ BU", "ｃａｆｅ ｂｕ"):
        assert texts(cafe, q) == ["café bustelo", "cafe bustelo espresso ground"], q


def test_config_refuses_unknown_fields_and_describes_every_field():
    assert all(f.description for f in SuggestConfig.model_fields.values())
    with pytest.raises(ValidationError):
        SuggestConfig(top_k=3)
    with pytest.raises(ValidationError):
        SuggestConfig(max_edits=3)


def test_demo_completions_and_typos(demo):
    suggester, _ = demo
    nike = suggester.suggest("nik runn")[0]
    assert (nike.text, nike.kind, nike.category) == ("nike running", "category", "Shoes > Running")
    assert texts(suggester, "stainles ste")[0] == "stainless steel skillet"
    assert texts(suggester, "drlil")[:2] == ["drill driver kit", "drills"]
    assert all(t.startswith("iphone") for t in texts(suggester, "ipho"))
    assert texts(suggester, "runing sh")[:2] == ["running shoes", "running shorts"]
    assert texts(suggester, "Bose QuietComfort Ultra Noise Cancelli")[0].startswith("bose quietcomfort ultra noise cancelling")
    assert {"cordless drill", "cordless driver"} <= set(texts(suggester, "cordless dr"))  # titles read "Cordless 1/2\" Drill Driver Kit"


def test_demo_suggestions_name_real_brands_and_category_paths(demo):
    suggester, products = demo
    vocabulary = Vocabulary.from_products(products)
    brands = {b.lower() for b in vocabulary.brands}
    seen = 0
    for q in [*"abcdefghijklmnopqrstuvwxyz", "", "sam", "men's ", "blue r", "the n", *ODD]:
        found = suggester.suggest(q, k=12)
        assert len(found) <= 12 and len({s.text for s in found}) == len(found), q
        assert [s.score for s in found] == sorted((s.score for s in found), reverse=True), q
        for s in found:
            seen += 1
            assert (s.category in vocabulary.categories) if s.kind == "category" else s.category is None, s
            assert s.kind != "brand" or s.text in brands, s
            assert s.kind != "query", s
    assert seen > 300
