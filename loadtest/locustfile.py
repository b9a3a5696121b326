"""Realistic shopper traffic for shopray.

Mix (by task weight, each shopper with its own pseudonymous session that every
search sends): searches (fresh catalog-vocabulary queries, hot repeated queries,
queries with session clicks, high-diversity browsing) and search-box
suggestions dominate; behaviour events (batches of 1-10 views and clicks of
products the shopper's searches showed, now and then an add to cart or a
purchase) are frequent; recommendations (similar to a product seen, for the
session) come less often. Each kind is tagged (search, suggest, events,
recommend): `--tags search` runs the searches alone.

Run it through `shopray loadtest` (headless, own process) or plain `locust -f loadtest/locustfile.py`.
Imports nothing heavy: locust's gevent patching must not meet torch or Ray.
"""

from __future__ import annotations

import random
import time
import uuid

import requests
from locust import HttpUser, between, events, tag, task

from shopray.catalog.demo import generate_demo_catalog

PRODUCTS = generate_demo_catalog(n=4000)
HOT_QUERIES = ["running shoes", "wireless headphones", "coffee maker", "cordless drill", "yoga mat", "red running shoes under 80"]
# What shoppers do with a product a search showed them: mostly look, sometimes click, seldom buy.
EVENT_TYPES = {"view": 70, "click": 20, "add_to_cart": 7, "purchase": 3}
SHOPPERS_READY_S = 120.0


def catalog_query(rng: random.Random) -> str:
    p = rng.choice(PRODUCTS)
    leaf = p.category.split(" > ")[-1].lower() if p.category else "gift"
    shapes = [
        f"{p.brand} {leaf}",
        f"{p.color or ''} {leaf} under {int((p.price or 50) * 1.3)}",
        " ".join(p.title.lower().split()[:4]),
        f"cheap {leaf}",
        f"{leaf} between {int((p.price or 50) * 0.5)} and {int((p.price or 50) * 1.5)}",
    ]
    return rng.choice(shapes).strip()


@events.init_command_line_parser.add_listener
def _args(parser):
    parser.add_argument("--search-k", type=int, default=10, help="k for every search")


@events.init.add_listener
def _await_shoppers(environment, **_kwargs):
    """Events, recommendations and suggestions start on a thread after search does: a run started with the server
    would count their 503s as failures. Waits here, before locust's run time starts, at most SHOPPERS_READY_S."""
    if not environment.host:
        return
    deadline = time.monotonic() + SHOPPERS_READY_S
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{environment.host.rstrip('/')}/suggest", params={"q": "a"}, timeout=10).status_code != 503:
                return
        except requests.RequestException:
            pass  # not listening yet
        time.sleep(1)


class Shopper(HttpUser):
    wait_time = between(0.05, 0.3)

    def on_start(self):
        self.rng = random.Random()
        self.session_id = f"shopper-{uuid.uuid4().hex[:16]}"
        self.clicked: list[str] = []
        self.seen: list[tuple[str, str]] = []  # (product_id, the query that showed it), most recent last
        self.queries: list[str] = []

    def _shed(self, resp) -> None:
        """Locust fails a 4xx or 5xx by itself; a shed request is named as such."""
        if resp.status_code in (429, 503):
            resp.failure(f"shed {resp.status_code}")

    def _search(self, body: dict, name: str):
        body.setdefault("k", self.environment.parsed_options.search_k if self.environment.parsed_options else 10)
        body["session_id"] = self.session_id
        with self.client.post("/search", json=body, name=name, catch_response=True) as resp:
            if resp.status_code == 200:
                results = resp.json()["results"]
                self.queries = (self.queries + [body["query"]])[-10:]
                self.seen = (self.seen + [(r["product_id"], body["query"]) for r in results])[-50:]
                if results and self.rng.random() < 0.3:
                    self.clicked = (self.clicked + [self.rng.choice(results)["product_id"]])[-10:]
                resp.success()
            self._shed(resp)

    @tag("search")
    @task(5)
    def fresh_query(self):
        self._search({"query": catalog_query(self.rng)}, "search")

    @tag("search")
    @task(3)
    def hot_query(self):
        self._search({"query": self.rng.choice(HOT_QUERIES)}, "search hot")

    @tag("search")
    @task(2)
    def with_session(self):
        body = {"query": catalog_query(self.rng)}
        if self.clicked:
            body["session"] = {"clicked": self.clicked}
        self._search(body, "search session")

    @tag("search")
    @task(1)
    def diverse(self):
        self._search({"query": catalog_query(self.rng), "diversity": 0.8, "k": 20}, "search diverse")

    @tag("suggest")
    @task(8)
    def suggest(self):
        """A prefix of what the shopper searched, or is about to search, as the search box sends it while they type."""
        query = self.rng.choice(self.queries) if self.queries and self.rng.random() < 0.5 else catalog_query(self.rng)
        with self.client.get("/suggest", params={"q": query[: self.rng.randint(1, len(query))]}, name="suggest", catch_response=True) as resp:
            self._shed(resp)

    @tag("events")
    @task(6)
    def send_events(self):
        if not self.seen:
            self.fresh_query()  # a shopper who has seen nothing has nothing to view yet
            return
        batch = []
        for product_id, query in self.rng.sample(self.seen, min(len(self.seen), self.rng.randint(1, 10))):
            kind = self.rng.choices(list(EVENT_TYPES), weights=list(EVENT_TYPES.values()))[0]
            batch.append({"session_id": self.session_id, "type": kind, "product_id": product_id, "query": query,
                          "ts": time.time(), "event_id": uuid.uuid4().hex})
        with self.client.post("/events", json={"events": batch}, name="events", catch_response=True) as resp:
            self._shed(resp)

    @tag("recommend")
    @task(3)
    def recommend(self):
        if self.seen and self.rng.random() < 0.6:
            body = {"mode": "similar", "product_id": self.rng.choice(self.seen)[0]}
        else:
            body = {"mode": "for_you", "session_id": self.session_id}  # a session without events gets the popular products
        with self.client.post("/recommend", json=body, name=f"recommend {body['mode']}", catch_response=True) as resp:
            self._shed(resp)
