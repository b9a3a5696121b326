"""Parse latency through Serve: the QueryParser deployment with the LLM parser, at concurrency 1 and 8.

    .venv/bin/python benchmarks/parser_latency.py [--index demo] [--n 200] [--timeout-ms 5000]

Deploys only the QueryParser deployment (bound as the app binds it) over an
existing index, with the intent cache off so every request reaches vLLM, and
calls it through a Serve handle. Queries are distinct held-out synthetic
queries. Prints p50/p99 per concurrency level, throughput, and the throughput
gain that vLLM's batching of concurrent requests gives.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from shopray.bench.report import percentiles, print_command


async def drive(handle, queries: list[str], concurrency: int) -> dict:
    """Every query once through ``concurrency`` closed-loop clients: p50/p99, parses/s and what answered."""
    from shopray.api import SearchRequest
    from shopray.bench.load import closed_loop
    from shopray.graph import SearchContext

    t0 = time.perf_counter()
    runs = await closed_loop(lambda i: handle.run.remote(SearchContext(request=SearchRequest(query=queries[i]))), concurrency, requests=len(queries))
    seconds = time.perf_counter() - t0
    outcomes: dict[str, int] = {}
    for r in runs:
        key = ",".join(r.value.degraded) or r.value.intent.source
        outcomes[key] = outcomes.get(key, 0) + 1
    return {**percentiles([r.latency_ms for r in runs], (50, 99)), "throughput_rps": round(len(runs) / seconds, 1), "outcomes": outcomes}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--index", default="demo", help="index name under ~/.shopray/index (build it with `shopray index`)")
    p.add_argument("--model", default="production")
    p.add_argument("--n", type=int, default=200, help="requests per concurrency level")
    p.add_argument("--timeout-ms", type=int, default=5000, help="parse budget; large measures the engine, the default 400 shows fallbacks")
    p.add_argument("--levels", default="1,8")
    p.add_argument("--num-cpus", type=int, default=4)
    args = p.parse_args(argv)
    print_command(argv)

    from ray import serve

    from shopray.bench.cluster import local_cluster
    from shopray.catalog import load_products
    from shopray.config import AppConfig, IndexConfig, ParserConfig
    from shopray.domain import Vocabulary
    from shopray.pipeline import PARSE
    from shopray.serving.app import bind_stage
    from shopray.stages.retrieve.index import open_store
    from shopray.training.parser.synth import generate

    config = AppConfig(index=IndexConfig(name=args.index), parser=ParserConfig(kind="llm", model=args.model, timeout_ms=args.timeout_ms, cache_size=0))
    if open_store(config.index).current_version() is None:
        print(f"index {args.index!r} has no version: run `shopray index` first", file=sys.stderr)
        return 2
    products = load_products("demo").products
    levels = [int(x) for x in args.levels.split(",")]
    pool = [e.query for e in generate(products, Vocabulary.from_products(products), args.n * (len(levels) + 1), "heldout", seed=7)]

    with local_cluster(num_cpus=args.num_cpus):
        handle = serve.run(bind_stage(PARSE, config), name="parser-bench", route_prefix=None)
        t0 = time.perf_counter()
        while handle.stats.remote().result()["engine"]["state"] == "starting":
            time.sleep(1)
        state = handle.stats.remote().result()
        print(f"engine {state['engine']['state']} after {time.perf_counter() - t0:.0f}s (startup {state['engine'].get('startup_s')}s), model {state['model']}")
        if state["engine"]["state"] != "ready":
            return 1

        async def run_all() -> dict:
            await drive(handle, pool[: args.n // 4], 4)  # warm-up: first calls pay one-off costs
            return {c: await drive(handle, pool[(i + 1) * args.n : (i + 2) * args.n], c) for i, c in enumerate(levels)}

        rows = asyncio.run(run_all())
    for c, row in rows.items():
        print(f"concurrency {c}: p50 {row['p50_ms']} ms  p99 {row['p99_ms']} ms  {row['throughput_rps']} parses/s  outcomes {row['outcomes']}")
    if 1 in rows and len(rows) > 1:
        top = max(rows)
        print(f"batching gain: {rows[top]['throughput_rps'] / rows[1]['throughput_rps']:.2f}x throughput at concurrency {top} vs 1")
    print(json.dumps({"timeout_ms": args.timeout_ms, "rows": rows}))
    return 0


if __name__ == "__main__":  # vLLM starts its engine with spawn
    sys.exit(main())
