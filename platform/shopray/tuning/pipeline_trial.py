"""pipeline-hpo trials: the whole graph in process, scored on judged queries.

Objective = NDCG@10 + diversity_weight * ILD@10, where ILD@10 is the mean
pairwise (1 - cosine) of the ten products shown. The parser is whatever ``app``
says (the sweep file pins the rule parser: the LLM is not what is tuned here).
Judged searches may come with a session (``judgments.source: sessions``):
each then searches with its session's clicks, against a popularity built from
the synthetic shoppers' events.
"""

from __future__ import annotations

import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from ray import tune

from shopray.api import SearchRequest, SessionSignal
from shopray.config import AppConfig
from shopray.evaluation import Judgments, load_judgments, ndcg_at_k
from shopray.events import SqliteEventLog
from shopray.events.synthetic import synthetic_shoppers
from shopray.graph import SearchContext
from shopray.pipeline import Pipeline
from shopray.stages.diversify.metrics import intra_list_diversity
from shopray.stages.retrieve.index import open_store
from shopray.training.ranker.data import default_homedepot_dir, split_of, synthetic_groups
from shopray.tuning.dotted import apply_dotted
from shopray.tuning.trials import JudgmentsSpec, PipelineTrialSettings, threads_for

K = 10


@dataclass(frozen=True)
class Case:
    """One judged search: the query, its graded products, and the products its session clicked before it."""

    query: str
    gains: dict[str, float]
    clicked: tuple[str, ...] = ()


def cases_of(judgments: Judgments) -> list[Case]:
    return [Case(q, g) for q, g in judgments.items()]


def load_judgments_for(spec: JudgmentsSpec) -> Judgments:
    """Judged queries with a positive gain, sampled to ``spec.queries``."""

    if spec.source == "synthetic":

        groups = synthetic_groups(spec.queries, spec.seed, catalog_size=spec.catalog_size)
        judgments: Judgments = {}
        for g in groups:
            judgments.setdefault(g.query, {}).update(dict(zip(g.ids, g.labels)))
    else:
        if spec.source == "homedepot":

            root = default_homedepot_dir()
            if root is None:
                raise FileNotFoundError("judgments.source homedepot: ../shared/data/homedepot was not found (set SHOPRAY_HOMEDEPOT)")
            judgments = load_judgments(root / "judgments_dev.csv")
            if spec.split != "all":
                judgments = {q: g for q, g in judgments.items() if split_of(q) == spec.split}
        else:
            judgments = load_judgments(spec.path)
    queries = sorted(q for q, g in judgments.items() if max(g.values()) > 0)
    queries = random.Random(spec.seed).sample(queries, min(spec.queries, len(queries)))
    return {q: judgments[q] for q in queries}


def prepare(spec: JudgmentsSpec, app: AppConfig, events_dir: Path) -> tuple[list[Case], AppConfig]:
    """The judged searches, and the app to run them with. ``sessions``: synthetic shoppers over the indexed catalog,
    their events written to a log of the trial's own in ``events_dir``, which the app then reads."""
    if spec.source != "sessions":
        return cases_of(load_judgments_for(spec)), app
    products = open_store(app.index).open(hnsw_ef=app.index.hnsw_ef).products()
    shoppers = synthetic_shoppers(products, spec.queries, spec.seed, signal=spec.signal)
    path = events_dir / "events.sqlite"
    SqliteEventLog(path).append(shoppers.events, time.time())
    events = app.events.model_copy(update={"backend": "sqlite", "path": path})
    return [Case(j.query, j.gains, tuple(j.clicked)) for j in shoppers.sessions], app.model_copy(update={"events": events})


def evaluate_pipeline(s: PipelineTrialSettings, cases: Sequence[Case], app: AppConfig | None = None) -> dict:
    """NDCG@10, ILD@10 and the objective over ``cases`` (``per_query``: each case's NDCG@10, in order), with ``app``
    (default: the settings' own)."""
    pipeline = Pipeline.from_config(app or s.app_config())
    ndcg, ild = [], []
    for case in cases:
        session = SessionSignal(clicked=list(case.clicked)) if case.clicked else None
        ctx = pipeline.run(SearchContext(request=SearchRequest(query=case.query[:512], k=K, session=session))).ctx
        shown = ctx.candidates.take(range(min(K, len(ctx.candidates))))
        ndcg.append(ndcg_at_k(list(shown.ids), case.gains, K))
        ild.append(intra_list_diversity(shown.embeddings))
    out = {"ndcg@10": float(np.mean(ndcg)), "ild@10": float(np.mean(ild)), "queries": len(ndcg), "per_query": ndcg}
    out["objective"] = out["ndcg@10"] + s.diversity_weight * out["ild@10"]
    return out


def pipeline_trial(config: dict, fixed: dict, cpu: float = 1.0) -> None:


    torch.set_num_threads(threads_for(cpu))
    s = PipelineTrialSettings.model_validate(apply_dotted(fixed, config))
    with tempfile.TemporaryDirectory(prefix="shopray-trial-events-") as events_dir:
        cases, app = prepare(s.judgments, s.app_config(), Path(events_dir))
        result = evaluate_pipeline(s, cases, app)
    del result["per_query"]
    tune.report({**result, "planned_reports": 1})
