"""The search graph's machinery: what flows between stages, how a stage is declared, and the one walk over them.

``SearchContext`` is what flows: one request, its intent, its candidates, and
what happened on the way (``degraded``, ``versions``).

A ``StageSpec`` declares a stage once; the ingress, the budgets, ``bind_app``
and the in-process ``Pipeline`` all read it. It names the stage three ways,
each for one audience: ``key`` is what responses time (``timings_ms``) and
metrics tag, ``label`` is its ``AppConfig`` section and the prefix of its
``degraded`` labels, and ``deployment`` is the Serve deployment a Serve
config's ``deployments:`` list overrides.

``run`` and ``arun`` are the one walk over the stages, synchronous and
asynchronous. A runner takes a ``call(spec, ctx)``: the in-process
``Pipeline`` calls the stage object, the ingress calls its Serve handle under
the stage's budget. Everything else is the walk's: per-stage timings, and what
a failed soft stage leaves (its spec's ``fallback`` and a ``degraded`` label).
A call signals a failure by raising ``StageFailed``; any other exception
propagates unchanged (in process, a bug should fail loudly). Nothing here
imports Ray.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Protocol, Sequence, runtime_checkable

from shopray.api import Facets, SearchRequest, SearchResponse, SearchResult
from shopray.config import AppConfig
from shopray.domain import CandidateSet, Intent


@dataclass
class SearchContext:
    request: SearchRequest
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    intent: Intent | None = None
    candidates: CandidateSet | None = None
    facets: Facets | None = None
    degraded: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    def response(self, timings_ms: dict[str, float]) -> SearchResponse:
        candidates = self.candidates or CandidateSet.empty()
        tiers = candidates.tiers
        results = [
            SearchResult(**{**payload, "product_id": pid, "score": round(float(score), 6), "meets": tiers.meets[i] if tiers and tiers.stated else None,
                            "explanation": candidates.explanations[i] if candidates.explanations is not None else None})
            for i, (pid, payload, score) in enumerate(zip(candidates.ids, candidates.payloads, candidates.scores))
        ]
        return SearchResponse(
            request_id=self.request_id,
            intent=self.intent or Intent(keywords=self.request.query, source="none"),
            results=results,
            stated=list(tiers.stated) if tiers else [],
            relaxed=tiers.relaxed() if tiers else [],
            degraded=self.degraded,
            timings_ms=timings_ms,
            versions=self.versions,
            facets=self.facets,
            searched_as=candidates.query_text if candidates.repaired else None,
        )


@runtime_checkable
class Stage(Protocol):
    """One step of the graph. A stage may also define ``async arun(ctx)``, which its deployment then awaits."""

    def run(self, ctx: SearchContext) -> SearchContext: ...

    def ready(self) -> bool: ...


class GraphError(ValueError):
    """The stages do not fit together."""


@dataclass(frozen=True)
class ServeDefaults:
    """A stage's Serve deployment options when the Serve config's ``deployments:`` entry does not set them."""

    num_cpus: float
    max_ongoing_requests: int
    max_queued_requests: int = -1

    def options(self) -> dict:
        return {
            "ray_actor_options": {"num_cpus": self.num_cpus},
            "max_ongoing_requests": self.max_ongoing_requests,
            "max_queued_requests": self.max_queued_requests,
        }


@dataclass(frozen=True)
class StageSpec:
    key: str
    label: str
    deployment: str
    consumes: frozenset[str]
    produces: frozenset[str]
    build: Callable[[AppConfig], Stage]
    # What a request keeps when the stage fails or runs past its budget; None: the stage is required and its failure is a 503.
    fallback: Callable[[SearchContext], SearchContext] | None
    serve: ServeDefaults
    # "module:Class" of a stage-specific Serve deployment, imported only by the serving layer; None: the generic one.
    deployment_class: str | None = None

    @property
    def soft(self) -> bool:
        return self.fallback is not None

    def budget_s(self, config: AppConfig) -> float:
        """The stage's budget from its AppConfig section (the section is named by ``label``)."""
        return getattr(config, self.label).budget_ms / 1000


def check_wiring(specs: list[StageSpec]) -> None:
    """Every stage's inputs are produced before it runs."""
    available = {"request"}
    for spec in specs:
        missing = spec.consumes - available
        if missing:
            raise GraphError(f"stage {spec.deployment!r} consumes {sorted(missing)} but nothing before it produces them (available: {sorted(available)})")
        available |= spec.produces


class StageFailed(Exception):
    """A stage did not answer: ``reason`` is timeout, overloaded or unavailable."""

    def __init__(self, spec: StageSpec, reason: str):
        super().__init__(f"{spec.key}: {reason}")
        self.spec, self.reason = spec, reason

    @property
    def label(self) -> str:
        return f"{self.spec.label}_{self.reason}"


# Called after each stage: (spec, milliseconds, context after it, the failure if it failed).
Observer = Callable[[StageSpec, float, SearchContext, "StageFailed | None"], None]


@dataclass
class Outcome:
    ctx: SearchContext
    timings_ms: dict[str, float]

    def response(self) -> SearchResponse:
        return self.ctx.response(self.timings_ms)


class _Walk:
    def __init__(self, ctx: SearchContext, observe: Observer | None):
        self.ctx, self.observe = ctx, observe
        self.timings: dict[str, float] = {}
        self.started = time.perf_counter()

    def answered(self, spec: StageSpec, ctx: SearchContext, t0: float) -> None:
        self.ctx = ctx
        self._timed(spec, t0, None)

    def failed(self, spec: StageSpec, failure: StageFailed, t0: float) -> None:
        """A soft stage's fallback answers for it; a required stage's failure ends the request."""
        if spec.fallback is None:
            self._timed(spec, t0, failure)
            raise failure
        self.ctx.degraded.append(failure.label)
        self.ctx = spec.fallback(self.ctx)
        self._timed(spec, t0, failure)

    def _timed(self, spec: StageSpec, t0: float, failure: StageFailed | None) -> None:
        self.timings[spec.key] = round((time.perf_counter() - t0) * 1000, 3)
        if self.observe is not None:
            self.observe(spec, self.timings[spec.key], self.ctx, failure)

    def finish(self) -> Outcome:
        self.timings["total"] = round((time.perf_counter() - self.started) * 1000, 3)
        return Outcome(self.ctx, self.timings)


def run(specs: Sequence[StageSpec], ctx: SearchContext, call: Callable[[StageSpec, SearchContext], SearchContext], observe: Observer | None = None) -> Outcome:
    walk = _Walk(ctx, observe)
    for spec in specs:
        t0 = time.perf_counter()
        try:
            walk.answered(spec, call(spec, walk.ctx), t0)
        except StageFailed as failure:
            walk.failed(spec, failure, t0)
    return walk.finish()


async def arun(specs: Sequence[StageSpec], ctx: SearchContext, call: Callable[[StageSpec, SearchContext], Awaitable[SearchContext]], observe: Observer | None = None) -> Outcome:
    walk = _Walk(ctx, observe)
    for spec in specs:
        t0 = time.perf_counter()
        try:
            walk.answered(spec, await call(spec, walk.ctx), t0)
        except StageFailed as failure:
            walk.failed(spec, failure, t0)
    return walk.finish()
