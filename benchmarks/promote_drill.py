"""Promote a ranker while a steady async client searches, and count what the client saw.

    .venv/bin/python benchmarks/promote_drill.py --from VERSION --to VERSION [--duration 75] [--promote-at 20]

Starts its own local Ray cluster and Serve (never joins another), deploys the
graph over the demo index with a cross-encoder Ranker named by the alias
`production` in a scratch registry holding copies of the two versions (the real
registry's aliases are untouched), keeps --concurrency searches in flight, and at
--promote-at runs `shopray promote ranker TO` against the app. Prints requests
sent, failed, degraded, when the new model first answered and the old one last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KEY = "drill-admin-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--from", dest="old", required=True, help="ranker version in production when the drill starts")
    ap.add_argument("--to", dest="new", required=True, help="ranker version to promote")
    ap.add_argument("--registry", type=Path, default=Path("~/.shopray/registry").expanduser())
    ap.add_argument("--index", default="demo")
    ap.add_argument("--duration", type=float, default=75)
    ap.add_argument("--promote-at", type=float, default=20)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--force", action="store_true", help="promote even a worse card (the unforced attempt is made and reported first)")
    ap.add_argument("--top-n", type=int, default=20, help="candidates the cross-encoder scores per request")
    ap.add_argument("--rank-budget-ms", type=float, default=15000, help="ranker budget: a loaded box must not turn slow scoring into ranker_timeout")
    ns = ap.parse_args()

    import ray
    from ray import serve

    from shopray.config import AppConfig, IndexConfig, ParserConfig, RankerConfig, StageBudgets
    from shopray.drill import steady_load, summarize
    from shopray.registry import Registry
    from shopray.serving.app import bind_app

    scratch = Path(tempfile.mkdtemp(prefix="shopray-drill-"))
    for version in (ns.old, ns.new):
        shutil.copytree(ns.registry / "ranker" / version, scratch / "ranker" / version)
    reg = Registry(scratch)
    reg.set_alias("ranker", "production", ns.old)
    port = free_port()
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    config = AppConfig(
        index=IndexConfig(name=ns.index),
        parser=ParserConfig(kind="rule"),
        ranker=RankerConfig(kind="crossencoder", model="production", registry=scratch, refresh_s=1.0, top_n=ns.top_n, max_length=32),
        budgets=StageBudgets(rank_ms=ns.rank_budget_ms),
    )
    env = {"runtime_env": {"env_vars": {"SHOPRAY_ADMIN_KEY": KEY}}, "num_cpus": 0.1}
    t0 = time.monotonic()
    serve.run(bind_app(config, {"SearchIngress": {"ray_actor_options": env}}), name="drill", route_prefix="/")
    url = f"http://127.0.0.1:{port}"
    print(f"app up in {time.monotonic() - t0:.1f}s at {url}", file=sys.stderr)

    async def drill():
        load = asyncio.create_task(steady_load(url, ns.duration, ns.concurrency))
        await asyncio.sleep(ns.promote_at)
        cmd = [sys.executable, "-m", "shopray.cli", "promote", "ranker", ns.new, "--url", url, "--wait", "60"]
        env = {**os.environ, "SHOPRAY_ADMIN_KEY": KEY}
        unforced = None
        if ns.force:  # show the card gate first: a worse card is refused without --force
            unforced = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, env=env)
            cmd = cmd + ["--force"]
        started = time.monotonic()
        proc = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, env=env)
        return proc, unforced, time.monotonic() - started, await load

    proc, unforced, took, answers = asyncio.run(drill())
    summary = summarize(answers, old=ns.old, new=ns.new)
    out = {
        "command": " ".join(sys.argv),
        "duration_s": ns.duration, "concurrency": ns.concurrency, "promote_called_at_s": ns.promote_at,
        "unforced_rc": unforced.returncode if unforced else None, "unforced_output": (unforced.stderr or unforced.stdout).strip()[-400:] if unforced else None,
        "promote_rc": proc.returncode, "promote_output": (proc.stdout or proc.stderr).strip()[-600:], "promote_cli_s": round(took, 2),
        **summary,
    }
    print(json.dumps(out, indent=2))
    serve.shutdown()
    ray.shutdown()
    shutil.rmtree(scratch, ignore_errors=True)
    return 0 if summary["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
