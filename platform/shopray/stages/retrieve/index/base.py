"""One index interface, two Qdrant backends (embedded edge engine, server).

Both store the same points: a dense MiniLM vector, a BM25 sparse vector whose
IDF the engine applies, and the product payload with keyword/float indexes.
Versions are immutable once published; publishing switches one pointer
atomically, so readers see either the old complete index or the new one.
"""

from __future__ import annotations

import abc
import logging
import os
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Callable, Iterator, TypeVar

import numpy as np
from pydantic import BaseModel, Field

from shopray.domain import Product, Vocabulary
from shopray.follow import Follower
from shopray.stages.retrieve.index.feed import ChangeFeed, FeedRow
from shopray.stages.retrieve.spelling import Speller

log = logging.getLogger(__name__)
T = TypeVar("T")
K = TypeVar("K")
# (texts) -> L2-normalised vectors, for feed rows whose vector came from another encoder
Embed = Callable[[list[str]], np.ndarray]

DENSE = "dense"
SPARSE = "bm25"
KEYWORD_FIELDS = ("brand", "category", "color")
FLOAT_FIELDS = ("price",)
# An integer mirror of ``in_stock: false`` that filters match on: qdrant-edge-py turns MatchValue(False) into 0,
# which matches no stored boolean.
SOLD_OUT = "_sold_out"
ID_NAMESPACE = uuid.UUID("6f1c1d1e-5b1a-4c55-9a57-2f1d2b0e7a11")


def background_priority() -> None:
    """Lower the calling thread's CPU priority (Linux): applying catalog changes yields the cores to searches."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not Linux, or not permitted: run at the normal priority
        pass


def index_payload(product: Product) -> dict:
    """What a point stores: the product's payload, and the stock mirror when it is out of stock."""
    return product.payload() | ({SOLD_OUT: 1} if not product.in_stock else {})


def product_payload(stored: dict | None) -> dict:
    """A stored payload as the product's payload."""
    return {k: v for k, v in (stored or {}).items() if k != SOLD_OUT}


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
    feed_seq: int = Field(default=0, ge=0, description="The last change of the catalog's feed this version was built with; readers replay the later ones.")


@dataclass(frozen=True)
class FilterSpec:
    """Conjunctive payload filter: exact keywords and an inclusive price range."""

    brand: str | None = None
    category: str | None = None
    color: str | None = None
    price_min: float | None = None
    price_max: float | None = None
    in_stock: bool | None = None  # True: leave out products marked out of stock (products without the field are in stock)
    exclude: tuple[str, ...] = ()  # product ids left out (what a shopper already has, the products recommended from)

    def is_empty(self) -> bool:
        return all(v is None for v in (self.brand, self.category, self.color, self.price_min, self.price_max)) and not self.in_stock and not self.exclude

    def keywords(self) -> dict[str, str]:
        return {f: getattr(self, f) for f in KEYWORD_FIELDS if getattr(self, f) is not None}

    def admits(self, payload: dict) -> bool:
        """The engines' filter, for a payload in hand (products chosen from behaviour, not by a query)."""
        price = payload.get("price")
        return (all(payload.get(f) == v for f, v in self.keywords().items())
                and (self.price_min is None or (price is not None and price >= self.price_min))
                and (self.price_max is None or (price is not None and price <= self.price_max))
                and not (self.in_stock and payload.get("in_stock") is False)
                and payload.get("product_id") not in self.exclude)


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


