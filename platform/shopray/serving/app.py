"""The application builder shared by Python, `serve run` YAML and KubeRay serveConfigV2.

    import_path: shopray.serving.app:build_app
    args: {...AppConfig...}

Deployment names (QueryParser, Retriever, Ranker, Diversifier, SearchIngress)
are what a Serve config's ``deployments:`` list overrides: replicas, CPUs,
GPUs and autoscaling live there, not in code.
"""

from __future__ import annotations

from ray.serve import Application

from shopray.config import AppConfig
from shopray.pipeline import check_wiring, default_stages
from shopray.serving.ingress import SearchIngress
from shopray.serving.stage import StageDeployment

# Defaults sized for a 2-core laptop; a Serve config overrides any of them.
DEFAULT_OPTIONS: dict[str, dict] = {
    "QueryParser": {"ray_actor_options": {"num_cpus": 0.1}},
    "Retriever": {"ray_actor_options": {"num_cpus": 0.5}},
    "Ranker": {"ray_actor_options": {"num_cpus": 0.5}},
    "Diversifier": {"ray_actor_options": {"num_cpus": 0.1}},
}


def deployment_for(stage_name: str):
    """The Serve deployment class that hosts a stage; its constructor takes (stage_cls, config dict)."""
    return StageDeployment


def build_app(args: dict | None = None) -> Application:
    config = AppConfig.model_validate(args or {})
    stages = default_stages()
    check_wiring(stages)
    if config.catalog:
        from shopray.index.ingest import ensure_index

        ensure_index(config)
    payload = config.model_dump(mode="json")
    handles = [
        deployment_for(stage.name).options(name=stage.name, **DEFAULT_OPTIONS.get(stage.name, {})).bind(stage, payload)
        for stage in stages
    ]
    return SearchIngress.options(ray_actor_options={"num_cpus": 0.1}).bind(*handles, payload)
