"""Live catalog changes against a running server, under a steady search load: change-to-visible and a burst.

    SHOPRAY_ADMIN_KEY=k .venv/bin/shopray serve &       # the demo catalog
    SHOPRAY_ADMIN_KEY=k .venv/bin/python benchmarks/live_catalog.py [--rate 1] [--changes 30] [--burst 10000]

Three phases, each under open-loop searches at ``--rate`` per second:
quiet (searches only); visibility (one price change at a time through
``POST /admin/catalog``, then the product's own title searched every 50 ms
until the new price shows, timed from sending the change); burst (``--burst``
price changes in batches of ``--batch``, sent back to back). The burst phase
adds no searches of its own: when the last change became visible is read from
the steady load's answers (``versions.index`` ends in the last change applied),
so its search p99 compares the same load with and without the burst (the
visibility phase's polling is extra load, which shows in its p99). It prints
search p50/p99 of each phase, the burst's search p99 against the quiet one,
and every non-200.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from collections import Counter

import httpx

from shopray.bench.load import arrivals, demo_queries, statuses
from shopray.bench.report import percentiles, print_command
from shopray.catalog.demo import generate_demo_catalog
from shopray.domain import Product


async def _visible(client: httpx.AsyncClient, product: Product, price: float, timeout_s: float) -> str | None:
    """Search the product's title until it shows at ``price``: None once it does, else what the last search said."""
    deadline, last = time.perf_counter() + timeout_s, "no search answered"
    while time.perf_counter() < deadline:
        resp = await client.post("/search", json={"query": product.title, "k": 50, "out_of_stock": "show"})
        if resp.status_code == 200:
            body = resp.json()
            shown = [r.get("price") for r in body["results"] if r["product_id"] == product.product_id]
            if price in shown:
                return None
            last = (f"index {body['versions'].get('index')}, degraded {body['degraded']}, intent {body['intent']}, "
                    f"{'shown at ' + str(shown) if shown else 'not among ' + str(len(body['results']))}")
        else:
            last = f"HTTP {resp.status_code}"
        await asyncio.sleep(0.05)
    return last


async def _change(client: httpx.AsyncClient, key: str, changes: list[dict]) -> httpx.Response:
    return await client.post("/admin/catalog", json={"changes": changes}, headers={"X-Admin-Key": key})


async def visibility(client: httpx.AsyncClient, key: str, products: list[Product], n: int, rng: random.Random) -> tuple[list[float], list[int]]:
    """Seconds from sending each change until search shows it; the admin route's statuses. Names each change never seen."""
    seconds, codes = [], []
    for _ in range(n):
        product, price = rng.choice(products), round(rng.uniform(1, 900), 2)
        start = time.perf_counter()
        codes.append((await _change(client, key, [{"product_id": product.product_id, "price": price}])).status_code)
        if codes[-1] != 200:
            continue
        if (missed := await _visible(client, product, price, 30)) is None:
            seconds.append(time.perf_counter() - start)
        else:
            print(f"never seen within 30 s: {product.product_id} {product.title!r} at {price}; last search: {missed}", file=sys.stderr)
    return seconds, codes


async def burst(client: httpx.AsyncClient, key: str, products: list[Product], n: int, batch: int, rng: random.Random) -> dict:
    chosen = rng.sample(products, min(n, len(products)))
    prices = [round(rng.uniform(1, 900), 2) for _ in chosen]
    await asyncio.sleep(2)  # a little quiet load first
    start = time.perf_counter()
    answers = [await _change(client, key, [{"product_id": p.product_id, "price": price} for p, price in zip(chosen[i:i + batch], prices[i:i + batch])])
               for i in range(0, len(chosen), batch)]
    acked = time.perf_counter() - start
    last_seq = max((r.json()["last_seq"] for r in answers if r.status_code == 200), default=None)
    return {"changes": len(chosen), "batches": [r.status_code for r in answers], "acked_s": acked, "start": start, "last_seq": last_seq}


