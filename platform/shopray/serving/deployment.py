"""The Serve deployment of a stage that needs nothing special: the stage object does the work."""

from __future__ import annotations

from typing import Callable

from ray import serve

from shopray.config import AppConfig
from shopray.graph import SearchContext, Stage


@serve.deployment
class StageDeployment:
    def __init__(self, build: Callable[[AppConfig], Stage], config: dict):
        self.stage = build(AppConfig.model_validate(config))

    def run(self, ctx: SearchContext) -> SearchContext:
        return self.stage.run(ctx)

    def ready(self) -> bool:
        return self.stage.ready()

    def check_health(self) -> None:
        if not self.stage.ready():
            raise RuntimeError(f"{type(self.stage).__name__} is not ready")
