"""Ranker quality on the held-out Home Depot validation queries, two protocols, all baselines in one run.

    .venv/bin/python benchmarks/ranker_quality.py [--model production] [--limit N] [--no-full] [--no-int8]

1. Re-rank: each validation query's judged products are re-ordered by each
   scorer (BM25 over the whole catalog's statistics, the MiniLM bi-encoder,
   the cross-encoder fp32 and int8). Isolates the ranker.
2. Full catalog: the whole in-process graph (parser -> hybrid retriever over
   the "homedepot" index -> ranker -> diversifier at diversity 0) with the
   bi-encoder vs the cross-encoder ranker, plus BM25 alone retrieving from the
   whole catalog. Needs `shopray index --catalog ../shared/data/homedepot/catalog.jsonl`.

NDCG@10 with gain = relevance - 1; unjudged products count 0. Validation
queries are those `shopray train ranker` held out (ranker_data.split_of).
The re-rank protocol also prints the cross-encoder's paired difference to
BM25 and the bi-encoder with a 95% bootstrap interval over queries.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from shopray.evaluation import evaluate, ndcg_at_k  # noqa: E402
from shopray.training.ranker_data import default_homedepot_dir, homedepot_split  # noqa: E402


class BM25:
    def __init__(self, titles: dict[str, str]):
        import bm25s
        import Stemmer

        self.ids = list(titles)
        self.stemmer = Stemmer.Stemmer("english")
        self.index = {pid: i for i, pid in enumerate(self.ids)}
        self.model = bm25s.BM25()
        self.model.index(bm25s.tokenize([titles[p] for p in self.ids], stopwords="en", stemmer=self.stemmer, show_progress=False), show_progress=False)

    def _tokens(self, query: str) -> list[str]:
        import bm25s

        return bm25s.tokenize([query], stopwords="en", stemmer=self.stemmer, return_ids=False, show_progress=False)[0]

    def scores(self, query: str, pids: list[str]) -> np.ndarray:
        tokens = self._tokens(query)
        if not tokens:
            return np.zeros(len(pids))
        return self.model.get_scores(tokens)[[self.index[p] for p in pids]]

    def search(self, query: str, k: int = 10) -> list[str]:
        tokens = self._tokens(query)
        if not tokens:
            return []
        docs, scores = self.model.retrieve([tokens], k=k, show_progress=False)
        return [self.ids[d] for d, s in zip(docs[0], scores[0]) if s > 0]


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


def paired_ci(a: np.ndarray, b: np.ndarray, resamples: int = 2000, seed: int = 0) -> list[float]:
    """95% bootstrap interval of mean(a - b) over the same queries: a win is "clear" when it excludes 0."""
    rng = np.random.default_rng(seed)
    d = a - b
    means = d[rng.integers(0, len(d), (resamples, len(d)))].mean(axis=1)
    return [round(float(x), 4) for x in np.percentile(means, [2.5, 97.5])]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--model", default="production", help="cross-encoder: registry alias/version or a directory")
    ap.add_argument("--index", default="homedepot")
    ap.add_argument("--limit", type=int, default=None, help="first N validation queries only")
    ap.add_argument("--no-full", action="store_true", help="skip the full-catalog protocol")
    ap.add_argument("--no-int8", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is faster than 2 on a busy shared 2-core box)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ns = ap.parse_args(argv)

    import torch

    torch.set_num_threads(ns.threads)
    from shopray.config import AppConfig, EmbeddingConfig, IndexConfig, RankerConfig
    from shopray.cross_encoder import CrossEncoderScorer, resolve_model_dir
    from shopray.embedding import shared_embedder

    data = ns.data or default_homedepot_dir()
    if data is None:
        print("Home Depot data not found (../shared/data/homedepot): nothing to measure", file=sys.stderr)
        return 2
    _, val, titles = homedepot_split(data)
    val = {q: g for q, g in sorted(val.items()) if max(g.values()) > 0}
    if ns.limit:
        val = dict(list(val.items())[: ns.limit])
    model_dir = resolve_model_dir(ns.model)
    results: dict = {"command": " ".join([".venv/bin/python", "benchmarks/ranker_quality.py", *(argv if argv is not None else sys.argv[1:])]), "model": str(model_dir), "val_queries": len(val)}
    t0 = time.perf_counter()

    bm25 = BM25(titles)
    embedder = shared_embedder(EmbeddingConfig(device="cpu"))
    cross = {"fp32": CrossEncoderScorer(model_dir, device="cpu", max_length=64)}
    if not ns.no_int8:
        cross["int8"] = CrossEncoderScorer(model_dir, device="cpu", quantize="int8", max_length=64)

    def biencoder(query, pids):
        return embedder.encode([titles[p] for p in pids]) @ embedder.encode([query])[0]

    per_query = {"bm25": rerank_ndcg(val, bm25.scores), "biencoder": rerank_ndcg(val, biencoder)}
    for name, scorer in cross.items():
        per_query[f"crossencoder_{name}"] = rerank_ndcg(val, lambda q, pids, s=scorer: s.score(q, [titles[p] for p in pids]))
    rerank = {name: round(float(v.mean()), 4) for name, v in per_query.items()}
    results["rerank_ndcg@10"] = rerank
    results["rerank_crossencoder_fp32_minus"] = {
        base: {"mean": round(float((per_query["crossencoder_fp32"] - per_query[base]).mean()), 4), "ci95": paired_ci(per_query["crossencoder_fp32"], per_query[base])}
        for base in ("bm25", "biencoder")
    }
    print(json.dumps({"rerank_ndcg@10": rerank, "crossencoder_fp32_minus": results["rerank_crossencoder_fp32_minus"], "seconds": round(time.perf_counter() - t0)}), flush=True)

    if not ns.no_full:
        from shopray.api import SearchRequest
        from shopray.pipeline import Pipeline
        from shopray.ranker import Ranker

        base = AppConfig(index=IndexConfig(name=ns.index), embedding=EmbeddingConfig(device="cpu"), ranker=RankerConfig(kind="biencoder"))
        pipeline = Pipeline.from_config(base)
        rankers = {"biencoder": pipeline.stages[2]}
        for name, scorer in cross.items():
            rankers[f"crossencoder_{name}"] = Ranker(scorer, base.ranker.model_copy(update={"kind": "crossencoder"}))
        full = {"bm25": evaluate(val, lambda q: bm25.search(q, 10))}
        for name, ranker in rankers.items():
            graph = Pipeline([pipeline.stages[0], pipeline.stages[1], ranker, pipeline.stages[3]])
            full[name] = evaluate(val, lambda q, g=graph: [r.product_id for r in g.search(SearchRequest(query=q[:512], k=10, diversity=0)).results], progress=True)
            print(json.dumps({name: full[name]}), flush=True)
        results["full_catalog"] = full
    results["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(results, indent=2))
    if ns.json:
        ns.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
