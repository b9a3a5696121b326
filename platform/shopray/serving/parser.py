"""The QueryParser deployment: rule or LLM parser, asynchronous, with cache and fallback metrics.

Why not ``ray.serve.llm``: it would put the engine in a second deployment
behind an OpenAI-style hop, block that deployment's start-up (and the app's
RUNNING state) on engine start, and needs three or more logical CPUs on a
2-core box. Here vLLM's AsyncLLM lives in this replica on its own loop thread:
requests are coroutines that vLLM batches, the replica is healthy from the
first second (the rule parser answers while the engine starts), and the
engine arguments come from the same ``parser.engine`` config on CPU and GPU.
"""

from __future__ import annotations

from ray import serve

from shopray.config import AppConfig
from shopray.pipeline import SearchContext, Stage


class _Metrics:
    """Ray metrics (exported with Serve's own on the metrics port) fed from the stage's counters."""

    def __init__(self, deployment: str):
        from ray.util.metrics import Counter, Gauge

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


@serve.deployment(max_ongoing_requests=64)
class ParserDeployment:
    def __init__(self, stage_cls: type[Stage], config: dict):
        # LLM parser: returns at once, the engine starts on a background thread.
        self.stage = stage_cls.from_config(AppConfig.model_validate(config))
        self._arun = getattr(self.stage, "arun", None)
        self._describe = getattr(self.stage, "describe", None)
        self._metrics = _Metrics(stage_cls.name) if self._describe else None

    async def run(self, ctx: SearchContext) -> SearchContext:
        ctx = await self._arun(ctx) if self._arun else self.stage.run(ctx)
        if self._metrics:
            self._metrics.record(self._describe())
        return ctx

    def reconfigure(self, user_config: dict) -> None:
        """Serve's in-place update: ``user_config: {model: <alias, version or directory>}`` pins the LLM parser's model."""
        model = (user_config or {}).get("model")
        set_model = getattr(self.stage, "set_model", None)
        if model and set_model:
            set_model(str(model))

    def ready(self) -> bool:
        return self.stage.ready()

    def stats(self) -> dict:
        """Engine state, cache size and hit rate, outcome counts (LLM parser); {"kind": "rule"} otherwise."""
        return self._describe() if self._describe else {"kind": "rule"}

    def check_health(self) -> None:
        if not self.stage.ready():
            raise RuntimeError(f"{self.stage.name} is not ready")
        check = getattr(self.stage, "check", None)
        if check:
            check()
