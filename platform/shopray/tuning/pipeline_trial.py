"""pipeline-hpo trials: the whole graph in process, scored on judged queries.

Objective = NDCG@10 + diversity_weight * ILD@10, where ILD@10 is the mean
pairwise (1 - cosine) of the ten products shown. The parser is whatever ``app``
says (the sweep file pins the rule parser: the LLM is not what is tuned here).
"""

from __future__ import annotations

import random

import numpy as np
import torch
from ray import tune

from shopray.api import SearchRequest
from shopray.evaluation import Judgments, load_judgments, ndcg_at_k
from shopray.graph import SearchContext
from shopray.pipeline import Pipeline
from shopray.stages.diversify.metrics import intra_list_diversity
from shopray.training.ranker.data import default_homedepot_dir, split_of, synthetic_groups
from shopray.tuning.dotted import apply_dotted
from shopray.tuning.trials import JudgmentsSpec, PipelineTrialSettings, threads_for

K = 10


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


def evaluate_pipeline(s: PipelineTrialSettings, judgments: Judgments) -> dict:

    pipeline = Pipeline.from_config(s.app_config())
    ndcg, ild = [], []
    for query, gains in judgments.items():
        ctx = pipeline.run(SearchContext(request=SearchRequest(query=query[:512], k=K))).ctx
        shown = ctx.candidates.take(range(min(K, len(ctx.candidates))))
        ndcg.append(ndcg_at_k(list(shown.ids), gains, K))
        ild.append(intra_list_diversity(shown.embeddings))
    out = {"ndcg@10": float(np.mean(ndcg)), "ild@10": float(np.mean(ild)), "queries": len(ndcg)}
    out["objective"] = out["ndcg@10"] + s.diversity_weight * out["ild@10"]
    return out


def pipeline_trial(config: dict, fixed: dict, cpu: float = 1.0) -> None:


    torch.set_num_threads(threads_for(cpu))
    s = PipelineTrialSettings.model_validate(apply_dotted(fixed, config))
    result = evaluate_pipeline(s, load_judgments_for(s.judgments))
    tune.report({**result, "planned_reports": 1})
