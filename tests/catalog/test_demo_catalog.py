"""Demo catalog generator: determinism, coverage, realism. Fast, no Ray."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections import Counter

import pytest

from shopray.catalog.demo import generate_demo_catalog, label, shelf_price, write_jsonl  # noqa: E402
from shopray.catalog.taxonomy import DATA_FILE, Leaf, TaxonomyError, load_taxonomy  # noqa: E402
from shopray.domain import Product  # noqa: E402

TAX = load_taxonomy()


@pytest.fixture(scope="module")
def catalog() -> list[Product]:
    return generate_demo_catalog()


def _dump(products: list[Product]) -> list[dict]:
    return [p.model_dump() for p in products]


# --------------------------------------------------------------------------- #
# Determinism
# --------------------------------------------------------------------------- #


def test_same_seed_same_catalog():
    assert _dump(generate_demo_catalog(2000, seed=3)) == _dump(generate_demo_catalog(2000, seed=3))


def test_different_seed_differs():
    a = _dump(generate_demo_catalog(500, seed=7))
    b = _dump(generate_demo_catalog(500, seed=8))
    assert a != b
    # Not just a reshuffle of a few fields: most products differ.
    assert sum(x != y for x, y in zip(a, b)) > 400


def test_smaller_n_is_prefix_of_default(catalog):
    assert _dump(generate_demo_catalog(1500)) == _dump(catalog[:1500])


def _digest_in_subprocess(hash_seed: str) -> str:
    code = (
        "import hashlib, json;"
        "from shopray.catalog.demo import generate_demo_catalog;"
        "ps = generate_demo_catalog(300, seed=11);"
        "print(hashlib.sha256(json.dumps([p.payload() for p in ps]).encode()).hexdigest())"
    )
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_independent_of_hash_seed():
    local = hashlib.sha256(
        json.dumps([p.payload() for p in generate_demo_catalog(300, seed=11)]).encode()
    ).hexdigest()
    assert _digest_in_subprocess("1") == local
    assert _digest_in_subprocess("4242") == local


def test_edge_sizes():
    assert generate_demo_catalog(0) == []
    assert len(generate_demo_catalog(1)) == 1
    with pytest.raises(ValueError):
        generate_demo_catalog(-1)


# --------------------------------------------------------------------------- #
# Size and coverage
# --------------------------------------------------------------------------- #


def test_default_size(catalog):
    assert len(catalog) == 24_000 >= 20_000


def test_taxonomy_coverage(catalog):
    categories = {p.category for p in catalog}
    assert len(TAX.leaves) >= 30
    assert categories == set(TAX.leaves)
    departments = {c.split(" > ")[0] for c in categories}
    assert len(departments) >= 8
    for path in categories:
        assert all(level and level == level.strip() for level in path.split(" > "))
        assert len(path.split(" > ")) >= 2


def test_brand_and_color_counts(catalog):
    brands = {p.brand for p in catalog}
    colors = {p.color for p in catalog if p.color}
    assert len(TAX.all_brands()) >= 150
    assert len(brands) >= 150
    assert len(colors) >= 12
    assert all(c == c.lower() for c in colors)
    assert colors <= set(TAX.colors)


def test_each_leaf_has_own_brand_list():
    for path, leaf in TAX.leaves.items():
        assert len(leaf.brands) >= 6, path
        assert leaf.materials, path
        low, high = leaf.price
        assert 0 < low < high, path


# --------------------------------------------------------------------------- #
# Per-product validity
# --------------------------------------------------------------------------- #


def test_every_product_validates(catalog):
    for p in catalog:
        assert isinstance(p, Product)
        Product.model_validate(p.model_dump())


def test_ids_unique_and_zero_padded(catalog):
    ids = [p.product_id for p in catalog]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"D\d{6}", i) for i in ids)
    assert ids[0] == "D000001" and ids[-1] == "D024000"


def test_prices_in_category_range_and_end_in_99(catalog):
    for p in catalog:
        low, high = TAX.leaves[p.category].price
        assert p.price is not None and p.price > 0
        assert low <= p.price <= high, (p.category, p.price)
        assert round(p.price * 100) % 100 == 99, p.price


def test_prices_look_realistic(catalog):
    def median(path: str) -> float:
        prices = sorted(p.price for p in catalog if p.category == path)
        return prices[len(prices) // 2]

    assert 60 <= median("Shoes > Running") <= 140
    assert median("Clothing > Socks") <= 20
    assert median("Electronics > TVs") >= 400
    assert median("Furniture > Living Room > Sofas") >= 800


def test_premium_brands_cost_more(catalog):
    def mean_price(brand: str, path: str) -> float:
        prices = [p.price for p in catalog if p.brand == brand and p.category == path]
        return sum(prices) / len(prices)

    assert mean_price("Hoka", "Shoes > Running") > mean_price("Skechers", "Shoes > Running")
    assert mean_price("Vitamix", "Home & Kitchen > Small Appliances > Blenders") > mean_price(
        "Oster", "Home & Kitchen > Small Appliances > Blenders"
    )


def test_bigger_tvs_cost_more(catalog):
    tvs = [p for p in catalog if p.category == "Electronics > TVs"]
    small = [p.price for p in tvs if p.attributes["size"] == "43 in"]
    large = [p.price for p in tvs if p.attributes["size"] == "75 in"]
    assert sum(large) / len(large) > 1.5 * sum(small) / len(small)


def test_titles_name_brand_category_and_color(catalog):
    with_color = 0
    color_in_title = 0
    for p in catalog:
        leaf = TAX.leaves[p.category]
        assert p.brand and p.brand in p.title, p.title
        assert leaf.noun in p.title, p.title
        assert "  " not in p.title and "{" not in p.title and " ," not in p.title, p.title
        if p.color:
            with_color += 1
            color_in_title += p.color in p.title.lower()
    assert color_in_title / with_color > 0.8


def test_descriptions_are_short_sentences(catalog):
    for p in catalog:
        assert p.description and p.description.endswith("."), p.description
        # Brand and line names may hold periods ("Mr. Coffee", "G.T. Cut") or start lower case ("iFixit").
        text = p.description.replace(p.brand, "X")
        assert not text[0].islower(), p.description
        text = re.sub(r"\b[A-Z][\w.-]*\.\w[\w.]*", "X", text)
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s]
        assert 1 <= len(sentences) <= 4, p.description


def test_attributes_are_lower_case_and_fit(catalog):
    for p in catalog:
        leaf = TAX.leaves[p.category]
        attrs = p.attributes
        assert attrs[leaf.material_key] in leaf.materials
        for key, value in attrs.items():
            assert isinstance(value, str) and value == value.lower() and value.strip() == value, (key, value)
        if leaf.sizes:
            assert attrs["size"] in {v for v, _ in TAX.sizes[leaf.sizes]}
        if leaf.features:
            assert attrs["feature"] in leaf.features
        if leaf.genders:
            assert attrs["gender"] in leaf.genders
        for key, values in leaf.extras.items():
            assert attrs[key] in values


def test_popularity_is_heavy_tailed(catalog):
    pops = sorted(p.popularity for p in catalog)
    assert pops[0] >= 0
    median = pops[len(pops) // 2]
    assert pops[-1] > 20 * median
    top_share = sum(pops[-len(pops) // 100:]) / sum(pops)
    assert top_share > 0.05  # top 1% of items hold well over 1% of popularity


def test_taxonomy_references_resolve():
    for path, leaf in TAX.leaves.items():
        assert leaf.sizes is None or leaf.sizes in TAX.sizes, path
        for feature in leaf.features:
            assert feature in TAX.feature_sentences, (path, feature)
        assert set(leaf.colors) <= set(TAX.colors), path
        assert leaf.material_key in TAX.description_templates, path


def test_taxonomy_file_names_resolve():
    running = TAX.leaves["Shoes > Running"]
    assert isinstance(running, Leaf) and running.price == (40, 200)
    assert [running.brands[b][0] for b in ("Skechers", "Nike", "Hoka")] == [-1, 0, 1]  # budget, mid, premium
    assert running.title == "{brand} {line} {gender} {noun} - {color}, Size {size}"  # titles: shoe
    assert TAX.leaves["Tools & Home Improvement > Power Tools > Drills"].uses[0] == "home repairs"  # uses: tools
    assert load_taxonomy() is TAX  # parsed once


@pytest.mark.parametrize(
    "old, new, leaf, problem",
    [
        ("    sizes: shoe\n", "    sizes: shoes\n", "Shoes > Running", "sizes 'shoes'"),
        ("    title: shoe\n", "    title: shoes\n", "Shoes > Running", "title 'shoes'"),
        ("Nike: {tier: mid,", "Nike: {tier: medium,", "Shoes > Running", "brands ['Nike']"),
        ("    uses: tools\n", "    uses: tool\n", "Tools & Home Improvement > Power Tools > Drills", "uses 'tool'"),
        ("{feature} {size} {noun}", "{feture} {size} {noun}", "Tools & Home Improvement > Power Tools > Drills",
         "unknown title fields ['feture']"),
        ("material_key: ingredient", "material_key: ingredients", "Beauty > Skincare > Moisturizers",
         "material_key 'ingredients'"),
        ("    noun: Running Shoes\n", "    nouns: Running Shoes\n", "Shoes > Running", "nouns"),
    ],
)
def test_taxonomy_errors_name_the_leaf(tmp_path, old, new, leaf, problem):
    text = DATA_FILE.read_text(encoding="utf-8")
    assert old in text
    broken = tmp_path / "demo_taxonomy.yaml"
    broken.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(TaxonomyError) as info:
        load_taxonomy(broken)
    assert f"leaf {leaf!r}" in str(info.value) and problem in str(info.value)


# --------------------------------------------------------------------------- #
# Shopper-style sanity queries
# --------------------------------------------------------------------------- #


def test_red_running_shoes_under_80_exist(catalog):
    hits = [
        p for p in catalog
        if p.category == "Shoes > Running" and p.color == "red" and p.price < 80
    ]
    assert hits
    assert all("Running Shoes" in p.title and "Red" in p.title for p in hits)


def test_other_queries_have_answers(catalog):
    def count(pred) -> int:
        return sum(1 for p in catalog if pred(p))

    assert count(lambda p: p.category == "Shoes > Hiking Boots" and p.attributes.get("feature") == "waterproof"
                 and p.attributes.get("gender") == "women") > 10
    assert count(lambda p: p.category == "Electronics > Audio > Headphones" and p.brand == "Sony"
                 and p.attributes.get("feature") == "noise cancelling") > 3
    assert count(lambda p: p.category == "Electronics > TVs" and p.attributes.get("size") == "65 in") > 30
    assert count(lambda p: p.brand == "DeWalt" and p.category.endswith("Drills") and p.color == "yellow") > 10
    assert count(lambda p: p.brand == "LEGO" and p.category == "Toys > Building Sets") > 20
    assert count(lambda p: p.category == "Clothing > Socks" and p.price <= 15) > 100


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


def test_write_jsonl_round_trip(tmp_path):
    products = generate_demo_catalog(50, seed=1)
    path = tmp_path / "nested" / "demo.jsonl"
    assert write_jsonl(products, path) == 50
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 50
    for line, original in zip(lines, products):
        row = json.loads(line)
        assert row == original.payload()
        assert None not in row.values()
        assert Product(**row) == original


def test_shelf_price():
    assert shelf_price(47.3, 40, 200) == 47.99
    assert shelf_price(143.0, 40, 200) == 149.99
    assert shelf_price(5000.0, 40, 200) == 199.99
    assert shelf_price(1.0, 40, 200) == 40.99
    assert shelf_price(199.5, 150, 200) == 199.99


def test_label():
    assert label("noise cancelling") == "Noise Cancelling"
    assert label("oil-free") == "Oil-Free"
    assert label("16gb") == "16GB"
    assert label("120hz") == "120Hz"
    assert label("5 in") == '5"'
    assert label("4k") == "4K"


def test_brand_spread_is_not_degenerate(catalog):
    per_leaf = Counter((p.category, p.brand) for p in catalog)
    for path, leaf in TAX.leaves.items():
        seen = [b for b in leaf.brands if per_leaf[(path, b)] > 0]
        assert len(seen) == len(leaf.brands), path
