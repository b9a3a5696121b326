"""`shopray train parser`: a small Qwen2 query parser trained on synthetic catalog queries.

    shopray train parser                      # demo catalog, 10-20 minutes on 2 cores
    shopray train parser --catalog shop.jsonl --steps 2000

Steps: generate (query -> intent JSON) pairs from the catalog, train a BPE
tokenizer on catalog text, train the model on the JSON targets, evaluate on a
held-out set built from other templates and another seed (through vLLM with
the serving schema, the same path as production), and register the Hugging
Face directory with a model card.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from shopray.config import ParserConfig
from shopray.registry import ModelCard, Registry
from shopray.stages.parse.stage import ParseStage
from shopray.training.parser.data import ParserData, TrainArgs, prepare
from shopray.training.parser.eval import exact_match, field_scores, format_table
from shopray.training.parser.loop import ValueTying, train_model, value_spellings
from shopray.training.parser.model import build_model, parameter_count, save

log = logging.getLogger("shopray.training.parser.train")


def evaluate_dir(model_dir: Path, products, vocabulary, heldout, timeout_s: float = 30.0) -> dict:
    """Held-out field scores for the model (through vLLM + xgrammar) and the rule parser."""
    stage = ParseStage.for_model(model_dir, vocabulary, ParserConfig(kind="llm", model=str(model_dir), timeout_ms=int(timeout_s * 1000), cache_size=0), version="eval")
    try:
        parses = stage.parse_many([ex.query for ex in heldout])
    finally:
        stage.shutdown()
    llm_pairs = [(p.intent, ex.intent) for p, ex in zip(parses, heldout)]
    rule_pairs = [(stage.terms.current.rules.parse(ex.query), ex.intent) for ex in heldout]
    return {
        "llm": field_scores(llm_pairs),
        "rule": field_scores(rule_pairs),
        "llm_exact": exact_match(llm_pairs),
        "rule_exact": exact_match(rule_pairs),
        "fallbacks": sum(p.fallback is not None for p in parses),
    }


def model_card_markdown(card: dict, table: str) -> str:
    return f"""# shopray query parser

A {card['parameters']:,}-parameter Qwen2 causal LM that turns a shopping query into the
intent JSON of the catalog it was trained on. Served by vLLM with the JSON schema
generated from the catalog vocabulary (xgrammar), so it can only name catalog values.

- Data: {json.dumps(card['data'])}
- Config: {json.dumps(card['config'])}
- Held-out set: other templates, other seed; field-level precision / recall / F1,
  LLM (greedy, schema-constrained, through vLLM) next to the rule parser:

