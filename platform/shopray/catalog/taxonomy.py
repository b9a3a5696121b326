"""The demo catalog's taxonomy: ``load_taxonomy()`` reads ``demo_taxonomy.yaml`` (once).

It resolves the file's names (brand tier words, shared ``titles:`` and ``uses:``) and
checks every reference, naming the leaf when one does not resolve. All dicts and lists
keep the file's order, which ``shopray.catalog.demo``'s random draws depend on; the
result is shared, so treat it as read-only.
"""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass, field
from pathlib import Path

import yaml

DATA_FILE = Path(__file__).with_name("demo_taxonomy.yaml")
TIERS = {"budget": -1, "mid": 0, "premium": 1}  # tier word -> how far a brand shifts prices in its leaf
_TITLE_FIELDS = {"brand", "line", "noun", "color", "size", "gender", "feature", "material"}  # + the leaf's extras
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class TaxonomyError(ValueError):
    """The taxonomy file is malformed or one of its references does not resolve."""


@dataclass(frozen=True)
class Leaf:
    """One leaf category and everything needed to invent products in it."""

    noun: str  # what a shopper calls one item, used in titles ("Running Shoes")
    price: tuple[int, int]  # inclusive shelf-price range (low, high)
    brands: dict[str, tuple[int, list[str]]]  # brand -> (tier, product lines); tier in TIERS values
    materials: list[str]
    title: str  # str.format template; fields: brand line noun color size gender feature material + extras keys
    sizes: str | None = None  # key into Taxonomy.sizes
    colors: list[str] = field(default_factory=list)  # most common first; empty means no color
    features: list[str] = field(default_factory=list)
    genders: list[str] = field(default_factory=list)
    extras: dict[str, list[str]] = field(default_factory=dict)  # extra attribute -> values
    uses: list[str] = field(default_factory=lambda: ["everyday use"])
    weight: float = 1.0  # relative share of the catalog
    size_price_sigmas: float = 0.0  # log-price gap, in sigmas, from smallest to largest size
    material_key: str = "material"  # attribute name for the material-like facet
    brand_colors: bool = False  # use Taxonomy.brand_colors (tools come in their brand's color)


@dataclass(frozen=True)
class Taxonomy:
    """Everything in the taxonomy file, references resolved."""

    leaves: dict[str, Leaf]  # category path -> leaf, in file order
    colors: list[str]  # every color a leaf may list
    gender_labels: dict[str, str]  # "men" -> "Men's"
    brand_colors: dict[str, str]  # brand -> its signature color
    display: dict[str, str]  # value -> title form where title case looks wrong ("4k" -> "4K")
    sizes: dict[str, list[tuple[str, str]]]  # name -> [(attribute value, title label)], smallest first
    feature_sentences: dict[str, str]  # feature -> description sentence
    description_templates: dict[str, list[str]]  # Leaf.material_key -> sentence skeletons

    def all_brands(self) -> list[str]:
        """Every brand that can appear in the demo catalog, sorted."""
        return sorted({brand for leaf in self.leaves.values() for brand in leaf.brands})


@functools.cache
def load_taxonomy(path: str | Path = DATA_FILE) -> Taxonomy:
    """Read and check the taxonomy file; cached, so each path is parsed once per process."""
    with open(path, encoding="utf-8") as f:
        data = yaml.load(f, Loader=_Loader)
    try:
        parts = {key: data[key] for key in ("colors", "gender_labels", "brand_colors", "display",
                                            "feature_sentences", "description_templates")}
        parts["sizes"] = {name: list(pairs.items()) for name, pairs in data["sizes"].items()}
        titles, uses = data.get("titles") or {}, data.get("uses") or {}
        leaves = {p: _leaf(p, dict(spec), parts, titles, uses) for p, spec in data["leaves"].items()}
    except TaxonomyError as exc:
        raise TaxonomyError(f"{path}: {exc}") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise TaxonomyError(f"{path}: malformed taxonomy ({type(exc).__name__}: {exc})") from exc
    return Taxonomy(leaves=leaves, **parts)


def _leaf(path: str, spec: dict, parts: dict, titles: dict, uses: dict) -> Leaf:
    def check(ok: object, problem: str) -> None:
        if not ok:
            raise TaxonomyError(f"leaf {path!r}: {problem}")

    brands = spec.get("brands")
    check(isinstance(brands, dict) and brands, "needs brands")
    bad = [b for b, e in brands.items()
           if not (isinstance(e, dict) and e.get("tier") in TIERS and isinstance(e.get("lines"), list) and e["lines"])]
    check(not bad, f"brands {bad} each need tier (budget, mid or premium) and a list of lines")
    spec["brands"] = {brand: (TIERS[e["tier"]], e["lines"]) for brand, e in brands.items()}
    if "price" in spec:
        spec["price"] = tuple(spec["price"])
    if "{" not in str(spec.get("title")):  # not a template: a name from titles:
        check(spec.get("title") in titles, f"title {spec.get('title')!r} is neither a template nor a name in titles:")
        spec["title"] = titles[spec["title"]]
    if isinstance(spec.get("uses"), str):  # not a list: a name from uses:
        check(spec["uses"] in uses, f"uses {spec['uses']!r} is not a name in uses:")
        spec["uses"] = uses[spec["uses"]]
    try:
        leaf = Leaf(**spec)
        fields = sorted({name for _, name, _, _ in string.Formatter().parse(leaf.title) if name is not None})
    except (TypeError, ValueError) as exc:
        raise TaxonomyError(f"leaf {path!r}: {exc}") from None
    check(leaf.sizes is None or leaf.sizes in parts["sizes"], f"sizes {leaf.sizes!r} is not a name in sizes:")
    check(leaf.material_key in parts["description_templates"],
          f"material_key {leaf.material_key!r} has no description_templates")
    for kind, values, known in (("color", leaf.colors, parts["colors"]),
                                ("feature", leaf.features, parts["feature_sentences"]),
                                ("gender", leaf.genders, parts["gender_labels"]),
                                ("title field", fields, _TITLE_FIELDS | set(leaf.extras))):
        missing = [v for v in values if v not in known]
        check(not missing, f"unknown {kind}s {missing}")
    return leaf
