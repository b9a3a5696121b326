"""Fault drills against a running shopray: kill a stage's replicas mid-load and report what clients saw.

    ray start --head && .venv/bin/shopray serve --address auto --no-block
    .venv/bin/python benchmarks/faults.py --address auto --kill Ranker --duration 40 --concurrency 4

A steady async client load runs for --duration seconds; at one third of it
every replica of the --kill deployment is killed with ray.kill (as a node
failure would). The report counts HTTP statuses, degraded labels, failed
requests over total, and when Serve had the replicas running again.

``--kill parser-engine`` instead SIGKILLs the vLLM engine-core process the
QueryParser replica runs (same machine only): the replica stays up, answers
with the rule parser meanwhile and restarts the engine from its health check.
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


def distinct_queries(n: int = 3000) -> list[str]:
    """Queries that do not repeat within a drill, so the parser's cache cannot hide an engine outage."""
    import random

    from shopray.catalog.demo import generate_demo_catalog

    rng = random.Random(time.time_ns())  # another sample every drill: an earlier drill's queries are cached
    seen: dict[str, None] = {}
    for p in rng.sample(generate_demo_catalog(), n):
        leaf = p.category.split(" > ")[-1].lower() if p.category else "gift"
        seen[rng.choice([f"{p.brand} {leaf}", f"{p.color or ''} {leaf} under {int((p.price or 50) * 1.3)}", f"cheap {p.color or ''} {leaf}"]).strip()] = None
    return list(seen)


async def client_loop(client: httpx.AsyncClient, stop: float, log: list, worker: int, queries: list[str]) -> None:
    i = worker
    while time.monotonic() < stop:
        t = time.monotonic()
        try:
            resp = await client.post("/search", json={"query": queries[i % len(queries)], "k": 10})
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


def kill_engine_cores() -> list[str]:
    import signal
    import subprocess

    pids = subprocess.run(["pgrep", "-f", "EngineCore"], capture_output=True, text=True).stdout.split()
    for pid in pids:
        os.kill(int(pid), signal.SIGKILL)
    return [f"EngineCore pid {p}" for p in pids]


def running_replicas(app: str, deployment: str) -> int:
    from ray import serve

    status = serve.status().applications[app].deployments[deployment]
    return status.replica_states.get("RUNNING", 0)


async def drill(ns: argparse.Namespace) -> dict:
    import ray

    ray.init(address=ns.address, namespace="serve", log_to_driver=False)
    before = 0 if ns.kill == "parser-engine" else running_replicas(ns.app, ns.kill)
    log: list = []
    start = time.monotonic()
    stop = start + ns.duration
    async with httpx.AsyncClient(base_url=ns.url, timeout=30) as client:
        queries = distinct_queries() if ns.kill == "parser-engine" else QUERIES
        workers = [asyncio.create_task(client_loop(client, stop, log, w * 1000, queries)) for w in range(ns.concurrency)]
        await asyncio.sleep(ns.duration / 3)
        kill_at = time.monotonic()
        if ns.kill == "parser-engine":
            killed = kill_engine_cores()
        else:
            killed = replicas(ns.kill)
            for name in killed:
                ray.kill(ray.get_actor(name, namespace="serve"), no_restart=True)
        restored_at = None
        while time.monotonic() < stop:
            await asyncio.sleep(0.5)
            if restored_at is not None:
                continue
            if ns.kill == "parser-engine":
                continue  # judged after the load: cache hits answer without the engine, so only the last fallback tells
            elif set(replicas(ns.kill)) - set(killed) and running_replicas(ns.app, ns.kill) >= before:
                restored_at = time.monotonic()
        await asyncio.gather(*workers)
    if ns.kill == "parser-engine":
        fallbacks = [t for t, _, d in log if t > kill_at and "parser_unavailable" in d]
        restored_at = max(fallbacks) if fallbacks and max(fallbacks) < stop - 5 else None
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
        "restored_after_s": None if restored_at is None else round(restored_at - kill_at, 1),
        "command": "python benchmarks/faults.py " + " ".join(sys.argv[1:]),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--address", default=os.environ.get("RAY_ADDRESS"), required=not os.environ.get("RAY_ADDRESS"), help="the serving Ray cluster")
    parser.add_argument("--app", default="shopray")
    parser.add_argument("--kill", default="Ranker", help="deployment whose replicas die, or parser-engine")
    parser.add_argument("--duration", type=float, default=40)
    parser.add_argument("--concurrency", type=int, default=4)
    ns = parser.parse_args()
    print(json.dumps(asyncio.run(drill(ns)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
