"""One index interface, two Qdrant backends (embedded edge engine, server).

Both store the same points: a dense MiniLM vector, a BM25 sparse vector whose
IDF the engine applies, and the product payload with keyword/float indexes.
Versions are immutable once published; publishing switches one pointer
atomically, so readers see either the old complete index or the new one.
"""

from __future__ import annotations

import abc
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, TypeVar

import numpy as np
from pydantic import BaseModel, Field

from shopray.domain import Product, Vocabulary
from shopray.follow import Follower
from shopray.stages.retrieve.spelling import Speller

T = TypeVar("T")

DENSE = "dense"
SPARSE = "bm25"
KEYWORD_FIELDS = ("brand", "category", "color")
FLOAT_FIELDS = ("price",)
ID_NAMESPACE = uuid.UUID("6f1c1d1e-5b1a-4c55-9a57-2f1d2b0e7a11")


def point_id(product_id: str) -> str:
    """Qdrant ids must be ints or UUIDs; product ids are arbitrary strings."""
    return str(uuid.uuid5(ID_NAMESPACE, product_id))


class IndexManifest(BaseModel):
    """Written last: a version without one was never published."""

    name: str = Field(description="Index name.")
    version: str = Field(description="Sortable version id.")
    created_at: str = Field(description="UTC ISO time of publication.")
    count: int = Field(description="Points in the index.")
    dim: int = Field(description="Dense vector size.")
    embedding_model: str = Field(description="Encoder that made the dense vectors.")
    catalog_sha256: str = Field(description="Hash of the catalog content that was indexed.")
    bad_rows: int = Field(default=0, description="Catalog rows skipped at import.")
    vocabulary: Vocabulary = Field(description="Brands, categories, colors and prices present.")
    terms: dict[str, int] = Field(default_factory=dict, description="Words of the products' text and in how many products each occurs: the speller's dictionary.")


@dataclass(frozen=True)
class FilterSpec:
    """Conjunctive payload filter: exact keywords and an inclusive price range."""

    brand: str | None = None
    category: str | None = None
    color: str | None = None
    price_min: float | None = None
    price_max: float | None = None

    def is_empty(self) -> bool:
        return all(v is None for v in (self.brand, self.category, self.color, self.price_min, self.price_max))

    def keywords(self) -> dict[str, str]:
        return {f: getattr(self, f) for f in KEYWORD_FIELDS if getattr(self, f) is not None}


@dataclass(frozen=True)
class HybridQuery:
    dense: np.ndarray
    sparse_text: str
    limit: int
    prefetch: int
    rrf_k: int = 60
    weights: tuple[float, float] = (1.0, 1.0)
    filters: FilterSpec = field(default_factory=FilterSpec)
    hnsw_ef: int = 128


@dataclass
class Hit:
    product_id: str
    score: float
    payload: dict
    vector: np.ndarray


class Bm25Encoder:
    """Qdrant's own BM25 tokenizer and TF weighting; the engine adds IDF.

    Using one encoder for both backends keeps their sparse vectors identical.
    """

    def __init__(self, avg_len: float = 24.0):
        import qdrant_edge

        self._bm25 = qdrant_edge.Bm25(qdrant_edge.Bm25Config(avg_len=avg_len))

    def document(self, text: str) -> tuple[list[int], list[float]]:
        v = self._bm25.embed_document(text)
        return list(v.indices), list(v.values)

    def query(self, text: str) -> tuple[list[int], list[float]]:
        v = self._bm25.embed_query(text)
        return list(v.indices), list(v.values)


class IndexReader(abc.ABC):
    """A published, immutable index version."""

    def __init__(self, manifest: IndexManifest):
        self.manifest = manifest

    @property
    def version(self) -> str:
        return self.manifest.version

    @cached_property
    def bm25(self) -> Bm25Encoder:
        return Bm25Encoder()

    @cached_property
    def speller(self) -> Speller:
        return Speller(self.manifest.terms)

    @abc.abstractmethod
    def query(self, q: HybridQuery) -> list[Hit]:
        """Hybrid dense + BM25 retrieval fused with weighted RRF, filtered."""

    @abc.abstractmethod
    def retrieve(self, product_ids: list[str]) -> list[Hit]:
        """Points by product id, unknown ids skipped."""

    def close(self) -> None:  # noqa: B027 - optional for backends holding no handles
        pass


class IndexWriter(abc.ABC):
    """Builds one version; nothing is visible to readers until publish()."""

    def __init__(self, name: str, version: str, dim: int):
        self.name, self.version, self.dim = name, version, dim
        self.bm25 = Bm25Encoder()
        self.count = 0

    def add(self, products: list[Product], dense: np.ndarray) -> None:
        if len(products) != dense.shape[0] or dense.shape[1] != self.dim:
            raise ValueError("products and vectors disagree")
        self._upsert(products, dense)
        self.count += len(products)

    @abc.abstractmethod
    def _upsert(self, products: list[Product], dense: np.ndarray) -> None: ...

    @abc.abstractmethod
    def publish(self, manifest: IndexManifest) -> None:
        """Finish the build (indexes, optimisation) and switch readers to it atomically."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Discard the partial version; the published one keeps serving."""


class IndexStore(abc.ABC):
    """Versions of one named index."""

    def __init__(self, name: str):
        self.name = name

    def follow(self, build: Callable[[str], T], name: str, every_s: float) -> Follower[str, T]:
        """``build(version)`` of the version published now, rebuilt within ``every_s`` of a new publication;
        raises at once when nothing is published."""
        follower = Follower(self.current_version, build, name=f"{name}:{self.name}", every_s=every_s)
        follower.check(wait=True)
        if follower.current is None:
            raise FileNotFoundError(f"index {self.name!r} has no published version")
        return follower

    @abc.abstractmethod
    def writer(self, dim: int) -> IndexWriter: ...

    @abc.abstractmethod
    def current_version(self) -> str | None: ...

    @abc.abstractmethod
    def manifest(self, version: str) -> IndexManifest: ...

    @abc.abstractmethod
    def open(self, version: str | None = None, hnsw_ef: int = 128) -> IndexReader:
        """Open a published version (default: the current one)."""

    @abc.abstractmethod
    def versions(self) -> list[str]:
        """Published versions, oldest first."""

    @abc.abstractmethod
    def prune(self, keep: int) -> list[str]:
        """Delete all but the newest ``keep`` published versions (never the current one)."""
