"""Ranker quality on the held-out Home Depot validation queries, two protocols, all baselines in one run.

    .venv/bin/python benchmarks/ranker_quality.py [--model production] [--limit N] [--no-full] [--precisions torch-fp32,fp32,int8]

1. Re-rank: each validation query's judged products are re-ordered by each
   scorer (BM25 over the whole catalog's statistics, the MiniLM bi-encoder,
   the cross-encoder at each precision), beside a random order (mean of 5), the
   floor: the judged lists are mostly relevant products. Each scorer's share
   of the gap from that floor to a perfect order is printed as gap_closed.
   Isolates the ranker.
2. Full catalog: the whole in-process graph (parser -> hybrid retriever over
   the "homedepot" index -> ranker -> diversifier at diversity 0) with the
   bi-encoder vs the cross-encoder ranker (each fused with the retriever's
   order, the default; and the cross-encoder's order alone), beside the
   retriever's order without a ranker and BM25 alone retrieving from the whole
   catalog. Needs `shopray index --catalog ../shared/data/homedepot/catalog.jsonl`.

NDCG@10 with gain = relevance - 1; unjudged products count 0. Validation
queries are those `shopray train ranker` held out (ranker_data.split_of).
Both protocols also print the cross-encoder's paired difference to BM25 and
the bi-encoder with a 95% bootstrap interval over queries.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from shopray.bench.relevance import BM25, paired_ci
from shopray.bench.report import print_command
from shopray.evaluation import evaluate, ndcg_at_k
from shopray.training.ranker.data import default_homedepot_dir, homedepot_split


def rerank_ndcg(judgments: dict, score_fn, k: int = 10) -> np.ndarray:
    """Per-query NDCG@k of each query's judged products ordered by ``score_fn``."""
    out = []
    for query, gains in judgments.items():
        if max(gains.values()) <= 0:
            continue
        pids = sorted(gains)
        s = np.asarray(score_fn(query, pids), dtype=float)
        out.append(ndcg_at_k([pids[i] for i in np.argsort(-s, kind="stable")], gains, k))
    return np.asarray(out)


def differences(per_query: dict[str, np.ndarray], system: str, baselines: tuple[str, ...]) -> dict:
    return {base: {"mean": round(float((per_query[system] - per_query[base]).mean()), 4), "ci95": paired_ci(per_query[system], per_query[base])} for base in baselines}


