"""Stage 1, parse, declared: its place in the graph, its fallback and its Serve defaults."""

from shopray.domain import Intent
from shopray.graph import SearchContext, ServeDefaults, StageSpec
from shopray.stages.parse.stage import ParseStage


def keywords_only(ctx: SearchContext) -> SearchContext:
    ctx.intent = Intent(keywords=ctx.request.query, source="none")
    return ctx


SPEC = StageSpec(
    key="parse",
    label="parser",
    deployment="QueryParser",
    consumes=frozenset({"request"}),
    produces=frozenset({"intent"}),
    build=ParseStage.from_config,
    fallback=keywords_only,
    # Concurrent parses are what vLLM batches into shared decoding steps.
    serve=ServeDefaults(num_cpus=0.1, max_ongoing_requests=64),
    deployment_class="shopray.stages.parse.deployment:ParserDeployment",
)
