"""The search graph as plain Python: stages, their contracts, and an in-process runner.

Every stage declares which context fields it consumes and produces, so a
mis-wired graph fails when it is built, not on the first request. Serve
deployments wrap these same stage objects (``shopray.serving``); nothing here
imports Ray.
"""

from __future__ import annotations

import abc
import time
import uuid
from dataclasses import dataclass, field
from typing import ClassVar

from shopray.api import SearchRequest, SearchResponse, SearchResult
from shopray.config import AppConfig
from shopray.models import CandidateSet, Intent


@dataclass
class SearchContext:
    request: SearchRequest
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    intent: Intent | None = None
    candidates: CandidateSet | None = None
    degraded: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    def response(self, timings_ms: dict[str, float]) -> SearchResponse:
        candidates = self.candidates or CandidateSet.empty()
        results = [
            SearchResult(**{**payload, "product_id": pid, "score": round(float(score), 6)})
            for pid, payload, score in zip(candidates.ids, candidates.payloads, candidates.scores)
        ]
        return SearchResponse(
            request_id=self.request_id,
            intent=self.intent or Intent(keywords=self.request.query, source="none"),
            results=results,
            degraded=self.degraded,
            timings_ms=timings_ms,
            versions=self.versions,
        )


class GraphError(ValueError):
    """The stages do not fit together."""


class Stage(abc.ABC):
    """One step of the graph: reads some context fields, writes others."""

    name: ClassVar[str]
    timing_key: ClassVar[str]
    consumes: ClassVar[frozenset[str]]
    produces: ClassVar[frozenset[str]]

    @classmethod
    @abc.abstractmethod
    def from_config(cls, config: AppConfig) -> "Stage":
        """Build the stage and everything it needs (models, index handles)."""

    @abc.abstractmethod
    def run(self, ctx: SearchContext) -> SearchContext: ...

    def ready(self) -> bool:
        return True


def check_wiring(stages: list[type[Stage]]) -> None:
    available = {"request"}
    for stage in stages:
        missing = stage.consumes - available
        if missing:
            raise GraphError(f"stage {stage.name!r} consumes {sorted(missing)} but nothing before it produces them (available: {sorted(available)})")
        available |= stage.produces


def default_stages() -> list[type[Stage]]:
    from shopray.diversifier import Diversifier
    from shopray.parser import QueryParser
    from shopray.ranker import Ranker
    from shopray.retriever import Retriever

    return [QueryParser, Retriever, Ranker, Diversifier]


class Pipeline:
    """All stages in one process: for tests, evaluation and tuning."""

    def __init__(self, stages: list[Stage]):
        check_wiring([type(s) for s in stages])
        self.stages = stages

    @classmethod
    def from_config(cls, config: AppConfig) -> "Pipeline":
        return cls([stage.from_config(config) for stage in default_stages()])

    def search(self, request: SearchRequest) -> SearchResponse:
        ctx = SearchContext(request=request)
        timings: dict[str, float] = {}
        start = time.perf_counter()
        for stage in self.stages:
            t0 = time.perf_counter()
            ctx = stage.run(ctx)
            timings[stage.timing_key] = round((time.perf_counter() - t0) * 1000, 3)
        timings["total"] = round((time.perf_counter() - start) * 1000, 3)
        return ctx.response(timings)
