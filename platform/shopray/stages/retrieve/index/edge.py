"""Embedded backend: the real Qdrant engine in-process (qdrant-edge-py).

Layout under ``root/<name>/``::

    versions/<version>/shard/          the EdgeShard (no WAL: published shards are read-only)
    versions/<version>/manifest.json   written last; marks the version complete
    CURRENT                            the published version, replaced atomically
    feed.sqlite                        the catalog's change feed, unless it is on Redis (``feed.py``)

A reader replays the feed's changes on two private copies of its version's
shard, made when the first change arrives (``EdgeReader``): the published
version stays immutable, no query waits for a write, and each replica converges
on the same state from the same ordered log.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import weakref
from pathlib import Path
from typing import Iterator

import numpy as np
import qdrant_edge as qe

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
from shopray.stages.retrieve.index.feed_sqlite import SqliteFeed
from shopray.versions import atomic_write_text, new_version


def _filter(spec: FilterSpec) -> qe.Filter | None:
    if spec.is_empty():
        return None
    must: list = [qe.FieldCondition(k, match=qe.MatchValue(v)) for k, v in spec.keywords().items()]
    if spec.price_min is not None or spec.price_max is not None:
        must.append(qe.FieldCondition("price", range=qe.RangeFloat(gte=spec.price_min, lte=spec.price_max)))
    must_not: list = [qe.FieldCondition(SOLD_OUT, match=qe.MatchValue(1))] if spec.in_stock else []
    if spec.exclude:
        must_not.append(qe.HasIdCondition({point_id(p) for p in spec.exclude}))
    return qe.Filter(must=must or None, must_not=must_not or None)


def _hit(point) -> Hit:
    vector = point.vector  # each read converts the engine's whole vector to Python again
    vector = vector[DENSE] if isinstance(vector, dict) else vector
    payload = product_payload(point.payload)
    return Hit(payload["product_id"], float(getattr(point, "score", 0.0)), payload, np.asarray(vector, dtype=np.float32))


def _point(product: Product, vector: np.ndarray, bm25: Bm25Encoder) -> qe.Point:
    indices, values = bm25.document(product.search_text())
    vectors = {DENSE: np.asarray(vector).tolist(), SPARSE: qe.SparseVector(indices=indices, values=values)}
    return qe.Point(point_id(product.product_id), vectors, index_payload(product))


class EdgeReader(IndexReader):
    """Queries one copy of the shard while changes go into the other (left-right): once the feed changes the
    version, the reader holds two private copies; a delta is written to the standby copy, the copies swap while
    queries wait (a pointer swap), then the delta is written to the copy queries just left."""

    def __init__(self, path: Path, manifest: IndexManifest, hnsw_ef: int):
        super().__init__(manifest)
        self._path = path / "shard"
        self._shard = qe.EdgeShard.load(str(self._path))
        self._hnsw_ef = hnsw_ef
        self._standby: qe.EdgeShard | None = None  # the copy no query reads, once a change arrived
        self._spare: qe.EdgeShard | None = None  # the second copy, until it replaces the published shard
        self._lagging: Delta | None = None  # a delta the standby copy missed (its write failed), written first next time

    def _stage(self, rows: list[FeedRow], embed: Embed | None) -> Delta:
        delta = Delta.of(rows, self.manifest.embedding_model, embed)
        if self._standby is None:
            private = Path(tempfile.mkdtemp(prefix=f"shopray-{self.manifest.name}-{self.version}-"))
            weakref.finalize(self, shutil.rmtree, private, True)
            for side in "ab":
                shutil.copytree(self._path, private / side)
            self._standby, self._spare = (qe.EdgeShard.load(str(private / side)) for side in "ab")
        if self._lagging is not None:
            self._write(self._standby, self._lagging)
            self._lagging = None
        self._write(self._standby, delta)
        return delta

    def _commit(self, delta: Delta) -> None:
        self._shard, self._standby = self._standby, self._shard

    def _settle(self, delta: Delta) -> None:
        if self._spare is not None:  # the first change: the published shard is closed, never written
            self._standby.close()
            self._standby, self._spare = self._spare, None
        self._lagging = delta
        self._write(self._standby, delta)
        self._lagging = None

    def _write(self, shard: qe.EdgeShard, delta: Delta) -> None:
        ops = []
        if delta.deletes:
            ops.append(qe.UpdateOperation.delete_points([point_id(p) for p in delta.deletes]))
        if moved := delta.moved():
            ops.append(qe.UpdateOperation.upsert_points([_point(p, v, self.bm25) for p, v in moved]))
        ops += [qe.UpdateOperation.overwrite_payload([point_id(p.product_id)], index_payload(p)) for p in delta.payload_only()]
        for op in ops:
            shard.update(op)

    def _query(self, q: HybridQuery) -> list[Hit]:
        flt = _filter(q.filters)
        params = qe.SearchParams(hnsw_ef=q.hnsw_ef)
        prefetches = [qe.Prefetch(limit=q.prefetch, query=qe.Query.Nearest(q.dense.tolist(), using=DENSE), filter=flt, params=params)]
        weights = [q.weights[0]]
        indices, values = self.bm25.query(q.sparse_text)
        if indices:
            sparse = qe.SparseVector(indices=indices, values=values)
            prefetches.append(qe.Prefetch(limit=q.prefetch, query=qe.Query.Nearest(sparse, using=SPARSE), filter=flt))
            weights.append(q.weights[1])
        request = qe.QueryRequest(
            limit=q.limit,
            prefetches=prefetches,
            query=qe.Fusion.Rrf(k=q.rrf_k, weights=weights),
            filter=flt,
            with_payload=True,
            with_vector=[DENSE],
        )
        return [_hit(p) for p in self._shard.query(request)]

    def _recommend(self, positive: list[np.ndarray], negative: list[np.ndarray], limit: int, filters: FilterSpec) -> list[Hit]:
        query = qe.Query.RecommendBestScore(qe.RecommendQuery([v.tolist() for v in positive], [v.tolist() for v in negative]), using=DENSE)
        request = qe.QueryRequest(limit=limit, query=query, filter=_filter(filters), with_payload=True, with_vector=[DENSE],
                                  params=qe.SearchParams(hnsw_ef=self._hnsw_ef))
        return [_hit(p) for p in self._shard.query(request)]

    def _retrieve(self, product_ids: list[str]) -> list[Hit]:
        records = self._shard.retrieve([point_id(p) for p in product_ids], with_payload=True, with_vector=[DENSE])
        return [_hit(r) for r in records]

    def _payloads(self) -> Iterator[dict]:
        offset = None
        while True:
            points, offset = self._shard.scroll(qe.ScrollRequest(offset=offset, limit=4096, with_payload=True, with_vector=False))
            yield from (product_payload(p.payload) for p in points)
            if offset is None:
                return

    def close(self) -> None:
        self._shard.close()
        if self._standby is not None:
            self._standby.close()


class EdgeWriter(IndexWriter):
    def __init__(self, name: str, version: str, dim: int, path: Path, on_publish):
        super().__init__(name, version, dim)
        self.path = path
        self._on_publish = on_publish
        config = qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            hnsw_config=qe.HnswIndexConfig(m=16, ef_construct=128, full_scan_threshold=10_000),
            wal_enabled=False,
        )
        self._shard = qe.EdgeShard.create(str(path / "shard"), config)
        for f in KEYWORD_FIELDS:
            self._shard.update(qe.UpdateOperation.create_field_index(f, qe.PayloadSchemaType.Keyword))
        for f in FLOAT_FIELDS:
            self._shard.update(qe.UpdateOperation.create_field_index(f, qe.PayloadSchemaType.Float))
        self._shard.update(qe.UpdateOperation.create_field_index(SOLD_OUT, qe.PayloadSchemaType.Integer))

    def _upsert(self, products: list[Product], dense: np.ndarray) -> None:
        self._shard.update(qe.UpdateOperation.upsert_points([_point(p, v, self.bm25) for p, v in zip(products, dense)]))

    def publish(self, manifest: IndexManifest) -> None:
        self._shard.optimize()
        self._shard.flush()
        self._shard.close()
        atomic_write_text(self.path / "manifest.json", manifest.model_dump_json(indent=2))
        self._on_publish(self.version)

    def abort(self) -> None:
        try:
            self._shard.close()
        finally:
            shutil.rmtree(self.path, ignore_errors=True)


class EdgeStore(IndexStore):
    def __init__(self, root: Path, name: str, feed: ChangeFeed | None = None):
        """``feed``: by default the SQLite file beside the versions."""
        super().__init__(name, feed or SqliteFeed.of_index(root, name))
        self.base = Path(root) / name
        self.versions_dir = self.base / "versions"
        self.versions_dir.mkdir(parents=True, exist_ok=True)

    def writer(self, dim: int) -> EdgeWriter:
        version = new_version()
        path = self.versions_dir / version
        path.mkdir(parents=True)
        return EdgeWriter(self.name, version, dim, path, self._switch)

    def _switch(self, version: str) -> None:
        atomic_write_text(self.base / "CURRENT", version)

    def current_version(self) -> str | None:
        try:
            return (self.base / "CURRENT").read_text().strip() or None
        except FileNotFoundError:
            return None

    def manifest(self, version: str) -> IndexManifest:
        return IndexManifest.model_validate(json.loads((self.versions_dir / version / "manifest.json").read_text()))

    def open(self, version: str | None = None, hnsw_ef: int = 128) -> EdgeReader:
        version = version or self.current_version()
        if version is None:
            raise FileNotFoundError(f"index {self.name!r} has no published version under {self.base}")
        return EdgeReader(self.versions_dir / version, self.manifest(version), hnsw_ef)

    def versions(self) -> list[str]:
        return sorted(p.name for p in self.versions_dir.iterdir() if (p / "manifest.json").exists())

    def prune(self, keep: int) -> list[str]:
        current = self.current_version()
        published = self.versions()
        doomed = [v for v in published[: max(0, len(published) - keep)] if v != current]
        # Unpublished directories older than an hour are leftovers of killed builds;
        # younger ones may be a build still running in another process.
        stale = time.time() - 3600
        doomed += [p.name for p in self.versions_dir.iterdir() if not (p / "manifest.json").exists() and p.stat().st_mtime < stale]
        for version in doomed:
            shutil.rmtree(self.versions_dir / version, ignore_errors=True)
        return doomed
