"""The event log in one SQLite file: WAL, one transaction per batch, committed to disk before it is acknowledged.

The cursor is the row's autoincrement ``seq``: writers are serialised
(``BEGIN IMMEDIATE``), so a reader never sees a later seq before an earlier
one is committed. Every call opens its own connection, so threads of a web
server and processes on one machine may share the file.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Iterator

from shopray import durable
from shopray.events.log import Appended, EventLog
from shopray.events.model import Event, StoredEvent

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    session_id TEXT NOT NULL,
    type TEXT NOT NULL,
    product_id TEXT NOT NULL,
    query TEXT,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_session ON events (session_id);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (name, value) VALUES ('generation', 0);
"""
# Only a repeated key is skipped: any other constraint failure (OR IGNORE would skip those too) fails the batch.
INSERT = "INSERT INTO events (key, session_id, type, product_id, query, ts) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING"
BUMP = "UPDATE meta SET value = value + 1 WHERE name = 'generation'"


class SqliteEventLog(EventLog):
    def __init__(self, path: Path):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")

    def _connect(self) -> sqlite3.Connection:
        return durable.connect(self.path)

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def append(self, events: list[Event], now: float) -> Appended:
        rows = [(e.key(), e.session_id, e.type, e.product_id, e.query, e.ts if e.ts is not None else now) for e in events]
        with self._writing() as db:
            before = db.total_changes
            db.executemany(INSERT, rows)
            accepted = db.total_changes - before
        return Appended(accepted=accepted, duplicates=len(rows) - accepted)

    def since(self, cursor: str | None, limit: int = 10_000) -> tuple[list[StoredEvent], str | None]:
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT seq, session_id, type, product_id, query, ts FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (int(cursor or 0), limit)
            ).fetchall()
        events = [StoredEvent(str(seq), *rest) for seq, *rest in rows]
        return events, events[-1].seq if events else cursor

    def _delete(self, where: str, arg: object) -> int:
        with self._writing() as db:
            deleted = db.execute(f"DELETE FROM events WHERE {where}", (arg,)).rowcount
            if deleted:
                db.execute(BUMP)  # in the same transaction: no reader sees the deletion under the old generation
        return deleted

    def erase_session(self, session_id: str) -> int:
        return self._delete("session_id = ?", session_id)

    def purge(self, before_ts: float) -> int:
        return self._delete("ts < ?", before_ts)

    def generation(self) -> int:
        with closing(self._connect()) as db:
            return db.execute("SELECT value FROM meta WHERE name = 'generation'").fetchone()[0]

    def close(self) -> None:
        """Nothing is held between calls."""
