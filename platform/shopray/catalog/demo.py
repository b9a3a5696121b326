"""Deterministic demo catalog: realistic-looking products from ``demo_taxonomy.yaml``.

    products = generate_demo_catalog()            # 24,000 products, seed 7
    write_jsonl(products, "artifacts/demo.jsonl")

All randomness comes from one ``random.Random(seed)``, consumed in a fixed
order, so the same (n, seed) always yields the same list on any machine; no
global random state and no ``hash()`` of strings (PYTHONHASHSEED varies).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import time
from collections.abc import Iterable
from pathlib import Path

from shopray.catalog.taxonomy import Leaf, Taxonomy, load_taxonomy
from shopray.domain import Product

__all__ = ["generate_demo_catalog", "write_jsonl", "shelf_price", "label"]

DEFAULT_N = 24_000
DEFAULT_SEED = 7

_MODEL_RANGE = re.compile(r"\{(\d+)-(\d+)\}")
_UNIT = re.compile(r"^(\d+(?:\.\d+)?)(gb|tb|hz|w|mm)$")
_UNIT_LABELS = {"gb": "GB", "tb": "TB", "hz": "Hz", "w": "W", "mm": "mm"}
_INCHES = re.compile(r"^(\d+(?:\.\d+)?) in$")
_SPACES = re.compile(r"\s{2,}")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.])")
_DOUBLE_THE = re.compile(r"\b[Tt]he The\b")  # "the The North Face"
_LABELS: dict[str, str] = {}

# Price spread: the leaf's (low, high) range covers about +-2.5 sigma.
_SIGMAS_PER_RANGE = 5.0
_TIER_SHIFT = 0.9  # sigmas a brand tier moves the median price


def label(value: str) -> str:
    """Title form of a lower-case attribute value ("noise cancelling" -> "Noise Cancelling")."""
    cached = _LABELS.get(value)
    if cached is None:
        cached = _LABELS[value] = _make_label(value)
    return cached


def _make_label(value: str) -> str:
    display = load_taxonomy().display
    if value in display:
        return display[value]
    unit = _UNIT.match(value)
    if unit:
        return unit.group(1) + _UNIT_LABELS[unit.group(2)]
    inches = _INCHES.match(value)
    if inches:
        return f'{inches.group(1)}"'
    words = []
    for word in value.split(" "):
        words.append("-".join(part[:1].upper() + part[1:] for part in word.split("-")))
    return " ".join(words)


def shelf_price(raw: float, low: float, high: float) -> float:
    """Snap a raw price to a shelf price ending in .99 (x9.99 above 100) within [low, high]."""
    x = min(max(raw, low), high)
    step = 10 if x >= 100 else 1
    price = math.floor(x / step) * step + step - 0.01
    while price > high and price - step >= low:
        price -= step
    if price > high:
        price = math.floor(high) - 0.01
    if price < low:
        price = math.floor(low) + 0.99
    return round(price, 2)


class _LeafSampler:
    """Precomputed per-leaf choices so the per-product loop stays cheap."""

    def __init__(self, path: str, leaf: Leaf, taxonomy: Taxonomy) -> None:
        self.path = path
        self.leaf = leaf
        self.brand_names = list(leaf.brands)
        self.brand_colors = taxonomy.brand_colors
        self.gender_labels = taxonomy.gender_labels
        self.feature_sentences = taxonomy.feature_sentences
        self.sizes = taxonomy.sizes[leaf.sizes] if leaf.sizes else []
        # Middle sizes (shoe 9-10, 55" TVs) sell most, so weight them up.
        k = len(self.sizes)
        self.size_cum = _cumulative([1 + min(i, k - 1 - i) for i in range(k)])
        # Colors are listed most common first.
        self.color_cum = _cumulative([1 / (1 + i) ** 0.7 for i in range(len(leaf.colors))])
        low, high = leaf.price
        self.mu = (math.log(low) + math.log(high)) / 2
        self.sigma = (math.log(high) - math.log(low)) / _SIGMAS_PER_RANGE
        self.templates = taxonomy.description_templates[leaf.material_key]
        self.are = "are" if leaf.noun.endswith("s") else "is"
        # Keep acronyms in running text: "smart TV", not "smart tv".
        self.noun_lower = " ".join(w if w.isupper() and len(w) > 1 else w.lower() for w in leaf.noun.split())

    def product(self, rng: random.Random, product_id: str, brand_pop: dict[str, float]) -> Product:
        leaf = self.leaf
        brand = rng.choice(self.brand_names)
        tier, lines = leaf.brands[brand]
        line = _expand_model(rng, rng.choice(lines))

        if leaf.brand_colors and brand in self.brand_colors:
            color = self.brand_colors[brand]
        elif leaf.colors:
            color = rng.choices(leaf.colors, cum_weights=self.color_cum)[0]
        else:
            color = None
        material = rng.choice(leaf.materials)
        size_value, size_label, size_rank = None, "", 0.5
        if self.sizes:
            idx = rng.choices(range(len(self.sizes)), cum_weights=self.size_cum)[0]
            size_value, size_label = self.sizes[idx]
            size_rank = idx / (len(self.sizes) - 1) if len(self.sizes) > 1 else 0.5
        gender = rng.choice(leaf.genders) if leaf.genders else None
        feature = rng.choice(leaf.features) if leaf.features else None
        extras = {key: rng.choice(values) for key, values in leaf.extras.items()}

        shift = tier * _TIER_SHIFT * self.sigma
        shift += (size_rank - 0.5) * leaf.size_price_sigmas * self.sigma
        raw_price = math.exp(rng.gauss(self.mu + shift, self.sigma))
        price = shelf_price(raw_price, *leaf.price)
        # Cheaper tiers sell more units, and a few items dominate any catalog.
        popularity = brand_pop[brand] * math.exp(-0.3 * tier) * rng.lognormvariate(0.0, 1.1)

        fields = {
            "brand": brand,
            "line": line,
            "noun": leaf.noun,
            "color": label(color) if color else "",
            "size": size_label,
            "gender": self.gender_labels[gender] if gender else "",
            "feature": label(feature) if feature else "",
            "material": label(material),
        }
        fields.update({key: label(value) for key, value in extras.items()})
        title = _tidy(leaf.title.format_map(fields))

        template = rng.choice(self.templates)
        description = _tidy(
            template.format(
                brand=brand,
                line=line,
                noun_l=self.noun_lower,
                are=self.are,
                material=material,
                Material=material[:1].upper() + material[1:],
                use=rng.choice(leaf.uses),
                feature_sentence=self.feature_sentences[feature] if feature else "",
            )
        )

        attributes = {leaf.material_key: material}
        if size_value:
            attributes["size"] = size_value
        if gender:
            attributes["gender"] = gender
        if feature:
            attributes["feature"] = feature
        attributes.update(extras)

        return Product(
            product_id=product_id,
            title=title,
            description=description,
            brand=brand,
            category=self.path,
            color=color,
            price=price,
            attributes=attributes,
            popularity=round(popularity, 4),
        )


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def _expand_model(rng: random.Random, line: str) -> str:
    if "{" not in line:
        return line
    return _MODEL_RANGE.sub(lambda m: str(rng.randint(int(m.group(1)), int(m.group(2)))), line)


def _tidy(text: str) -> str:
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", _SPACES.sub(" ", text))
    if "The The" in text or "the The" in text:
        text = _DOUBLE_THE.sub("The", text)
    return text.strip()


def generate_demo_catalog(n: int = DEFAULT_N, seed: int = DEFAULT_SEED) -> list[Product]:
    """``n`` products drawn from the demo taxonomy; identical for identical (n, seed).

    Ids are "D" plus the 1-based position, zero-padded to at least six digits.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed)
    taxonomy = load_taxonomy()
    samplers = [_LeafSampler(path, leaf, taxonomy) for path, leaf in taxonomy.leaves.items()]
    leaf_cum = _cumulative([s.leaf.weight for s in samplers])
    # Some brands are simply better known; one draw per brand, in sorted order.
    brand_pop = {brand: rng.lognormvariate(0.0, 0.6) for brand in taxonomy.all_brands()}
    width = max(6, len(str(n)))
    products = []
    for i in range(n):
        sampler = rng.choices(samplers, cum_weights=leaf_cum)[0]
        products.append(sampler.product(rng, f"D{i + 1:0{width}d}", brand_pop))
    return products


def write_jsonl(products: Iterable[Product], path: str | Path) -> int:
    """Write one ``Product.payload()`` JSON object per line; returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as f:
        for product in products:
            f.write(json.dumps(product.payload(), ensure_ascii=False))
            f.write("\n")
            count += 1
    return count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the deterministic demo catalog as JSONL.")
    parser.add_argument("out", help="output .jsonl path")
    parser.add_argument("--n", type=int, default=DEFAULT_N)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    products = generate_demo_catalog(args.n, args.seed)
    count = write_jsonl(products, args.out)
    print(f"wrote {count} products to {args.out} in {time.perf_counter() - start:.2f}s")


if __name__ == "__main__":
    main()
