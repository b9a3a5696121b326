"""Domain types shared by every stage.

Pydantic models sit at the edges (catalog rows, intents, HTTP). The candidate
set that flows between retriever, ranker and diversifier is a dataclass of
numpy arrays, because it carries an (N, d) embedding matrix that would be slow
to validate field by field on every request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_PRICE = 1_000_000.0
# What a query can state about the products it wants (the intent's fields that filter).
Constraint = Literal["color", "brand", "category", "price"]
# What search does with a product whose in_stock is false.
OutOfStock = Literal["hide", "sink", "show"]


class Product(BaseModel):
    """One catalog item. Only product_id and title are required."""

    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(min_length=1, max_length=128, description="Stable unique id.")
    title: str = Field(min_length=1, max_length=1024, description="Shopper-facing title.")
    description: str | None = Field(default=None, description="Longer free text.")
    brand: str | None = Field(default=None, description="Brand or manufacturer.")
    category: str | None = Field(
        default=None, description='Category path, levels joined by " > ", e.g. "Shoes > Running".'
    )
    color: str | None = Field(default=None, description="Main color, lower case.")
    price: float | None = Field(default=None, description="Price in the shop's currency.")
    attributes: dict[str, str] = Field(
        default_factory=dict, description="Other facets (material, size, ...)."
    )
    popularity: float | None = Field(default=None, ge=0, description="Relative popularity, higher is more popular.")
    in_stock: bool = Field(default=True, description="Whether it can be bought now; see retriever.out_of_stock.")
    quantity: int | None = Field(default=None, ge=0, description="Units in stock, when the shop tracks them.")

    @field_validator("product_id", "title", mode="before")
    @classmethod
    def _strip(cls, v: object) -> object:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = str(v)
        return v.strip() if isinstance(v, str) else v

    @field_validator("price")
    @classmethod
    def _sane_price(cls, v: float | None) -> float | None:
        if v is None:
            return v
        if not math.isfinite(v) or v < 0 or v > MAX_PRICE:
            raise ValueError(f"absurd price {v!r} (allowed 0..{MAX_PRICE:g})")
        return v

    @property
    def leaf_category(self) -> str | None:
        return self.category.split(" > ")[-1] if self.category else None

    def search_text(self) -> str:
        """Text that dense and lexical indexes see."""
        parts = [self.title]
        for extra in (self.brand, self.category, self.color, self.description):
            if extra:
                parts.append(extra)
        return ". ".join(parts)

    def payload(self) -> dict:
        """What the index stores beside the vectors; None fields are dropped."""
        data = self.model_dump(exclude_none=True)
        if not data.get("attributes"):
            data.pop("attributes", None)
        return data


class Intent(BaseModel):
    """What a query asks for, as the retriever understands it."""

    model_config = ConfigDict(extra="forbid")

    keywords: str = Field(default="", description="Rewritten keywords for lexical retrieval.")
    category: str | None = Field(default=None, description="Full category path from the catalog vocabulary.")
    brand: str | None = Field(default=None, description="Brand from the catalog vocabulary.")
    color: str | None = Field(default=None, description="Color from the catalog vocabulary.")
    price_min: float | None = Field(default=None, ge=0, description="Inclusive lower price bound.")
    price_max: float | None = Field(default=None, ge=0, description="Inclusive upper price bound.")
    attributes: list[str] = Field(default_factory=list, description="Attribute values such as materials.")
    source: Literal["rule", "llm", "none"] = Field(default="rule", description="Which parser produced it.")


class Vocabulary(BaseModel):
    """The catalog's own words: what an intent may name."""

    brands: list[str] = Field(default_factory=list, description="Distinct brands, sorted.")
    categories: list[str] = Field(default_factory=list, description="Distinct category paths, sorted.")
    colors: list[str] = Field(default_factory=list, description="Distinct colors, sorted.")
    attributes: list[str] = Field(default_factory=list, description="Distinct attribute values, sorted.")
    price_min: float | None = Field(default=None, description="Lowest price in the catalog.")
    price_max: float | None = Field(default=None, description="Highest price in the catalog.")
    price_p25: float | None = Field(default=None, description='25th percentile price, what "cheap" means.')
    category_price_p25: dict[str, float] = Field(default_factory=dict, description='"Cheap" within each category.')

    @classmethod
    def from_products(cls, products: list[Product]) -> "Vocabulary":
        prices = np.array([p.price for p in products if p.price is not None], dtype=float)
        by_category: dict[str, list[float]] = {}
        for p in products:
            if p.category and p.price is not None:
                by_category.setdefault(p.category, []).append(p.price)
        return cls(
            brands=sorted({p.brand for p in products if p.brand}),
            categories=sorted({p.category for p in products if p.category}),
            colors=sorted({p.color for p in products if p.color}),
            attributes=sorted({v for p in products for v in p.attributes.values()}),
            price_min=float(prices.min()) if prices.size else None,
            price_max=float(prices.max()) if prices.size else None,
            price_p25=float(np.percentile(prices, 25)) if prices.size else None,
            category_price_p25={c: float(np.percentile(v, 25)) for c, v in by_category.items()},
        )


