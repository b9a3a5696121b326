"""The sweep file: what an ML engineer edits (``tuning/*.yaml``), validated before Ray starts.

Every field is documented and unknown fields are errors, so a typo fails at
load time with the field's path instead of silently running the wrong sweep.
Search-space keys are dotted paths into the trial's own settings (``lr``,
``app.retriever.candidates``); ``fixed`` holds the settings no trial varies.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shopray.config import AppConfig, default_home
from shopray.tuning.dotted import apply_dotted, flatten, lookup
from shopray.tuning.trials import trial_kind

Trainable = Literal["ranker", "parser", "pipeline"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Param(_Strict):
    """One searched hyper-parameter."""

    type: Literal["loguniform", "uniform", "quniform", "randint", "choice"] = Field(description="Distribution: loguniform/uniform/quniform over [low, high], randint over [low, high), or choice among values.")
    low: float | None = Field(default=None, description="Lower bound (not for choice).")
    high: float | None = Field(default=None, description="Upper bound (not for choice); exclusive for randint.")
    q: float | None = Field(default=None, gt=0, description="Rounding step for quniform.")
    values: list[Any] | None = Field(default=None, min_length=1, description="Candidates for choice.")

    @model_validator(mode="after")
    def _shape(self) -> "Param":
        if self.type == "choice":
            if not self.values or self.low is not None or self.high is not None:
                raise ValueError("choice takes `values` only")
        else:
            if self.low is None or self.high is None or self.values is not None:
                raise ValueError(f"{self.type} takes `low` and `high`")
            if not self.low < self.high:
                raise ValueError(f"low ({self.low}) must be below high ({self.high})")
            if self.type == "loguniform" and self.low <= 0:
                raise ValueError("loguniform needs low > 0")
            if self.type == "quniform" and self.q is None:
                raise ValueError("quniform needs q")
        return self

    def example(self) -> Any:
        """A value inside the space, used to validate the trial settings it produces."""
        if self.type == "choice":
            return self.values[0]
        return int(self.low) if self.type == "randint" else self.low

    def contains(self, value: Any) -> bool:
        if self.type == "choice":
            return value in self.values
        try:
            return self.low <= float(value) <= self.high
        except (TypeError, ValueError):
            return False


class Resources(_Strict):
    cpu: float = Field(default=1.0, gt=0, description="Logical CPUs one trial reserves (torch threads = max(1, floor(cpu))).")
    gpu: float = Field(default=0.0, ge=0, description="Logical GPUs one trial reserves; fractions share a GPU.")


class SchedulerSpec(_Strict):
    type: Literal["asha", "fifo"] = Field(default="asha", description="asha: stop trials that trail at each rung; fifo: run every trial to the end.")
    max_t: int = Field(default=10, ge=1, description="ASHA: most reports (evaluation steps) a trial makes; the trial's own plan should match it.")
    grace_period: int = Field(default=1, ge=1, description="ASHA: reports every trial makes before it can be stopped.")
    reduction_factor: float = Field(default=2.0, gt=1, description="ASHA: 1/reduction_factor of trials go on at each rung.")

    @model_validator(mode="after")
    def _rungs(self) -> "SchedulerSpec":
        if self.grace_period > self.max_t:
            raise ValueError(f"grace_period ({self.grace_period}) exceeds max_t ({self.max_t})")
        return self


class SearchSpec(_Strict):
    algorithm: Literal["random", "optuna"] = Field(default="random", description="random: independent samples; optuna: Optuna's TPE sampler (OptunaSearch), which learns from finished trials.")
    seed: int = Field(default=0, description="Sampler seed: the same file proposes the same trials.")
    start_from_defaults: bool = Field(default=False, description="Make the first trial the untuned settings (each key's value in `fixed` or its default), so the table shows the baseline.")


class FailureSpec(_Strict):
    max_failures: int = Field(default=1, ge=-1, description="Retries of a crashing trial, from its last checkpoint (-1: forever). FailureConfig(max_failures).")


class CheckpointSpec(_Strict):
    num_to_keep: int = Field(default=2, ge=1, description="Checkpoints kept per trial: the best by the metric (the latest is always kept too, for resuming).")


class RegisterSpec(_Strict):
    alias: Literal["candidate", "none"] = Field(default="candidate", description="Alias the winning model gets in the registry (promotion to production is `shopray promote`).")
    full_eval: bool = Field(default=True, description="Score the winner with the training command's validation protocol before registering, so its card compares with production's card (ranker: NDCG@10 on all validation queries; parser: macro F1 through vLLM).")


class SweepSpec(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="Sweep name: runs are stored under <storage>/<name>/.")
    description: str = Field(default="", description="What the sweep is for.")
    trainable: Trainable = Field(description="What a trial runs: ranker (cross-encoder fine-tuning), parser (query-parser LM training) or pipeline (in-process graph evaluation on judgments).")
    metric: str | None = Field(default=None, description="Reported metric to optimise; default: the trainable's primary metric.")
    mode: Literal["max", "min"] = Field(default="max", description="Whether the metric is better high or low.")
    num_samples: int = Field(default=8, ge=1, description="Trials to run.")
    max_concurrent_trials: int = Field(default=2, ge=1, description="Trials running at once; with resources_per_trial, the most CPUs the sweep takes from the cluster.")
    resources_per_trial: Resources = Field(default_factory=Resources, description="What each trial reserves (tune.with_resources).")
    serve_headroom_cpus: float = Field(default=0.5, ge=0, description="Free CPUs the sweep leaves on a shared cluster for Serve to scale into; max_concurrent_trials is lowered to fit.")
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec, description="Trial scheduler.")
    search: SearchSpec = Field(default_factory=SearchSpec, description="Search algorithm.")
    failure: FailureSpec = Field(default_factory=FailureSpec, description="Retries of crashing trials.")
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec, description="Checkpoint retention.")
    storage: Path = Field(default_factory=lambda: default_home() / "tune", description="Root of sweep runs (results, checkpoints, tables, plots); default $SHOPRAY_HOME/tune.")
    winner: RegisterSpec = Field(default_factory=RegisterSpec, description="What happens to the winning model (ranker and parser sweeps).")
    fixed: dict[str, Any] = Field(default_factory=dict, description="Trial settings no trial varies (the trainable's fields; see `shopray tune --describe TRAINABLE`).")
    search_space: dict[str, Param] = Field(min_length=1, description="Searched settings: dotted paths into the trial settings -> distribution.")

    @field_validator("storage", mode="after")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return Path(os.path.expandvars(str(v))).expanduser().resolve()

    @model_validator(mode="after")
    def _trial_settings(self) -> "SweepSpec":
        kind = trial_kind(self.trainable)
        self.metric = self.metric or kind.metric
        if self.metric not in kind.metrics:
            raise ValueError(f"metric {self.metric!r} is not reported by {self.trainable} trials; they report {sorted(kind.metrics)}")
        for key in self.search_space:
            if key in flatten(self.fixed):
                raise ValueError(f"{key!r} is both fixed and searched")
        # Every trial's settings must validate: check the fixed part with one sample of the space.
        sample = {k: p.example() for k, p in self.search_space.items()}
        try:
            kind.settings(self.fixed, sample)
        except (ValidationError, KeyError, TypeError) as exc:
            raise ValueError(f"{self.trainable} trial settings from `fixed` + `search_space` are invalid: {exc}") from exc
        return self

    def defaults_point(self) -> dict[str, Any]:
        """Each searched key's untuned value, where it lies inside the declared space."""
        settings = trial_kind(self.trainable).settings(self.fixed, {}).model_dump(mode="json")
        if "app" in settings:  # pipeline: unset keys take AppConfig's defaults
            settings["app"] = AppConfig.model_validate(settings["app"]).model_dump(mode="json")
        point = {}
        for key, param in self.search_space.items():
            value = lookup(settings, key)
            if param.contains(value):
                point[key] = value
        return point


def load_spec(path: str | Path, overrides: dict[str, Any] | None = None) -> SweepSpec:
    """Read and validate a sweep file; ``overrides`` are dotted top-level settings (tests, --set)."""
    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a sweep file is a mapping")
    if overrides:
        data = apply_dotted(data, overrides)
    return SweepSpec.model_validate(data)
