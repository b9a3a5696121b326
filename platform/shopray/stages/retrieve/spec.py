"""Stage 2, retrieve, declared: its place in the graph and its Serve defaults (no fallback: it is required)."""

from shopray.graph import ServeDefaults, StageSpec
from shopray.stages.retrieve.stage import Retriever

SPEC = StageSpec(
    key="retrieve",
    label="retriever",
    deployment="Retriever",
    consumes=frozenset({"request", "intent"}),
    produces=frozenset({"candidates", "facets"}),
    build=Retriever.from_config,
    fallback=None,  # nothing to show without candidates: a retriever failure is a 503
    serve=ServeDefaults(num_cpus=0.5, max_ongoing_requests=16, max_queued_requests=64),
)
