"""Cross-encoders compared on the demo's synthetic validation queries, each precision as served: what a
speed-up (int8, a distilled student) costs in NDCG@10 on the catalog the bootstrap trains for.

    .venv/bin/python benchmarks/ranker_demo_quality.py --models TEACHER,STUDENT [--queries 7500] [--seed 4242]

The queries are `load_ranker_data(None, ...)`'s validation split (synthetic demo-catalog queries held out
by the same hash as every trainer's) with another seed than the bootstrap's training queries; each query's
graded products are re-ranked (``training.ranker.fit.val_ndcg``). Needs no data from ../shared.
"""

from __future__ import annotations

import argparse
import sys

from shopray.bench.report import markdown_table, print_command
from shopray.registry import model_label, resolve_model
from shopray.stages.rank.cross_encoder import CrossEncoderScorer
from shopray.training.ranker.data import load_ranker_data
from shopray.training.ranker.fit import val_ndcg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", required=True, help="comma-separated rankers: registry aliases, versions or directories; the first is the reference")
    ap.add_argument("--queries", type=int, default=7500, help="synthetic queries generated (about a fifth are validation queries)")
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--precisions", default="fp32,int8")
    ap.add_argument("--max-length", type=int, default=48)
    ns = ap.parse_args(argv)
    print_command(argv)
    val = load_ranker_data(None, synthetic_queries=ns.queries, seed=ns.seed).val
    precisions = ns.precisions.split(",")
    scores = {}
    for model in ns.models.split(","):
        path = resolve_model("ranker", model)
        for precision in precisions:
            scorer = CrossEncoderScorer(path, device="cpu", precision=precision, max_length=ns.max_length, batch_size=64)
            scores[model_label(path), precision] = val_ndcg(scorer, val)
    reference = {p: scores[next(iter(scores))[0], p] for p in precisions}
    rows = [(f"{name} ({p})", f"{v:.4f}", f"{100 * (v / reference[p] - 1):+.2f}%") for (name, p), v in scores.items()]
    print(f"{len(val)} validation queries")
    print(markdown_table(["model (precision)", "NDCG@10", "vs the first, same precision"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
