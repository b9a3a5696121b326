"""`shopray` command line: index, serve, search, eval; other subcommands live beside the code they drive.

Ray, Serve and the index are imported inside the commands that use them, so
`shopray search` and `--help` start in a fraction of a second.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from pathlib import Path

from shopray.catalog import load_products
from shopray.config import AppConfig, load_serve_file
from shopray.evaluation import evaluate, load_judgments

DEFAULT_CONFIG = Path("deployments/local.yaml")
DEFAULT_URL = "http://127.0.0.1:8000"


def _serve_file(path: str | None) -> dict:
    if path:
        return load_serve_file(path)
    if DEFAULT_CONFIG.exists():
        return load_serve_file(DEFAULT_CONFIG)
    return {"applications": [{"name": "shopray", "route_prefix": "/", "import_path": "shopray.serving.app:build_app", "args": {"catalog": "demo"}}]}


def index_name_for(catalog: str) -> str:
    """demo -> demo; ../data/homedepot/catalog.jsonl -> homedepot; my-shop.csv -> my-shop."""
    if catalog == "demo":
        return "demo"
    path = Path(catalog)
    stem = path.parent.name if path.stem in {"catalog", "products", "data"} and path.parent.name else path.stem
    return re.sub(r"[^a-z0-9_-]+", "-", stem.lower()).strip("-")[:62] or "catalog"


def _app_args(serve_file: dict, catalog: str | None) -> dict:
    args = dict(serve_file["applications"][0].get("args") or {})
    if catalog:
        args["catalog"] = catalog if catalog == "demo" else str(Path(catalog).resolve())
        args["index"] = {**args.get("index", {}), "name": index_name_for(catalog)}
    return args


def cmd_index(ns: argparse.Namespace) -> int:
    from shopray.stages.retrieve.index import open_store
    from shopray.stages.retrieve.ingest import build_index

    args = _app_args(_serve_file(ns.config), ns.catalog or "demo")
    if ns.name:
        args["index"]["name"] = ns.name
    config = AppConfig.model_validate(args)
    load = load_products(config.catalog or "demo")
    for bad in load.bad_rows:
        print(f"line {bad.line}: skipped: {bad.reason}", file=sys.stderr)
    print(load.summary(), file=sys.stderr)
    if not load.products:
        print("nothing to index", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    manifest = build_index(load.products, open_store(config.index), config.embedding, bad_rows=len(load.bad_rows), keep_versions=config.index.keep_versions)
    print(json.dumps({"index": manifest.name, "version": manifest.version, "count": manifest.count, "bad_rows": manifest.bad_rows, "seconds": round(time.perf_counter() - t0, 1)}))
    return 0


def cmd_serve(ns: argparse.Namespace) -> int:
    import ray
    from ray import serve
    from ray.serve.schema import ServeDeploySchema

    from shopray.stages.retrieve.ingest import ensure_index

    serve_file = _serve_file(ns.config)
    app = serve_file["applications"][0]
    app["args"] = _app_args(serve_file, ns.catalog)
    serve_file.setdefault("http_options", {}).update({"host": ns.host, "port": ns.port})
    schema = ServeDeploySchema.model_validate(serve_file)

    # Joining a cluster is explicit: attaching to whatever Ray runs on the machine could
    # redeploy someone else's application.
    if ns.address:
        ray.init(address=ns.address)
    elif ns.no_block:
        print("--no-block needs --address of a running cluster: a cluster this command starts stops when it exits", file=sys.stderr)
        return 2
    else:
        # More logical CPUs than cores: replicas ask for fractions and mostly wait on I/O.
        ray.init(address="local", num_cpus=ns.num_cpus or max(4, os.cpu_count() or 1), include_dashboard=False)
    version = ensure_index(AppConfig.model_validate(app["args"]))
    print(f"index {app['args'].get('index', {}).get('name', 'demo')} version {version}", file=sys.stderr)
    serve.start(http_options={"host": ns.host, "port": ns.port})
    # The same call `serve run config.yaml` and KubeRay make: Serve imports build_app itself
    # and applies the file's deployment overrides.
    serve.context._get_global_client().deploy_apps(schema)
    name = app.get("name", "default")
    deadline = time.monotonic() + ns.timeout
    while time.monotonic() < deadline:
        status = serve.status().applications.get(name)
        if status and status.status == "RUNNING":
            break
        if status and status.status == "DEPLOY_FAILED":
            print(f"deploy failed: {status.message}", file=sys.stderr)
            return 1
        time.sleep(1)
    else:
        print("timed out waiting for the application to start", file=sys.stderr)
        return 1
    # The cluster address lets operators' tools (fault drills, `shopray tune --address`) join this cluster.
    print(f"shopray is serving on http://{ns.host}:{ns.port} (POST /search, GET /healthz, GET /docs); Ray cluster {ray.get_runtime_context().gcs_address}", flush=True)
    if ns.no_block:
        return 0
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        serve.shutdown()
    return 0


def cmd_search(ns: argparse.Namespace) -> int:
    import httpx

    body: dict = {"query": ns.query, "k": ns.k}
    if ns.diversity is not None:
        body["diversity"] = ns.diversity
    if ns.clicked:
        body["session"] = {"clicked": ns.clicked}
    resp = httpx.post(f"{ns.url}/search", json=body, timeout=30)
    if ns.json or resp.status_code != 200:
        print(json.dumps(resp.json(), indent=2))
        return 0 if resp.status_code == 200 else 1
    data = resp.json()
    intent = {k: v for k, v in data["intent"].items() if v not in (None, [], "")}
    print(f"intent: {json.dumps(intent)}")
    if data["degraded"]:
        print(f"degraded: {', '.join(data['degraded'])}")
    for i, r in enumerate(data["results"], 1):
        facets = " | ".join(str(r[f]) for f in ("brand", "category", "color") if r.get(f))
        price = f"${r['price']:.2f}" if r.get("price") is not None else ""
        print(f"{i:2d}. {r['score']:.3f}  {r['title']}  {price}  [{facets}]")
    print("timings_ms: " + ", ".join(f"{k}={v:.1f}" for k, v in data["timings_ms"].items()))
    return 0


def cmd_eval(ns: argparse.Namespace) -> int:
    import httpx


    judgments = load_judgments(ns.judgments)
    if ns.limit:
        judgments = dict(list(judgments.items())[: ns.limit])
    client = httpx.Client(base_url=ns.url, timeout=60)

    def search(query: str) -> list[str]:
        resp = client.post("/search", json={"query": query[:512], "k": ns.k, "diversity": 0})
        resp.raise_for_status()
        return [r["product_id"] for r in resp.json()["results"]]

    t0 = time.perf_counter()
    result = evaluate(judgments, search, k=ns.k, progress=True)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result))
    return 0


# Subcommands that own their argument parsing live beside the code they drive.
DELEGATED = {
    "train": ("shopray.training", "train models into the registry: shopray train {ranker,parser} ..."),
    "k8s": ("shopray.k8s.cli", "render and validate the KubeRay manifests: shopray k8s {render,validate} ..."),
    "loadtest": ("shopray.bench.locust", "run the locust suite headless: shopray loadtest --users N --spawn-rate R --duration S [--url]"),
    "tune": ("shopray.tuning", "run a Ray Tune sweep from tuning/*.yaml: shopray tune SWEEP.yaml [--resume] [--address ADDR]"),
    "registry": ("shopray.registry.cli", "list and show registered models: shopray registry {list,show} ..."),
    "promote": ("shopray.registry.promotion", "move a model to production in the registry and the running app: shopray promote {ranker,parser} VERSION [--force]"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in DELEGATED:
        import importlib

        return importlib.import_module(DELEGATED[argv[0]][0]).main(argv[1:])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="shopray", description="E-commerce search on Ray Serve, vLLM and Qdrant.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, summary) in DELEGATED.items():
        sub.add_parser(name, help=summary, add_help=False)

    p = sub.add_parser("index", help="index a catalog (default: the demo catalog)")
    p.add_argument("--catalog", default=None, help="JSONL, CSV or Parquet file, or 'demo'")
    p.add_argument("--config", default=None, help=f"Serve config file (default {DEFAULT_CONFIG} if present)")
    p.add_argument("--name", default=None, help="index name (default: from the catalog file name)")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("serve", help="start Ray and Serve and block")
    p.add_argument("--config", default=None, help=f"Serve config file (default {DEFAULT_CONFIG} if present)")
    p.add_argument("--catalog", default=None, help="catalog to serve (indexed first if needed)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--num-cpus", type=int, default=None, help="logical CPUs Ray may hand out (default max(4, cores))")
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for the app to start")
    p.add_argument("--address", default=os.environ.get("RAY_ADDRESS"), help="Ray cluster to deploy into (default $RAY_ADDRESS; unset: start a local one)")
    p.add_argument("--no-block", action="store_true", help="return once the app is running; needs --address")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("search", help="query a running server")
    p.add_argument("query")
    p.add_argument("--url", default=DEFAULT_URL)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--diversity", type=float, default=None)
    p.add_argument("--clicked", nargs="*", default=None, help="product ids clicked in this session")
    p.add_argument("--json", action="store_true", help="print the raw response")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("eval", help="NDCG@k, recall@k and MRR of a running server on judgments")
    p.add_argument("--judgments", required=True, help="CSV with query,product_id,relevance")
    p.add_argument("--url", default=DEFAULT_URL)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N queries")
    p.set_defaults(func=cmd_eval)

    ns = parser.parse_args(argv)
    return ns.func(ns)


if __name__ == "__main__":
    sys.exit(main())
