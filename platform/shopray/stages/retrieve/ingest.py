"""Ingestion: Ray Data batch-embeds the catalog, then one writer publishes a new version of the retriever's index."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from shopray.catalog import load_products
from shopray.config import AppConfig, EmbeddingConfig
from shopray.domain import Product, Vocabulary
from shopray.embedding import Embedder, packaged_minilm_path
from shopray.stages.retrieve.index import IndexManifest, IndexStore, open_store

log = logging.getLogger(__name__)


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


def catalog_hash(products: list[Product]) -> str:
    digest = hashlib.sha256()
    for p in products:
        digest.update(p.model_dump_json().encode())
    return digest.hexdigest()


def build_index(
    products: list[Product],
    store: IndexStore,
    embedding: EmbeddingConfig,
    *,
    bad_rows: int = 0,
    keep_versions: int = 2,
    embed_workers: int = 1,
    write_batch: int = 1024,
) -> IndexManifest:
    """Embed with Ray Data and publish a new version; on any failure the old one stays current."""
    import ray

    if not products:
        raise ValueError("refusing to publish an empty index")
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    rows = [{"row": i, "text": p.search_text()} for i, p in enumerate(products)]
    dataset = ray.data.from_items(rows).map_batches(
        EmbedBatch,
        fn_constructor_args=(embedding, max(1, (os.cpu_count() or 1) // embed_workers)),
        batch_size=embedding.batch_size,
        compute=ray.data.ActorPoolStrategy(size=embed_workers),
        batch_format="numpy",
    )
    writer = None
    try:
        for batch in dataset.iter_batches(batch_size=write_batch, batch_format="numpy"):
            vectors = np.stack(batch["vector"]).astype(np.float32)
            if writer is None:
                writer = store.writer(dim=vectors.shape[1])
                log.info("building index %s version %s", store.name, writer.version)
            writer.add([products[int(i)] for i in batch["row"]], vectors)
        assert writer is not None and writer.count == len(products), "embedding lost rows"
        manifest = IndexManifest(
            name=store.name,
            version=writer.version,
            created_at=dt.datetime.now(dt.timezone.utc).isoformat(),
            count=writer.count,
            dim=writer.dim,
            embedding_model=embedding.model or Path(packaged_minilm_path()).parent.name,
            catalog_sha256=catalog_hash(products),
            bad_rows=bad_rows,
            vocabulary=Vocabulary.from_products(products),
        )
        writer.publish(manifest)
    except BaseException:
        if writer is not None:
            log.error("index build %s failed; the published version keeps serving", writer.version)
            writer.abort()
        raise
    store.prune(keep_versions)
    return manifest


def ensure_index(config: AppConfig) -> str:
    """Make the index hold the configured catalog, rebuilding only when its content changed."""
    store = open_store(config.index)
    current = store.current_version()
    if not config.catalog:
        if current is None:
            raise FileNotFoundError(f"index {config.index.name!r} is empty and no catalog is configured; run `shopray index` first")
        return current
    load = load_products(config.catalog)
    if current is not None and store.manifest(current).catalog_sha256 == catalog_hash(load.products):
        return current
    log.info("indexing %s: %s", config.catalog, load.summary())
    return build_index(load.products, store, config.embedding, bad_rows=len(load.bad_rows), keep_versions=config.index.keep_versions).version