@dataclass(frozen=True)
class Tiers:
    """Which stated constraints each candidate keeps (see ``stages/retrieve/constraints.py``)."""

    stated: tuple[Constraint, ...]  # the query's constraints, in the order they are given up
    groups: np.ndarray  # (N,) ints, ascending from the exact matches; no stage orders across a group
    meets: list[list[Constraint]]  # per candidate, the stated constraints it keeps

    def take(self, order: np.ndarray) -> "Tiers":
        return Tiers(stated=self.stated, groups=self.groups[order], meets=[self.meets[i] for i in order])

    def relaxed(self) -> list[Constraint]:
        """The stated constraints some candidate gives up, in relax order."""
        kept_by_all = set(self.stated).intersection(*map(set, self.meets)) if self.meets else set(self.stated)
        return [c for c in self.stated if c not in kept_by_all]


@dataclass
class CandidateSet:
    """Candidates flowing retriever -> ranker -> diversifier, best first.

    ``embeddings`` rows are L2-normalised product vectors carried from the
    index, so later stages never re-embed products.
    """

    ids: list[str]
    payloads: list[dict]
    scores: np.ndarray
    embeddings: np.ndarray
    session_vector: np.ndarray | None = None
    notes: dict[str, object] = field(default_factory=dict)
    tiers: Tiers | None = None  # None: the query stated no constraint
    query_vector: np.ndarray | None = None  # the retriever's embedding of the query text, so no later stage embeds it again
    query_text: str | None = None  # the text the retriever searched, after query repair; the ranker scores against it
    repaired: bool = False  # query repair changed the text
    explanations: list[dict] | None = None  # per candidate, what each stage did (api.Explanation's fields); None unless asked to explain

    def __post_init__(self) -> None:
        n = len(self.ids)
        if len(self.payloads) != n or self.scores.shape != (n,) or self.embeddings.shape[0] != n:
            raise ValueError("candidate arrays disagree in length")
        if self.tiers is not None and (self.tiers.groups.shape != (n,) or len(self.tiers.meets) != n):
            raise ValueError("candidate tiers disagree in length")
        if self.explanations is not None and len(self.explanations) != n:
            raise ValueError("candidate explanations disagree in length")

    def groups(self) -> np.ndarray:
        """Each candidate's constraint group (all 0 without constraints)."""
        return self.tiers.groups if self.tiers is not None else np.zeros(len(self.ids), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, order: list[int] | np.ndarray, scores: np.ndarray | None = None) -> "CandidateSet":
        order = np.asarray(order, dtype=int)
        return CandidateSet(
            ids=[self.ids[i] for i in order],
            payloads=[self.payloads[i] for i in order],
            scores=(self.scores[order] if scores is None else np.asarray(scores, dtype=float)),
            embeddings=self.embeddings[order],
            session_vector=self.session_vector,
            notes=dict(self.notes),
            tiers=self.tiers.take(order) if self.tiers is not None else None,
            query_vector=self.query_vector,
            query_text=self.query_text,
            repaired=self.repaired,
            explanations=[dict(self.explanations[i]) for i in order] if self.explanations is not None else None,
        )

    @classmethod
    def empty(cls, dim: int = 384) -> "CandidateSet":
        return cls(ids=[], payloads=[], scores=np.zeros(0), embeddings=np.zeros((0, dim), dtype=np.float32))
