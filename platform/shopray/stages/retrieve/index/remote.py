"""Server backend: qdrant-client against a Qdrant server (or its local mode in tests).

Each version is its own collection ``<name>__<version>``; the alias ``<name>``
points at the published one and is switched in one alias transaction.
Manifests live as payloads in ``<name>__manifests`` so any pod can read them.

Catalog changes go into the live collection behind the alias, as versions of
points: each feed row becomes a point of its own, visible from its change on
(``_from``), and closes the product's previous point at that change
(``_until``). A reader asks only for the points open at its own ``seq``, so a
batch appears to it all at once, when it moves ``seq`` past the batch, though
the server applies a batch's points one by one. Every replica replays the feed
into the collection and writes the same points with the same values, so which
replica writes first never matters. Closed points stay until the next rebuild.
"""

from __future__ import annotations

import uuid
from typing import Iterator

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from shopray.domain import Product
from shopray.stages.retrieve.index.base import (
    DENSE,
    FLOAT_FIELDS,
    KEYWORD_FIELDS,
    SOLD_OUT,
    SPARSE,
    Bm25Encoder,
    Delta,
    Embed,
    FilterSpec,
    Hit,
    HybridQuery,
    IndexManifest,
    IndexReader,
    IndexStore,
    IndexWriter,
    index_payload,
    point_id,
    product_payload,
)
from shopray.stages.retrieve.index.feed import ChangeFeed, FeedRow
from shopray.versions import new_version

# Point versions written by the feed: visible from change ``_from`` on, closed at change ``_until``. A version's own
# points have neither: visible until a change closes them.
FROM, UNTIL = "_from", "_until"
STATE_NAMESPACE = uuid.UUID("0b9f4f55-6d0e-4a4f-8d37-7f0b8b7f8e21")
ORIGINAL = 0  # the version's own point of a product, in RemoteReader._open


def state_id(product_id: str, seq: int) -> str:
    """The point of a product's state after change ``seq``; ``ORIGINAL``: the version's own point."""
    return point_id(product_id) if seq == ORIGINAL else str(uuid.uuid5(STATE_NAMESPACE, f"{seq}/{product_id}"))


def _filter(spec: FilterSpec, seq: int) -> qm.Filter:
    """``spec``, over the points open at change ``seq``."""
    must: list = [qm.FieldCondition(key=k, match=qm.MatchValue(value=v)) for k, v in spec.keywords().items()]
    if spec.price_min is not None or spec.price_max is not None:
        must.append(qm.FieldCondition(key="price", range=qm.Range(gte=spec.price_min, lte=spec.price_max)))
    # A missing field matches no condition, so the version's own points pass both.
    must_not: list = [qm.FieldCondition(key=FROM, range=qm.Range(gt=seq)), qm.FieldCondition(key=UNTIL, range=qm.Range(lte=seq))]
    if spec.in_stock:
        must_not.append(qm.FieldCondition(key=SOLD_OUT, match=qm.MatchValue(value=1)))
    if spec.exclude:
        must_not.append(qm.FieldCondition(key="product_id", match=qm.MatchAny(any=list(spec.exclude))))
    return qm.Filter(must=must or None, must_not=must_not)


def _point(product: Product, vector: np.ndarray, bm25: Bm25Encoder, seq: int = ORIGINAL) -> qm.PointStruct:
    indices, values = bm25.document(product.search_text())
    vectors = {DENSE: np.asarray(vector).tolist(), SPARSE: qm.SparseVector(indices=indices, values=values)}
    payload = index_payload(product) | ({FROM: seq} if seq != ORIGINAL else {})
    return qm.PointStruct(id=state_id(product.product_id, seq), vector=vectors, payload=payload)


def _hit(point) -> Hit:
    vector = point.vector[DENSE] if isinstance(point.vector, dict) else point.vector
    payload = {k: v for k, v in product_payload(point.payload).items() if k not in (FROM, UNTIL)}
    return Hit(payload["product_id"], float(getattr(point, "score", 0.0) or 0.0), payload, np.asarray(vector, dtype=np.float32))