def full_catalog(val: dict, bm25: BM25, cross: dict, index: str) -> tuple[dict, dict[str, np.ndarray]]:
    """Protocol 2: each query parsed and retrieved once; every ranker re-orders the same candidates."""
    from tqdm import tqdm

    from shopray.api import SearchRequest
    from shopray.config import AppConfig, EmbeddingConfig, IndexConfig, RankerConfig
    from shopray.graph import SearchContext
    from shopray.pipeline import Pipeline
    from shopray.stages.rank.stage import Ranker

    base = AppConfig(index=IndexConfig(name=index), embedding=EmbeddingConfig(device="cpu"), ranker=RankerConfig(kind="biencoder"))
    pipeline = Pipeline.from_config(base)
    parser, retriever, bi_ranker, diversifier = (pipeline[key] for key in ("parse", "retrieve", "rank", "diversify"))
    scorers = {"biencoder": bi_ranker.scorer, **{f"crossencoder_{name}": scorer for name, scorer in cross.items()}}
    rankers = {name: (name, Ranker(scorer, base.ranker)) for name, scorer in scorers.items()}
    rankers["crossencoder_fp32_scorer_only"] = ("crossencoder_fp32", Ranker(cross["fp32"], base.ranker.model_copy(update={"retriever_weight": 0.0})))
    rankings: dict[str, dict[str, list[str]]] = {"bm25": {}, "retriever": {}} | {name: {} for name in rankers}
    for query in tqdm([q for q, g in val.items() if max(g.values()) > 0], desc="full catalog", unit="q"):
        ctx = retriever.run(parser.run(SearchContext(request=SearchRequest(query=query[:512], k=10, diversity=0))))
        head = bi_ranker.head(ctx.candidates)
        text = ctx.intent.keywords or ctx.request.query  # what the ranker scores against
        head_scores = {name: scorer.score_many([(text, head)])[0] for name, scorer in scorers.items()}
        rankings["bm25"][query] = bm25.search(query, 10)
        rankings["retriever"][query] = ctx.candidates.ids[:10]
        for name, (scorer_name, ranker) in rankers.items():
            ranked = diversifier.run(dataclasses.replace(ctx, candidates=ranker.rank(text, ctx.candidates, head_scores[scorer_name])))
            rankings[name][query] = ranked.candidates.ids[:10]
    full = {name: evaluate(val, lambda q, r=ranked: r[q], per_query=True) for name, ranked in rankings.items()}
    return full, {name: r.pop("per_query_ndcg") for name, r in full.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--model", default="production", help="cross-encoder: registry alias/version or a directory")
    ap.add_argument("--index", default="homedepot")
    ap.add_argument("--limit", type=int, default=None, help="first N validation queries only")
    ap.add_argument("--no-full", action="store_true", help="skip the full-catalog protocol")
    ap.add_argument("--precisions", default="torch-fp32,fp32,int8", help="cross-encoder precisions to score with, each on the backend ranker.backend: auto picks "
                    "for it, or with torch- in front on torch (bf16 wants AMX or AVX512-BF16); the first is the reference")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is faster than 2 on a busy shared 2-core box)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ns = ap.parse_args(argv)
    command = print_command(argv)

    import torch

    torch.set_num_threads(ns.threads)
    from shopray.config import EmbeddingConfig
    from shopray.embedding import shared_embedder
    from shopray.registry import resolve_model
    from shopray.stages.rank.cross_encoder import CrossEncoderScorer

    data = ns.data or default_homedepot_dir()
    if data is None:
        print("Home Depot data not found (../shared/data/homedepot): nothing to measure", file=sys.stderr)
        return 2
    _, val, titles = homedepot_split(data)
    val = {q: g for q, g in sorted(val.items()) if max(g.values()) > 0}
    if ns.limit:
        val = dict(list(val.items())[: ns.limit])
    model_dir = resolve_model("ranker", ns.model)
    results: dict = {"command": command, "model": str(model_dir), "val_queries": len(val)}
    t0 = time.perf_counter()

    bm25 = BM25(titles)
    embedder = shared_embedder(EmbeddingConfig(device="cpu"))
    # "torch-fp32" forces torch; a bare precision runs on what ranker.backend: auto picks for it.
    cross = {p: CrossEncoderScorer(model_dir, device="cpu", precision=p.removeprefix("torch-"), max_length=64, backend="torch" if p.startswith("torch-") else "auto")
             for p in ns.precisions.split(",")}

    def biencoder(query, pids):
        return embedder.encode([titles[p] for p in pids]) @ embedder.encode([query])[0]

    rng = np.random.default_rng(0)
    # The floor: judged lists are mostly relevant, so even a random order scores high on this protocol.
    per_query = {"random": np.mean([rerank_ndcg(val, lambda q, pids: rng.random(len(pids))) for _ in range(5)], axis=0)}
    per_query |= {"bm25": rerank_ndcg(val, bm25.scores), "biencoder": rerank_ndcg(val, biencoder)}
    for name, scorer in cross.items():
        per_query[f"crossencoder_{name}"] = rerank_ndcg(val, lambda q, pids, s=scorer: s.score(q, [titles[p] for p in pids]))
    rerank = {name: round(float(v.mean()), 4) for name, v in per_query.items()}
    results["rerank_ndcg@10"] = rerank
    floor = rerank["random"]
    results["rerank_gap_closed"] = {name: round((v - floor) / (1 - floor), 3) for name, v in rerank.items() if name != "random"}
    results["rerank_crossencoder_fp32_minus"] = differences(per_query, "crossencoder_fp32", ("bm25", "biencoder"))
    print(json.dumps({"rerank_ndcg@10": rerank, "gap_closed": results["rerank_gap_closed"], "crossencoder_fp32_minus": results["rerank_crossencoder_fp32_minus"], "seconds": round(time.perf_counter() - t0)}), flush=True)

    if not ns.no_full:
        results["full_catalog"], per_query_full = full_catalog(val, bm25, cross, ns.index)
        results["full_crossencoder_fp32_minus"] = differences(per_query_full, "crossencoder_fp32", ("bm25", "retriever", "biencoder", "crossencoder_fp32_scorer_only"))
    results["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(results, indent=2))
    if ns.json:
        ns.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
