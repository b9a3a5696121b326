"""Catalog index: versioned Qdrant collections behind one interface."""

from __future__ import annotations

from shopray.config import IndexConfig
from shopray.index.base import FilterSpec, Hit, HybridQuery, IndexManifest, IndexReader, IndexStore, IndexWriter


def open_store(config: IndexConfig) -> IndexStore:
    """The embedded engine unless a Qdrant server URL is configured."""
    if config.qdrant_url:
        from shopray.index.remote import RemoteStore

        return RemoteStore.connect(config.qdrant_url, config.name, config.qdrant_api_key)
    from shopray.index.edge import EdgeStore

    return EdgeStore(config.root, config.name)


__all__ = ["FilterSpec", "Hit", "HybridQuery", "IndexManifest", "IndexReader", "IndexStore", "IndexWriter", "open_store"]
