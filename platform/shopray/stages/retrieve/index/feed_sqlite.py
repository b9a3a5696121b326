"""The change feed in one SQLite file in WAL mode, beside the index versions: a batch is one transaction (a reader
sees all of it or none, and a second writer waits for the first), acknowledged once it is committed to disk."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from shopray import durable
from shopray.domain import Vocabulary
from shopray.stages.retrieve.index.feed import ChangeFeed, FeedRow, FeedWriter

SCHEMA = """
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id TEXT NOT NULL,
    product TEXT,
    vector BLOB,
    encoder TEXT,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS changes_product ON changes (product_id, seq);
CREATE TABLE IF NOT EXISTS vocabulary (
    seq INTEGER PRIMARY KEY,
    vocabulary TEXT NOT NULL
);
"""
COLUMNS = "seq, product_id, product, vector, encoder, ts"  # FeedRow's fields, in order
ROWS = f"SELECT {COLUMNS} FROM changes WHERE seq > ? AND seq <= ? ORDER BY seq"


def _row(r: tuple) -> FeedRow:
    seq, pid, product, vector, encoder, ts = r
    return FeedRow(seq, pid, json.loads(product) if product is not None else None,
                   np.frombuffer(vector, dtype=np.float32) if vector is not None else None, encoder, ts)


class SqliteFeed(ChangeFeed):
    def __init__(self, path: Path):
        self.path = Path(path)  # created by the first batch: a catalog that never changed has no feed

    @classmethod
    def of_index(cls, root: Path, name: str) -> "SqliteFeed":
        """The feed of index ``name`` under the index root, whichever backend holds the index."""
        return cls(Path(root) / name / "feed.sqlite")

    def _connect(self) -> sqlite3.Connection:
        return durable.connect(self.path)

    @contextmanager
    def writing(self) -> Iterator["SqliteFeedWriter"]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        db.executescript(SCHEMA)
        try:
            db.execute("BEGIN IMMEDIATE")
            yield SqliteFeedWriter(db)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    def _read(self, sql: str, args: tuple) -> list[tuple]:
        if not self.path.exists():
            return []
        with closing(self._connect()) as db:
            try:
                return db.execute(sql, args).fetchall()
            except sqlite3.OperationalError as exc:  # the first batch's connection made the file, not the table yet
                if "no such table" in str(exc):
                    return []
                raise

    def last_seq(self) -> int:
        rows = self._read("SELECT MAX(seq) FROM changes", ())
        return rows[0][0] or 0 if rows else 0

    def since(self, seq: int, until: int | None = None) -> list[FeedRow]:
        return [_row(r) for r in self._read(ROWS, (seq, until if until is not None else 2**62))]

    def vocabulary_seq(self, after: int) -> int:
        rows = self._read("SELECT MAX(seq) FROM vocabulary WHERE seq > ?", (after,))
        return rows[0][0] or 0 if rows else 0

    def vocabulary(self, seq: int) -> Vocabulary:
        return Vocabulary.model_validate_json(self._read("SELECT vocabulary FROM vocabulary WHERE seq = ?", (seq,))[0][0])


class SqliteFeedWriter(FeedWriter):
    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def latest(self, product_ids: list[str]) -> dict[str, FeedRow]:
        out: dict[str, FeedRow] = {}
        for pid in set(product_ids):
            r = self._db.execute(f"SELECT {COLUMNS} FROM changes WHERE product_id = ? ORDER BY seq DESC LIMIT 1", (pid,)).fetchone()
            if r is not None:
                out[pid] = _row(r)
        return out

    def since(self, seq: int) -> list[FeedRow]:
        return [_row(r) for r in self._db.execute(ROWS, (seq, 2**62)).fetchall()]

    def set_vocabulary(self, seq: int, vocabulary: Vocabulary) -> None:
        self._db.execute("INSERT OR REPLACE INTO vocabulary (seq, vocabulary) VALUES (?, ?)", (seq, vocabulary.model_dump_json()))

    def append(self, product_id: str, product: dict | None, vector: np.ndarray | None, encoder: str | None) -> int:
        cur = self._db.execute(
            "INSERT INTO changes (product_id, product, vector, encoder, ts) VALUES (?, ?, ?, ?, ?)",
            (product_id, json.dumps(product) if product is not None else None,
             np.asarray(vector, dtype=np.float32).tobytes() if vector is not None else None, encoder, time.time()),
        )
        return int(cur.lastrowid)
