"""Parse quality on held-out synthetic queries: LLM parser (through vLLM + xgrammar) vs rule parser.

    .venv/bin/python benchmarks/parser_quality.py [--model production] [--n 1000]

The held-out set uses templates training never saw (templates.HELDOUT) and
another seed; queries that happen to equal a training query are dropped. It
prints field-level precision / recall / F1 for both parsers, exact match, and
F1 on the slices where they differ most (typos, free text, injections).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from shopray.bench.report import print_command


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="production", help="registry alias/version or a model directory")
    p.add_argument("--registry", default=None)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--eager", action=argparse.BooleanOptionalAction, default=True, help="--no-eager: the engine compiles the model (parser.engine.enforce_eager: false), as deployments/local.yaml runs it")
    p.add_argument("--prompt-lookup", type=int, default=None, help="parser.engine.prompt_lookup_tokens (default: the config's own); 0 decodes one token per step")
    p.add_argument("--seed", type=int, default=None, help="held-out seed (default: the card's heldout_seed + 100, so not even the card's own held-out set)")
    p.add_argument("--errors", default=None, help="write the queries either parser got wrong (any of the four fields) to this JSONL file")
    args = p.parse_args(argv)
    print_command(argv)

    from shopray.catalog import load_products
    from shopray.config import ParserConfig, ParserEngineConfig
    from shopray.domain import Vocabulary
    from shopray.registry import ModelCard, model_label, resolve_model
    from shopray.stages.parse.stage import ParseStage
    from shopray.training.parser.eval import exact_match, field_scores, format_table
    from shopray.training.parser.synth import generate

    model_dir = resolve_model("parser", args.model, Path(args.registry) if args.registry else None)
    label = model_label(model_dir)
    card = ModelCard.model_validate_json((model_dir / "card.json").read_text()) if (model_dir / "card.json").exists() else None
    catalog = str(card.data.get("catalog", "demo")) if card else "demo"
    products = load_products(catalog).products
    vocabulary = Vocabulary.from_products(products)
    train_seed = int(card.config.get("seed", 0)) if card else 0
    train_n = int(card.data.get("train_examples", 0)) if card else 0
    seed = args.seed if args.seed is not None else (int(card.data.get("heldout_seed", 1)) if card else 1) + 100
    train_queries = {e.query for e in generate(products, vocabulary, train_n, "train", train_seed)} if train_n else set()
    heldout = generate(products, vocabulary, args.n, "heldout", seed, exclude=train_queries)

    lookup = {} if args.prompt_lookup is None else {"prompt_lookup_tokens": args.prompt_lookup}
    config = ParserConfig(kind="llm", model=str(model_dir), timeout_ms=30_000, cache_size=0, engine=ParserEngineConfig(enforce_eager=args.eager, **lookup))
    stage = ParseStage.for_model(model_dir, vocabulary, config, version="bench")  # intent cache off, 30 s per parse
    t0 = time.perf_counter()
    try:
        parses = stage.parse_many([e.query for e in heldout])
    finally:
        stage.shutdown()
    seconds = time.perf_counter() - t0
    rule = stage.terms.current.rules

    pairs = {"llm": [(pp.intent, e.intent) for pp, e in zip(parses, heldout)], "rule": [(rule.parse(e.query), e.intent) for e in heldout]}
    print(f"model {label} ({model_dir}); held-out: {len(heldout)} queries, templates.HELDOUT, seed {seed}; {train_n} training queries excluded")
    print(format_table({name: field_scores(pp) for name, pp in pairs.items()}))
    print(f"exact match (brand, category, color, price all right): llm {exact_match(pairs['llm'])}  rule {exact_match(pairs['rule'])}")
    print(f"LLM answers rejected or timed out (rule fallback): {sum(pp.fallback is not None for pp in parses)}; {len(heldout) / seconds:.1f} parses/s batched")
    slices = {
        "typo": [i for i, e in enumerate(heldout) if e.typo],
        "no typo": [i for i, e in enumerate(heldout) if e.kind == "structured" and not e.typo],
        "free text + injection": [i for i, e in enumerate(heldout) if e.kind != "structured"],
    }
    for name, idx in slices.items():
        row = {k: field_scores([pairs[k][i] for i in idx])["macro_f1"]["f1"] for k in pairs}
        extra = {k: sum(bool(pairs[k][i][0].brand or pairs[k][i][0].category or pairs[k][i][0].color or pairs[k][i][0].price_max or pairs[k][i][0].price_min) for i in idx) for k in pairs} if name.startswith("free") else None
        print(f"slice {name:<22} n={len(idx):<4} macro F1 llm {row['llm']:.3f}  rule {row['rule']:.3f}" + (f"  queries given any filter: {extra}" if extra else ""))
    if args.errors:
        write_errors(args.errors, heldout, pairs)
    print(json.dumps({"seconds": round(seconds, 1)}))
    return 0


def write_errors(path: str, heldout, pairs) -> None:
    from shopray.training.parser.eval import CORE, slots, wrong_fields

    with open(path, "w") as f:
        for i, e in enumerate(heldout):
            wrong = {name: wrong_fields(pp[i][0], e.intent) for name, pp in pairs.items()}
            if not any(wrong.values()):
                continue
            row = {"query": e.query, "kind": e.kind, "frame": e.frame, "typo": e.typo, "cheap": e.cheap}
            for name, bad in wrong.items():
                row[name] = {"wrong": bad, **{k: sorted(map(str, slots(pairs[name][i][0], k))) for k in bad}}
            row["truth"] = {k: sorted(map(str, slots(e.intent, k))) for k in CORE}
            f.write(json.dumps(row) + "\n")
    print(f"errors written to {path}")


if __name__ == "__main__":  # vLLM starts its engine with spawn
    sys.exit(main())
