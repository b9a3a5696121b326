"""The catalog writer's own process, beside the ingress.

Checking and appending a batch of 1,000 changes holds a Python interpreter for
about 0.1 s (10,000: about a second); in the ingress's interpreter that time
would be added to every search waiting beside it. One actor per ingress
replica, on its node (the feed is a file there), writes its batches in order.
"""

from __future__ import annotations

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from shopray.config import AppConfig
from shopray.stages.retrieve.changes import Applied, CatalogWriter, ChangeRejected, FeedMismatch, parse_change
from shopray.stages.retrieve.index.base import background_priority


class CatalogWriterProcess:
    def __init__(self, config: AppConfig):
        self.config = config
        self._writer: CatalogWriter | None = None  # made on the first batch: the index may be published after start-up

    def apply(self, changes: list[dict]) -> Applied | ChangeRejected | FeedMismatch:
        """Checks and appends one batch, all or nothing; a rejection is returned, naming its line."""
        background_priority()
        try:
            parsed = [parse_change(change, line) for line, change in enumerate(changes, 1)]
            if self._writer is None:
                self._writer = CatalogWriter.from_config(self.config)
            return self._writer.apply(parsed)
        except (ChangeRejected, FeedMismatch) as exc:
            return exc


def start_catalog_writer(config: AppConfig) -> ray.actor.ActorHandle:
    """The writer's actor, on this node; restarted if it dies (a batch it was writing is rolled back by the feed)."""
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    actor = ray.remote(CatalogWriterProcess).options(num_cpus=0, max_restarts=-1, scheduling_strategy=here)
    return actor.remote(config)
