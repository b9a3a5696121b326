"""Latency of sequential searches against a running server.

    .venv/bin/shopray serve &          # demo catalog
    .venv/bin/python benchmarks/search_latency.py [--n 200] [--url http://127.0.0.1:8000]

Queries are drawn (deterministically) from the demo catalog's vocabulary, so
they exercise brand/category/color/price parsing and filtered retrieval.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from shopray.bench.load import demo_queries, searches
from shopray.bench.report import percentiles, print_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    ns = parser.parse_args(argv)
    print_command(argv)
    queries = demo_queries(ns.n)
    asyncio.run(searches(ns.url, queries[:5], k=ns.k))  # warm-up
    answers = asyncio.run(searches(ns.url, queries, k=ns.k))
    failed = [a for a in answers if a.status != 200]
    if failed:
        print(f"{len(failed)} of {len(answers)} searches failed, e.g. {failed[0].status} {failed[0].error}", file=sys.stderr)
        return 1
    lat = percentiles([a.latency_ms for a in answers], mean=True)
    print(f"{ns.n} sequential searches, k={ns.k}: p50 {lat['p50_ms']:.1f} ms, p95 {lat['p95_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms, mean {lat['mean_ms']:.1f} ms")
    stages = [key for key in answers[0].timings_ms if key != "total"]  # the graph's stages, in order, as the server times them
    stage_p50 = {key: percentiles([a.timings_ms[key] for a in answers], (50,))["p50_ms"] for key in stages}
    print("stage p50 (ms): " + ", ".join(f"{key} {p50:.1f}" for key, p50 in stage_p50.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
