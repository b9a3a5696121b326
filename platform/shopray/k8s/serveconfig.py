"""A deployments/*.yaml Serve config, adapted for KubeRay's serveConfigV2."""

from __future__ import annotations

import copy

import yaml

from shopray.config import AppConfig

# The Qdrant Service in k8s/base/qdrant.yaml, from inside the namespace.
QDRANT_SERVICE_URL = "http://qdrant:6333"
# KubeRay's serve Service targets port 8000 on every pod whose proxy is healthy;
# proxies must listen on all interfaces and run wherever replicas run.
K8S_HTTP_OPTIONS = {"host": "0.0.0.0", "port": 8000}
K8S_PROXY_LOCATION = "EveryNode"


def for_kubernetes(serve_file: dict) -> tuple[dict, str | None]:
    """(the Serve config for serveConfigV2, the catalog the indexing RayJob should build).

    Only what differs on k8s changes: the index is the Qdrant Service, and the
    catalog is indexed by a RayJob, not by build_app at start-up (replicas would
    each try to, and a Serve deploy would wait on it).
    """
    config = copy.deepcopy(serve_file)
    config["http_options"] = {**config.get("http_options", {}), **K8S_HTTP_OPTIONS}
    config["proxy_location"] = K8S_PROXY_LOCATION
    app = config["applications"][0]
    args = app.setdefault("args", {})
    catalog = args.pop("catalog", None)
    args["index"] = {**args.get("index", {}), "qdrant_url": QDRANT_SERVICE_URL}
    return config, catalog


def index_name(serve_file: dict) -> str:
    return AppConfig.model_validate(serve_file["applications"][0].get("args") or {}).index.name


def dump(config: dict) -> str:
    # Block style, file order: the embedded text reads like the deployments/ file it came from.
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False, width=1000)
