"""What the ingress answers beside search, from what shoppers do: events in; recommendations, suggestions and a
session's history out; a session erased on request.

One ``Shoppers`` per ingress replica. It reads the event log into real-time features (``Behaviour``, refreshed
within ``events.refresh_s``), holds its own reader of the published index (recommendations are one Qdrant
query: a hop to a Retriever replica would cost more than the query), and keeps the suggester current: rebuilt
from the catalog when the index changes, and given the popular queries when events change, each at most once a
minute, on a background thread.
"""

from __future__ import annotations

import logging
import threading
import time

from shopray.api import RecommendRequest, RecommendResponse
from shopray.config import AppConfig
from shopray.events import Appended, Behaviour, Event, open_event_log
from shopray.follow import Follower
from shopray.recommend.recommender import Recommender
from shopray.stages.retrieve.index import IndexReader, open_store
from shopray.stages.retrieve.stage import follow_index
from shopray.suggest import Suggester, Suggestion

log = logging.getLogger("ray.serve")
SUGGEST_EVERY_S = 60.0  # the catalog's phrases and the popular queries change slowly; a rebuild costs about a second
PURGE_EVERY_S = 3600.0


class Shoppers:
    def __init__(self, config: AppConfig):
        self.config = config
        self.log = open_event_log(config.events)
        self.behaviour = Behaviour(self.log, config.events)
        self.behaviour.refresh()
        store = open_store(config.index)
        self.feed = store.feed
        self.index = follow_index(store, config.index.hnsw_ef)
        self.recommender = Recommender(self.behaviour, config.recommend, config.diversifier, config.retriever.out_of_stock)
        self._suggester = Follower(lambda: self.reader().label, self._suggester_for, name="suggester", every_s=SUGGEST_EVERY_S)
        self._suggester.check(wait=True)
        self._queries_seen, self._queries_at = self.behaviour.events, time.monotonic()  # the suggester starts with these
        self._purged = 0.0

    def reader(self) -> IndexReader:
        reader = self.index.current
        reader.follow(self.feed, self.config.retriever.feed_check_s)  # catalog changes, as the retriever's replicas apply them
        return reader

    def _suggester_for(self, _label: str) -> Suggester:
        suggester = Suggester.from_products(self.reader().products(), self.config.suggest)
        suggester.update_queries(self.behaviour.popular_queries(self.config.suggest.max_phrases))
        return suggester

    def follow(self) -> None:
        """Called on each request: new events into the features, and now and then the retention purge."""
        self.behaviour.follow(self.config.events.refresh_s)
        now = time.monotonic()
        if now - self._purged >= PURGE_EVERY_S:
            self._purged = now
            threading.Thread(target=self._purge, name="events-purge", daemon=True).start()

    def _purge(self) -> None:
        try:
            if n := self.log.purge(time.time() - self.config.events.retention_days * 86400):
                log.info("events: %d past retention purged", n)
        except Exception:  # retried at the next purge
            log.exception("events: the retention purge failed")

    def record(self, events: list[Event]) -> Appended:
        """Append durably (the caller answers 202 only after this returns). This replica's features fold the batch in
        before it is acknowledged, so a shopper's next request here sees it; other replicas follow within refresh_s."""
        appended = self.log.append(events, time.time())
        try:
            self.behaviour.refresh()
        except Exception:  # the events are stored; the next refresh folds them in
            log.exception("events: folding a new batch into the features failed")
        return appended

    def history(self, session_id: str) -> list[str]:
        """The session's recent products, most recent last, as a search's session signal."""
        self.follow()
        return self.behaviour.recent(session_id, 50)

    def recommend(self, req: RecommendRequest) -> RecommendResponse:
        self.follow()
        return self.recommender.recommend(req, self.reader())

    def suggest(self, q: str, k: int | None) -> list[Suggestion]:
        self.follow()
        suggester = self._suggester.current
        if self.behaviour.events != self._queries_seen and time.monotonic() - self._queries_at >= SUGGEST_EVERY_S:
            self._queries_seen, self._queries_at = self.behaviour.events, time.monotonic()
            threading.Thread(target=suggester.update_queries, args=(self.behaviour.popular_queries(self.config.suggest.max_phrases),),
                             name="suggest-queries", daemon=True).start()
        return suggester.suggest(q, k)

    def erase(self, session_id: str) -> int:
        """Delete the session's events, and fold the log again so this replica's features forget it before answering;
        other replicas rebuild within ``events.refresh_s``."""
        n = self.log.erase_session(session_id)
        self.behaviour.refresh()
        return n
