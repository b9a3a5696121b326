"""Does the answer honour what the query states? Structured demo queries, their true intents, the graph after the parser.

    .venv/bin/shopray index --catalog demo          # once: the demo index
    .venv/bin/python benchmarks/constraints.py [--n 300] [--ranker-model DIR]

Queries are held-out synthetic structured queries built from the demo catalog
(``training/parser/synth.py``), each with the intent it was built from. The
retriever, ranker and diversifier run in process on that intent (so the
parser's mistakes are not counted), at the config's diversity and at 1.0.

- violations: the share of top-10 results that break a stated constraint
  (brand, category, color, price bound) while an exact match, a catalog product
  keeping them all, is ranked below them or not shown at all;
- exact@10: the exact matches shown, as a share of min(10, exact matches in the catalog);
- NDCG@10 on synthetic judgments from each true intent (``evaluation.intent_gain``);
- ms: wall time of retrieve + rank + diversify per query.

Everything is computed from the result payloads and ``evaluation.intent_gain``, so the same
script measures an older checkout (PYTHONPATH=<checkout>/platform) for a before/after.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from shopray.bench.report import markdown_table, percentiles, print_command
from shopray.evaluation import intent_gain, ndcg_at_k


def _exact(payload: dict, intent) -> bool:
    return intent_gain(payload, intent) == 2  # keeps every field the intent names


def violations(shown: list[dict], intent, n_exact: int) -> int:
    """Results that break a stated constraint while an exact match is ranked below them (or not shown)."""
    bad, exact_above = 0, 0
    for payload in shown:
        if _exact(payload, intent):
            exact_above += 1
        elif exact_above < n_exact:
            bad += 1
    return bad


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--index", default="demo")
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--ranker-model", default=None, help="a cross-encoder directory (default: the MiniLM bi-encoder, which needs no training)")
    args = p.parse_args(argv)
    print_command(argv)

    import numpy as np

    from shopray.api import SearchRequest
    from shopray.catalog import load_products
    from shopray.config import AppConfig, EmbeddingConfig, IndexConfig, RankerConfig
    from shopray.domain import Vocabulary
    from shopray.graph import SearchContext
    from shopray.pipeline import Pipeline
    from shopray.training.parser.synth import generate

    ranker = RankerConfig(kind="crossencoder", model=args.ranker_model) if args.ranker_model else RankerConfig(kind="biencoder")
    config = AppConfig(index=IndexConfig(name=args.index), embedding=EmbeddingConfig(device="cpu"), ranker=ranker)
    products = load_products("demo").products
    payloads = [pr.payload() for pr in products]
    heldout = [e for e in generate(products, Vocabulary.from_products(products), args.n * 2, "heldout", args.seed) if e.kind == "structured"][: args.n]
    judgments = [{pl["product_id"]: g for pl in payloads if (g := intent_gain(pl, e.intent))} for e in heldout]
    downstream = Pipeline.from_config(config, keys=("retrieve", "rank", "diversify"))
    downstream.run(SearchContext(request=SearchRequest(query="warm up", k=10), intent=heldout[0].intent))

    rows = {}
    for diversity in (config.diversifier.default_diversity, 1.0):
        shown_total = bad_total = 0
        exact_share, ndcg, ms = [], [], []
        for e, gains in zip(heldout, judgments):
            n_exact = sum(g == 2 for g in gains.values())
            t0 = time.perf_counter()
            ctx = downstream.run(SearchContext(request=SearchRequest(query=e.query, k=10, diversity=diversity), intent=e.intent)).ctx
            ms.append((time.perf_counter() - t0) * 1000)
            shown = ctx.candidates.payloads[:10]
            shown_total += len(shown)
            bad_total += violations(shown, e.intent, n_exact)
            if n_exact:
                exact_share.append(sum(_exact(pl, e.intent) for pl in shown) / min(10, n_exact))
            ndcg.append(ndcg_at_k(ctx.candidates.ids[:10], gains, 10))
        rows[f"diversity {diversity:g}"] = {
            "violations": round(bad_total / max(shown_total, 1), 4),
            "exact@10": round(float(np.mean(exact_share)), 4),
            "ndcg@10": round(float(np.mean(ndcg)), 4),
            **percentiles(ms, (50, 99)),
        }
    print(f"{len(heldout)} held-out structured demo queries (seed {args.seed}), true intents; ranker {ranker.kind} {ranker.model if args.ranker_model else ''}")
    print(markdown_table(["", "violations", "exact@10", "NDCG@10", "ms p50", "ms p99"],
                         [[name, f"{r['violations']:.2%}", f"{r['exact@10']:.4f}", f"{r['ndcg@10']:.4f}", r["p50_ms"], r["p99_ms"]] for name, r in rows.items()]))
    print(json.dumps({"results": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
