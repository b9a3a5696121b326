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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shopray.bench.report import print_command

KEY = "drill-admin-key"


async def drill(ns: argparse.Namespace, url: str) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess | None, float, list]:
    from shopray.bench.load import steady_load

    load = asyncio.create_task(steady_load(url, ns.duration, ns.concurrency))
    await asyncio.sleep(ns.promote_at)
    cmd = [sys.executable, "-m", "shopray.cli", "promote", "ranker", ns.new, "--url", url, "--wait", "60"]
    env = {**os.environ, "SHOPRAY_ADMIN_KEY": KEY}  # the promote CLI's own environment
    unforced = None
    if ns.force:  # show the card gate first: a worse card is refused without --force
        unforced = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, env=env)
        cmd = cmd + ["--force"]
    started = time.monotonic()
    proc = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, env=env)
    return proc, unforced, time.monotonic() - started, await load


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    ns = ap.parse_args(argv)
    print_command(argv)

    from ray import serve

    from shopray.bench.cluster import local_cluster, worker_env
    from shopray.bench.load import summarize
    from shopray.config import AppConfig, IndexConfig, ParserConfig, RankerConfig
    from shopray.registry import Registry
    from shopray.serving.app import bind_app

    scratch = Path(tempfile.mkdtemp(prefix="shopray-drill-"))
    for version in (ns.old, ns.new):
        shutil.copytree(ns.registry / "ranker" / version, scratch / "ranker" / version)
    Registry(scratch).set_alias("ranker", "production", ns.old)
    config = AppConfig(
        index=IndexConfig(name=ns.index),
        parser=ParserConfig(kind="rule"),
        ranker=RankerConfig(kind="crossencoder", model="production", registry=scratch, refresh_s=1.0, top_n=ns.top_n, max_length=32, budget_ms=ns.rank_budget_ms),
    )
    # The ingress reads the admin key promotion needs.
    ingress = {"ray_actor_options": {"num_cpus": 0.1, "runtime_env": worker_env(SHOPRAY_ADMIN_KEY=KEY)}}
    try:
        with local_cluster(num_cpus=4, http=True) as cluster:
            t0 = time.monotonic()
            serve.run(bind_app(config, {"SearchIngress": ingress}), name="drill", route_prefix="/")
            print(f"app up in {time.monotonic() - t0:.1f}s at {cluster.url}", file=sys.stderr)
            proc, unforced, took, answers = asyncio.run(drill(ns, cluster.url))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    summary = summarize(answers, old=ns.old, new=ns.new)
    out = {
        "duration_s": ns.duration, "concurrency": ns.concurrency, "promote_called_at_s": ns.promote_at,
        "unforced_rc": unforced.returncode if unforced else None, "unforced_output": (unforced.stderr or unforced.stdout).strip()[-400:] if unforced else None,
        "promote_rc": proc.returncode, "promote_output": (proc.stdout or proc.stderr).strip()[-600:], "promote_cli_s": round(took, 2),
        **summary,
    }
    print(json.dumps(out, indent=2))
    return 0 if summary["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
