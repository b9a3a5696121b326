"""A bounded LRU of parsed intents for hot queries.

Keys are (index version, normalised query): when the catalog is rebuilt the
vocabulary, the schema and what "cheap" means may all change, so an intent
parsed against the old catalog must not answer for the new one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from shopray.domain import Intent


class IntentCache:
    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._data: OrderedDict[tuple[str, str], Intent] = OrderedDict()
        # The sync and async parse paths may run on different threads.
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, version: str, query: str) -> Intent | None:
        if self.maxsize <= 0:
            return None
        with self._lock:
            intent = self._data.get((version, query))
            if intent is None:
                self.misses += 1
                return None
            self._data.move_to_end((version, query))
            self.hits += 1
        return intent.model_copy(deep=True)

    def put(self, version: str, query: str, intent: Intent) -> None:
        if self.maxsize <= 0:
            return
        with self._lock:
            self._data[(version, query)] = intent.model_copy(deep=True)
            self._data.move_to_end((version, query))
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def retain(self, version: str) -> int:
        """Drop every entry of other catalog versions; returns how many went."""
        with self._lock:
            stale = [k for k in self._data if k[0] != version]
            for k in stale:
                del self._data[k]
        return len(stale)

    def __len__(self) -> int:
        return len(self._data)

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def stats(self) -> dict:
        return {"size": len(self._data), "maxsize": self.maxsize, "hits": self.hits, "misses": self.misses, "hit_rate": round(self.hit_rate, 4)}
