"""The cross-encoder's training loop, shared by `shopray train ranker` and the ranker-finetune sweep.

The model starts from the packaged MiniLM-L6 encoder with a fresh one-output
head, or from some of another model's layers (``init_cross_encoder``), and learns graded relevance with a pointwise
soft-label BCE loss, plus optionally a listwise softmax loss over each query's
products. ``val_ndcg`` scores a scorer by re-ranking each validation query's
judged products.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch
from tqdm import tqdm
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

from shopray.config import EmbeddingConfig
from shopray.embedding import packaged_minilm_path, shared_embedder, training_bf16
from shopray.evaluation import ndcg_at_k
from shopray.training.ranker.data import Group


def init_cross_encoder(out_dir: str | Path, seed: int = 0, layers: int | None = None, base: Path | None = None) -> Path:
    """Write a cross-encoder model directory: the first ``layers`` (default: all) of ``base``'s encoder layers with
    its head, or a freshly initialised head when ``base`` has none (the packaged MiniLM, the default, or a
    registered embedder). Fewer layers score proportionally faster; the lower layers carry most of what a short
    query-and-title pair needs, and a student started from its teacher's lower layers and head starts close."""
    base = base or packaged_minilm_path()
    depth = AutoConfig.from_pretrained(base, local_files_only=True).num_hidden_layers
    if layers is not None and not 1 <= layers <= depth:
        raise ValueError(f"{base} has {depth} encoder layers: cannot keep {layers}")
    # The head's random init must not depend on whatever ran before in this process.
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, num_hidden_layers=layers or depth, local_files_only=True)
    out = Path(out_dir)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(base, local_files_only=True).save_pretrained(out)
    return out


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
    losses = []
    for g in torch.unique(groups):
        member = groups == g
        y = labels[member]
        if int(member.sum()) > 1 and float(y.sum()) > 0:
            losses.append(-(y / y.sum() * torch.log_softmax(logits[member], 0)).sum())
    return torch.stack(losses).mean() if losses else logits.sum() * 0.0


class Fit:
    """The cross-encoder training loop, shared by `shopray train ranker` and the ranker-finetune sweep.

    ``loss``: bce reads labels as graded relevance in [0, 1]; mse regresses the logits on labels that are
    a teacher's logits (distillation, ``data.distil``).

    ``run(on_eval)`` trains and calls ``on_eval(step, loss_ema)`` every
    ``eval_every`` steps (and once at the end when the last step is not an
    evaluation step); ``on_eval`` evaluates, checkpoints or reports (to Tune) and
    returns True to stop. ``state_dict``/``load_state_dict`` carry the step,
    optimizer and schedule, so a checkpoint resumes where it stopped.
    """

    def __init__(self, model, scorer, pairs: list[tuple[str, str, float, int]], *, epochs: float = 1.0, max_steps: int | None = None,
                 batch_size: int = 32, lr: float = 5e-5, warmup: float = 0.06, eval_every: int = 300, bf16: bool | None = None, seed: int = 0,
                 time_budget_s: float | None = None, listwise: float = 0.0, loss: Literal["bce", "mse"] = "bce"):
        self.model, self.scorer, self.pairs = model, scorer, pairs
        self.batch_size, self.eval_every, self.seed, self.time_budget_s = batch_size, eval_every, seed, time_budget_s
        if listwise and loss == "mse":
            raise ValueError("the listwise loss reads labels as graded relevance, not as a teacher's logits")
        self.listwise, self.loss = listwise, loss
        steps_per_epoch = math.ceil(len(pairs) / batch_size)
        self.total = max(1, int(steps_per_epoch * epochs))
        if max_steps:
            self.total = min(self.total, max_steps)
        self.optim = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
        self.schedule = get_linear_schedule_with_warmup(self.optim, int(warmup * self.total), self.total)
        self.autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=training_bf16(bf16))
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

    def run(self, on_eval, progress: bool = False, on_step: Callable[[int], None] | None = None) -> str:
        """Train to the end (or until ``on_eval`` says stop); returns why it stopped. ``on_step(step)`` runs after every step."""
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
                if self.loss == "mse":
                    loss = torch.nn.functional.mse_loss(logits.float(), labels)
                else:
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
                if on_step is not None:
                    on_step(self.step)
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
