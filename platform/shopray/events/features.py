"""Real-time features from the event log, in memory: popularity, a session's recent and purchased products,
products bought together, popular queries.

``Behaviour`` tails the log (``refresh``, or ``follow`` on each request) and
folds each event in at O(1) (bought-together: O(cart)); when the log's
generation changes (a session erased, old events purged) it rebuilds from the
start of the log and swaps the new state in whole. Order is the log's append
order, so every replica reading one log computes the same features.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict
from typing import Iterable, Sequence

import numpy as np

from shopray.config import EventsConfig
from shopray.events.log import EventLog
from shopray.events.model import StoredEvent

log = logging.getLogger(__name__)
CHUNK = 10_000  # events read per ``since``
REBASE = 64.0  # half-lives past the reference time at which the scaled sums move it forward, far from overflow
CART = ("add_to_cart", "purchase")


class _State:
    """Everything folded in from the log; a rebuild makes a new one."""

    def __init__(self, config: EventsConfig, popularity_only: bool = False):
        self.config, self.popularity_only = config, popularity_only
        self.half_life_s = config.half_life_h * 3600.0
        # Each product's decayed weight sum scaled to time t0 (sum of w * 2**((ts - t0) / half-life)): adding an event
        # is O(1), and the ratio of two products' sums is the same at any time, so normalising needs no rescale.
        self.t0: float | None = None
        self.popularity: dict[str, float] = {}
        self.top = 0.0
        self.ranked: list[tuple[str, float]] | None = None  # popularity, highest first; None: to sort again
        self.recent: dict[str, OrderedDict[str, None]] = {}
        self.purchased: dict[str, set[str]] = {}
        self.carts: dict[str, dict[str, None]] = {}  # a session's distinct cart products, up to recent_per_session
        self.neighbours: dict[str, dict[str, int]] = {}  # product -> product -> sessions whose carts held both
        self.queries: Counter[str] = Counter()
        self.events = 0

    def fold(self, events: list[StoredEvent]) -> None:
        for e in events:
            self._popularity(e.product_id, getattr(self.config.weights, e.type), e.ts)
            self.events += 1
            if self.popularity_only:
                continue
            recent = self.recent.setdefault(e.session_id, OrderedDict())
            recent[e.product_id] = None
            recent.move_to_end(e.product_id)
            if len(recent) > self.config.recent_per_session:
                recent.popitem(last=False)
            if e.type == "purchase":
                self.purchased.setdefault(e.session_id, set()).add(e.product_id)
            if e.type in CART:
                self._cart(e.session_id, e.product_id)
            query = " ".join((e.query or "").lower().split())
            if query:
                self.queries[query] += 1
        if events:
            self.ranked = None

    def _popularity(self, product_id: str, weight: float, ts: float) -> None:
        if self.t0 is None:
            self.t0 = ts
        exponent = (ts - self.t0) / self.half_life_s
        if exponent > REBASE:
            factor = 2.0 ** -exponent
            self.popularity = {p: v * factor for p, v in self.popularity.items()}
            self.top *= factor
            self.t0, exponent = ts, 0.0
        value = self.popularity.get(product_id, 0.0) + weight * 2.0**exponent
        self.popularity[product_id] = value
        self.top = max(self.top, value)

    def _cart(self, session_id: str, product_id: str) -> None:
        # A pair counts once per session: only a product new to the session's cart adds pairs.
        cart = self.carts.setdefault(session_id, {})
        if product_id in cart or len(cart) >= self.config.recent_per_session:
            return
        for other in cart:
            self._pair(product_id, other)
            self._pair(other, product_id)
        cart[product_id] = None

    def _pair(self, a: str, b: str) -> None:
        neighbours = self.neighbours.setdefault(a, {})
        if b not in neighbours and len(neighbours) >= self.config.neighbours_per_product:
            del neighbours[min(neighbours, key=neighbours.__getitem__)]
        neighbours[b] = neighbours.get(b, 0) + 1


class Behaviour:
    """Features of one event log. Empty until the first ``refresh`` (or a ``follow`` that ran one).

    ``popularity_only`` folds in nothing else (sessions, carts, queries stay empty): a reader that ranks by
    popularity, such as each Ranker replica, then holds memory by product, not by session."""

    def __init__(self, log: EventLog, config: EventsConfig, popularity_only: bool = False):
        self._log, self._config, self._popularity_only = log, config, popularity_only
        self._state = _State(config, popularity_only)
        self._cursor: str | None = None
        self._generation: int | None = None
        self._lock = threading.Lock()  # readers against a refresh folding events into the shared state
        self._refreshing = threading.Lock()
        self._checked = 0.0

    def refresh(self) -> int:
        """Fold in the events appended since the last refresh, or rebuild when events were deleted; returns how many it read."""
        with self._refreshing:
            # Read before the events: a deletion after this read is seen as a new generation by the next refresh.
            generation = self._log.generation()
            rebuild = generation != self._generation
            state, cursor, read = (_State(self._config, self._popularity_only), None, 0) if rebuild else (self._state, self._cursor, 0)
            while True:
                events, cursor = self._log.since(cursor, CHUNK)
                with self._lock:
                    state.fold(events)
                    if not rebuild:  # folded into the shared state: never fold these again, even if the next read fails
                        self._cursor = cursor
                read += len(events)
                if len(events) < CHUNK:
                    break
            with self._lock:
                self._state, self._cursor, self._generation = state, cursor, generation
            return read

    def follow(self, every_s: float) -> None:
        """Called on each request: at most every ``every_s``, new events are folded in on a background thread."""
        now = time.monotonic()
        if now - self._checked < every_s or self._refreshing.locked():
            return
        self._checked = now
        threading.Thread(target=self._refresh_logged, name="behaviour-refresh", daemon=True).start()

    def _refresh_logged(self) -> None:
        try:
            self.refresh()
        except Exception:  # the features keep answering from the events they have
            log.exception("behaviour: reading new events failed")

    def popularity(self, product_ids: Iterable[str]) -> dict[str, float]:
        """Each product's decayed, weighted event count over the most popular product's: 0..1, 0 for products without events."""
        with self._lock:
            s = self._state
            return {p: s.popularity.get(p, 0.0) / s.top if s.top > 0 else 0.0 for p in product_ids}

    def log_popularity(self, product_ids: Sequence[str], now: float | None = None) -> np.ndarray:
        """Each product's ``log1p`` of its decayed, weighted event count at ``now``, over the most popular product's: 0..1.

        The log keeps a product with a handful of purchases distinguishable from one without events, where the linear
        ratio of ``popularity`` would put everything below the few best sellers at about 0."""
        now = time.time() if now is None else now
        with self._lock:
            s = self._state
            if s.top <= 0 or s.t0 is None:
                return np.zeros(len(product_ids))
            decay = 2.0 ** ((s.t0 - now) / s.half_life_s)
            values = np.array([s.popularity.get(p, 0.0) for p in product_ids]) * decay
            top = s.top * decay
        return np.log1p(values) / np.log1p(top) if top > 0 else np.zeros(len(product_ids))

    def popular(self, k: int, exclude: Iterable[str] = ()) -> list[tuple[str, float]]:
        """The ``k`` most popular products and their ``popularity``, highest first."""
        skip = set(exclude)
        with self._lock:
            s = self._state
            if s.ranked is None:
                s.ranked = sorted(((p, v / s.top if s.top > 0 else 0.0) for p, v in s.popularity.items()), key=lambda pv: (-pv[1], pv[0]))
            ranked = s.ranked
        out: list[tuple[str, float]] = []
        for p, v in ranked:
            if len(out) == k:
                break
            if p not in skip:
                out.append((p, v))
        return out

    def recent(self, session_id: str, k: int = 20) -> list[str]:
        """The session's last ``k`` distinct products, most recent last."""
        with self._lock:
            return list(self._state.recent.get(session_id, ()))[-k:] if k > 0 else []

    def purchased(self, session_id: str) -> set[str]:
        with self._lock:
            return set(self._state.purchased.get(session_id, ()))

    def bought_together(self, product_ids: Iterable[str], k: int, exclude: Iterable[str] = ()) -> list[tuple[str, float]]:
        """Products carted or bought in the same sessions as these, scored by how many sessions (summed over ``product_ids``)."""
        given = set(product_ids)
        skip = given | set(exclude)
        scores: Counter[str] = Counter()
        with self._lock:
            for p in given:
                scores.update(self._state.neighbours.get(p, {}))
        ranked = sorted(((q, float(n)) for q, n in scores.items() if q not in skip), key=lambda qn: (-qn[1], qn[0]))
        return ranked[:k]

    def popular_queries(self, k: int) -> list[tuple[str, int]]:
        """The ``k`` most frequent queries of events (lower case, whitespace collapsed) and their counts; ties in log order."""
        with self._lock:
            return self._state.queries.most_common(k)

    @property
    def sessions(self) -> int:
        return len(self._state.recent)

    @property
    def events(self) -> int:
        return self._state.events
