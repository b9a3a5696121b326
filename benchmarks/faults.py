"""Fault drills against a running shopray: kill a stage's replicas mid-load and report what clients saw.

    ray start --head && .venv/bin/shopray serve --address auto --no-block
    .venv/bin/python benchmarks/faults.py --address auto --kill Ranker --duration 40 --concurrency 4

A steady async client load runs for --duration seconds; at one third of it
every replica of the --kill deployment is killed with ray.kill (as a node
failure would). The report counts HTTP statuses, degraded labels, failed
requests over total, and when Serve had the replicas running again.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import sys
import time

import httpx

QUERIES = ["running shoes", "red running shoes under 80", "wireless headphones", "cordless drill", "coffee maker", "yoga mat", "blue hoodie", "tent"]


async def client_loop(client: httpx.AsyncClient, stop: float, log: list, worker: int) -> None:
    i = worker
    while time.monotonic() < stop:
        t = time.monotonic()
        try:
            resp = await client.post("/search", json={"query": QUERIES[i % len(QUERIES)], "k": 10})
            body = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
            log.append((t, resp.status_code, tuple(body.get("degraded", []))))
        except httpx.HTTPError as exc:
            log.append((t, type(exc).__name__, ()))
        i += 1


def replicas(deployment: str) -> list[str]:
    import ray

    return [
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["namespace"] == "serve" and f"#{deployment}#" in a["name"]
    ]


def running_replicas(app: str, deployment: str) -> int:
    from ray import serve

    status = serve.status().applications[app].deployments[deployment]
    return status.replica_states.get("RUNNING", 0)


async def drill(ns: argparse.Namespace) -> dict:
    import ray

    ray.init(address=ns.address, namespace="serve", log_to_driver=False)
    before = running_replicas(ns.app, ns.kill)
    log: list = []
    start = time.monotonic()
    stop = start + ns.duration
    async with httpx.AsyncClient(base_url=ns.url, timeout=30) as client:
        workers = [asyncio.create_task(client_loop(client, stop, log, w)) for w in range(ns.concurrency)]
        await asyncio.sleep(ns.duration / 3)
        killed = replicas(ns.kill)
        kill_at = time.monotonic()
        for name in killed:
            ray.kill(ray.get_actor(name, namespace="serve"), no_restart=True)
        restored_at = None
        while time.monotonic() < stop:
            await asyncio.sleep(0.5)
            alive = set(replicas(ns.kill))
            if restored_at is None and alive - set(killed) and running_replicas(ns.app, ns.kill) >= before:
                restored_at = time.monotonic()
        await asyncio.gather(*workers)
    statuses = collections.Counter(str(s) for _, s, _ in log)
    degraded = collections.Counter(label for _, _, labels in log for label in labels)
    failed = sum(1 for _, s, _ in log if s != 200)
    after_kill = [(s, d) for t, s, d in log if t >= kill_at]
    return {
        "killed": ns.kill,
        "replicas_killed": len(killed),
        "requests": len(log),
        "failed (non-200)": failed,
        "failed_share": round(failed / max(1, len(log)), 4),
        "statuses": dict(statuses),
        "degraded": dict(degraded),
        "degraded_share_after_kill": round(sum(1 for _, d in after_kill if d) / max(1, len(after_kill)), 4),
        "replica_restored_after_s": None if restored_at is None else round(restored_at - kill_at, 1),
        "command": "python benchmarks/faults.py " + " ".join(sys.argv[1:]),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--address", default=os.environ.get("RAY_ADDRESS"), required=not os.environ.get("RAY_ADDRESS"), help="the serving Ray cluster")
    parser.add_argument("--app", default="shopray")
    parser.add_argument("--kill", default="Ranker", help="deployment whose replicas die")
    parser.add_argument("--duration", type=float, default=40)
    parser.add_argument("--concurrency", type=int, default=4)
    ns = parser.parse_args()
    print(json.dumps(asyncio.run(drill(ns)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
