"""The retriever's catalog index: versioned Qdrant collections behind one interface (``base``).

``edge`` is the embedded engine (qdrant-edge-py, the default); ``remote`` talks
to a Qdrant server through qdrant-client (``index.qdrant_url``). Either follows
the catalog's change feed (``feed``), in SQLite beside the versions or on Redis
(``index.feed``).
"""

from __future__ import annotations

from shopray import broker
from shopray.config import IndexConfig
from shopray.stages.retrieve.index.base import FilterSpec, Hit, HybridQuery, IndexManifest, IndexReader, IndexStore, IndexWriter
from shopray.stages.retrieve.index.edge import EdgeStore
from shopray.stages.retrieve.index.feed import ChangeFeed, FeedConflict
from shopray.stages.retrieve.index.feed_redis import RedisFeed
from shopray.stages.retrieve.index.feed_sqlite import SqliteFeed
from shopray.stages.retrieve.index.remote import RemoteStore


def open_feed(config: IndexConfig) -> ChangeFeed:
    if config.feed.backend == "redis":
        return RedisFeed.of_index(broker.connect(config.feed.redis, "index.feed", binary=True), config.name)
    return SqliteFeed.of_index(config.root, config.name)


def open_store(config: IndexConfig) -> IndexStore:
    """The embedded engine unless a Qdrant server URL is configured."""
    if config.qdrant_url:
        return RemoteStore.connect(config.qdrant_url, config.name, open_feed(config), config.qdrant_api_key)
    return EdgeStore(config.root, config.name, open_feed(config))


__all__ = ["ChangeFeed", "FeedConflict", "FilterSpec", "Hit", "HybridQuery", "IndexManifest", "IndexReader", "IndexStore", "IndexWriter", "open_feed",
           "open_store"]
