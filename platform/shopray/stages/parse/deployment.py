"""The parse stage's Serve deployment (QueryParser): asynchronous, with cache and fallback metrics.

Why not ``ray.serve.llm``: it would put the engine in a second deployment
behind an OpenAI-style hop, block that deployment's start-up (and the app's
RUNNING state) on engine start, and needs three or more logical CPUs on a
2-core box. Here vLLM's AsyncLLM lives in this replica on its own loop thread:
requests are coroutines that vLLM batches, the replica is healthy from the
first second (the rule parser answers while the engine starts), and the
engine arguments come from the same ``parser.engine`` config on CPU and GPU.
"""

from __future__ import annotations

from typing import Callable

from ray import serve
from ray.util.metrics import Counter, Gauge

from shopray.config import AppConfig
from shopray.graph import SearchContext
from shopray.stages.parse.stage import ParseStage


class _Metrics:
    """Ray metrics (exported with Serve's own on the metrics port) fed from the stage's counters."""

    def __init__(self, deployment: str):
        tags = {"deployment": deployment}
        self.hit_rate = Gauge("shopray_parser_cache_hit_rate", description="Share of LLM-parser lookups answered from the intent cache.", tag_keys=("deployment",))
        self.cache_size = Gauge("shopray_parser_cache_entries", description="Intents held in the parser cache.", tag_keys=("deployment",))
        self.outcomes = Counter("shopray_parser_outcomes_total", description="Parses by outcome: llm, cache_hit, parser_timeout, parser_unavailable, parser_invalid_output.", tag_keys=("deployment", "outcome"))
        for m in (self.hit_rate, self.cache_size, self.outcomes):
            m.set_default_tags(tags)
        self._seen: dict[str, int] = {}

    def record(self, state: dict) -> None:
        cache = state.get("cache", {})
        self.hit_rate.set(cache.get("hit_rate", 0.0))
        self.cache_size.set(cache.get("size", 0))
        for outcome, total in state.get("outcomes", {}).items():
            delta = total - self._seen.get(outcome, 0)
            if delta > 0:
                self.outcomes.inc(delta, tags={"outcome": outcome})
            self._seen[outcome] = total


@serve.deployment
class ParserDeployment:
    def __init__(self, build: Callable[[AppConfig], ParseStage], config: dict):
        # Returns at once: an LLM model's engine starts on a background thread.
        self.stage = build(AppConfig.model_validate(config))
        self._metrics = _Metrics(serve.get_replica_context().deployment)

    async def run(self, ctx: SearchContext) -> SearchContext:
        ctx = await self.stage.arun(ctx)
        self._metrics.record(self.stage.describe())
        return ctx

    def reconfigure(self, user_config: dict) -> None:
        """Serve's in-place update: ``user_config: {model: <alias, version or directory>}`` pins the LLM parser's model."""
        model = (user_config or {}).get("model")
        if model:
            self.stage.retarget(str(model))

    def ready(self) -> bool:
        return self.stage.ready()

    def stats(self) -> dict:
        """Engine state, cache size and hit rate, outcome counts."""
        return self.stage.describe()

    def check_health(self) -> None:
        if not self.stage.ready():
            raise RuntimeError("the parse stage is not ready")
        self.stage.check()
