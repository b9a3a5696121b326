"""One Serve deployment class serves any stage: the stage object does the work."""

from __future__ import annotations

from ray import serve

from shopray.config import AppConfig
from shopray.pipeline import SearchContext, Stage


@serve.deployment(max_ongoing_requests=16, max_queued_requests=64)
class StageDeployment:
    def __init__(self, stage_cls: type[Stage], config: dict):
        self.stage = stage_cls.from_config(AppConfig.model_validate(config))

    def run(self, ctx: SearchContext) -> SearchContext:
        return self.stage.run(ctx)

    def ready(self) -> bool:
        return self.stage.ready()

    def check_health(self) -> None:
        if not self.stage.ready():
            raise RuntimeError(f"{self.stage.name} is not ready")
