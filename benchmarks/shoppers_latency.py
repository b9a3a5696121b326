"""Sequential latency of the shoppers' routes against a running server: /suggest, /recommend in each mode, /events.

    .venv/bin/shopray serve &          # the demo catalog
    .venv/bin/python benchmarks/shoppers_latency.py [--n 200]

First it sends synthetic sessions' events (views, carts, purchases of demo
products, so that every recommendation mode has something to answer from),
then times ``--n`` requests of each kind one at a time, over one keep-alive
connection, and prints p50/p99 and the statuses, with the model each mode
answered with.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from collections import Counter

import httpx

from shopray.bench.report import markdown_table, percentiles, print_command
from shopray.catalog.demo import generate_demo_catalog


def _timed(client: httpx.Client, method: str, path: str, **kw) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    resp = client.request(method, path, **kw)
    return (time.perf_counter() - start) * 1000, resp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--n", type=int, default=200, help="requests of each kind")
    parser.add_argument("--sessions", type=int, default=200, help="synthetic sessions whose events are sent first")
    parser.add_argument("--seed", type=int, default=0)
    ns = parser.parse_args(argv)
    print_command(argv)
    rng = random.Random(ns.seed)
    catalog = generate_demo_catalog()
    run = uuid.uuid4().hex[:8]
    sessions = [f"bench-{run}-{i}" for i in range(ns.sessions)]
    rows, failed = [], False
    with httpx.Client(base_url=ns.url.rstrip("/"), timeout=30) as client:
        events = []
        for s in sessions:  # each session browses one category: carts and purchases co-occur within it
            pool = [p for p in rng.sample(catalog, 400) if p.category == rng.choice(catalog).category] or rng.sample(catalog, 5)
            for p in rng.sample(pool, min(len(pool), 6)):
                events.append({"session_id": s, "type": rng.choice(["view", "click", "add_to_cart", "purchase"]), "product_id": p.product_id})
        event_ms = []
        for i in range(0, len(events), 50):
            ms, resp = _timed(client, "POST", "/events", json={"events": events[i:i + 50]})
            event_ms.append(ms)
            failed |= resp.status_code != 202
        time.sleep(2)  # features follow the log within events.refresh_s
        titles = [p.title for p in rng.sample(catalog, ns.n)]

        def recommend(mode: str) -> dict:
            body = {"mode": mode}
            if mode in ("similar", "bought_together"):
                body["product_id"] = rng.choice(events)["product_id"]
            if mode == "for_you":
                body["session_id"] = rng.choice(sessions)
            return {"json": body}

        kinds = {"GET /suggest (a prefix of a title)": lambda i: ("GET", "/suggest", {"params": {"q": titles[i][: rng.randint(2, 14)]}})}
        kinds |= {f"POST /recommend {m}": (lambda m: lambda i: ("POST", "/recommend", recommend(m)))(m) for m in ("similar", "for_you", "bought_together", "popular")}
        p = percentiles(event_ms, (50, 99))
        rows.append(("POST /events (batch of 50)", len(event_ms), {"202": len(event_ms)} if not failed else "not all 202", f"{p['p50_ms']:.1f}", f"{p['p99_ms']:.1f}", ""))
        for name, request in kinds.items():
            lat, statuses, models = [], Counter(), Counter()
            for i in range(ns.n):
                method, path, kw = request(i)
                ms, resp = _timed(client, method, path, **kw)
                lat.append(ms)
                statuses[str(resp.status_code)] += 1
                if path == "/recommend" and resp.status_code == 200:
                    body = resp.json()
                    models[body["model"] + (f" ({body['fallback']})" if body["fallback"] else "")] += 1
            failed |= any(code != "200" for code in statuses)
            p = percentiles(lat, (50, 99))
            rows.append((name, len(lat), dict(statuses), f"{p['p50_ms']:.1f}", f"{p['p99_ms']:.1f}", dict(models) if models else ""))
    print(markdown_table(("request", "n", "statuses", "p50 ms", "p99 ms", "answered by"), rows))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
