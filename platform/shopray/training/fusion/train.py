"""`shopray train fusion`: fit the learned fusion (LambdaMART) for the cross-encoder a catalog is served with.

    shopray train fusion                                   # Home Depot's validation queries (../shared), a few minutes
    shopray train fusion --catalog shop.jsonl --judgments grades.csv --split all --alias production

The in-process graph that ``shopray serve --catalog`` would build (retriever and
ranker, rule parser, ``--config``) answers each judged query; every product of
the ranker's head gives the features of ``stages/rank/fusion.py`` and its grade.
Queries come from the validation split by default: the queries ``shopray train
ranker`` and ``shopray train embedder`` held out, where the cross-encoder's
scores are as confident as on a shopper's query (on its own training queries
they are not). LightGBM ``lambdarank`` is first cross-fitted (each query ordered
by a model trained on the other folds) and compared with the rank fusion on the
same heads, with a paired 95% interval; then fitted on every query and
registered (kind ``fusion``) for that cross-encoder, so ``ranker.fusion: auto``
uses it while that cross-encoder scores.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import lightgbm
import numpy as np
from tqdm import tqdm

from shopray.api import SearchRequest
from shopray.bench.relevance import paired_ci
from shopray.bench.report import markdown_table
from shopray.cli import _app_args, _serve_file
from shopray.config import AppConfig
from shopray.domain import CandidateSet
from shopray.evaluation import Judgments, load_judgments, ndcg_at_k
from shopray.graph import SearchContext
from shopray.pipeline import Pipeline
from shopray.registry import ModelCard, Registry
from shopray.stages.rank.cross_encoder import model_of
from shopray.stages.rank.fusion import FEATURES, MODEL_FILE, LearnedFusion, head_features
from shopray.stages.rank.scorers import Scorer
from shopray.training.ranker.data import SPLIT_SALT, VAL_PERCENT, default_homedepot_dir, split_of


def parse_args(argv: list[str]) -> argparse.Namespace:
    hd = default_homedepot_dir()
    ap = argparse.ArgumentParser(prog="shopray train fusion", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", default=str(hd / "catalog.jsonl") if hd else None, help="the served catalog (default: Home Depot's, when ../shared has it)")
    ap.add_argument("--judgments", type=Path, default=hd / "judgments_dev.csv" if hd else None, help="query,product_id,relevance CSV")
    ap.add_argument("--split", choices=["val", "all"], default="val", help="val: the queries every trainer holds out; all: a file no model was trained on")
    ap.add_argument("--config", default=None, help="serve config whose graph is fitted (default deployments/local.yaml)")
    ap.add_argument("--index", default=None, help="index name (default: the one `shopray serve --catalog` uses)")
    ap.add_argument("--folds", type=int, default=2, help="folds of the cross-fitted comparison")
    ap.add_argument("--rounds", type=int, default=100, help="boosting rounds")
    ap.add_argument("--leaves", type=int, default=15)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--registry", type=Path, default=None)
    ap.add_argument("--alias", choices=["candidate", "production", "none"], default="candidate")
    ap.add_argument("--no-progress", action="store_true")
    return ap.parse_args(argv)


@dataclass
class Head:
    """One judged query's head as the ranker sees it."""

    query: str
    candidates: CandidateSet
    scores: np.ndarray
    grades: dict[str, float]

    def labels(self, lowest: float) -> np.ndarray:
        # lambdarank wants small integer labels: the gain in half-grade steps.
        return np.array([round(2 * max(0.0, self.grades.get(p, lowest) - lowest)) for p in self.candidates.ids])


def graph_config(ns: argparse.Namespace) -> AppConfig:
    args = _app_args(_serve_file(ns.config), ns.catalog)
    if ns.index:
        args["index"] = {**args.get("index", {}), "name": ns.index}
    # Features read the parsed keywords, not the parser's filters; the rule parser keeps a fit free of the LLM engine.
    return AppConfig.model_validate({**args, "parser": {**args.get("parser", {}), "kind": "rule"}})


def collect(pipeline: Pipeline, scorer: Scorer, judgments: Judgments, progress: bool) -> list[Head]:
    """Each judged query's head and ``scorer``'s scores for it."""
    ranker = pipeline["rank"]
    heads = []
    for query, grades in tqdm(judgments.items(), desc="heads", unit="q", mininterval=5, disable=not progress):
        ctx = SearchContext(request=SearchRequest(query=query[:512], k=10, diversity=0))
        for key in ("parse", "retrieve"):
            ctx = pipeline[key].run(ctx)
        head = ranker.head(ctx.candidates)
        if len(head):
            scored = ranker.scored_query(ctx)  # the repaired text, as in serving
            heads.append(Head(scored, head, scorer.score_many([(scored, head)])[0], grades))
    return heads


def fit(heads: list[Head], lowest: float, ns: argparse.Namespace) -> lightgbm.Booster:
    data = lightgbm.Dataset(np.vstack([head_features(h.query, h.candidates, h.scores) for h in heads]), np.concatenate([h.labels(lowest) for h in heads]),
                            group=[len(h.candidates) for h in heads], feature_name=list(FEATURES))
    params = {"objective": "lambdarank", "learning_rate": ns.lr, "num_leaves": ns.leaves, "min_data_in_leaf": 50, "feature_fraction": 0.9,
              "bagging_fraction": 0.8, "bagging_freq": 1, "lambdarank_truncation_level": 20, "verbose": -1, "num_threads": 2, "seed": ns.seed}
    return lightgbm.train(params, data, ns.rounds)


