"""Retrieval effect of the parser: NDCG@10 on the demo catalog with LLM intent, rule intent, no intent.

    .venv/bin/shopray index --catalog demo          # once: the demo index
    .venv/bin/python benchmarks/parser_retrieval.py [--n 300]

Queries are held-out synthetic queries (structured ones: free text has no
truth to judge). Judgments are synthetic, from each query's true intent: a
product that matches every field the query asks for (brand, category, color,
price range) has gain 2; one that matches the category (or the brand, when the
query names no category) but not everything has gain 1; the rest 0. The same
retriever, ranker and diversifier (in process, diversity 0) then run with the
intent each parser produced, and with no intent (keywords = the query).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from shopray.bench.report import print_command


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--index", default="demo")
    p.add_argument("--model", default="production")
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--seed", type=int, default=11)
    args = p.parse_args(argv)
    print_command(argv)

    import numpy as np

    from shopray.api import SearchRequest
    from shopray.catalog import load_products
    from shopray.config import AppConfig, EmbeddingConfig, IndexConfig
    from shopray.domain import Intent, Vocabulary
    from shopray.evaluation import intent_gain, ndcg_at_k, recall_at_k
    from shopray.graph import SearchContext
    from shopray.pipeline import Pipeline
    from shopray.registry import model_label, resolve_model
    from shopray.stages.parse.stage import ParseStage
    from shopray.training.parser.synth import generate

    config = AppConfig(index=IndexConfig(name=args.index), embedding=EmbeddingConfig(device="cpu"))
    products = load_products("demo").products
    vocabulary = Vocabulary.from_products(products)
    heldout = [e for e in generate(products, vocabulary, args.n * 2, "heldout", args.seed) if e.kind == "structured"][: args.n]
    payloads = [pr.payload() for pr in products]
    judgments = []
    for e in heldout:
        gains = {pl["product_id"]: g for pl in payloads if (g := intent_gain(pl, e.intent))}
        judgments.append(gains)

    model_dir = resolve_model("parser", args.model)
    label = model_label(model_dir)
    stage = ParseStage.for_model(model_dir, vocabulary, version="bench")  # intent cache off, 30 s per parse
    try:
        llm = [pp.intent for pp in stage.parse_many([e.query for e in heldout])]
    finally:
        stage.shutdown()
    rule = [stage.terms.current.rules.parse(e.query) for e in heldout]
    none = [Intent(keywords=e.query, source="none") for e in heldout]

    downstream = Pipeline.from_config(config, keys=("retrieve", "rank", "diversify"))  # the intent comes from each parser
    results = {}
    for name, intents in (("llm", llm), ("rule", rule), ("none", none)):
        t0 = time.perf_counter()
        ndcg, recall = [], []
        for e, intent, gains in zip(heldout, intents, judgments):
            ctx = downstream.run(SearchContext(request=SearchRequest(query=e.query, k=10, diversity=0.0), intent=intent)).ctx
            ranked = ctx.candidates.ids[:10]
            ndcg.append(ndcg_at_k(ranked, gains, 10))
            recall.append(recall_at_k(ranked, {k: v for k, v in gains.items() if v == 2}, 10))
        results[name] = {"ndcg@10": round(float(np.mean(ndcg)), 4), "recall@10 (gain 2)": round(float(np.mean(recall)), 4), "seconds": round(time.perf_counter() - t0, 1)}
    print(f"model {label}; {len(heldout)} held-out structured queries (seed {args.seed}); index {args.index}")
    for name, row in results.items():
        print(f"{name:<5} intent: NDCG@10 {row['ndcg@10']:.4f}  recall@10 of full matches {row['recall@10 (gain 2)']:.4f}")
    print(json.dumps({"results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