def applied_seq(answer) -> int:
    """The last catalog change the answering replica had applied, from ``versions.index`` ("<version>+<seq>")."""
    _, _, seq = answer.versions.get("index", "").partition("+")
    return int(seq) if seq.isdigit() else 0


def last_visible_s(answers, load_start: float, bursted: dict) -> float | None:
    """Seconds from the burst's first change to the end of the first search answered with its last change applied."""
    done = [load_start + a.t + a.latency_ms / 1000 for a in answers if a.status == 200 and bursted["last_seq"] and applied_seq(a) >= bursted["last_seq"]]
    return min(done) - bursted["start"] if done else None


async def run(ns: argparse.Namespace, key: str) -> int:
    rng = random.Random(ns.seed)
    catalog = generate_demo_catalog()
    # Changed products are found by their own title: one that other products share may rank below the first 50.
    titles = Counter(p.title for p in catalog)
    products = [p for p in catalog if titles[p.title] == 1]
    queries = demo_queries(2000, seed=ns.seed)
    async with httpx.AsyncClient(base_url=ns.url.rstrip("/"), timeout=60) as client:
        quiet = await arrivals(ns.url, ns.rate, ns.quiet_s, queries)
        load = asyncio.create_task(arrivals(ns.url, ns.rate, ns.visibility_s, queries[500:]))
        seconds, codes = await visibility(client, key, products, ns.changes, rng)
        during_changes = await load
        load_start = time.perf_counter()
        load = asyncio.create_task(arrivals(ns.url, ns.rate, ns.burst_s, queries[1000:]))
        bursted = await burst(client, key, products, ns.burst, ns.batch, rng)
        during_burst = await load
        visible_s = last_visible_s(during_burst, load_start, bursted)

    def row(name: str, answers) -> float:
        lat = percentiles([a.latency_ms for a in answers if a.status == 200], (50, 99))
        print(f"| searches, {name} | {len(answers)} | {statuses(answers)} | {lat['p50_ms']:.0f} | {lat['p99_ms']:.0f} |")
        return lat["p99_ms"]

    print(f"\nsearch load: {ns.rate}/s open loop\n\n| phase | searches | statuses | p50 ms | p99 ms |\n|---|---:|---|---:|---:|")
    quiet_p99 = row("quiet", quiet)
    row("one change at a time", during_changes)
    burst_p99 = row(f"{ns.burst} price changes in batches of {ns.batch}", during_burst)
    vis = percentiles([s * 1000 for s in seconds], (50, 99))
    print(f"\nchange-to-visible ({len(seconds)} of {ns.changes} seen; admin statuses {sorted(set(codes))}): "
          f"p50 {vis['p50_ms']:.0f} ms, p99 {vis['p99_ms']:.0f} ms, max {max(seconds) * 1000 if seconds else float('nan'):.0f} ms")
    print(f"burst: {bursted['changes']} changes acknowledged in {bursted['acked_s']:.2f} s (batch statuses {sorted(set(bursted['batches']))}), "
          f"the last one applied in a search answered {visible_s and round(visible_s, 2)} s after the first was sent "
          f"(at most 1/rate late); "
          f"search p99 during the burst phase / quiet: {burst_p99 / quiet_p99:.2f}x")
    failed = [a for a in quiet + during_changes + during_burst if a.status >= 500 or a.status == 0]
    return 1 if failed or len(seconds) < ns.changes or any(c != 200 for c in codes + bursted["batches"]) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--rate", type=float, default=1.0, help="searches per second in every phase")
    parser.add_argument("--quiet-s", type=float, default=30)
    parser.add_argument("--visibility-s", type=float, default=30, help="how long the load runs beside the one-at-a-time changes")
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--burst-s", type=float, default=40)
    parser.add_argument("--seed", type=int, default=0)
    ns = parser.parse_args(argv)
    key = os.environ.get("SHOPRAY_ADMIN_KEY")
    if not key:
        print("set SHOPRAY_ADMIN_KEY (the server's too): the admin route is closed without it", file=sys.stderr)
        return 2
    print_command(argv)
    return asyncio.run(run(ns, key))


if __name__ == "__main__":
    sys.exit(main())
