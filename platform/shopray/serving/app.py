"""The application builder shared by Python, `serve run` YAML and KubeRay serveConfigV2.

    import_path: shopray.serving.app:build_app
    args: {...AppConfig...}

Each stage's deployment, its name (what a Serve config's ``deployments:``
list overrides: replicas, CPUs, GPUs, autoscaling) and its defaults come from
its ``StageSpec``; the build function is injected into the deployment, which
builds the stage in its replica. Stages named in ``graph.in_ingress`` get no
deployment: the ingress builds and runs them itself.
"""

from __future__ import annotations

import importlib

from ray import serve
from ray.serve import Application

from shopray.config import AppConfig
from shopray.graph import ServeDefaults, StageSpec
from shopray.pipeline import STAGES
from shopray.serving.deployment import StageDeployment
from shopray.serving.ingress import SearchIngress
from shopray.stages.retrieve.ingest import ensure_index

INGRESS = ServeDefaults(num_cpus=0.1, max_ongoing_requests=64, max_queued_requests=128)


def deployment_class(spec: StageSpec):
    if spec.deployment_class is None:
        return StageDeployment
    module, name = spec.deployment_class.split(":")
    return getattr(importlib.import_module(module), name)


def bind_stage(spec: StageSpec, config: AppConfig, options: dict | None = None) -> Application:
    """One stage's deployment bound to ``config``; ``options`` are Serve deployment options over the spec's defaults
    (a Serve config's ``deployments:`` entry for it, or a test's runtime_env)."""
    merged = {**spec.serve.options(), **(options or {})}
    return deployment_class(spec).options(name=spec.deployment, **merged).bind(spec.build, config.model_dump(mode="json"))


def build_app(args: dict | None = None) -> Application:
    return bind_app(AppConfig.model_validate(args or {}))


def bind_app(config: AppConfig, options: dict[str, dict] | None = None) -> Application:
    """The graph for ``config``; ``options`` are per-deployment Serve options by deployment name."""
    if config.catalog:
        ensure_index(config)
    options = options or {}
    handles = {spec.key: bind_stage(spec, config, options.get(spec.deployment)) for spec in STAGES if spec.key not in config.graph.in_ingress}
    return SearchIngress.options(name="SearchIngress", **{**INGRESS.options(), **options.get("SearchIngress", {})}).bind(handles, config.model_dump(mode="json"))


def running_replicas(app: str, deployment: str) -> int:
    status = serve.status().applications.get(app)
    if status is None or deployment not in status.deployments:
        return 0
    return int(status.deployments[deployment].replica_states.get("RUNNING", 0))