def main(argv: list[str]) -> int:
    ns = parse_args(argv)
    if ns.catalog is None or ns.judgments is None or not ns.judgments.exists():
        print("no judged queries: give --catalog and --judgments (Home Depot's live in ../shared/data/homedepot)", file=sys.stderr)
        return 2
    judgments = {q: g for q, g in sorted(load_judgments(ns.judgments).items()) if max(g.values()) > 0 and (ns.split == "all" or split_of(q) == "val")}
    result = train(graph_config(ns), judgments, ns)
    if result is None:
        return 2
    print(json.dumps(result))
    print(f"\ncommand: {shlex.join(['.venv/bin/shopray', 'train', 'fusion', *argv])}")
    return 0


def train(config: AppConfig, judgments: Judgments, ns: argparse.Namespace) -> dict | None:
    """Cross-fit, print the comparison, fit on every query and register; None when no cross-encoder scores."""
    pipeline = Pipeline.from_config(config, keys=["parse", "retrieve", "rank"])
    ranker = pipeline["rank"]
    scorer = ranker.scorer  # one model for the whole fit, whatever the registry gains meanwhile
    ranker_model = model_of(scorer.version)
    if ranker.missing() is not None or ranker_model is None:
        print(f"no cross-encoder scores this catalog (ranker {scorer.version}): train one first (`shopray train ranker`)", file=sys.stderr)
        return None
    lowest = min(min(g.values()) for g in judgments.values())
    heads = collect(pipeline, scorer, judgments, not ns.no_progress)

    # Cross-fitted: each query ordered by a model that never saw it, against the rank fusion on the same head.
    fold_of = np.random.default_rng(ns.seed).permutation(len(heads)) % ns.folds
    learned, shipped = np.zeros(len(heads)), np.zeros(len(heads))
    for fold in range(ns.folds):
        fusion = LearnedFusion(fit([h for h, f in zip(heads, fold_of) if f != fold], lowest, ns), f"fold-{fold}")
        for i in np.flatnonzero(fold_of == fold):
            h = heads[i]
            learned[i] = ndcg_at_k(ranker.rank(h.query, h.candidates, h.scores, fusion).ids, h.grades, 10)
            shipped[i] = ndcg_at_k(ranker.rank(h.query, h.candidates, h.scores).ids, h.grades, 10)
    ci = paired_ci(learned, shipped)
    judged_by = ns.judgments.name if ns.judgments else "judgments"
    print(f"\n{len(heads)} judged queries ({ns.split} split of {judged_by}), ranker {scorer.version}, NDCG@10 of the head, {ns.folds}-fold cross-fitted\n")
    print(markdown_table(["final order of the head", "NDCG@10", "difference", "95% CI"], [
        [f"rank fusion (retriever_weight {ranker.config.retriever_weight:g})", f"{shipped.mean():.4f}", "", ""],
        [f"learned fusion (LambdaMART, {len(FEATURES)} features)", f"{learned.mean():.4f}", f"{learned.mean() - shipped.mean():+.4f}", f"[{ci[0]:+.4f}, {ci[1]:+.4f}]"],
    ]))

    booster = fit(heads, lowest, ns)
    gain = booster.feature_importance("gain")
    print("\nfeature gain share: " + ", ".join(f"{f} {g / max(1e-12, gain.sum()):.2f}" for f, g in sorted(zip(FEATURES, gain), key=lambda x: -x[1])))
    manifest = ranker.catalog.current if ranker.catalog is not None else None
    card = ModelCard(
        kind="fusion",
        base_model="LightGBM lambdarank",
        metric="ndcg@10",
        metrics={"ndcg@10": round(float(learned.mean()), 4), "rrf_ndcg@10": round(float(shipped.mean()), 4), "diff_ci95_low": ci[0], "diff_ci95_high": ci[1]},
        config={"features": ",".join(FEATURES), "rounds": ns.rounds, "leaves": ns.leaves, "lr": ns.lr, "folds": ns.folds, "seed": ns.seed},
        data={"ranker": ranker_model, "judgments": judged_by, "queries": len(heads), "split": ns.split,
              "split_rule": f"sha256('{SPLIT_SALT}' + lower(query)) % 100 < {VAL_PERCENT} -> validation" if ns.split == "val" else "all",
              "index": pipeline["retrieve"].index.current.label, **({"catalog_sha256": manifest.catalog_sha256} if manifest else {})},
        parent=f"ranker:{ranker_model}",
        notes="Metrics: NDCG@10 of each query's head re-ordered by a model fitted on the other folds (ndcg@10) and by the rank fusion "
        "(rrf_ndcg@10), gain = relevance - lowest grade; the registered model is fitted on every query.",
    )
    with tempfile.TemporaryDirectory() as tmp:
        booster.save_model(str(Path(tmp) / MODEL_FILE))
        version = Registry(ns.registry).register("fusion", Path(tmp), card, alias=None if ns.alias == "none" else ns.alias)
    return {"registered": version, "for_ranker": ranker_model, "queries": len(heads), **card.metrics}
