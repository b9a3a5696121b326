"""The Ranker replica pool on real Ray Serve: @serve.batch across requests, GPU reservation, autoscaling.

The pool needs a Ray cluster that declares GPUs, which the shared test session
does not, so this module runs itself as a script in a subprocess:
``ray.init(num_cpus=4, num_gpus=2)`` gives two logical GPUs. Replicas reserve
0.5 GPU each, so Ray must place them by GPU (at most 4 fit); torch sees no CUDA
there and the same code runs on CPU. The script prints what happened as JSON
and the tests assert on it.

    python tests/test_ranker_pool.py MODEL_DIR OUT.json   # what the fixture runs
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
TOP_N = 8
CLIENTS = 16
SCALING = {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 2, "upscale_delay_s": 1, "downscale_delay_s": 5}


# ---------------------------------------------------------------- the tests


def test_serve_configs_declare_the_gpu_pool():
    from ray.serve.schema import ServeDeploySchema

    from shopray.config import app_config_from_serve_file, load_serve_file

    for name in ("gpu.yaml", "local.yaml"):
        ServeDeploySchema.model_validate(load_serve_file(REPO / "deployments" / name))
    gpu = load_serve_file(REPO / "deployments" / "gpu.yaml")
    ranker = next(d for d in gpu["applications"][0]["deployments"] if d["name"] == "Ranker")
    assert 0.25 <= ranker["ray_actor_options"]["num_gpus"] <= 0.5
    assert ranker["autoscaling_config"]["min_replicas"] == 1 and ranker["autoscaling_config"]["max_replicas"] == 8
    assert ranker["max_ongoing_requests"] >= app_config_from_serve_file(REPO / "deployments" / "gpu.yaml").ranker.batch_max_size
    assert app_config_from_serve_file(REPO / "deployments" / "gpu.yaml").ranker.kind == "crossencoder"
    local = load_serve_file(REPO / "deployments" / "local.yaml")
    local_ranker = next(d for d in local["applications"][0]["deployments"] if d["name"] == "Ranker")
    assert "autoscaling_config" in local_ranker and "num_gpus" not in local_ranker.get("ray_actor_options", {})


@pytest.fixture(scope="module")
def pool_run(tmp_path_factory):
    from shopray.training.ranker.fit import init_cross_encoder

    tmp = tmp_path_factory.mktemp("pool")
    # Scheduling, batching and scaling do not depend on what the model learned: a fresh head will do.
    model = init_cross_encoder(tmp / "model", seed=0)
    out = tmp / "result.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_DEDUP_LOGS": "0"}
    proc = subprocess.run([sys.executable, __file__, str(model), str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text())


@pytest.mark.ray
def test_concurrent_requests_share_forward_passes(pool_run):
    burst = pool_run["burst"]
    sizes = {int(k): v for k, v in burst["batch_sizes"].items()}
    assert sum(k * v for k, v in sizes.items()) == CLIENTS  # every request went through the batch handler
    assert max(sizes) > 1, sizes  # and several went through one forward pass together
    assert burst["max_abs_score_diff"] < 1e-4  # batched answers equal the in-process Ranker's
    assert burst["same_order"] == CLIENTS


@pytest.mark.ray
def test_replicas_reserve_gpus_and_fall_back_to_cpu(pool_run):
    replicas = pool_run["replicas"]
    assert len(replicas) >= 3
    for info in replicas:
        assert info["resources"].get("GPU") == 0.5 and info["gpu_ids"], info
        assert info["cuda_visible_devices"] not in (None, "")
        assert info["device"] == "cpu" and not info["torch_cuda"]  # no CUDA here: same code, CPU path
    # Each replica holds half a GPU; one still starting may already hold its half.
    in_use = 2.0 - pool_run["gpus_free_at_peak"]
    held = pool_run["replicas_at_peak"]
    assert (in_use / 0.5).is_integer() and 0.5 * held["running"] <= in_use <= 0.5 * held["all"], (in_use, held)


@pytest.mark.ray
def test_pool_scales_up_under_load_and_back_down(pool_run):
    counts = [n for _, n, _ in pool_run["timeline"]]
    assert counts[0] == 1
    assert pool_run["peak_replicas"] >= 3
    assert pool_run["final_replicas"] == 1
    assert pool_run["errors"] == 0


# ------------------------------------------------- the subprocess (run as a script)


def _contexts(n_products: int = 240):
    import numpy as np

    from shopray.api import SearchRequest
    from shopray.catalog.demo import generate_demo_catalog
    from shopray.domain import CandidateSet, Intent
    from shopray.graph import SearchContext

    products = generate_demo_catalog(n=n_products, seed=5)
    contexts = []
    for i in range(CLIENTS):
        chosen = products[i * TOP_N : (i + 1) * TOP_N]
        query = f"{chosen[0].color or ''} {chosen[0].leaf_category}".strip()
        cands = CandidateSet(
            ids=[p.product_id for p in chosen],
            payloads=[p.payload() for p in chosen],
            scores=np.arange(TOP_N, 0, -1.0),
            embeddings=np.zeros((TOP_N, 384), np.float32),
        )
        contexts.append(SearchContext(request=SearchRequest(query=query), intent=Intent(keywords=query), candidates=cands))
    return contexts


async def _drive(handle, contexts, app: str, model_dir: str) -> dict:
    import asyncio
    import copy
    import time

    import ray
    from ray import serve

    from shopray.serving.app import running_replicas
    from shopray.stages.rank.stage import Ranker

    # 1. A burst on the single replica: batched results must equal the in-process stage's.
    ranker = Ranker.from_config(_config(model_dir))
    expected = [ranker.run(copy.deepcopy(c)) for c in contexts]
    got = await asyncio.gather(*(handle.run.remote(c) for c in contexts))
    diffs, same = [], 0
    for e, g in zip(expected, got):
        es, gs = dict(zip(e.candidates.ids, e.candidates.scores)), dict(zip(g.candidates.ids, g.candidates.scores))
        diffs.append(max(abs(es[k] - gs[k]) for k in es))
        # Equal order, or only near-ties swapped: each position holds an item of the same expected score.
        same += all(abs(es[a] - es[b]) < 1e-4 for a, b in zip(e.candidates.ids, g.candidates.ids))
    burst = {"batch_sizes": (await handle.info.remote())["batch_sizes"], "max_abs_score_diff": float(max(diffs)), "same_order": int(same)}

    # 2. Closed-loop load until the pool has grown, then 3. quiet until it has shrunk.
    t0, stop, errors, timeline = time.monotonic(), asyncio.Event(), 0, []

    async def client(ctx):
        nonlocal errors
        while not stop.is_set():
            try:
                await handle.run.remote(ctx)
            except Exception:  # noqa: BLE001 - counted and asserted on
                errors += 1

    def sample(phase: str) -> int:
        n = running_replicas(app, "Ranker")
        timeline.append((round(time.monotonic() - t0, 1), n, phase))
        return n

    sample("idle")
    clients = [asyncio.create_task(client(c)) for c in contexts]
    while time.monotonic() - t0 < 150 and sample("load") < 3:
        await asyncio.sleep(0.5)
    for _ in range(6):  # hold the load a little: the count may still be rising
        await asyncio.sleep(0.5)
        sample("load")
    peak = max(n for _, n, _ in timeline)
    gpus_free = ray.available_resources().get("GPU", 0.0)
    states = serve.status().applications[app].deployments["Ranker"].replica_states
    held = {"running": states.get("RUNNING", 0), "all": sum(n for s, n in states.items() if s != "STOPPING")}
    infos = await asyncio.gather(*(handle.info.remote() for _ in range(40)))
    stop.set()
    await asyncio.gather(*clients)
    quiet = time.monotonic()
    while time.monotonic() - quiet < 120 and sample("quiet") > 1:
        await asyncio.sleep(0.5)
    for _ in range(4):
        await asyncio.sleep(0.5)
        sample("quiet")
    replicas = list({i["replica"]: i for i in infos}.values())
    return {
        "burst": burst, "timeline": timeline, "peak_replicas": peak, "final_replicas": timeline[-1][1],
        "gpus_free_at_peak": gpus_free, "replicas_at_peak": held, "replicas": replicas, "errors": errors,
    }  # fmt: skip


def _config(model_dir: str):
    from shopray.config import AppConfig, EmbeddingConfig, RankerConfig

    # fp32: int8's activation scales are set per forward pass, so its scores move a little with the batch.
    ranker = RankerConfig(kind="crossencoder", model=model_dir, precision="fp32", top_n=TOP_N, max_length=32, num_threads=1, batch_max_size=8, batch_wait_timeout_s=0.05)
    return AppConfig(embedding=EmbeddingConfig(device="cpu"), ranker=ranker)


def _main(model_dir: str, out: str) -> None:
    import asyncio
    import tempfile

    import ray
    from ray import serve

    from shopray.pipeline import RANK
    from shopray.serving.app import bind_stage

    ray.init(num_cpus=4, num_gpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=tempfile.mkdtemp(prefix="ray-pool-"))
    serve.start(proxy_location="Disabled")
    options = {"ray_actor_options": {"num_cpus": 0.25, "num_gpus": 0.5}, "max_ongoing_requests": 16, "autoscaling_config": {**SCALING, "initial_replicas": 1}}
    app = bind_stage(RANK, _config(model_dir), options)
    handle = serve.run(app, name="ranker-pool", route_prefix=None)
    try:
        result = asyncio.run(_drive(handle, _contexts(), "ranker-pool", model_dir))
    finally:
        serve.shutdown()
        ray.shutdown()
    Path(out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2])
