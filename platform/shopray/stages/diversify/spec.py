"""Stage 4, diversify, declared: its place in the graph, its fallback and its Serve defaults."""

from shopray.graph import SearchContext, ServeDefaults, StageSpec
from shopray.stages.diversify.stage import Diversifier


def ranked_order(ctx: SearchContext) -> SearchContext:
    if ctx.candidates is not None:
        ctx.candidates = ctx.candidates.take(range(min(ctx.request.k, len(ctx.candidates))))
    return ctx


SPEC = StageSpec(
    key="diversify",
    label="diversifier",
    deployment="Diversifier",
    consumes=frozenset({"request", "candidates"}),
    produces=frozenset({"candidates"}),
    build=Diversifier.from_config,
    fallback=ranked_order,
    serve=ServeDefaults(num_cpus=0.1, max_ongoing_requests=16, max_queued_requests=64),
)