class RemoteReader(IndexReader):
    def __init__(self, client: QdrantClient, collection: str, manifest: IndexManifest):
        super().__init__(manifest)
        self._client, self._collection = client, collection
        # The change whose point is each changed product's open one at ``seq`` (ORIGINAL, or None: no point open).
        self._open: dict[str, int | None] = {}

    def _stage(self, rows: list[FeedRow], embed: Embed | None) -> None:
        """Write each row's point and close the one it replaces; readers at ``seq`` see none of it. A point is only
        ever inserted, never overwritten: a replica that replays a batch late must not reopen what a later batch closed."""
        # A product first seen here has, at ``seq``, the version's own point open, if the version holds it.
        open_ = {p: self._open.get(p, ORIGINAL) for p in dict.fromkeys(r.product_id for r in rows)}
        ids = [state_id(p, s) for p, s in open_.items() if s is not None]
        stored = [_hit(r) for r in self._client.retrieve(self._collection, ids, with_payload=True, with_vectors=[DENSE])] if ids else []
        vectors = {h.product_id: h.vector for h in stored}  # a price or stock change keeps the product's vector
        open_ |= {p: None for p, s in open_.items() if s == ORIGINAL and p not in vectors and p not in self._open}  # a new product
        points: list[qm.PointStruct] = []
        closes: list[qm.SetPayloadOperation] = []
        for row in rows:
            p = row.product_id
            if open_[p] is not None:
                closes.append(qm.SetPayloadOperation(set_payload=qm.SetPayload(payload={UNTIL: row.seq}, points=[state_id(p, open_[p])])))
            open_[p] = None
            if row.product is None:
                continue
            product, vector = next(iter(Delta.of([row], self.manifest.embedding_model, embed).upserts.values()))
            vectors[p] = vector if vector is not None else vectors[p]
            points.append(_point(product, vectors[p], self.bm25, row.seq))
            open_[p] = row.seq
        inserts = [qm.UpsertOperation(upsert=qm.PointsList(points=points, update_mode=qm.UpdateMode.INSERT_ONLY))] if points else []
        if inserts or closes:
            self._client.batch_update_points(self._collection, inserts + closes, wait=True)
        self._open |= open_

    def _query(self, q: HybridQuery) -> list[Hit]:
        flt = _filter(q.filters, self.seq)
        params = qm.SearchParams(hnsw_ef=q.hnsw_ef)
        prefetch = [qm.Prefetch(query=q.dense.tolist(), using=DENSE, limit=q.prefetch, filter=flt, params=params)]
        weights = [q.weights[0]]
        indices, values = self.bm25.query(q.sparse_text)
        if indices:
            sparse = qm.SparseVector(indices=indices, values=values)
            prefetch.append(qm.Prefetch(query=sparse, using=SPARSE, limit=q.prefetch, filter=flt))
            weights.append(q.weights[1])
        result = self._client.query_points(
            self._collection,
            prefetch=prefetch,
            query=qm.RrfQuery(rrf=qm.Rrf(k=q.rrf_k, weights=weights)),
            query_filter=flt,
            limit=q.limit,
            with_payload=True,
            with_vectors=[DENSE],
        )
        return [_hit(p) for p in result.points]

    def _payloads(self) -> Iterator[dict]:
        offset, visible = None, _filter(FilterSpec(), self.seq)
        while True:
            points, offset = self._client.scroll(self._collection, scroll_filter=visible, limit=4096, offset=offset, with_payload=True, with_vectors=False)
            yield from (_hit(p).payload for p in points)
            if offset is None:
                return

    def _recommend(self, positive: list[np.ndarray], negative: list[np.ndarray], limit: int, filters: FilterSpec) -> list[Hit]:
        query = qm.RecommendQuery(recommend=qm.RecommendInput(positive=[v.tolist() for v in positive], negative=[v.tolist() for v in negative],
                                                              strategy=qm.RecommendStrategy.BEST_SCORE))
        result = self._client.query_points(self._collection, query=query, using=DENSE, query_filter=_filter(filters, self.seq), limit=limit,
                                           with_payload=True, with_vectors=[DENSE])
        return [_hit(p) for p in result.points]

    def _retrieve(self, product_ids: list[str]) -> list[Hit]:
        if not product_ids:
            return []
        wanted = qm.Filter(must=[qm.FieldCondition(key="product_id", match=qm.MatchAny(any=list(dict.fromkeys(product_ids))))])
        visible = _filter(FilterSpec(), self.seq)
        records, _ = self._client.scroll(self._collection, scroll_filter=qm.Filter(must=[wanted, visible]), limit=len(product_ids),
                                         with_payload=True, with_vectors=[DENSE])
        return [_hit(r) for r in records]


