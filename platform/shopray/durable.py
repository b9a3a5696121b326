"""The one way shopray opens a SQLite log it acknowledges writes from (the catalog feed, the event log)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect(path: Path) -> sqlite3.Connection:
    """A new connection (one per call: readers and writers may be on different threads) in WAL mode with
    ``synchronous=FULL``, so an acknowledged write survives a power cut, not only a crash; transactions are explicit."""
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db
