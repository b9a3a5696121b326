"""Relevance on the Home Depot dev judgments: the shopray graph vs BM25-only (bm25s) vs dense-only.

Full-catalog protocol: every system retrieves from all 54,667 products; NDCG@k
with gain = relevance - 1 and unjudged products counted as 0. The catalog must
be indexed first (`shopray index --catalog ../shared/data/homedepot/catalog.jsonl`).

    .venv/bin/python benchmarks/homedepot_eval.py [--limit N] [--k 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from shopray.bench.report import markdown_table, print_command

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "homedepot"


def bm25s_search(catalog: Path, queries: list[str], k: int) -> dict[str, list[str]]:
    import bm25s
    import Stemmer

    from shopray.catalog import load_products

    products = load_products(str(catalog)).products
    stemmer = Stemmer.Stemmer("english")
    index = bm25s.BM25()
    index.index(bm25s.tokenize([p.title for p in products], stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    docs, _ = index.retrieve(bm25s.tokenize(queries, stopwords="en", stemmer=stemmer, show_progress=False), k=k, show_progress=False)
    return {q: [products[i].product_id for i in row] for q, row in zip(queries, docs)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judgments", default=str(DATA / "judgments_dev.csv"))
    parser.add_argument("--catalog", default=str(DATA / "catalog.jsonl"))
    parser.add_argument("--index", default="homedepot")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--limit", type=int, default=None, help="first N queries only")
    ns = parser.parse_args(argv)
    print_command(argv)
    if not Path(ns.judgments).exists():
        print(f"skipped: {ns.judgments} not found", file=sys.stderr)
        return 0

    from shopray.api import SearchRequest
    from shopray.config import AppConfig, IndexConfig, RetrieverConfig
    from shopray.domain import Intent
    from shopray.evaluation import evaluate, load_judgments
    from shopray.pipeline import Pipeline
    from shopray.stages.retrieve.stage import Retriever

    judgments = load_judgments(ns.judgments)
    if ns.limit:
        judgments = dict(list(judgments.items())[: ns.limit])
    k = ns.k
    config = AppConfig(index=IndexConfig(name=ns.index, qdrant_url=None))
    rows = {}

    pipeline = Pipeline.from_config(config)
    t0 = time.perf_counter()
    rows["shopray graph (rule parser, hybrid RRF, bi-encoder ranker)"] = evaluate(
        judgments, lambda q: [r.product_id for r in pipeline.search(SearchRequest(query=q[:512], k=k, diversity=0)).results], k, progress=True
    )
    graph_seconds = time.perf_counter() - t0

    dense = Retriever.from_config(config.model_copy(update={"retriever": RetrieverConfig(sparse_weight=0.0, candidates=k)}))
    rows["dense-only (MiniLM, Qdrant HNSW)"] = evaluate(judgments, lambda q: dense.retrieve(q, Intent(keywords=q)).ids[:k], k, progress=True)

    lexical = bm25s_search(Path(ns.catalog), list(judgments), k)
    rows["BM25-only (bm25s, titles)"] = evaluate(judgments, lambda q: lexical[q], k)

    table = [[name, r["queries"], f"{r[f'ndcg@{k}']:.4f}", f"{r[f'recall@{k}']:.4f}", f"{r['mrr']:.4f}"] for name, r in rows.items()]
    print(markdown_table(["system", "queries", f"NDCG@{k}", f"recall@{k}", "MRR"], table))
    print(f"\ngraph: {graph_seconds / max(1, next(iter(rows.values()))['queries']) * 1000:.1f} ms/query in-process")
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
