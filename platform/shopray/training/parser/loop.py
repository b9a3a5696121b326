"""The parser's training loop: batching, value-embedding tying, optimisation."""

from __future__ import annotations

import json
import math
import random
import sys
from typing import Callable

import torch
from tqdm import tqdm

from shopray.training.parser.data import TrainArgs


def value_spellings(tokenizer, vocabulary) -> dict[int, list[int]]:
    """Output token of each catalog value -> the query tokens that name it ("Nike" -> " nike").

    Categories are named by their leaf ("Shoes > Running" -> " running").
    """
    named = [(v, v) for v in (*vocabulary.brands, *vocabulary.colors, *vocabulary.attributes)]
    named += [(c, c.split(" > ")[-1]) for c in vocabulary.categories]
    out: dict[int, list[int]] = {}
    for value, name in named:
        ids = tokenizer.encode(json.dumps(value, ensure_ascii=False), add_special_tokens=False)
        if len(ids) == 1:
            out[ids[0]] = tokenizer.encode(" " + name.lower(), add_special_tokens=False)
    return out


class ValueTying:
    """Output embeddings of catalog values = mean embedding of the words naming them + a learned offset.

    With tied input/output embeddings this makes "copy the catalog word the
    query mentions" one generic skill instead of a separate mapping for each of
    ~1,000 values, and the grammar then keeps only values valid at each position.
    ``merge`` writes the effective rows into the plain embedding matrix, so the
    saved model is an ordinary Qwen2.
    """

    def __init__(self, weight, spellings: dict[int, list[int]]):
        self.ids = torch.tensor(sorted(spellings), dtype=torch.long)
        rows, cols, vals = [], [], []
        for r, tid in enumerate(self.ids.tolist()):
            parts = spellings[tid]
            for c in parts:
                rows.append(r)
                cols.append(c)
                vals.append(1.0 / len(parts))
        self.mean = torch.sparse_coo_tensor([rows, cols], vals, (len(self.ids), weight.shape[0])).coalesce()
        with torch.no_grad():
            weight[self.ids] = 0.0  # the offset starts at zero: a value starts as its words

    def effective(self, weight):
        named = torch.sparse.mm(self.mean, weight) + weight[self.ids]
        return weight.index_copy(0, self.ids, named)

    def merge(self, weight) -> None:
        with torch.no_grad():
            weight.copy_(self.effective(weight))


def _batches(rows, batch_size: int, steps: int, seed: int):
    """Length-bucketed random batches: similar lengths waste less padding on CPU."""
    rng = random.Random(seed)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    step = 0
    while True:
        rng.shuffle(chunks)
        for chunk in chunks:
            yield [rows[i] for i in chunk]
            step += 1
            if step >= steps:
                return


def train_model(model, rows, args: TrainArgs, pad_id: int, tying: ValueTying | None = None, on_eval=None, eval_every: int = 0, resume: dict | None = None,
                on_step: Callable[[int], None] | None = None) -> list[float]:
    """AdamW with warmup and cosine decay, next-token loss on the answer tokens.

    ``on_eval(step, mean_loss, state)`` runs every ``eval_every`` steps and after
    the last one (the ``parser-finetune`` sweep evaluates and reports to Tune
    there); ``state`` holds the optimizer and schedule state dicts for a checkpoint,
    and ``resume`` (the same dict plus "step") continues from one. It returns True to stop.
    ``on_step(step)`` runs after every step (progress reports).
    """
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01, betas=(0.9, 0.98))

    def lr_at(step: int) -> float:
        if step < args.warmup:
            return (step + 1) / args.warmup
        progress = (step - args.warmup) / max(1, args.steps - args.warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    start = 0
    if resume:
        opt.load_state_dict(resume["optim"])
        sched.load_state_dict(resume["sched"])
        start = resume["step"]
    losses: list[float] = []
    model.train()

    def evaluate(step: int) -> bool:
        model.eval()
        recent = losses[-20:] or [float("nan")]
        stop = bool(on_eval(step, sum(recent) / len(recent), {"step": step, "optim": opt.state_dict(), "sched": sched.state_dict()}))
        model.train()
        return stop

    if start >= args.steps:
        return losses
    batches = _batches(rows, args.batch_size, args.steps - start, args.seed + start)
    bar = tqdm(batches, total=args.steps, initial=start, desc="train parser", unit="step", disable=not args.progress, file=sys.stderr)
    step = start
    for batch in bar:
        width = max(len(row[0]) for row in batch)
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        for i, (ids, prompt_len) in enumerate(batch):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            mask[i, : len(ids)] = 1
            labels[i, prompt_len : len(ids)] = torch.tensor(ids[prompt_len:])
        hidden = model.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
        # Project only the answer positions: the vocabulary head is the costliest matmul.
        targets = labels[:, 1:]
        keep = targets != -100
        weight = model.lm_head.weight if tying is None else tying.effective(model.lm_head.weight)
        logits = hidden[:, :-1][keep] @ weight.T
        loss = torch.nn.functional.cross_entropy(logits, targets[keep])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        step += 1
        if on_step is not None:
            on_step(step)
        if len(losses) % 20 == 0:
            bar.set_postfix(loss=f"{sum(losses[-20:]) / 20:.3f}")
        if on_eval is not None and ((eval_every and step % eval_every == 0) or step == args.steps):
            if evaluate(step):
                break
    model.eval()
    return losses
