"""`shopray serve`: a Ray cluster, the index, the app, the models a fresh machine trains, and what is serving.

In order: start a local Ray cluster (metrics on ``--metrics-port``) or join
``--address``; make the index hold the catalog (``ensure_index``); deploy the
Serve config as `serve run` and KubeRay do; print what answers (the versions
of the parser, ranker and index, from a probe search) and where the metrics
are; then train what ``model: auto`` names and is missing (``bootstrap``),
with progress bars, until every answer is fully modelled.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

import httpx
import ray
from ray import serve
from ray.serve.schema import ServeDeploySchema

from shopray.bootstrap import run as bootstrap_run
from shopray.config import AppConfig
from shopray.stages.retrieve.ingest import ensure_index

PROBE = {"query": "start-up probe", "k": 1}


def say(*lines: str) -> None:
    for line in lines:
        print(f"shopray: {line}", file=sys.stderr, flush=True)


def connect(ns: argparse.Namespace) -> None:
    """Join ``--address`` or start a local cluster; joining is explicit, never whatever Ray runs on the machine."""
    if ns.address:
        ray.init(address=ns.address)
        return
    # More logical CPUs than cores: replicas ask for fractions and mostly wait on I/O.
    # Replica and task logs stay in Ray's session folder: this terminal shows progress and what is serving.
    ray.init(address="local", num_cpus=ns.num_cpus or max(4, os.cpu_count() or 1), include_dashboard=False, log_to_driver=False,
             _metrics_export_port=ns.metrics_port)


def deploy(schema: ServeDeploySchema, name: str, timeout_s: float) -> str | None:
    """The same call `serve run config.yaml` and KubeRay make; returns None when running, else why not."""
    serve.context._get_global_client().deploy_apps(schema)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = serve.status().applications.get(name)
        if status and status.status == "RUNNING":
            return None
        if status and status.status == "DEPLOY_FAILED":
            return f"deploy failed: {status.message}"
        time.sleep(1)
    return "timed out waiting for the application to start"


def probe(url: str) -> dict:
    """What answers now: one search's versions and degraded labels."""
    resp = httpx.post(f"{url}/search", json=PROBE, timeout=30)
    resp.raise_for_status()
    body = resp.json()
    return {"versions": body["versions"], "degraded": body["degraded"]}


def describe(answer: dict) -> str:
    v = answer["versions"]
    degraded = ", ".join(answer["degraded"]) or "none"
    return f"serving parser {v.get('parser', '?')}, ranker {v.get('ranker', '?')}, index {v.get('index', '?')}; degraded: {degraded}"


def await_models(url: str, registered: dict[str, str], timeout_s: float = 180.0) -> dict:
    """Probe until nothing is warming and the replicas answer with the models just registered ({kind: version}),
    or the timeout."""
    wanted = {"parser": "llm:{}@", "ranker": "crossencoder:{}:"}

    def settled(answer: dict) -> bool:
        swapped = all(wanted[k].format(v) in answer["versions"].get(k, "") for k, v in registered.items())
        return swapped and not any(label.endswith("_warming") for label in answer["degraded"])

    deadline, answer = time.monotonic() + timeout_s, probe(url)
    while time.monotonic() < deadline and not settled(answer):
        time.sleep(1)
        answer = probe(url)
    return answer


def bootstrap_command(ns: argparse.Namespace, config: AppConfig) -> int:
    """`shopray bootstrap`: index if needed, then train what `model: auto` names and is missing, with progress bars."""
    connect(ns)
    manifest = ensure_index(config)
    plan = bootstrap_run.plan(config, manifest)
    say(f"index {manifest.name} version {manifest.version}: {manifest.count:,} products", *plan.lines)
    if not plan.jobs:
        return 0
    results = bootstrap_run.watch(config, plan.jobs, bootstrap_run.start(config, plan.jobs), sys.stderr)
    say(*(f"{kind}: {version}" for kind, version in results.items()))
    return 1 if any(v.startswith("failed") for v in results.values()) else 0


def serve_command(ns: argparse.Namespace, serve_file: dict) -> int:
    started = time.monotonic()
    app = serve_file["applications"][0]
    serve_file.setdefault("http_options", {}).update({"host": ns.host, "port": ns.port})
    schema = ServeDeploySchema.model_validate(serve_file)
    config = AppConfig.model_validate(app.get("args") or {})
    if ns.no_block and not ns.address:
        print("--no-block needs --address of a running cluster: a cluster this command starts stops when it exits", file=sys.stderr)
        return 2
    connect(ns)
    # Ctrl-C, or a SIGTERM from a process manager, at any point stops what this command started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return _serve(ns, schema, config, started)
    except KeyboardInterrupt:
        serve.shutdown()
        return 0


def _serve(ns: argparse.Namespace, schema: ServeDeploySchema, config: AppConfig, started: float) -> int:
    app = schema.applications[0]
    manifest = ensure_index(config)
    say(f"index {manifest.name} version {manifest.version}: {manifest.count:,} products")
    plan = bootstrap_run.plan(config, manifest)
    say(*plan.lines)
    # Training starts before the app does, so its first answers already say what is warming.
    task = bootstrap_run.start(config, plan.jobs) if plan.jobs and config.bootstrap.enabled else None
    serve.start(http_options={"host": ns.host, "port": ns.port})
    failure = deploy(schema, app.name, ns.timeout)
    if failure:
        print(failure, file=sys.stderr)
        return 1
    url = f"http://{ns.host}:{ns.port}"
    metrics = f"http://127.0.0.1:{ns.metrics_port}/metrics" if not ns.address else "the cluster's Ray metrics endpoint"
    say(describe(probe(url)), f"metrics (Prometheus): {metrics}", f"{time.monotonic() - started:.0f} s after start")
    # The cluster address lets operators' tools (fault drills, `shopray tune --address`) join this cluster.
    print(f"shopray is serving on {url} (POST /search, GET /healthz, GET /docs); Ray cluster {ray.get_runtime_context().gcs_address}", flush=True)
    registered = {}
    if task is not None:
        results = bootstrap_run.watch(config, plan.jobs, task, sys.stderr)
        say(*(f"{kind}: {version}" for kind, version in results.items()))
        registered = {k: v for k, v in results.items() if not v.startswith("failed")}
    answer = await_models(url, registered)
    say(describe(answer), f"fully modelled {time.monotonic() - started:.0f} s after start" if not answer["degraded"] else "still degraded")
    if ns.no_block:
        return 0
    while True:
        time.sleep(3600)