class ReadWriteLock:
    """Many readers or one writer; a waiting writer holds off new readers, so a burst of queries cannot starve it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = self._writers_waiting = 0
        self._writing = False

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while self._writing or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


@dataclass
class Delta:
    """Feed rows folded into what a reader must change: the newest state of each product."""

    upserts: dict[str, tuple[Product, np.ndarray | None]] = field(default_factory=dict)  # vector None: payload only
    deletes: set[str] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.upserts) + len(self.deletes)

    def moved(self) -> list[tuple[Product, np.ndarray]]:
        """Products whose vectors change (new text, new product): written as whole points."""
        return [(p, v) for p, v in self.upserts.values() if v is not None]

    def payload_only(self) -> list[Product]:
        """Products whose text is unchanged: only their payload is rewritten."""
        return [p for p, v in self.upserts.values() if v is None]

    @classmethod
    def of(cls, rows: list[FeedRow], encoder: str, embed: Embed | None) -> "Delta":
        delta = cls()
        for row in rows:
            if row.product is None:
                delta.upserts.pop(row.product_id, None)
                delta.deletes.add(row.product_id)
                continue
            product, vector = Product.model_validate(row.product), row.vector
            if vector is not None and row.encoder != encoder:  # embedded for a version built with another encoder
                if embed is None:
                    raise ValueError(f"change {row.seq} was embedded by {row.encoder}, this index by {encoder}, and no encoder was given")
                vector = embed([product.search_text()])[0]
            if vector is None:  # a text change's vector stays through later payload-only changes
                vector = delta.upserts.get(row.product_id, (product, None))[1]
            delta.upserts[row.product_id] = (product, vector)
            delta.deletes.discard(row.product_id)
        return delta


class IndexReader(abc.ABC):
    """A published index version, and the catalog changes replayed on top of it (``catch_up``).

    The published files never change: a backend applies the feed to its own copy (edge) or to the live
    collection (server). No query sees half a batch: edge swaps copies while queries wait, and a server's
    reader sees only the points of changes up to its own ``seq``."""

    def __init__(self, manifest: IndexManifest):
        self.manifest = manifest
        self.seq = manifest.feed_seq  # the last feed change applied
        self._rw = ReadWriteLock()
        self._applying = threading.Lock()
        self._checked = 0.0

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def label(self) -> str:
        """The version and, once the feed changed it, the last change applied: ``<version>+<seq>``."""
        return f"{self.version}+{self.seq}" if self.seq else self.version

    def query(self, q: HybridQuery) -> list[Hit]:
        """Hybrid dense + BM25 retrieval fused with weighted RRF, filtered."""
        with self._rw.read():
            return self._query(q)

    def retrieve(self, product_ids: list[str]) -> list[Hit]:
        """Points by product id, unknown ids skipped."""
        with self._rw.read():
            return self._retrieve(product_ids)

    def recommend(self, positive: list[str], negative: list[str], limit: int, filters: FilterSpec) -> list[Hit]:
        """Products like ``positive`` and unlike ``negative`` by their dense vectors (Qdrant's recommend query, best-score
        strategy), best first, the examples themselves left out; unknown ids are ignored, and nothing when no positive id is known."""
        with self._rw.read():
            vectors = {h.product_id: h.vector for h in self._retrieve(list(dict.fromkeys(positive + negative)))}
            liked = [vectors[p] for p in positive if p in vectors]
            if not liked:
                return []
            unseen = replace(filters, exclude=tuple(dict.fromkeys((*filters.exclude, *positive, *negative))))
            return self._recommend(liked, [vectors[n] for n in negative if n in vectors], limit, unseen)

    def products(self) -> list[Product]:
        """Every product in the index, in no particular order."""
        with self._rw.read():
            return [Product.model_validate(payload) for payload in self._payloads()]

    def catch_up(self, feed: ChangeFeed, embed: Embed | None = None) -> int:
        """Apply the feed's changes after ``seq`` as one batch; returns how many rows it read."""
        with self._applying:
            rows = feed.since(self.seq)
            if not rows:
                return 0
            staged = self._stage(rows, embed)
            with self._rw.write():
                self._commit(staged)
                self.seq = rows[-1].seq
            self._settle(staged)
            return len(rows)

    def follow(self, feed: ChangeFeed, every_s: float, embed: Embed | None = None) -> None:
        """Called on each query: at most every ``every_s``, new changes are applied on a background thread, which goes
        on while changes keep arriving: a burst is applied batch after batch, not one batch per query."""
        now = time.monotonic()
        if now - self._checked < every_s or self._applying.locked():
            return
        self._checked = now

        def run() -> None:
            background_priority()
            try:
                while self.catch_up(feed, embed):
                    pass
            except Exception:  # the reader keeps answering from the changes it has
                log.exception("index %s: applying catalog changes after %d failed", self.version, self.seq)

        threading.Thread(target=run, name=f"feed-{self.version}", daemon=True).start()

    @abc.abstractmethod
    def _stage(self, rows: list[FeedRow], embed: Embed | None) -> object:
        """Work done before queries are held off; what it returns goes to ``_commit`` and ``_settle``."""

    def _commit(self, staged: object) -> None:  # noqa: B027 - optional: the server's readers switch by ``seq`` alone
        """Make the staged rows visible; queries are held off meanwhile, so keep it short."""

    def _settle(self, staged: object) -> None:  # noqa: B027 - optional: edge brings its other copy up to date here
        """Work done after queries resume; no query uses what the commit replaced."""

    @abc.abstractmethod
    def _query(self, q: HybridQuery) -> list[Hit]: ...

    @abc.abstractmethod
    def _retrieve(self, product_ids: list[str]) -> list[Hit]: ...

    @abc.abstractmethod
    def _recommend(self, positive: list[np.ndarray], negative: list[np.ndarray], limit: int, filters: FilterSpec) -> list[Hit]: ...

    @abc.abstractmethod
    def _payloads(self) -> Iterator[dict]: ...

    @cached_property
    def bm25(self) -> Bm25Encoder:
        return Bm25Encoder()

    @cached_property
    def speller(self) -> Speller:
        return Speller(self.manifest.terms)

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
    """Versions of one named index, and its change feed."""

    def __init__(self, name: str, feed: ChangeFeed):
        self.name, self.feed = name, feed

    def follow(self, build: Callable[[K], T], name: str, every_s: float, key: Callable[[], K | None] | None = None) -> Follower[K, T]:
        """``build(version)`` of the version published now (or of what ``key`` says now, a function of it), rebuilt
        within ``every_s`` of a change; raises at once when nothing is published."""
        follower = Follower(key or self.current_version, build, name=f"{name}:{self.name}", every_s=every_s)
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
