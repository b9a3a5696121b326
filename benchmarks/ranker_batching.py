"""What @serve.batch buys: one Ranker replica under 16 concurrent clients, batching on vs off.

    .venv/bin/python benchmarks/ranker_batching.py [--concurrency 16] [--seconds 30] [--batch 16]

Each request carries a query and top_n (default 50) candidates, like the
retriever's output. "Off" is batch_max_size 1: every request gets its own
forward passes. "On" merges the pairs of up to --batch concurrent requests
into shared, length-sorted forward passes. Same replica (1 CPU, 2 torch
threads), same model, same closed-loop clients calling the deployment handle.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(__file__))

from ranker_common import contexts, model_dir, percentile_ms  # noqa: E402


async def load(handle, ctxs, concurrency: int, seconds: float, warmup: float) -> dict:
    latencies: list[float] = []
    stop_at = time.monotonic() + warmup + seconds
    measure_from = time.monotonic() + warmup

    async def client(i: int):
        k = i
        while time.monotonic() < stop_at:
            t = time.monotonic()
            await handle.run.remote(ctxs[k % len(ctxs)])
            if t >= measure_from:
                latencies.append(time.monotonic() - t)
            k += concurrency

    await asyncio.gather(*(client(i) for i in range(concurrency)))
    return {
        "requests_s": round(len(latencies) / seconds, 2),
        "p50_ms": percentile_ms(latencies, 50),
        "p99_ms": percentile_ms(latencies, 99),
        "requests": len(latencies),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="production")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--batch", type=int, default=16, help="batch_max_size when batching is on")
    ap.add_argument("--wait", type=float, default=0.01, help="batch_wait_timeout_s when batching is on")
    ap.add_argument("--top-n", type=int, default=50)
    ap.add_argument("--forward-batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quantize", choices=["none", "int8"], default="none")
    ns = ap.parse_args(argv)

    import ray
    from ray import serve

    from shopray.config import AppConfig, EmbeddingConfig, RankerConfig
    from shopray.serving.ranker import ranker_pool_app

    path = model_dir(ns.model)
    ctxs = contexts(200, ns.top_n)
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, _temp_dir=tempfile.mkdtemp(prefix="ray-bench-"))
    serve.start(proxy_location="Disabled")
    results = {}
    for label, batch, wait in (("no_batching", 1, 0.0), ("serve_batch", ns.batch, ns.wait)):
        ranker = RankerConfig(
            kind="crossencoder", model=str(path), top_n=ns.top_n, quantize=ns.quantize, forward_batch_size=ns.forward_batch,
            num_threads=ns.threads, batch_max_size=batch, batch_wait_timeout_s=wait,
        )  # fmt: skip
        app = ranker_pool_app(
            AppConfig(embedding=EmbeddingConfig(device="cpu"), ranker=ranker),
            num_replicas=1, max_ongoing_requests=max(32, ns.concurrency), ray_actor_options={"num_cpus": 1},
        )  # fmt: skip
        handle = serve.run(app, name=f"bench-{label}", route_prefix=None)
        results[label] = asyncio.run(load(handle, ctxs, ns.concurrency, ns.seconds, ns.warmup))
        results[label]["pairs_s"] = round(results[label]["requests_s"] * ns.top_n, 1)
        results[label]["batch_sizes"] = handle.info.remote().result()["batch_sizes"]
        print(json.dumps({label: results[label]}), flush=True)
        serve.delete(f"bench-{label}")
    off, on = results["no_batching"], results["serve_batch"]
    results["throughput_gain"] = round(on["requests_s"] / off["requests_s"], 2)
    results["p50_latency_ratio"] = round(on["p50_ms"] / off["p50_ms"], 2)
    results["command"] = " ".join([".venv/bin/python", "benchmarks/ranker_batching.py", *(argv if argv is not None else sys.argv[1:])])
    serve.shutdown()
    ray.shutdown()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
