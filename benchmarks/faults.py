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
import json
import os
import random
import signal
import subprocess
import sys
import time

from shopray.bench.cluster import join
from shopray.bench.load import degraded_labels, statuses, steady_load
from shopray.bench.report import print_command

QUERIES = ["running shoes", "red running shoes under 80", "wireless headphones", "cordless drill", "coffee maker", "yoga mat", "blue hoodie", "tent"]


def distinct_queries(n: int = 3000) -> list[str]:
    """Queries that do not repeat within a drill, so the parser's cache cannot hide an engine outage."""
    from shopray.catalog.demo import generate_demo_catalog

    rng = random.Random(time.time_ns())  # another sample every drill: an earlier drill's queries are cached
    seen: dict[str, None] = {}
    for p in rng.sample(generate_demo_catalog(), n):
        leaf = p.category.split(" > ")[-1].lower() if p.category else "gift"
        seen[rng.choice([f"{p.brand} {leaf}", f"{p.color or ''} {leaf} under {int((p.price or 50) * 1.3)}", f"cheap {p.color or ''} {leaf}"]).strip()] = None
    return list(seen)


def replicas(deployment: str) -> list[str]:
    import ray

    return [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["namespace"] == "serve" and f"#{deployment}#" in a["name"]]


def kill_engine_cores() -> list[str]:
    pids = subprocess.run(["pgrep", "-f", "EngineCore"], capture_output=True, text=True).stdout.split()
    for pid in pids:
        os.kill(int(pid), signal.SIGKILL)
    return [f"EngineCore pid {p}" for p in pids]


async def drill(ns: argparse.Namespace) -> dict:
    import ray

    from shopray.serving.app import running_replicas

    join(ns.address)
    engine = ns.kill == "parser-engine"
    before = 0 if engine else running_replicas(ns.app, ns.kill)
    queries = distinct_queries() if engine else QUERIES
    start = time.monotonic()
    load = asyncio.create_task(steady_load(ns.url, ns.duration, ns.concurrency, queries=queries))
    await asyncio.sleep(ns.duration / 3)
    kill_at = time.monotonic() - start
    if engine:
        killed = kill_engine_cores()
    else:
        killed = replicas(ns.kill)
        for name in killed:
            ray.kill(ray.get_actor(name, namespace="serve"), no_restart=True)
    restored_at = None
    # An engine is judged after the load: cache hits answer without it, so only the last fallback tells.
    while not engine and restored_at is None and time.monotonic() - start < ns.duration:
        await asyncio.sleep(0.5)
        if set(replicas(ns.kill)) - set(killed) and running_replicas(ns.app, ns.kill) >= before:
            restored_at = time.monotonic() - start
    answers = await load
    if engine:
        fallbacks = [a.t for a in answers if a.t > kill_at and "parser_unavailable" in a.degraded]
        restored_at = max(fallbacks) if fallbacks and max(fallbacks) < ns.duration - 5 else None
    failed = sum(1 for a in answers if a.status != 200)
    after_kill = [a for a in answers if a.t >= kill_at]
    return {
        "killed": ns.kill,
        "replicas_killed": len(killed),
        "requests": len(answers),
        "failed (non-200)": failed,
        "failed_share": round(failed / max(1, len(answers)), 4),
        "statuses": statuses(answers),
        "degraded": degraded_labels(answers),
        "degraded_share_after_kill": round(sum(1 for a in after_kill if a.degraded) / max(1, len(after_kill)), 4),
        "restored_after_s": None if restored_at is None else round(restored_at - kill_at, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--address", default=os.environ.get("RAY_ADDRESS"), required=not os.environ.get("RAY_ADDRESS"), help="the serving Ray cluster")
    parser.add_argument("--app", default="shopray")
    parser.add_argument("--kill", default="Ranker", help="deployment whose replicas die, or parser-engine")
    parser.add_argument("--duration", type=float, default=40)
    parser.add_argument("--concurrency", type=int, default=4)
    ns = parser.parse_args(argv)
    print_command(argv)
    print(json.dumps(asyncio.run(drill(ns)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
