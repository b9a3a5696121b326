"""The retriever's catalog index: versioned Qdrant collections behind one interface (``base``).

``edge`` is the embedded engine (qdrant-edge-py, the default); ``remote`` talks
to a Qdrant server through qdrant-client (``index.qdrant_url``).
"""

from __future__ import annotations

from shopray.config import IndexConfig
from shopray.stages.retrieve.index.base import FilterSpec, Hit, HybridQuery, IndexManifest, IndexReader, IndexStore, IndexWriter
from shopray.stages.retrieve.index.edge import EdgeStore
from shopray.stages.retrieve.index.feed import ChangeFeed
from shopray.stages.retrieve.index.remote import RemoteStore


def open_store(config: IndexConfig) -> IndexStore:
    """The embedded engine unless a Qdrant server URL is configured."""
    if config.qdrant_url:
        return RemoteStore.connect(config.qdrant_url, config.name, ChangeFeed.of_index(config.root, config.name), config.qdrant_api_key)
    return EdgeStore(config.root, config.name)


__all__ = ["ChangeFeed", "FilterSpec", "Hit", "HybridQuery", "IndexManifest", "IndexReader", "IndexStore", "IndexWriter", "open_store"]
