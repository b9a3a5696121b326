"""The change feed on a Redis server, for Retriever replicas on several machines (``index.feed.backend: redis``;
the server's requirements: ``shopray.broker``).

Layout under ``prefix`` (``shopray:feed:<index>``): ``:rows`` is a stream with one entry per change, whose id is
``0-<seq>``, so readers ask for rows by sequence number; ``:seq`` is the last one; ``:latest`` maps each product to
its newest; ``:vocabulary`` and ``:vocabulary-seqs`` hold the vocabulary after each change that changed it.

A writer reads the feed as it stands, buffers its batch, and commits it with one Lua script that first checks
``:seq`` is still what the batch read. Redis runs a script alone and logs its effects as one transaction, and a
server out of memory refuses it before its first write, so a batch is stored whole or not at all and readers see
all of it or none. A writer that raced another stores nothing and raises ``FeedConflict``; the catalog writer
then validates its batch again against the new state (optimistic, so a crashed writer holds no lock).
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import redis

from shopray.domain import Vocabulary
from shopray.stages.retrieve.index.feed import ChangeFeed, FeedConflict, FeedRow, FeedWriter

CHUNK = 2000  # rows per XRANGE round trip
ROW_ARGS = 6  # per row: seq, product id, product JSON ('' deleted), vector ('' unchanged), encoder, ts

# KEYS: seq, rows, latest, vocabulary, vocabulary-seqs. ARGV: the seq the batch read, its row count, the rows
# (ROW_ARGS each), then (seq, vocabulary JSON) pairs.
COMMIT = """#!lua
local seq, rows, latest, vocabulary, vocabulary_seqs = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
if (redis.call('GET', seq) or '0') ~= ARGV[1] then
  return redis.error_reply('CONFLICT another batch was committed first')
end
local n, last = tonumber(ARGV[2]), ARGV[1]
for a = 3, 2 + n * 6, 6 do
  local fields = {'p', ARGV[a + 1], 'ts', ARGV[a + 5]}
  if ARGV[a + 2] ~= '' then fields[#fields + 1] = 'j'; fields[#fields + 1] = ARGV[a + 2] end
  if ARGV[a + 3] ~= '' then
    fields[#fields + 1] = 'v'; fields[#fields + 1] = ARGV[a + 3]
    fields[#fields + 1] = 'e'; fields[#fields + 1] = ARGV[a + 4]
  end
  redis.call('XADD', rows, '0-' .. ARGV[a], unpack(fields))
  redis.call('HSET', latest, ARGV[a + 1], ARGV[a])
  last = ARGV[a]
end
for a = 3 + n * 6, #ARGV, 2 do
  redis.call('HSET', vocabulary, ARGV[a], ARGV[a + 1])
  redis.call('ZADD', vocabulary_seqs, ARGV[a], ARGV[a])
end
redis.call('SET', seq, last)
return last
"""


def _row(entry_id: bytes, f: dict[bytes, bytes]) -> FeedRow:
    product, vector = f.get(b"j"), f.get(b"v")
    return FeedRow(int(entry_id.split(b"-")[1]), f[b"p"].decode(), json.loads(product) if product is not None else None,
                   np.frombuffer(vector, dtype=np.float32) if vector is not None else None,
                   f[b"e"].decode() if vector is not None else None, float(f[b"ts"]))


class RedisFeed(ChangeFeed):
    def __init__(self, client: redis.Redis, prefix: str):
        """``client``: binary replies (``shopray.broker.connect(..., binary=True)``)."""
        self._db, self.prefix = client, prefix
        self._keys = [f"{prefix}:{k}" for k in ("seq", "rows", "latest", "vocabulary", "vocabulary-seqs")]
        self._seq, self._rows, self._latest, self._vocabulary, self._vocabulary_seqs = self._keys
        self._commit = client.register_script(COMMIT)

    @classmethod
    def of_index(cls, client: redis.Redis, name: str) -> "RedisFeed":
        return cls(client, f"shopray:feed:{name}")

    @contextmanager
    def writing(self) -> Iterator["RedisFeedWriter"]:
        writer = RedisFeedWriter(self, self.last_seq())
        yield writer
        writer.commit()

    def last_seq(self) -> int:
        return int(self._db.get(self._seq) or 0)

    def since(self, seq: int, until: int | None = None) -> list[FeedRow]:
        rows: list[FeedRow] = []
        end = f"0-{until}" if until is not None else "+"
        while True:
            entries = self._db.xrange(self._rows, f"(0-{seq}", end, count=CHUNK)
            rows += [_row(entry_id, fields) for entry_id, fields in entries]
            if len(entries) < CHUNK:
                return rows
            seq = rows[-1].seq

    def vocabulary_seq(self, after: int) -> int:
        found = self._db.zrevrangebyscore(self._vocabulary_seqs, "+inf", f"({after}", start=0, num=1)
        return int(found[0]) if found else 0

    def vocabulary(self, seq: int) -> Vocabulary:
        return Vocabulary.model_validate_json(self._db.hget(self._vocabulary, str(seq)))

    def latest_rows(self, product_ids: list[str]) -> dict[str, FeedRow]:
        """The newest committed row of each product that has one."""
        ids = list(dict.fromkeys(product_ids))
        seqs = self._db.hmget(self._latest, ids) if ids else []
        found = [(pid, int(s)) for pid, s in zip(ids, seqs) if s is not None]
        pipe = self._db.pipeline(transaction=False)
        for _, s in found:
            pipe.xrange(self._rows, f"0-{s}", f"0-{s}")
        return {pid: _row(*entries[0]) for (pid, _), entries in zip(found, pipe.execute())}


class RedisFeedWriter(FeedWriter):
    def __init__(self, feed: RedisFeed, base: int):
        self._feed, self._base = feed, base
        self._rows: list[FeedRow] = []
        self._vocabularies: dict[int, Vocabulary] = {}

    def latest(self, product_ids: list[str]) -> dict[str, FeedRow]:
        wanted = set(product_ids)
        return self._feed.latest_rows(product_ids) | {r.product_id: r for r in self._rows if r.product_id in wanted}

    def since(self, seq: int) -> list[FeedRow]:
        return self._feed.since(seq, self._base) + [r for r in self._rows if r.seq > seq]

    def append(self, product_id: str, product: dict | None, vector: np.ndarray | None, encoder: str | None) -> int:
        row = FeedRow(self._base + len(self._rows) + 1, product_id, product,
                      np.asarray(vector, dtype=np.float32) if vector is not None else None, encoder if vector is not None else None, time.time())
        self._rows.append(row)
        return row.seq

    def set_vocabulary(self, seq: int, vocabulary: Vocabulary) -> None:
        self._vocabularies[seq] = vocabulary

    def commit(self) -> None:
        if not self._rows and not self._vocabularies:
            return
        args: list = [self._base, len(self._rows)]
        for r in self._rows:
            args += [r.seq, r.product_id, json.dumps(r.product) if r.product is not None else "",
                     r.vector.tobytes() if r.vector is not None else "", r.encoder or "", repr(r.ts)]
        for seq, vocabulary in self._vocabularies.items():
            args += [seq, vocabulary.model_dump_json()]
        try:
            self._feed._commit(keys=self._feed._keys, args=args)
        except redis.ResponseError as exc:
            if str(exc).startswith("CONFLICT"):
                raise FeedConflict(f"feed {self._feed.prefix}: another batch was committed after change {self._base}") from None
            raise
