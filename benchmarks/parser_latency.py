"""Parse latency through Serve: the QueryParser deployment with the LLM parser, at concurrency 1 and 8.

    .venv/bin/python benchmarks/parser_latency.py [--index demo] [--n 200] [--timeout-ms 5000]

Deploys only the QueryParser deployment (the same class and options the app
uses) over an existing index, with the intent cache off so every request
reaches vLLM, and calls it through a Serve handle. Queries are distinct
held-out synthetic queries. Prints p50/p99 per concurrency level, throughput,
and the throughput gain that vLLM's batching of concurrent requests gives.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q))


async def drive(handle, queries: list[str], concurrency: int) -> tuple[list[float], float, dict]:
    from shopray.api import SearchRequest
    from shopray.pipeline import SearchContext

    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    todo = list(queries)

    async def worker() -> None:
        while todo:
            q = todo.pop()
            t = time.perf_counter()
            ctx = await handle.run.remote(SearchContext(request=SearchRequest(query=q)))
            latencies.append((time.perf_counter() - t) * 1000)
            key = ",".join(ctx.degraded) or ctx.intent.source
            outcomes[key] = outcomes.get(key, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - t0, outcomes


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--index", default="demo", help="index name under ~/.shopray/index (build it with `shopray index`)")
    p.add_argument("--model", default="production")
    p.add_argument("--n", type=int, default=200, help="requests per concurrency level")
    p.add_argument("--timeout-ms", type=int, default=5000, help="parse budget; large measures the engine, the default 400 shows fallbacks")
    p.add_argument("--levels", default="1,8")
    p.add_argument("--num-cpus", type=int, default=4)
    args = p.parse_args()

    import ray
    from ray import serve

    from shopray.config import AppConfig, IndexConfig, ParserConfig
    from shopray.index import open_store
    from shopray.llm.synth import generate
    from shopray.parser import QueryParser
    from shopray.serving.app import DEFAULT_OPTIONS, deployment_for
    from shopray.training.parser import load_catalog

    config = AppConfig(index=IndexConfig(name=args.index), parser=ParserConfig(kind="llm", model=args.model, timeout_ms=args.timeout_ms, cache_size=0))
    if open_store(config.index).current_version() is None:
        print(f"index {args.index!r} has no version: run `shopray index` first", file=sys.stderr)
        return 2
    products, vocabulary = load_catalog("demo")
    levels = [int(x) for x in args.levels.split(",")]
    pool = [e.query for e in generate(products, vocabulary, args.n * (len(levels) + 1), "heldout", seed=7)]

    ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    serve.start()
    app = deployment_for("QueryParser").options(name="QueryParser", **DEFAULT_OPTIONS["QueryParser"]).bind(QueryParser, config.model_dump(mode="json"))
    handle = serve.run(app, name="parser-bench", route_prefix=None)
    t0 = time.perf_counter()
    while handle.stats.remote().result()["engine"]["state"] == "starting":
        time.sleep(1)
    state = handle.stats.remote().result()
    print(f"engine {state['engine']['state']} after {time.perf_counter() - t0:.0f}s (startup {state['engine'].get('startup_s')}s), model {state['model']}")
    if state["engine"]["state"] != "ready":
        return 1

    async def run_all() -> dict:
        await drive(handle, pool[: args.n // 4], 4)  # warm-up: first calls pay one-off costs
        rows = {}
        for i, c in enumerate(levels):
            queries = pool[(i + 1) * args.n : (i + 2) * args.n]
            lat, seconds, outcomes = await drive(handle, queries, c)
            rows[c] = {"p50_ms": round(percentile(lat, 50), 1), "p99_ms": round(percentile(lat, 99), 1), "throughput_rps": round(len(lat) / seconds, 1), "outcomes": outcomes}
        return rows

    rows = asyncio.run(run_all())
    for c, row in rows.items():
        print(f"concurrency {c}: p50 {row['p50_ms']} ms  p99 {row['p99_ms']} ms  {row['throughput_rps']} parses/s  outcomes {row['outcomes']}")
    if 1 in rows and len(rows) > 1:
        top = max(rows)
        print(f"batching gain: {rows[top]['throughput_rps'] / rows[1]['throughput_rps']:.2f}x throughput at concurrency {top} vs 1")
    print(json.dumps({"command": " ".join([os.path.basename(sys.executable), *sys.argv]), "timeout_ms": args.timeout_ms, "rows": rows}))
    serve.shutdown()
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
