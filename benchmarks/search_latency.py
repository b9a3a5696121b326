"""Latency of sequential searches against a running server.

    .venv/bin/shopray serve &          # demo catalog
    .venv/bin/python benchmarks/search_latency.py [--n 200] [--url http://127.0.0.1:8000]

Queries are drawn (deterministically) from the demo catalog's vocabulary, so
they exercise brand/category/color/price parsing and filtered retrieval.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import httpx
import numpy as np


def demo_queries(n: int, seed: int = 0) -> list[str]:
    from shopray.catalog.demo import generate_demo_catalog

    rng = random.Random(seed)
    products = generate_demo_catalog(n=3000)
    queries = []
    for _ in range(n):
        p = rng.choice(products)
        leaf = p.category.split(" > ")[-1].lower() if p.category else ""
        shape = rng.randrange(4)
        if shape == 0:
            queries.append(f"{p.color or ''} {p.brand} {leaf}".strip())
        elif shape == 1:
            queries.append(f"{leaf} under {int((p.price or 50) * 1.2)}")
        elif shape == 2:
            queries.append(" ".join(p.title.lower().split()[:4]))
        else:
            queries.append(f"cheap {p.color or ''} {leaf}".strip())
    return queries


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    ns = parser.parse_args()
    queries = demo_queries(ns.n)
    client = httpx.Client(base_url=ns.url, timeout=30)
    for q in queries[:5]:  # warm-up
        client.post("/search", json={"query": q, "k": ns.k}).raise_for_status()
    latencies, stages = [], {"parse": [], "retrieve": [], "rank": [], "diversify": []}
    for q in queries:
        t0 = time.perf_counter()
        resp = client.post("/search", json={"query": q, "k": ns.k})
        latencies.append((time.perf_counter() - t0) * 1000)
        resp.raise_for_status()
        for key in stages:
            stages[key].append(resp.json()["timings_ms"][key])
    lat = np.array(latencies)
    print(f"{ns.n} sequential searches, k={ns.k}: p50 {np.percentile(lat, 50):.1f} ms, p95 {np.percentile(lat, 95):.1f} ms, p99 {np.percentile(lat, 99):.1f} ms, mean {lat.mean():.1f} ms")
    print("stage p50 (ms): " + ", ".join(f"{k} {np.percentile(v, 50):.1f}" for k, v in stages.items()))
    print("command: .venv/bin/python benchmarks/search_latency.py " + " ".join(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
