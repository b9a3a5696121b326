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
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def gain(product: dict, truth) -> int:
    checks = {}
    for f in ("brand", "category", "color"):
        if getattr(truth, f) is not None:
            checks[f] = product.get(f) == getattr(truth, f)
    if truth.price_min is not None or truth.price_max is not None:
        price = product.get("price")
        checks["price"] = price is not None and (truth.price_min is None or price >= truth.price_min) and (truth.price_max is None or price <= truth.price_max)
    if checks and all(checks.values()):
        return 2
    anchor = "category" if "category" in checks else "brand" if "brand" in checks else None
    return 1 if anchor and checks[anchor] else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--index", default="demo")
    p.add_argument("--model", default="production")
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--seed", type=int, default=11)
    args = p.parse_args()

    import numpy as np

    from shopray.api import SearchRequest
    from shopray.config import AppConfig, EmbeddingConfig, IndexConfig, ParserConfig
    from shopray.diversifier import Diversifier
    from shopray.evaluation import ndcg_at_k, recall_at_k
    from shopray.llm.runtime import local_parser, resolve_model
    from shopray.llm.synth import generate
    from shopray.models import Intent
    from shopray.pipeline import SearchContext
    from shopray.ranker import Ranker
    from shopray.retriever import Retriever
    from shopray.training.parser import load_catalog

    config = AppConfig(index=IndexConfig(name=args.index), embedding=EmbeddingConfig(device="cpu"))
    products, vocabulary = load_catalog("demo")
    heldout = [e for e in generate(products, vocabulary, args.n * 2, "heldout", args.seed) if e.kind == "structured"][: args.n]
    payloads = [pr.payload() for pr in products]
    judgments = []
    for e in heldout:
        gains = {pl["product_id"]: g for pl in payloads if (g := gain(pl, e.intent))}
        judgments.append(gains)

    model_dir, label = resolve_model(ParserConfig(kind="llm", model=args.model))
    parser = local_parser(str(model_dir), vocabulary, version="bench", timeout_s=30.0)
    llm = [pp.intent for pp in parser.parse_many([e.query for e in heldout])]
    parser.engine.shutdown()
    rule = [parser.catalog.rule.parse(e.query) for e in heldout]
    none = [Intent(keywords=e.query, source="none") for e in heldout]

    stages = [Retriever.from_config(config), Ranker.from_config(config), Diversifier.from_config(config)]
    results = {}
    for name, intents in (("llm", llm), ("rule", rule), ("none", none)):
        t0 = time.perf_counter()
        ndcg, recall = [], []
        for e, intent, gains in zip(heldout, intents, judgments):
            ctx = SearchContext(request=SearchRequest(query=e.query, k=10, diversity=0.0))
            ctx.intent = intent
            for stage in stages:
                ctx = stage.run(ctx)
            ranked = ctx.candidates.ids[:10]
            ndcg.append(ndcg_at_k(ranked, gains, 10))
            recall.append(recall_at_k(ranked, {k: v for k, v in gains.items() if v == 2}, 10))
        results[name] = {"ndcg@10": round(float(np.mean(ndcg)), 4), "recall@10 (gain 2)": round(float(np.mean(recall)), 4), "seconds": round(time.perf_counter() - t0, 1)}
    print(f"model {label}; {len(heldout)} held-out structured queries (seed {args.seed}); index {args.index}")
    for name, row in results.items():
        print(f"{name:<5} intent: NDCG@10 {row['ndcg@10']:.4f}  recall@10 of full matches {row['recall@10 (gain 2)']:.4f}")
    print(json.dumps({"command": " ".join([os.path.basename(sys.executable), *sys.argv]), "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
