"""Realistic shopper traffic for shopray.

Mix (by task weight): fresh catalog-vocabulary queries, hot repeated queries,
queries with session clicks, and high-diversity browsing. Run it through
`shopray loadtest` (headless, own process) or plain `locust -f loadtest/locustfile.py`.
Imports nothing heavy: locust's gevent patching must not meet torch or Ray.
"""

from __future__ import annotations

import random

from locust import HttpUser, between, events, task

from shopray.catalog.demo import generate_demo_catalog

PRODUCTS = generate_demo_catalog(n=4000)
HOT_QUERIES = ["running shoes", "wireless headphones", "coffee maker", "cordless drill", "yoga mat", "red running shoes under 80"]


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


class Shopper(HttpUser):
    wait_time = between(0.05, 0.3)

    def on_start(self):
        self.rng = random.Random()
        self.clicked: list[str] = []

    def _search(self, body: dict, name: str):
        body.setdefault("k", self.environment.parsed_options.search_k if self.environment.parsed_options else 10)
        with self.client.post("/search", json=body, name=name, catch_response=True) as resp:
            if resp.status_code == 200:
                results = resp.json()["results"]
                if results and self.rng.random() < 0.3:
                    self.clicked = (self.clicked + [self.rng.choice(results)["product_id"]])[-10:]
                resp.success()
            elif resp.status_code in (429, 503):
                resp.failure(f"shed {resp.status_code}")

    @task(5)
    def fresh_query(self):
        self._search({"query": catalog_query(self.rng)}, "search")

    @task(3)
    def hot_query(self):
        self._search({"query": self.rng.choice(HOT_QUERIES)}, "search hot")

    @task(2)
    def with_session(self):
        body = {"query": catalog_query(self.rng)}
        if self.clicked:
            body["session"] = {"clicked": self.clicked}
        self._search(body, "search session")

    @task(1)
    def diverse(self):
        self._search({"query": catalog_query(self.rng), "diversity": 0.8, "k": 20}, "search diverse")
