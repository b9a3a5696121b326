"""`shopray loadtest`: run the locust suite headless in its own process and summarise it.

Writes report.json (RPS, p50/p95/p99 per endpoint, failures), locust's HTML
report and a PNG of latency and RPS over time into --out, and prints the
per-endpoint figures as a table. ``--tags`` runs part of the mix (search,
suggest, events, recommend: loadtest/locustfile.py).
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from shopray.bench.report import markdown_table
from shopray.config import CHECKOUT


def _rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _num(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "", "N/A") else None
    except ValueError:
        return None


def summarise(out: Path, command: str) -> dict:
    endpoints = {}
    for row in _rows(out / "locust_stats.csv"):
        endpoints[row["Name"]] = {
            "requests": int(row["Request Count"]),
            "failures": int(row["Failure Count"]),
            "rps": _num(row["Requests/s"]),
            "p50_ms": _num(row["50%"]),
            "p95_ms": _num(row["95%"]),
            "p99_ms": _num(row["99%"]),
        }
    failures = [{"name": r["Name"], "error": r["Error"], "occurrences": int(r["Occurrences"])} for r in _rows(out / "locust_failures.csv")]
    total = endpoints.get("Aggregated", {})
    return {"command": command, "rps": total.get("rps"), "endpoints": endpoints, "failures": failures}


def plot(out: Path) -> Path | None:
    history = [r for r in _rows(out / "locust_stats_history.csv") if r.get("Name") == "Aggregated"]
    if not history:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = int(history[0]["Timestamp"])
    t = [int(r["Timestamp"]) - t0 for r in history]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for key in ("50%", "95%", "99%"):
        ax1.plot(t, [_num(r[key]) for r in history], label=f"p{key.rstrip('%')}")
    ax1.set_ylabel("latency (ms)")
    ax1.legend()
    ax2.plot(t, [_num(r["Requests/s"]) for r in history], label="requests/s")
    ax2.plot(t, [_num(r["Failures/s"]) for r in history], label="failures/s")
    ax2.set_ylabel("per second")
    ax2.set_xlabel("seconds")
    ax2.legend()
    fig.tight_layout()
    path = out / "latency_rps.png"
    fig.savefig(path, dpi=110)
    return path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="shopray loadtest", description=__doc__)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--spawn-rate", type=float, default=4)
    parser.add_argument("--duration", type=int, default=60, help="seconds")
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", default=None, help="report folder (default artifacts/loadtest-<time>)")
    parser.add_argument("--locustfile", default=str(CHECKOUT / "loadtest" / "locustfile.py"))
    parser.add_argument("--tags", nargs="+", default=None, help="only the tasks with these tags (default: the whole mix)")
    ns = parser.parse_args(argv)
    out = Path(ns.out or CHECKOUT / "artifacts" / f"loadtest-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "locust", "-f", ns.locustfile, "--headless", "--host", ns.url,
        "-u", str(ns.users), "-r", str(ns.spawn_rate), "-t", f"{ns.duration}s", "--stop-timeout", "10",
        "--csv", str(out / "locust"), "--csv-full-history", "--html", str(out / "report.html"),
        "--only-summary", "--exit-code-on-error", "0",
    ] + (["--tags", *ns.tags] if ns.tags else [])
    # Its own process: locust's gevent monkey-patching breaks processes that hold torch or Ray.
    # The locustfile waits up to 120 s for the shoppers' routes before the run time starts, then locust stops within 120 s.
    subprocess.run(cmd, check=True, timeout=ns.duration + 240)
    command = "shopray loadtest " + shlex.join(argv)
    report = summarise(out, command)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    png = plot(out)
    agg = report["endpoints"].get("Aggregated", {})
    print(markdown_table(["endpoint", "requests", "failures", "rps", "p50 ms", "p95 ms", "p99 ms"],
                         [[name, e["requests"], e["failures"], e["rps"] and round(e["rps"], 2), e["p50_ms"], e["p95_ms"], e["p99_ms"]]
                          for name, e in report["endpoints"].items()]))
    print(json.dumps({"rps": report["rps"], "requests": agg.get("requests"), "failures": agg.get("failures"), "p50_ms": agg.get("p50_ms"), "p95_ms": agg.get("p95_ms"), "p99_ms": agg.get("p99_ms")}))
    print(f"report: {out / 'report.json'}, {out / 'report.html'}, {png}")
    print(f"command: {command}")
    return 0