```
{table}
```
"""


def build(args: TrainArgs, data: ParserData):
    """(model, value tying or None), freshly initialised."""
    model = build_model(data.spec, data.tokenizer, seed=args.seed)
    tying = ValueTying(model.lm_head.weight, value_spellings(data.tokenizer, data.vocabulary)) if args.tie_values else None
    return model, tying


Progress = Callable[[str, float], None]
# Shares of a run's time, for progress reports: examples and tokenizer, training, held-out evaluation through vLLM.
DATA_SHARE, TRAIN_SHARE = 0.08, 0.8


def run(args: TrainArgs, products: list | None = None, progress: Progress | None = None, card_data: dict | None = None) -> dict:
    """Train, evaluate, register; ``products`` overrides ``args.catalog`` (tests pass a small catalog).

    ``progress(phase, done)`` hears how far the run has come; ``card_data`` is added to the card's ``data``."""
    report = progress or (lambda phase, done: None)
    t0 = time.perf_counter()
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    report("examples and tokenizer", 0.0)
    data = prepare(args, products)
    products, vocabulary, train_set, heldout, tokenizer, spec = data.products, data.vocabulary, data.train_set, data.heldout, data.tokenizer, data.spec
    model, tying = build(args, data)
    t_data = time.perf_counter() - t0
    report("training", DATA_SHARE)
    losses = train_model(model, data.rows, args, tokenizer.pad_token_id, tying, on_step=lambda step: report("training", DATA_SHARE + TRAIN_SHARE * step / args.steps))
    if tying is not None:
        tying.merge(model.lm_head.weight)
    t_train = time.perf_counter() - t0 - t_data
    model.eval()

    with tempfile.TemporaryDirectory(prefix="shopray-parser-") as tmp:
        out = Path(tmp) / "model"
        save(model, tokenizer, out)
        metrics: dict[str, float] = {"train_loss": round(sum(losses[-50:]) / min(50, len(losses)), 4)}
        table = "(not evaluated)"
        if args.evaluate:
            report("held-out evaluation", DATA_SHARE + TRAIN_SHARE)
            result = evaluate_dir(out, products, vocabulary, heldout)
            for name in ("llm", "rule"):
                for f, s in result[name].items():
                    metrics[f"{name}_{f}" if f == "macro_f1" else f"{name}_{f}_f1"] = s["f1"]
            metrics["macro_f1"] = result["llm"]["macro_f1"]["f1"]
            metrics["llm_exact_match"], metrics["rule_exact_match"] = result["llm_exact"], result["rule_exact"]
            metrics["heldout_fallbacks"] = result["fallbacks"]
            table = format_table({"llm": result["llm"], "rule": result["rule"]})
        card = ModelCard(
            kind="parser",
            base_model="random init (Qwen2 architecture)",
            metric="macro_f1" if args.evaluate else "train_loss",
            metrics=metrics,
            config={**spec.model_dump(), "vocab_size": len(tokenizer), "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed, "tie_values": args.tie_values},
            data={
                "catalog": args.catalog,
                "products": len(products),
                "train_examples": len(train_set),
                "heldout_examples": len(heldout),
                "train_templates": "templates.TRAIN",
                "heldout_templates": "templates.HELDOUT",
                "heldout_seed": args.seed + 1,
                **(card_data or {}),
            },
            parameters=parameter_count(model),
            notes=f"data {t_data:.0f}s, training {t_train:.0f}s on {torch.get_num_threads()} threads",
        )
        (out / "README.md").write_text(model_card_markdown(card.model_dump(), table))
        registry = Registry(Path(args.registry) if args.registry else None)
        version = registry.register("parser", out, card, alias=args.alias)
    promoted = False
    if args.promote:
        promoted = _promote_if_better(registry, version, card)
    summary = {"version": version, "path": str(registry.path("parser", version)), "promoted": promoted, "metrics": metrics, "seconds": round(time.perf_counter() - t0, 1)}
    print(table, file=sys.stderr)
    return summary


def _promote_if_better(registry, version: str, card) -> bool:
    """Production moves to the new version when there is none yet or the new one scores at least as well."""
    try:
        current = registry.card("parser", "production")
    except KeyError:
        current = None
    if current is not None and current.metric == card.metric and (current.score or 0) > (card.score or 0):
        return False
    registry.set_alias("parser", "production", version)
    return True


def main(argv: list[str]) -> int:
    defaults = TrainArgs()
    p = argparse.ArgumentParser(prog="shopray train parser", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--catalog", default=defaults.catalog, help="catalog file (JSONL, CSV, Parquet) or 'demo'")
    p.add_argument("--examples", type=int, default=defaults.examples, help="synthetic training queries")
    p.add_argument("--heldout", type=int, default=defaults.heldout, help="held-out queries (other templates, other seed)")
    p.add_argument("--steps", type=int, default=defaults.steps, help="optimizer steps")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--vocab-size", type=int, default=defaults.vocab_size, help="BPE merges budget (catalog values are added on top)")
    p.add_argument("--hidden-size", type=int, default=defaults.hidden_size)
    p.add_argument("--layers", type=int, default=defaults.layers)
    p.add_argument("--heads", type=int, default=defaults.heads)
    p.add_argument("--kv-heads", type=int, default=defaults.kv_heads)
    p.add_argument("--intermediate-size", type=int, default=defaults.intermediate_size)
    p.add_argument("--registry", default=None, help="registry root (default ~/.shopray/registry)")
    p.add_argument("--alias", default=defaults.alias, help="alias for the new version (candidate, production, or 'none')")
    p.add_argument("--no-promote", action="store_true", help="never move the production alias")
    p.add_argument("--no-eval", action="store_true", help="skip the held-out evaluation through vLLM")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-tie-values", action="store_true", help="free output embeddings for catalog values (ablation)")
    ns = p.parse_args(argv)
    # Spinning OpenMP threads collapse when other jobs share the cores (a 2-thread
    # step went from 0.5 s to 10 s under load); sleeping waiters degrade gracefully.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = TrainArgs(
        catalog=ns.catalog, examples=ns.examples, heldout=ns.heldout, steps=ns.steps, batch_size=ns.batch_size, lr=ns.lr,
        seed=ns.seed, vocab_size=ns.vocab_size, hidden_size=ns.hidden_size, layers=ns.layers, heads=ns.heads,
        kv_heads=ns.kv_heads, intermediate_size=ns.intermediate_size, registry=ns.registry,
        alias=None if ns.alias == "none" else ns.alias, promote=not ns.no_promote, evaluate=not ns.no_eval,
        threads=ns.threads, progress=not ns.quiet, tie_values=not ns.no_tie_values,
    )
    print(json.dumps(run(args)))
    return 0
