"""The catalog's change feed: an ordered, durable log of product states, one sequence number per change.

Each row holds a product's whole state after the change (``None``: deleted),
and its dense vector when its text changed, so replaying a row twice is
harmless and replicas never re-embed. A batch is stored whole or not at all,
a reader sees all of it or none, and a row is acknowledged only once it is
durable. A batch that changes what the catalog's brands, categories, colors or
attributes are also writes the whole vocabulary after it, which the parser
follows. Two backends (``index.feed.backend``): an SQLite file beside the index
versions (``feed_sqlite.py``) and a Redis server for replicas on several
machines (``feed_redis.py``).
"""

from __future__ import annotations

import abc
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np

from shopray.domain import Vocabulary


@dataclass(frozen=True)
class FeedRow:
    seq: int
    product_id: str
    product: dict | None  # the whole product after the change; None: deleted
    vector: np.ndarray | None  # its new dense vector when its text changed, else None (keep the indexed one)
    encoder: str | None  # the encoder that made ``vector`` (an index's ``embedding_model``)
    ts: float  # when the change was committed (epoch seconds)


class FeedConflict(RuntimeError):
    """Another writer's batch was committed while this one was written; nothing of this one was stored."""


class FeedWriter(abc.ABC):
    """One batch being written: what it reads is the feed as the batch found it, plus its own rows."""

    @abc.abstractmethod
    def latest(self, product_ids: list[str]) -> dict[str, FeedRow]:
        """The newest row of each product that has one."""

    @abc.abstractmethod
    def since(self, seq: int) -> list[FeedRow]:
        """Rows after ``seq``, this batch's own included."""

    @abc.abstractmethod
    def append(self, product_id: str, product: dict | None, vector: np.ndarray | None, encoder: str | None) -> int:
        """Add a row to the batch; returns its sequence number."""

    @abc.abstractmethod
    def set_vocabulary(self, seq: int, vocabulary: Vocabulary) -> None:
        """The vocabulary as the batch leaves it, recorded at its change ``seq``."""


class ChangeFeed(abc.ABC):
    @abc.abstractmethod
    def writing(self) -> AbstractContextManager[FeedWriter]:
        """One batch: committed at once when the block ends, discarded if it raises. Raises ``FeedConflict`` when
        another writer's batch came first (the SQLite backend instead makes the other writer wait)."""

    @abc.abstractmethod
    def last_seq(self) -> int:
        """The last committed change, 0 for none."""

    @abc.abstractmethod
    def since(self, seq: int, until: int | None = None) -> list[FeedRow]:
        """Committed rows after ``seq`` (up to ``until``), oldest first."""

    @abc.abstractmethod
    def vocabulary_seq(self, after: int) -> int:
        """The last change after ``after`` that changed the vocabulary, or 0."""

    @abc.abstractmethod
    def vocabulary(self, seq: int) -> Vocabulary:
        """The vocabulary as change ``seq`` left it (one ``vocabulary_seq`` named)."""
