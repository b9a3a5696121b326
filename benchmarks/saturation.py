"""Saturation point and overload behaviour of a running shopray, with the locust suite.

    .venv/bin/python benchmarks/saturation.py --url http://127.0.0.1:8000 [--users 1,2,4,8,16] [--step-s 40]
    .venv/bin/python benchmarks/saturation.py --url ... --rate 2.4 --step-s 60

Step mode runs `shopray loadtest` at each user count (closed-loop users, the
locustfile's traffic mix) and prints RPS and p50/p95/p99 per step; the
saturation point is the highest RPS whose p99 stays under --p99-ms (linear
interpolation between the steps around the crossing).

Rate mode (--rate R) sends R searches per second open-loop (arrivals do not
wait for answers, like real shoppers) for --step-s seconds and prints the
statuses, p50/p95/p99 and the recovery time: at half the saturation RPS for
latency, at twice it for overload (closed-loop users slow down with the
server, so only open-loop arrivals really overload it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
SHOPRAY = str(REPO / ".venv" / "bin" / "shopray")


def loadtest(url: str, users: int, seconds: int, out: Path) -> dict:
    cmd = [SHOPRAY, "loadtest", "--users", str(users), "--spawn-rate", str(users), "--duration", str(seconds), "--url", url, "--out", str(out)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "report.json").read_text())


def saturation(steps: list[dict], p99_ms: float) -> float | None:
    below = [s for s in steps if s["p99_ms"] is not None and s["p99_ms"] <= p99_ms]
    if not below:
        return None
    best = max(below, key=lambda s: s["rps"])
    above = [s for s in steps if s["users"] > best["users"] and s["p99_ms"] and s["p99_ms"] > p99_ms]
    if not above:
        return best["rps"]
    nxt = min(above, key=lambda s: s["users"])
    frac = (p99_ms - best["p99_ms"]) / (nxt["p99_ms"] - best["p99_ms"])
    return best["rps"] + frac * max(0.0, nxt["rps"] - best["rps"])


def step_mode(ns: argparse.Namespace, out: Path) -> dict:
    steps = []
    for users in [int(u) for u in ns.users.split(",")]:
        report = loadtest(ns.url, users, ns.step_s, out / f"users-{users}")
        agg = report["endpoints"].get("Aggregated", {})
        search = report["endpoints"].get("POST /search", agg)
        row = {"users": users, "rps": round(agg.get("rps") or 0.0, 2), "p50_ms": search.get("p50_ms"), "p95_ms": search.get("p95_ms"),
               "p99_ms": search.get("p99_ms"), "requests": agg.get("requests"), "failures": agg.get("failures")}
        steps.append(row)
        print(json.dumps(row), flush=True)
    sat = saturation(steps, ns.p99_ms)
    return {"steps": steps, "saturation_rps": None if sat is None else round(sat, 2), "p99_limit_ms": ns.p99_ms}


def recovery_s(url: str, p99_ms: float, limit_s: float = 120) -> float | None:
    t0 = time.monotonic()
    with httpx.Client(base_url=url, timeout=30) as client:
        while time.monotonic() - t0 < limit_s:
            t = time.monotonic()
            try:
                ok = client.post("/search", json={"query": "running shoes"}).status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok and (time.monotonic() - t) * 1000 <= p99_ms:
                return round(time.monotonic() - t0, 1)
            time.sleep(0.5)
    return None


def rate_mode(ns: argparse.Namespace) -> dict:
    import asyncio
    import random

    import numpy as np

    from shopray.catalog.demo import generate_demo_catalog

    products = generate_demo_catalog(n=24_000)
    rng = random.Random(ns.seed)  # a new seed per run: repeated queries would be parser-cache hits
    queries = [f"{p.brand} {p.category.split(' > ')[-1].lower()}" for p in products if p.category]

    async def run() -> list[tuple[int, float, tuple]]:
        out: list[tuple[int, float, tuple]] = []

        async def one(client: httpx.AsyncClient, q: str) -> None:
            t = time.monotonic()
            labels: tuple = ()
            try:
                resp = await client.post("/search", json={"query": q})
                status = resp.status_code
                if status == 200:
                    labels = tuple(resp.json().get("degraded", []))
            except httpx.HTTPError:
                status = 0
            out.append((status, (time.monotonic() - t) * 1000, labels))

        async with httpx.AsyncClient(base_url=ns.url, timeout=60) as client:
            tasks, t0, n = [], time.monotonic(), 0
            while time.monotonic() - t0 < ns.step_s:
                tasks.append(asyncio.create_task(one(client, rng.choice(queries))))
                n += 1
                await asyncio.sleep(max(0.0, t0 + n / ns.rate - time.monotonic()))
            await asyncio.gather(*tasks)
        return out

    answers = asyncio.run(run())
    recovered = recovery_s(ns.url, ns.p99_ms)
    ok = [ms for status, ms, _ in answers if status == 200]
    degraded = Counter(label for _, _, labels in answers for label in labels)
    pct = {f"p{q}_ms_of_200s": round(float(np.percentile(ok, q)), 1) for q in (50, 95, 99)} if ok else {}
    statuses = Counter(str(status) for status, _, _ in answers)
    return {
        "rate_rps": ns.rate, "seed": ns.seed, "seconds": ns.step_s, "requests": len(answers), "statuses": dict(statuses),
        "share_503": round(statuses.get("503", 0) / max(1, len(answers)), 4), "degraded_labels": dict(degraded), **pct,
        "recovery_s_after_load": recovered, "healthz_after": httpx.get(f"{ns.url}/healthz", timeout=30).status_code,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--users", default="1,2,4,8,16", help="user counts for the step mode")
    ap.add_argument("--step-s", type=int, default=40)
    ap.add_argument("--p99-ms", type=float, default=1000.0)
    ap.add_argument("--rate", type=float, default=None, help="run the rate mode at this many searches per second instead")
    ap.add_argument("--seed", type=int, default=int(time.time()), help="query sampling seed for the rate mode (default: the clock)")
    ap.add_argument("--out", type=Path, default=REPO / "artifacts" / "saturation")
    ns = ap.parse_args()
    ns.out.mkdir(parents=True, exist_ok=True)
    result = rate_mode(ns) if ns.rate else step_mode(ns, ns.out)
    result["command"] = "python benchmarks/saturation.py " + " ".join(sys.argv[1:])
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
