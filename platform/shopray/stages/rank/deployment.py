"""The Ranker replica pool: one replica holds one scorer and batches across requests.

Concurrent requests' (query, candidate) pairs go through ``@serve.batch`` into
shared forward passes. Replica count, CPUs, GPUs (fractions allowed) and
autoscaling come from the Serve config's ``deployments:`` entry for
``Ranker``; batch size and wait come from ``RankerConfig``. The same code runs
on CUDA in fp16 when the replica sees a GPU and on CPU otherwise.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from typing import Callable

import numpy as np
import ray
import torch
from ray import serve

from shopray.config import AppConfig
from shopray.domain import CandidateSet
from shopray.graph import SearchContext
from shopray.stages.rank.stage import Ranker


@serve.deployment
class RankerDeployment:
    def __init__(self, build: Callable[[AppConfig], Ranker], config: dict):
        app_config = AppConfig.model_validate(config)
        self.stage = build(app_config)
        cfg = app_config.ranker
        self._score.set_max_batch_size(cfg.batch_max_size)
        self._score.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)
        self.batch_sizes: Counter[int] = Counter()
        self.batch_metric = serve.metrics.Histogram(
            "shopray_ranker_batch_size",
            description="Requests scored together in one ranker forward pass.",
            boundaries=[1, 2, 4, 8, 16, 32, 64],
        )

    async def reconfigure(self, user_config: dict) -> None:
        """Serve's in-place update: ``user_config: {model: <alias, version or directory>}`` pins the model."""
        model = (user_config or {}).get("model")
        if model:
            await asyncio.to_thread(self.stage.retarget, str(model))

    async def run(self, ctx: SearchContext) -> SearchContext:
        return await self.stage.arun(ctx, self._score)

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
            raise RuntimeError("the rank stage is not ready")

    def info(self) -> dict:
        """Where this replica runs and how it has batched: for tests, benchmarks and operators."""
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
