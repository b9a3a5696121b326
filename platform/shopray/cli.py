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


def cmd_catalog(ns: argparse.Namespace) -> int:
    from shopray.stages.retrieve.changes import CatalogWriter, ChangeRejected, FeedMismatch, parse_lines

    args = _app_args(_serve_file(ns.config), ns.catalog)
    if ns.name:
        args["index"] = {**args.get("index", {}), "name": ns.name}
    config = AppConfig.model_validate(args)
    try:
        with (sys.stdin if ns.changes == "-" else open(ns.changes, encoding="utf-8")) as f:
            applied = CatalogWriter.from_config(config).apply(parse_lines(f))
    except ChangeRejected as exc:
        print(f"{ns.changes}: {exc}; nothing was applied", file=sys.stderr)
        return 2
    except FeedMismatch as exc:
        print(f"{exc}; nothing was applied", file=sys.stderr)
        return 1
    print(json.dumps({"index": config.index.name, **vars(applied)}))
    return 0


def cmd_serve(ns: argparse.Namespace) -> int:
    from shopray.serving.launch import serve_command

    serve_file = _serve_file(ns.config)
    serve_file["applications"][0]["args"] = _app_args(serve_file, ns.catalog)
    return serve_command(ns, serve_file)


def cmd_bootstrap(ns: argparse.Namespace) -> int:
    from shopray.serving.launch import bootstrap_command

    serve_file = _serve_file(ns.config)
    return bootstrap_command(ns, AppConfig.model_validate(_app_args(serve_file, ns.catalog)))


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
    "train": ("shopray.training", "train models into the registry: shopray train {ranker,parser,embedder,fusion} ..."),
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

    p = sub.add_parser("catalog", help="change the served catalog live: shopray catalog apply CHANGES.jsonl")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("apply", help="append a batch of changes (JSON Lines, - for stdin) to the index's feed, all or nothing; "
                           'a line is {"product_id": ..., <fields to set>} or {"product_id": ..., "delete": true}')
    a.add_argument("changes")
    a.add_argument("--config", default=None, help=f"Serve config file (default {DEFAULT_CONFIG} if present)")
    a.add_argument("--catalog", default=None, help="the catalog whose index to change (default: the config's)")
    a.add_argument("--name", default=None, help="index name (default: from the catalog)")
    a.set_defaults(func=cmd_catalog)

    p = sub.add_parser("serve", help="start Ray and Serve and block")
    p.add_argument("--config", default=None, help=f"Serve config file (default {DEFAULT_CONFIG} if present)")
    p.add_argument("--catalog", default=None, help="catalog to serve (indexed first if needed)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--num-cpus", type=int, default=None, help="logical CPUs Ray may hand out (default max(4, cores))")
    p.add_argument("--metrics-port", type=int, default=8080, help="Prometheus metrics port of a local cluster (default 8080, Ray's usual)")
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for the app to start")
    p.add_argument("--address", default=os.environ.get("RAY_ADDRESS"), help="Ray cluster to deploy into (default $RAY_ADDRESS; unset: start a local one)")
    p.add_argument("--no-block", action="store_true", help="return once the app is running; needs --address")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("bootstrap", help="train the models `model: auto` names for the catalog, where missing (serve does it too)")
    p.add_argument("--config", default=None, help=f"Serve config file (default {DEFAULT_CONFIG} if present)")
    p.add_argument("--catalog", default=None, help="catalog the models are for (indexed first if needed)")
    p.add_argument("--address", default=os.environ.get("RAY_ADDRESS"), help="Ray cluster to train on (default $RAY_ADDRESS; unset: a local one)")
    p.add_argument("--num-cpus", type=int, default=None, help="logical CPUs of a local cluster (default max(4, cores))")
    p.add_argument("--metrics-port", type=int, default=8080, help="Prometheus metrics port of a local cluster")
    p.set_defaults(func=cmd_bootstrap)

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
