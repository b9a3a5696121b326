"""Stage 3, rank, declared: its place in the graph, its fallback and its Serve defaults."""

from shopray.graph import SearchContext, ServeDefaults, StageSpec
from shopray.stages.rank.stage import Ranker


def retriever_order(ctx: SearchContext) -> SearchContext:
    return ctx


SPEC = StageSpec(
    key="rank",
    label="ranker",
    deployment="Ranker",
    consumes=frozenset({"request", "intent", "candidates"}),
    produces=frozenset({"candidates"}),
    build=Ranker.from_config,
    fallback=retriever_order,
    # max_ongoing_requests must exceed ranker.batch_max_size, or a replica could never fill a batch.
    serve=ServeDefaults(num_cpus=0.5, max_ongoing_requests=32, max_queued_requests=128),
    deployment_class="shopray.stages.rank.deployment:RankerDeployment",
)
