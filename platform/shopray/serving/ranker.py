"""The Ranker replica pool: one replica holds one scorer and batches across requests.

Concurrent requests' (query, candidate) pairs go through ``@serve.batch`` into
shared forward passes. Replica count, CPUs, GPUs (fractions allowed) and
autoscaling come from the Serve config's ``deployments:`` entry for
``Ranker``; batch size and wait come from ``RankerConfig``. The same code runs
on CUDA in fp16 when the replica sees a GPU and on CPU otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import Counter

import numpy as np
from ray import serve

from shopray.config import AppConfig
from shopray.models import CandidateSet
from shopray.pipeline import SearchContext, Stage
from shopray.ranker import ModelFollower

log = logging.getLogger("ray.serve")


# max_ongoing_requests must exceed batch_max_size or a replica could never fill a batch.
@serve.deployment(max_ongoing_requests=32, max_queued_requests=128)
class RankerDeployment:
    def __init__(self, stage_cls: type[Stage], config: dict):
        app_config = AppConfig.model_validate(config)
        self.stage = stage_cls.from_config(app_config)
        cfg = app_config.ranker
        self._score.set_max_batch_size(cfg.batch_max_size)
        self._score.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)
        self.batch_sizes: Counter[int] = Counter()
        self.batch_metric = serve.metrics.Histogram(
            "shopray_ranker_batch_size",
            description="Requests scored together in one ranker forward pass.",
            boundaries=[1, 2, 4, 8, 16, 32, 64],
        )
        # Promotion: the replica follows its model alias (see RankerConfig.refresh_s) and
        # takes a pinned reference from the Serve config's user_config (reconfigure).
        self.follower = ModelFollower(self.stage, app_config)
        if cfg.refresh_s > 0 and cfg.kind != "biencoder":
            threading.Thread(target=self._follow, args=(cfg.refresh_s,), name="ranker-model-follower", daemon=True).start()

    def _follow(self, every_s: float) -> None:
        while True:
            time.sleep(every_s)
            try:
                self.follower.check()
            except Exception:  # a broken new model must not take down a serving replica
                log.exception("ranker model refresh failed; still serving %s", self.stage.scorer.version)

    async def reconfigure(self, user_config: dict) -> None:
        """Serve's in-place update: ``user_config: {model: <alias, version or directory>}`` pins the model."""
        model = (user_config or {}).get("model")
        if model:
            await asyncio.to_thread(self.follower.set_ref, str(model))

    async def run(self, ctx: SearchContext) -> SearchContext:
        assert ctx.candidates is not None
        head = self.stage.head(ctx.candidates)
        if not len(head):
            return self.stage.run(ctx)
        scores, version = await self._score(self.stage.query_of(ctx), head)
        ctx = self.stage.run(ctx, head_scores=scores)
        ctx.versions["ranker"] = version  # the model that scored, even if a swap happened meanwhile
        return ctx

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005)
    async def _score(self, queries: list[str], heads: list[CandidateSet]) -> list[tuple[np.ndarray, str]]:
        self.batch_sizes[len(queries)] += 1
        self.batch_metric.observe(len(queries))
        scorer = self.stage.scorer  # one model for the whole batch, whatever a promotion does meanwhile
        # The forward pass runs off the event loop: requests keep arriving (and
        # queueing for the next batch) and health checks keep answering meanwhile.
        scores = await asyncio.to_thread(scorer.score_many, list(zip(queries, heads)))
        return [(s, scorer.version) for s in scores]

    def ready(self) -> bool:
        return self.stage.ready()

    def check_health(self) -> None:
        if not self.stage.ready():
            raise RuntimeError(f"{self.stage.name} is not ready")

    def info(self) -> dict:
        """Where this replica runs and how it has batched: for tests, benchmarks and operators."""
        import ray
        import torch

        scorer = self.stage.scorer
        return {
            "replica": serve.get_replica_context().replica_id.unique_id,
            "pid": os.getpid(),
            "scorer": scorer.version,
            "device": getattr(scorer, "device", "cpu"),
            "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "torch_cuda": torch.cuda.is_available(),
            "torch_threads": torch.get_num_threads(),
            "resources": ray.get_runtime_context().get_assigned_resources(),
            "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())},
        }


def ranker_pool_app(config: AppConfig, **options):
    """The Ranker pool alone, bound like build_app binds it: for benchmarks and pool tests.

    ``options`` are Serve deployment options (ray_actor_options, autoscaling_config, ...),
    what a Serve config's ``deployments:`` entry for Ranker would set.
    """
    from shopray.ranker import Ranker

    return RankerDeployment.options(name="Ranker", **options).bind(Ranker, config.model_dump(mode="json"))


def running_replicas(app: str, deployment: str = "Ranker") -> int:
    status = serve.status().applications.get(app)
    if status is None or deployment not in status.deployments:
        return 0
    return int(status.deployments[deployment].replica_states.get("RUNNING", 0))
