"""The event log in a Redis Stream, for several machines writing one log (the server's requirements: ``shopray.broker``).

Layout under ``prefix``: ``:stream`` holds one entry per event (its id, the
acceptance time in milliseconds plus a counter, is the cursor); ``:key:<key>``
marks a stored event's dedup key; ``:session:<id>`` is the set of a session's
entry ids; ``:generation`` counts deletions. A batch is one Lua script: Redis
runs it alone, its effects reach the AOF as one transaction, and a server out
of memory refuses it before its first write, never halfway, so a batch is
stored whole or not at all. Dedup keys carry no expiry:
they are deleted with their entry, so an event is a duplicate exactly while
the log holds it, as in the SQLite backend.

``purge`` deletes by the event's ``ts``, as SQLite does, not by acceptance
time (an XTRIM MINID): an event may arrive long after it happened. It scans
the stream in chunks, so other commands run in between.
"""

from __future__ import annotations

import redis

from shopray.events.log import Appended, EventLog
from shopray.events.model import Event, StoredEvent

CHUNK = 1000  # entries a purge reads and deletes per round trip

# KEYS: stream. ARGV: prefix, then per event: key, session, type, product, query ('' when none), ts.
APPEND = """#!lua
local stream, prefix = KEYS[1], ARGV[1]
local accepted = 0
for i = 2, #ARGV, 6 do
  if redis.call('SET', prefix .. ':key:' .. ARGV[i], '1', 'NX') then
    local fields = {'k', ARGV[i], 's', ARGV[i + 1], 't', ARGV[i + 2], 'p', ARGV[i + 3], 'ts', ARGV[i + 5]}
    if ARGV[i + 4] ~= '' then fields[#fields + 1] = 'q'; fields[#fields + 1] = ARGV[i + 4] end
    redis.call('SADD', prefix .. ':session:' .. ARGV[i + 1], redis.call('XADD', stream, '*', unpack(fields)))
    accepted = accepted + 1
  end
end
return accepted
"""
# KEYS: stream, the session's set, generation. ARGV: prefix.
ERASE = """#!lua
local stream, members, generation, prefix = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
local deleted = 0
for _, id in ipairs(redis.call('SMEMBERS', members)) do
  local entry = redis.call('XRANGE', stream, id, id)[1]
  if entry then
    local f = entry[2]
    for j = 1, #f, 2 do
      if f[j] == 'k' then redis.call('DEL', prefix .. ':key:' .. f[j + 1]) end
    end
    deleted = deleted + redis.call('XDEL', stream, id)
  end
end
redis.call('DEL', members)
if deleted > 0 then redis.call('INCR', generation) end
return deleted
"""
# KEYS: stream, generation. ARGV: prefix, then per entry: id, key, session.
PURGE = """#!lua
local stream, generation, prefix = KEYS[1], KEYS[2], ARGV[1]
local deleted = 0
for i = 2, #ARGV, 3 do
  if redis.call('XDEL', stream, ARGV[i]) == 1 then
    redis.call('DEL', prefix .. ':key:' .. ARGV[i + 1])
    redis.call('SREM', prefix .. ':session:' .. ARGV[i + 2], ARGV[i])
    deleted = deleted + 1
  end
end
if deleted > 0 then redis.call('INCR', generation) end
return deleted
"""


def _stored(entry_id: str, f: dict[str, str]) -> StoredEvent:
    return StoredEvent(entry_id, f["s"], f["t"], f["p"], f.get("q"), float(f["ts"]))


class RedisEventLog(EventLog):
    def __init__(self, client: redis.Redis, prefix: str = "shopray:events"):
        """``client``: text replies (``shopray.broker.connect``)."""
        self.prefix, self._db = prefix, client
        self._stream, self._generation = f"{prefix}:stream", f"{prefix}:generation"
        self._append, self._erase, self._purge = (self._db.register_script(s) for s in (APPEND, ERASE, PURGE))

    def append(self, events: list[Event], now: float) -> Appended:
        args: list[str] = [self.prefix]
        for e in events:
            args += [e.key(), e.session_id, e.type, e.product_id, e.query or "", repr(e.ts if e.ts is not None else now)]
        accepted = int(self._append(keys=[self._stream], args=args))
        return Appended(accepted=accepted, duplicates=len(events) - accepted)

    def since(self, cursor: str | None, limit: int = 10_000) -> tuple[list[StoredEvent], str | None]:
        entries = self._db.xrange(self._stream, f"({cursor}" if cursor else "-", "+", count=limit)
        events = [_stored(entry_id, fields) for entry_id, fields in entries]
        return events, events[-1].seq if events else cursor

    def erase_session(self, session_id: str) -> int:
        return int(self._erase(keys=[self._stream, f"{self.prefix}:session:{session_id}", self._generation], args=[self.prefix]))

    def purge(self, before_ts: float) -> int:
        start, deleted = "-", 0
        while True:
            entries = self._db.xrange(self._stream, start, "+", count=CHUNK)
            old = [[entry_id, f["k"], f["s"]] for entry_id, f in entries if float(f["ts"]) < before_ts]
            if old:
                deleted += int(self._purge(keys=[self._stream, self._generation], args=[self.prefix] + [a for row in old for a in row]))
            if len(entries) < CHUNK:
                return deleted
            start = f"({entries[-1][0]}"

    def generation(self) -> int:
        return int(self._db.get(self._generation) or 0)

    def close(self) -> None:
        self._db.close()
