"""The search graph: its four stages in order, and all of them in one process.

``STAGES`` is the graph: the ingress, ``bind_app`` and ``Pipeline`` all walk
it. ``Pipeline`` runs the same walk (``graph.runner``) with the stage objects
in this process, for tests, evaluation, tuning and benchmarks; nothing here
imports Ray.
"""

from __future__ import annotations

from typing import Sequence

from shopray.api import SearchRequest, SearchResponse
from shopray.config import AppConfig
from shopray.graph import Outcome, SearchContext, Stage, StageSpec, check_wiring, run
from shopray.stages.diversify.spec import SPEC as DIVERSIFY
from shopray.stages.parse.spec import SPEC as PARSE
from shopray.stages.rank.spec import SPEC as RANK
from shopray.stages.retrieve.spec import SPEC as RETRIEVE

STAGES: tuple[StageSpec, ...] = (PARSE, RETRIEVE, RANK, DIVERSIFY)
check_wiring(list(STAGES))


def stage_spec(key: str) -> StageSpec:
    return next(spec for spec in STAGES if spec.key == key)


class Pipeline:
    """The stages as plain objects in this process, keyed by their spec's key."""

    def __init__(self, stages: dict[str, Stage]):
        self.stages = stages

    @classmethod
    def from_config(cls, config: AppConfig, keys: Sequence[str] | None = None) -> "Pipeline":
        """Every stage, or the ``keys`` given (a benchmark that sets the intent itself needs no parser)."""
        return cls({spec.key: spec.build(config) for spec in STAGES if keys is None or spec.key in keys})

    def __getitem__(self, key: str) -> Stage:
        return self.stages[key]

    def run(self, ctx: SearchContext) -> Outcome:
        """Walk the stages this pipeline holds, in graph order, from ``ctx`` as it is."""
        return run([spec for spec in STAGES if spec.key in self.stages], ctx, lambda spec, c: self.stages[spec.key].run(c))

    def search(self, request: SearchRequest) -> SearchResponse:
        return self.run(SearchContext(request=request)).response()
