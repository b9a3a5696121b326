"""Replica-count timeline of the GPU Ranker pool under a load ramp (1 -> N -> 1).

    .venv/bin/python benchmarks/ranker_autoscale.py [--ramp 0:5,2:10,8:10,16:30,4:10,0:45]

Starts its own Ray with two logical GPUs (``num_gpus=2``): replicas reserve
0.5 GPU and 0.25 CPU each, so at most 4 fit, placed by GPU. There is no real
GPU here, so torch runs on CPU inside them. The ramp is ``clients:seconds``
steps of closed-loop clients calling the deployment handle; every second
prints running replicas, requests/s and p50 latency. Autoscaling: min 1, max 4,
target_ongoing_requests 2, upscale 1 s, downscale 5 s (flags below).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from shopray.bench.report import percentiles, print_command

APP = "ranker-pool"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="production")
    ap.add_argument("--ramp", default="0:5,2:10,8:10,16:30,4:10,0:45", help="clients:seconds,...")
    ap.add_argument("--top-n", type=int, default=50)
    ap.add_argument("--max-replicas", type=int, default=4)
    ap.add_argument("--target", type=float, default=2, help="target_ongoing_requests")
    ap.add_argument("--upscale-delay", type=float, default=1)
    ap.add_argument("--downscale-delay", type=float, default=5)
    ns = ap.parse_args(argv)
    print_command(argv)

    import ray
    from ray import serve

    from shopray.bench.cluster import local_cluster
    from shopray.bench.load import ramp
    from shopray.bench.ranker import cross_encoder_dir, ranker_contexts
    from shopray.config import AppConfig, EmbeddingConfig, RankerConfig
    from shopray.pipeline import RANK
    from shopray.serving.app import bind_stage, running_replicas

    steps = [(int(c), float(s)) for c, s in (part.split(":") for part in ns.ramp.split(","))]
    path = cross_encoder_dir(ns.model)
    ctxs = ranker_contexts(64, ns.top_n)
    ranker = RankerConfig(kind="crossencoder", model=str(path), top_n=ns.top_n, num_threads=1, batch_max_size=8, batch_wait_timeout_s=0.01)
    scaling = {
        "min_replicas": 1, "max_replicas": ns.max_replicas, "initial_replicas": 1, "target_ongoing_requests": ns.target,
        "upscale_delay_s": ns.upscale_delay, "downscale_delay_s": ns.downscale_delay,
    }  # fmt: skip
    timeline: list[dict] = []

    def tick(t: float, clients: int, latencies_ms: list[float]) -> None:
        row = {
            "t": round(t), "clients": clients, "replicas": running_replicas(APP, RANK.deployment),
            "gpu_free": ray.available_resources().get("GPU", 0.0), "requests_s": len(latencies_ms), **percentiles(latencies_ms, (50,)),
        }  # fmt: skip
        timeline.append(row)
        print(json.dumps(row), flush=True)

    with local_cluster(num_cpus=4, num_gpus=2):
        options = {"max_ongoing_requests": 16, "autoscaling_config": scaling, "ray_actor_options": {"num_cpus": 0.25, "num_gpus": 0.5}}
        app = bind_stage(RANK, AppConfig(embedding=EmbeddingConfig(device="cpu"), ranker=ranker), options)
        handle = serve.run(app, name=APP, route_prefix=None)
        asyncio.run(ramp(lambda i: handle.run.remote(ctxs[i % len(ctxs)]), steps, tick))
    counts = [r["replicas"] for r in timeline]
    summary = {
        "autoscaling_config": scaling,
        "replicas_first_peak_last": [counts[0], max(counts), counts[-1]],
        "seconds_to_peak": next(r["t"] for r in timeline if r["replicas"] == max(counts)),
        "changes": [(r["t"], r["clients"], r["replicas"]) for a, r in zip([None, *timeline], timeline) if a is None or a["replicas"] != r["replicas"]],
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