class RemoteWriter(IndexWriter):
    def __init__(self, store: "RemoteStore", version: str, dim: int):
        super().__init__(store.name, version, dim)
        self.store = store
        self.collection = store.collection(version)
        client = store.client
        client.create_collection(
            self.collection,
            vectors_config={DENSE: qm.VectorParams(size=dim, distance=qm.Distance.COSINE)},
            sparse_vectors_config={SPARSE: qm.SparseVectorParams(modifier=qm.Modifier.IDF)},
        )
        for f in (*KEYWORD_FIELDS, "product_id"):
            client.create_payload_index(self.collection, f, qm.PayloadSchemaType.KEYWORD)
        for f in FLOAT_FIELDS:
            client.create_payload_index(self.collection, f, qm.PayloadSchemaType.FLOAT)
        for f in (SOLD_OUT, FROM, UNTIL):
            client.create_payload_index(self.collection, f, qm.PayloadSchemaType.INTEGER)

    def _upsert(self, products: list[Product], dense: np.ndarray) -> None:
        self.store.client.upsert(self.collection, [_point(p, v, self.bm25) for p, v in zip(products, dense)], wait=True)

    def publish(self, manifest: IndexManifest) -> None:
        client = self.store.client
        client.upsert(
            self.store.manifests,
            [qm.PointStruct(id=point_id(self.version), vector={}, payload=manifest.model_dump(mode="json"))],
            wait=True,
        )
        ops: list = []
        if self.store.current_version() is not None:
            ops.append(qm.DeleteAliasOperation(delete_alias=qm.DeleteAlias(alias_name=self.name)))
        ops.append(qm.CreateAliasOperation(create_alias=qm.CreateAlias(collection_name=self.collection, alias_name=self.name)))
        client.update_collection_aliases(ops)  # one transaction: no moment without an alias

    def abort(self) -> None:
        self.store.client.delete_collection(self.collection)


class RemoteStore(IndexStore):
    def __init__(self, client: QdrantClient, name: str, feed: ChangeFeed):
        super().__init__(name, feed)
        self.client = client
        self.manifests = f"{name}__manifests"
        if not client.collection_exists(self.manifests):
            client.create_collection(self.manifests, vectors_config={})

    @classmethod
    def connect(cls, url: str, name: str, feed: ChangeFeed, api_key: str | None = None) -> "RemoteStore":
        return cls(QdrantClient(url=url, api_key=api_key, timeout=10), name, feed)

    def collection(self, version: str) -> str:
        return f"{self.name}__{version}"

    def writer(self, dim: int) -> RemoteWriter:
        return RemoteWriter(self, new_version(), dim)

    def current_version(self) -> str | None:
        for alias in self.client.get_aliases().aliases:
            if alias.alias_name == self.name:
                return alias.collection_name.removeprefix(f"{self.name}__")
        return None

    def manifest(self, version: str) -> IndexManifest:
        records = self.client.retrieve(self.manifests, [point_id(version)], with_payload=True)
        if not records:
            raise FileNotFoundError(f"no manifest for version {version!r} of index {self.name!r}")
        return IndexManifest.model_validate(records[0].payload)

    def open(self, version: str | None = None, hnsw_ef: int = 128) -> RemoteReader:
        version = version or self.current_version()
        if version is None:
            raise FileNotFoundError(f"index {self.name!r} has no published version on the Qdrant server")
        return RemoteReader(self.client, self.collection(version), self.manifest(version))

    def versions(self) -> list[str]:
        prefix = f"{self.name}__v"
        names = [c.name for c in self.client.get_collections().collections if c.name.startswith(prefix)]
        published = []
        for name in names:
            version = name.removeprefix(f"{self.name}__")
            if self.client.retrieve(self.manifests, [point_id(version)]):
                published.append(version)
        return sorted(published)

    def prune(self, keep: int) -> list[str]:
        current = self.current_version()
        published = self.versions()
        doomed = [v for v in published[: max(0, len(published) - keep)] if v != current]
        for version in doomed:
            self.client.delete_collection(self.collection(version))
            self.client.delete(self.manifests, [point_id(version)])
        return doomed
