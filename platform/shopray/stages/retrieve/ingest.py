"""Ingestion: Ray Data batch-embeds the catalog, then one writer publishes a new version of the retriever's index."""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Iterator

import numpy as np

from shopray.catalog import catalog_sha256, load_products
from shopray.config import AppConfig, EmbeddingConfig
from shopray.domain import Product, Vocabulary
from shopray.embedding import Embedder, encoder_label, encoder_path, for_catalog, resolve_device, resolve_precision
from shopray.stages.retrieve.changes import with_changes
from shopray.stages.retrieve.index import IndexManifest, IndexStore, open_store
from shopray.stages.retrieve.spelling import term_counts

log = logging.getLogger(__name__)
ROWS_PER_CALL = 512


class EmbedBatch:
    """Ray Data callable class: the encoder loads once per actor, not per batch."""

    def __init__(self, config: EmbeddingConfig, threads: int):
        import torch

        # Ray pins a 1-CPU actor to one intra-op thread; the embedders are the only
        # heavy work during ingestion, so they share the machine's cores between them.
        torch.set_num_threads(threads)
        self.embedder = Embedder(config)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"row": batch["row"], "vector": self.embedder.encode(list(batch["text"]))}


def embedding_name(embedding: EmbeddingConfig) -> str:
    """What the manifest records as the encoder of the dense vectors, with its precision when that is not fp32."""
    name = encoder_label(embedding.model)
    dtype = resolve_precision(embedding.precision, resolve_device(embedding.device))
    return name if dtype == "fp32" else f"{name}:{dtype}"


def embedded(texts: list[str], embedding: EmbeddingConfig, batch: int = 1024) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(row numbers, vectors) for ``texts``, embedded by Ray Data, ``batch`` rows at a time, in no particular order.

    Sized from the machine: one encoder actor per free CPU (at most one per core), each on an equal share of
    the cores. Texts go in order of length, so the encoder's batches carry little padding, and each actor call
    takes ``ROWS_PER_CALL`` of them, so Ray's per-call cost is spread thin."""
    import ray

    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    cores = os.cpu_count() or 1
    actors = max(1, min(cores, int(ray.available_resources().get("CPU", 1))))
    rows = [{"row": i, "text": texts[i]} for i in sorted(range(len(texts)), key=lambda i: len(texts[i]))]
    dataset = ray.data.from_items(rows).map_batches(
        EmbedBatch,
        fn_constructor_args=(embedding, max(1, cores // actors)),
        batch_size=ROWS_PER_CALL,
        compute=ray.data.ActorPoolStrategy(size=actors),
        batch_format="numpy",
    )
    for out in dataset.iter_batches(batch_size=batch, batch_format="numpy"):
        yield out["row"], np.stack(out["vector"]).astype(np.float32)


def build_index(
    products: list[Product],
    store: IndexStore,
    embedding: EmbeddingConfig,
    *,
    bad_rows: int = 0,
    keep_versions: int = 2,
    write_batch: int = 1024,
) -> IndexManifest:
    """Embed with Ray Data (``embedded``) and publish a new version of the catalog plus every change in the store's
    feed so far; on any failure the old one stays current. Models stay keyed by the catalog as given."""
    sha, feed_seq = catalog_sha256(products), store.feed.last_seq()
    products = with_changes(products, store.feed.since(0, feed_seq))
    if not products:
        raise ValueError("refusing to publish an empty index")
    texts = [p.search_text() for p in products]
    embedding = for_catalog(embedding, sha)
    if embedding.model is not None:  # the encoder actors get a directory: a registry reference would resolve in their environment
        embedding = embedding.model_copy(update={"model": encoder_path(embedding.model)})
    writer = None
    try:
        for rows, vectors in embedded(texts, embedding, write_batch):
            if writer is None:
                writer = store.writer(dim=vectors.shape[1])
                log.info("building index %s version %s", store.name, writer.version)
            writer.add([products[int(i)] for i in rows], vectors)
        assert writer is not None and writer.count == len(products), "embedding lost rows"
        manifest = IndexManifest(
            name=store.name,
            version=writer.version,
            created_at=dt.datetime.now(dt.timezone.utc).isoformat(),
            count=writer.count,
            dim=writer.dim,
            embedding_model=embedding_name(embedding),
            catalog_sha256=sha,
            bad_rows=bad_rows,
            vocabulary=Vocabulary.from_products(products),
            terms=term_counts(texts),
            feed_seq=feed_seq,
        )
        writer.publish(manifest)
    except BaseException:
        if writer is not None:
            log.error("index build %s failed; the published version keeps serving", writer.version)
            writer.abort()
        raise
    store.prune(keep_versions)
    return manifest


def ensure_index(config: AppConfig) -> IndexManifest:
    """Make the index hold the configured catalog, rebuilding only when its content (catalog or encoder) changed."""
    store = open_store(config.index)
    current = store.current_version()
    if not config.catalog:
        if current is None:
            raise FileNotFoundError(f"index {config.index.name!r} is empty and no catalog is configured; run `shopray index` first")
        return store.manifest(current)
    load = load_products(config.catalog)
    if current is not None:
        manifest = store.manifest(current)
        # An index from before the speller had its dictionary (no terms) is rebuilt once.
        sha = catalog_sha256(load.products)
        if manifest.catalog_sha256 == sha and manifest.embedding_model == embedding_name(for_catalog(config.embedding, sha)) and manifest.terms:
            return manifest
    log.info("indexing %s: %s", config.catalog, load.summary())
    return build_index(load.products, store, config.embedding, bad_rows=len(load.bad_rows), keep_versions=config.index.keep_versions)
