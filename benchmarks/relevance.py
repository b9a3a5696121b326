"""Relevance through the whole in-process graph, full-catalog protocol, each configuration against BM25 in one run.

    .venv/bin/python benchmarks/relevance.py --index homedepot \
        --row 'retriever' \
        --row 'fine-tuned retriever=index.name: homedepot-ft; embedding.model: production'

Each ``--row NAME[=OVERRIDES]`` is the graph built from the AppConfig defaults
(index ``--index``, rule parser, ``ranker.model: auto``, diversity 0) with
``;``-separated ``dotted.path: yaml`` overrides. Queries are the validation split
of the judgments (the queries every `shopray train` holds out: ``split_of``),
``--split train`` to choose settings without looking at them, or all of them
with ``--split all`` (a shop nothing was trained on). NDCG@10,
gain = relevance - lowest grade, unjudged products count 0; BM25 is bm25s over
the same product text. Each row prints its ratio to BM25 with a paired 95%
bootstrap interval over queries, and its p50 / p99 search time in process.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from shopray.bench.relevance import BM25, config_row, paired_ci, ratio_ci
from shopray.bench.report import markdown_table, percentiles, print_command


def main(argv: list[str] | None = None) -> int:
    from shopray.training.ranker.data import default_homedepot_dir, split_of

    hd = default_homedepot_dir()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", type=Path, default=hd / "catalog.jsonl" if hd else None)
    ap.add_argument("--judgments", type=Path, default=hd / "judgments_dev.csv" if hd else None)
    ap.add_argument("--index", default="homedepot", help="the index the rows search unless they override index.name")
    ap.add_argument("--split", choices=["val", "train", "all"], default="val", help="train: choose settings there, then report them on val")
    ap.add_argument("--row", dest="rows", action="append", default=[], help="NAME[=dotted.path: yaml; ...] (default: one row, the defaults)")
    ap.add_argument("--limit", type=int, default=None, help="N queries only, sampled with a fixed seed")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--json", type=Path, default=None)
    ns = ap.parse_args(argv)
    command = print_command(argv)
    if ns.catalog is None or ns.judgments is None or not ns.judgments.exists():
        print("no judgments (Home Depot's live in ../shared/data/homedepot): nothing to measure", file=sys.stderr)
        return 2

    from tqdm import tqdm

    from shopray.api import SearchRequest
    from shopray.catalog import load_products
    from shopray.config import AppConfig
    from shopray.evaluation import load_judgments, ndcg_at_k
    from shopray.pipeline import Pipeline

    judgments = {q: g for q, g in sorted(load_judgments(ns.judgments).items()) if max(g.values()) > 0 and (ns.split == "all" or split_of(q) == ns.split)}
    if ns.limit:
        import random

        judgments = dict(sorted(random.Random(0).sample(sorted(judgments.items()), min(ns.limit, len(judgments)))))
    queries = list(judgments)
    bm25 = BM25({p.product_id: p.search_text() for p in load_products(str(ns.catalog)).products})
    per_query = {"BM25 (bm25s)": np.array([ndcg_at_k(bm25.search(q, ns.k), judgments[q], ns.k) for q in queries])}
    latency: dict[str, list[float]] = {}
    for spec in ns.rows or ["graph"]:
        name, overrides = config_row(spec, ns.index)
        pipeline = Pipeline.from_config(AppConfig.model_validate(overrides))
        pipeline.search(SearchRequest(query=queries[0][:512], k=ns.k))  # loads lazily built models outside the timings
        scores, times = [], []
        for q in tqdm(queries, desc=name, unit="q", mininterval=5):
            t0 = time.perf_counter()
            response = pipeline.search(SearchRequest(query=q[:512], k=ns.k, diversity=0))
            times.append((time.perf_counter() - t0) * 1000)
            scores.append(ndcg_at_k([r.product_id for r in response.results], judgments[q], ns.k))
        per_query[name], latency[name] = np.array(scores), times
        print(json.dumps({"row": name, "overrides": overrides, f"ndcg@{ns.k}": round(float(np.mean(scores)), 4), "degraded": response.degraded, "versions": response.versions}), flush=True)

    base = per_query["BM25 (bm25s)"]
    table, results = [], {"command": command, "queries": len(queries), "split": ns.split, "rows": {}}
    for name, scores in per_query.items():
        lat = percentiles(latency[name], (50, 99)) if name in latency else {"p50_ms": None, "p99_ms": None}
        entry = {f"ndcg@{ns.k}": round(float(scores.mean()), 4), "ratio_to_bm25": round(float(scores.mean() / base.mean()), 3),
                 "ratio_ci95": ratio_ci(scores, base), "diff_ci95": paired_ci(scores, base), **lat}
        results["rows"][name] = entry
        table.append([name, f"{entry[f'ndcg@{ns.k}']:.4f}", f"{entry['ratio_to_bm25']:.3f}x", f"[{entry['ratio_ci95'][0]:.3f}, {entry['ratio_ci95'][1]:.3f}]",
                      "" if lat["p50_ms"] is None else f"{lat['p50_ms']:.0f} / {lat['p99_ms']:.0f}"])
    print(f"\n{len(queries)} queries ({ns.split} split of {ns.judgments.name}), full catalog, NDCG@{ns.k}, gain = relevance - lowest grade\n")
    print(markdown_table(["system", f"NDCG@{ns.k}", "vs BM25", "95% CI", "p50 / p99 ms"], table))
    print(f"\ncommand: {command}")
    if ns.json:
        ns.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
