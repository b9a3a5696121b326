"""Replica-count timeline of the GPU Ranker pool under a load ramp (1 -> N -> 1).

    .venv/bin/python benchmarks/ranker_autoscale.py [--ramp 0:5,2:10,8:10,16:30,4:10,0:45]

Starts its own Ray with two logical GPUs (``ray.init(num_gpus=2)``): replicas
reserve 0.5 GPU and 0.25 CPU each, so at most 4 fit, placed by GPU. There is no
real GPU here, so torch runs on CPU inside them. The ramp is
``clients:seconds`` steps of closed-loop clients calling the deployment
handle; every second prints running replicas, requests/s and p50 latency.
Autoscaling: min 1, max 4, target_ongoing_requests 2, upscale 1 s, downscale 5 s
(flags below).
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


async def ramp(handle, ctxs, steps: list[tuple[int, float]], app: str) -> list[dict]:
    import ray

    from shopray.serving.ranker import running_replicas

    window: list[float] = []
    timeline: list[dict] = []
    wanted = 0
    t0 = time.monotonic()

    async def client(i: int):
        k = i
        while i < wanted:
            t = time.monotonic()
            await handle.run.remote(ctxs[k % len(ctxs)])
            window.append(time.monotonic() - t)
            k += 16

    tasks: list[asyncio.Task] = []
    for clients, seconds in steps:
        wanted = clients
        tasks = [t for t in tasks if not t.done()]
        tasks += [asyncio.create_task(client(i)) for i in range(len(tasks), clients)]
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await asyncio.sleep(1.0)
            done, window[:] = list(window), []
            row = {
                "t": round(time.monotonic() - t0), "clients": clients, "replicas": running_replicas(app),
                "gpu_free": ray.available_resources().get("GPU", 0.0), "requests_s": len(done), "p50_ms": percentile_ms(done, 50),
            }  # fmt: skip
            timeline.append(row)
            print(json.dumps(row), flush=True)
    wanted = 0
    await asyncio.gather(*tasks)
    return timeline


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

    import ray
    from ray import serve

    from shopray.config import AppConfig, EmbeddingConfig, RankerConfig
    from shopray.serving.ranker import ranker_pool_app

    steps = [(int(c), float(s)) for c, s in (part.split(":") for part in ns.ramp.split(","))]
    path = model_dir(ns.model)
    ctxs = contexts(64, ns.top_n)
    ray.init(num_cpus=4, num_gpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=tempfile.mkdtemp(prefix="ray-bench-"))
    serve.start(proxy_location="Disabled")
    ranker = RankerConfig(kind="crossencoder", model=str(path), top_n=ns.top_n, num_threads=1, batch_max_size=8, batch_wait_timeout_s=0.01)
    scaling = {
        "min_replicas": 1, "max_replicas": ns.max_replicas, "initial_replicas": 1, "target_ongoing_requests": ns.target,
        "upscale_delay_s": ns.upscale_delay, "downscale_delay_s": ns.downscale_delay,
    }  # fmt: skip
    app = ranker_pool_app(
        AppConfig(embedding=EmbeddingConfig(device="cpu"), ranker=ranker),
        max_ongoing_requests=16, autoscaling_config=scaling, ray_actor_options={"num_cpus": 0.25, "num_gpus": 0.5},
    )  # fmt: skip
    handle = serve.run(app, name="ranker-pool", route_prefix=None)
    timeline = asyncio.run(ramp(handle, ctxs, steps, "ranker-pool"))
    counts = [r["replicas"] for r in timeline]
    summary = {
        "command": " ".join([".venv/bin/python", "benchmarks/ranker_autoscale.py", *(argv if argv is not None else sys.argv[1:])]),
        "autoscaling_config": scaling,
        "replicas_first_peak_last": [counts[0], max(counts), counts[-1]],
        "seconds_to_peak": next(r["t"] for r in timeline if r["replicas"] == max(counts)),
        "changes": [(r["t"], r["clients"], r["replicas"]) for a, r in zip([None, *timeline], timeline) if a is None or a["replicas"] != r["replicas"]],
    }
    serve.shutdown()
    ray.shutdown()
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
