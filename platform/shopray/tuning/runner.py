"""Running a sweep on Ray Tune: connect, size it beside Serve, fit or restore, write its outputs.

How a sweep leaves Serve its replicas: every trial reserves
``resources_per_trial`` (``tune.with_resources``) from the same logical pool the
Serve replicas already hold theirs from, so a trial can never take a replica's
CPUs; and at most ``max_concurrent_trials`` run at once, lowered at start so that
``serve_headroom_cpus`` stay free for Serve's autoscaler. Trials set torch to
``floor(cpu)`` threads, so a trial also uses no more cores than it reserved.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import ray
import yaml
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search.basic_variant import BasicVariantGenerator
from ray.tune.search.optuna import OptunaSearch

from shopray.tuning.report import write_outputs
from shopray.tuning.space import param_space
from shopray.tuning.spec import SweepSpec
from shopray.tuning.trials import trial_kind
from shopray.tuning.winner import register_winner

log = logging.getLogger("shopray.tuning")
SPEC_FILE = "sweep.yaml"


@dataclass
class SweepRun:
    spec: SweepSpec
    path: Path
    results: object  # ray.tune.ResultGrid
    interrupted: bool
    wall_s: float
    resumed: bool
    outputs: dict[str, str] = field(default_factory=dict)
    registered: dict | None = None


def connect(address: str | None, num_cpus: int | None = None) -> bool:
    """Join the cluster named by ``address`` (or $RAY_ADDRESS); else start a local one.

    Never ``address="auto"``: attaching to whatever Ray runs on the machine could
    put trials on someone else's cluster. A Ray already initialised in this process is used as is.
    Returns whether the cluster may be shared (with Serve): False only for one started here.
    """
    if ray.is_initialized():
        return True
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        ray.init(address=address, log_to_driver=False)
        return True
    ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False)
    return False


def concurrent_trials(spec: SweepSpec, shared: bool = True) -> int:
    """max_concurrent_trials, lowered so that serve_headroom_cpus stay free on a shared cluster."""
    free = ray.available_resources().get("CPU", 0.0)
    headroom = spec.serve_headroom_cpus if shared else 0.0
    fits = math.floor((free - headroom) / spec.resources_per_trial.cpu + 1e-9)
    if fits < 1:
        raise RuntimeError(
            f"the cluster has {free:g} free CPUs: no room for one trial of {spec.resources_per_trial.cpu:g} CPUs "
            f"while leaving serve_headroom_cpus={headroom:g} for Serve"
        )
    if fits < spec.max_concurrent_trials:
        log.warning("max_concurrent_trials lowered from %d to %d to leave %g CPUs for Serve", spec.max_concurrent_trials, fits, spec.serve_headroom_cpus)
    return min(spec.max_concurrent_trials, fits)


def trainable(spec: SweepSpec):
    fn = trial_kind(spec.trainable).load()
    wrapped = tune.with_parameters(fn, fixed=spec.fixed, cpu=spec.resources_per_trial.cpu)
    return tune.with_resources(wrapped, {"cpu": spec.resources_per_trial.cpu, "gpu": spec.resources_per_trial.gpu})


def _scheduler(spec: SweepSpec):
    s = spec.scheduler
    if s.type == "fifo":
        return FIFOScheduler()
    return ASHAScheduler(time_attr="training_iteration", max_t=s.max_t, grace_period=s.grace_period, reduction_factor=s.reduction_factor)


def _search(spec: SweepSpec, concurrency: int):
    points = [spec.defaults_point()] if spec.search.start_from_defaults else None
    points = [p for p in points or [] if len(p) == len(spec.search_space)] or None
    if spec.search.algorithm == "optuna":
        return OptunaSearch(seed=spec.search.seed, points_to_evaluate=points)
    # A generator ignores TuneConfig.max_concurrent_trials: it takes the cap itself.
    return BasicVariantGenerator(points_to_evaluate=points, random_state=spec.search.seed, max_concurrent=concurrency)


def run_dirs(spec: SweepSpec) -> list[Path]:
    root = spec.storage / spec.name
    return sorted(p for p in root.glob("run-*") if (p / SPEC_FILE).exists()) if root.is_dir() else []


def _statuses(results) -> dict[str, str]:
    trials = getattr(getattr(results, "_experiment_analysis", None), "trials", None) or []
    return {t.trial_id: str(t.status) for t in trials}


def run_sweep(spec: SweepSpec, *, resume: bool = False, run: str | None = None, address: str | None = None, num_cpus: int | None = None, callbacks: list | None = None) -> SweepRun:
    shared = connect(address, num_cpus)
    t0 = time.monotonic()
    if resume:
        candidates = [d for d in run_dirs(spec) if run is None or d.name == run]
        if not candidates:
            raise FileNotFoundError(f"no run of sweep {spec.name!r} to resume under {spec.storage / spec.name}" + (f" named {run!r}" if run else ""))
        path = candidates[-1]
        saved = SweepSpec.model_validate(yaml.safe_load((path / SPEC_FILE).read_text()))
        if saved.model_dump(mode="json") != spec.model_dump(mode="json"):
            log.warning("the sweep file changed since %s started; resuming with the settings it started with", path.name)
        spec = saved
        tuner = tune.Tuner.restore(str(path), trainable=trainable(spec), resume_unfinished=True, resume_errored=True)
    else:
        name = run or dt.datetime.now(dt.timezone.utc).strftime("run-%Y%m%d-%H%M%S")
        path = spec.storage / spec.name / name
        path.mkdir(parents=True, exist_ok=True)
        (path / SPEC_FILE).write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
        concurrency = concurrent_trials(spec, shared)
        tuner = tune.Tuner(
            trainable(spec),
            param_space=param_space(spec.search_space),
            tune_config=tune.TuneConfig(
                metric=spec.metric, mode=spec.mode, num_samples=spec.num_samples, max_concurrent_trials=concurrency,
                scheduler=_scheduler(spec), search_alg=_search(spec, concurrency),
            ),
            run_config=tune.RunConfig(
                name=name,
                storage_path=str(spec.storage / spec.name),
                failure_config=tune.FailureConfig(max_failures=spec.failure.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=spec.checkpoint.num_to_keep, checkpoint_score_attribute=spec.metric, checkpoint_score_order=spec.mode),
                callbacks=callbacks,
                verbose=1,
            ),
        )
    results = tuner.fit()
    statuses = _statuses(results)
    # Interrupted: a trial is unfinished, or the searcher had not yet proposed them all.
    interrupted = len(statuses) < spec.num_samples or any(s not in ("TERMINATED", "ERROR") for s in statuses.values())
    out = SweepRun(spec=spec, path=path, results=results, interrupted=interrupted, wall_s=time.monotonic() - t0, resumed=resume)
    _log_wall(path, out)
    out.outputs = write_outputs(spec, path, results, statuses)
    if not interrupted and spec.trainable in ("ranker", "parser") and spec.winner.alias != "none" and results.num_terminated:
        out.registered = register_winner(spec, path, results)
        (path / "registered.json").write_text(json.dumps(out.registered, indent=2))
    return out


def _log_wall(path: Path, out: SweepRun) -> None:
    """Each fit() appends its wall time: an interrupted and resumed run shows both parts."""
    with (path / "sessions.jsonl").open("a") as fh:
        fh.write(json.dumps({"ended": dt.datetime.now(dt.timezone.utc).isoformat(), "resumed": out.resumed, "interrupted": out.interrupted, "wall_s": round(out.wall_s, 1)}) + "\n")
