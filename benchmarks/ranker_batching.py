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
import sys

from shopray.bench.report import percentiles, print_command


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
    print_command(argv)

    from ray import serve

    from shopray.bench.cluster import local_cluster
    from shopray.bench.load import closed_loop
    from shopray.bench.ranker import cross_encoder_dir, ranker_contexts
    from shopray.config import AppConfig, EmbeddingConfig, RankerConfig
    from shopray.pipeline import RANK
    from shopray.serving.app import bind_stage

    path = cross_encoder_dir(ns.model)
    ctxs = ranker_contexts(200, ns.top_n)
    results: dict = {}
    with local_cluster(num_cpus=4):
        for label, batch, wait in (("no_batching", 1, 0.0), ("serve_batch", ns.batch, ns.wait)):
            ranker = RankerConfig(
                kind="crossencoder", model=str(path), top_n=ns.top_n, quantize=ns.quantize, forward_batch_size=ns.forward_batch,
                num_threads=ns.threads, batch_max_size=batch, batch_wait_timeout_s=wait,
            )  # fmt: skip
            options = {"num_replicas": 1, "max_ongoing_requests": max(32, ns.concurrency), "ray_actor_options": {"num_cpus": 1}}
            handle = serve.run(bind_stage(RANK, AppConfig(embedding=EmbeddingConfig(device="cpu"), ranker=ranker), options), name=f"bench-{label}", route_prefix=None)
            runs = asyncio.run(closed_loop(lambda i: handle.run.remote(ctxs[i % len(ctxs)]), ns.concurrency, duration_s=ns.seconds, warmup_s=ns.warmup))
            row = {"requests_s": round(len(runs) / ns.seconds, 2), **percentiles([r.latency_ms for r in runs], (50, 99)), "requests": len(runs)}
            row["pairs_s"] = round(row["requests_s"] * ns.top_n, 1)
            row["batch_sizes"] = handle.info.remote().result()["batch_sizes"]
            results[label] = row
            print(json.dumps({label: row}), flush=True)
            serve.delete(f"bench-{label}")
    off, on = results["no_batching"], results["serve_batch"]
    results["throughput_gain"] = round(on["requests_s"] / off["requests_s"], 2)
    results["p50_latency_ratio"] = round(on["p50_ms"] / off["p50_ms"], 2)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
