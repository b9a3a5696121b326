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
import asyncio
import json
import math
import random
import subprocess
import sys
import time
from pathlib import Path

import httpx

from shopray.bench.load import arrivals, degraded_labels, statuses
from shopray.bench.report import percentiles, print_command

REPO = Path(__file__).resolve().parents[1]


def loadtest(url: str, users: int, seconds: int, out: Path) -> dict:
    """One `shopray loadtest` run (locust in its own process, with this interpreter); its report.json."""
    cmd = [sys.executable, "-m", "shopray.cli", "loadtest", "--users", str(users), "--spawn-rate", str(users), "--duration", str(seconds), "--url", url, "--out", str(out)]
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


def step_mode(ns: argparse.Namespace) -> dict:
    steps = []
    for users in [int(u) for u in ns.users.split(",")]:
        report = loadtest(ns.url, users, ns.step_s, ns.out / f"users-{users}")
        agg = report["endpoints"].get("Aggregated", {})
        search = report["endpoints"].get("POST /search", agg)
        row = {"users": users, "rps": round(agg.get("rps") or 0.0, 2), "p50_ms": search.get("p50_ms"), "p95_ms": search.get("p95_ms"),
               "p99_ms": search.get("p99_ms"), "requests": agg.get("requests"), "failures": agg.get("failures")}
        steps.append(row)
        print(json.dumps(row), flush=True)
    sat = saturation(steps, ns.p99_ms)
    return {"steps": steps, "saturation_rps": None if sat is None else round(sat, 2), "p99_limit_ms": ns.p99_ms}


def recovery_s(url: str, p99_ms: float, limit_s: float = 120) -> float | None:
    """Seconds until one search answers 200 within ``p99_ms`` again."""
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
    from shopray.catalog.demo import generate_demo_catalog

    products = generate_demo_catalog(n=24_000)
    rng = random.Random(ns.seed)  # a new seed per run: repeated queries would be parser-cache hits
    pool = [f"{p.brand} {p.category.split(' > ')[-1].lower()}" for p in products if p.category]
    queries = [rng.choice(pool) for _ in range(math.ceil(ns.rate * ns.step_s) + 1)]
    answers = asyncio.run(arrivals(ns.url, ns.rate, ns.step_s, queries))
    recovered = recovery_s(ns.url, ns.p99_ms)
    counts = statuses(answers)
    return {
        "rate_rps": ns.rate, "seed": ns.seed, "seconds": ns.step_s, "requests": len(answers), "statuses": counts,
        "share_503": round(counts.get("503", 0) / max(1, len(answers)), 4), "degraded_labels": degraded_labels(answers),
        **percentiles([a.latency_ms for a in answers if a.status == 200], suffix="_ms_of_200s"),
        "recovery_s_after_load": recovered, "healthz_after": httpx.get(f"{ns.url}/healthz", timeout=30).status_code,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--users", default="1,2,4,8,16", help="user counts for the step mode")
    ap.add_argument("--step-s", type=int, default=40)
    ap.add_argument("--p99-ms", type=float, default=1000.0)
    ap.add_argument("--rate", type=float, default=None, help="run the rate mode at this many searches per second instead")
    ap.add_argument("--seed", type=int, default=int(time.time()), help="query sampling seed for the rate mode (default: the clock)")
    ap.add_argument("--out", type=Path, default=REPO / "artifacts" / "saturation")
    ns = ap.parse_args(argv)
    print_command(argv)
    ns.out.mkdir(parents=True, exist_ok=True)
    print(json.dumps(rate_mode(ns) if ns.rate else step_mode(ns), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
