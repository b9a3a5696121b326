"""What each trainable accepts (its settings, validated like the sweep file) and reports.

Settings models are plain pydantic so a sweep file is checked without torch
or Ray; the trial functions live in ``{ranker,parser,pipeline}_trial.py``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shopray.config import AppConfig
from shopray.tuning.dotted import apply_dotted


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RankerTrialSettings(_Strict):
    """One cross-encoder fine-tuning run (shopray.training.ranker.train.Fit), reporting every `eval_every` steps."""

    lr: float = Field(default=5e-5, gt=0, description="Peak AdamW learning rate.")
    epochs: float = Field(default=1.0, gt=0, description="Passes over the training pairs (max_steps caps it).")
    max_steps: int | None = Field(default=300, ge=1, description="Most optimizer steps.")
    batch_size: int = Field(default=32, ge=1, description="Pairs per step.")
    warmup: float = Field(default=0.06, ge=0, lt=1, description="Fraction of steps with linear learning-rate warm-up.")
    max_length: int = Field(default=48, ge=8, le=512, description="Tokens of a query+title pair the model reads.")
    listwise: float = Field(default=0.0, ge=0, description="Weight of the per-query listwise softmax loss added to the pointwise one (0: pointwise only).")
    eval_every: int = Field(default=50, ge=1, description="Steps between validation reports (one Tune iteration each).")
    homedepot: bool | None = Field(default=None, description="Train on the Home Depot judgments too: None uses them when ../shared/data/homedepot exists.")
    max_train_queries: int | None = Field(default=None, ge=1, description="Subsample Home Depot training queries (smaller, faster sweeps).")
    synthetic_queries: int = Field(default=1500, ge=0, description="Synthetic demo-catalog queries (about 6 pairs each).")
    negatives: int = Field(default=1, ge=0, description="Random catalog negatives per Home Depot training query.")
    val_queries: int | None = Field(default=300, ge=1, description="Validation queries scored at each report (sampled with the seed); None: all.")
    bf16: bool | None = Field(default=None, description="bf16 autocast for the training forward/backward on CPU; None: where the cores multiply bf16 natively (AMX, AVX512-BF16), else fp32.")
    seed: int = Field(default=0, description="Seed for data, head init and batch order.")


class ParserTrialSettings(_Strict):
    """One query-parser training run (shopray.training.parser.train), reporting held-out field F1 every `eval_every` steps."""

    model_size: Literal["xs", "s", "m"] = Field(default="s", description="Architecture of the from-scratch Qwen2 parser: xs (96 wide, 2 layers), s (192, 3; the shipped one), m (256, 4).")
    lr: float = Field(default=3e-3, gt=0, description="Peak AdamW learning rate.")
    steps: int = Field(default=1200, ge=1, description="Optimizer steps.")
    batch_size: int = Field(default=64, ge=1, description="Examples per step.")
    warmup: int = Field(default=60, ge=1, description="Warm-up steps.")
    eval_every: int = Field(default=200, ge=1, description="Steps between held-out reports (one Tune iteration each).")
    examples: int = Field(default=30000, ge=10, description="Synthetic training queries.")
    heldout: int = Field(default=300, ge=10, description="Held-out queries (other templates, other seed) scored at each report.")
    catalog: str = Field(default="demo", description="Catalog file (JSONL, CSV, Parquet) or 'demo'.")
    demo_size: int = Field(default=24000, ge=50, description="Products in the generated demo catalog (catalog: demo).")
    demo_seed: int | None = Field(default=None, description="Seed of the generated demo catalog; None: the demo catalog's own seed.")
    vocab_size: int = Field(default=4096, ge=256, description="BPE merges budget.")
    seed: int = Field(default=0, description="Seed for data and init.")




class JudgmentsSpec(_Strict):
    source: Literal["homedepot", "synthetic", "sessions", "csv"] = Field(
        default="synthetic",
        description="homedepot: the dev judgments in ../shared/data/homedepot (needs the 'homedepot' index); synthetic: graded queries generated from "
        "the demo catalog; sessions: synthetic shoppers over the indexed catalog (shopray.events.synthetic), each search with its session's clicks "
        "and the shoppers' events as popularity; csv: `path`.",
    )
    signal: bool = Field(default=True, description="sessions: whether the shoppers' clicks and events follow the same taste as the grades; false measures "
                         "what the behaviour features cost when they carry no information.")
    path: Path | None = Field(default=None, description="CSV with query,product_id,relevance (source: csv).")
    queries: int = Field(default=200, ge=1, description="Judged queries evaluated per trial (sampled with `seed`).")
    split: Literal["all", "train", "val"] = Field(
        default="val",
        description="Home Depot: 'val' keeps the validation queries every `shopray train` holds out; 'train' the others, so settings "
        "tuned on them can be scored on 'val' afterwards (benchmarks/relevance.py).",
    )
    seed: int = Field(default=0, description="Sampling seed; for synthetic judgments also the demo catalog's seed, which must be the indexed catalog's.")
    catalog_size: int = Field(default=24000, ge=10, description="Synthetic: size of the demo catalog the index holds.")

    @model_validator(mode="after")
    def _path(self) -> "JudgmentsSpec":
        if self.source == "csv" and self.path is None:
            raise ValueError("source csv needs path")
        return self


class PipelineTrialSettings(_Strict):
    """The four-stage graph in process (shopray.pipeline.Pipeline) scored on judgments; one report per trial."""

    app: dict[str, Any] = Field(default_factory=dict, description="AppConfig fields (as in a Serve config's args); searched keys are app.<section>.<field>.")
    judgments: JudgmentsSpec = Field(default_factory=JudgmentsSpec, description="Which judged queries score a trial.")
    diversity_weight: float = Field(default=0.1, ge=0, description="Objective = NDCG@10 + diversity_weight * ILD@10 (intra-list diversity: mean pairwise 1 - cosine of the shown products).")

    @model_validator(mode="after")
    def _app(self) -> "PipelineTrialSettings":
        AppConfig.model_validate(self.app)
        return self

    def app_config(self) -> AppConfig:
        return AppConfig.model_validate(self.app)


@dataclass(frozen=True)
class TrialKind:
    settings_model: type[BaseModel]
    metric: str
    metrics: frozenset[str]
    function: str  # module:function, imported lazily (it needs torch)

    def settings(self, fixed: dict, params: dict[str, Any]) -> BaseModel:
        return self.settings_model.model_validate(apply_dotted(fixed, params))

    def load(self) -> Callable:
        module, name = self.function.split(":")
        return getattr(importlib.import_module(module), name)


KINDS = {
    "ranker": TrialKind(RankerTrialSettings, "val_ndcg@10", frozenset({"val_ndcg@10", "loss"}), "shopray.tuning.ranker_trial:ranker_trial"),
    "parser": TrialKind(ParserTrialSettings, "val_field_f1", frozenset({"val_field_f1", "loss", "val_exact"}), "shopray.tuning.parser_trial:parser_trial"),
    "pipeline": TrialKind(PipelineTrialSettings, "objective", frozenset({"objective", "ndcg@10", "ild@10"}), "shopray.tuning.pipeline_trial:pipeline_trial"),
}


def trial_kind(name: str) -> TrialKind:
    return KINDS[name]


def threads_for(cpu: float) -> int:
    return max(1, int(cpu))
