"""Relevance vs diversity as `diversity` goes 0 -> 1, for MMR, DPP and caps.

    .venv/bin/python benchmarks/diversity_tradeoff.py --dataset demo        # needs the demo index
    .venv/bin/python benchmarks/diversity_tradeoff.py --dataset homedepot   # needs ../shared + its index

Candidates come once per query from the in-process graph (parser, retriever,
ranker); each method then re-selects the top 10 at every diversity level.
demo: graded relevance from the query's source product (3: same category,
brand and color; 2: same category and brand or color; 1: same category).
homedepot: relevance from the dev judgments (gain = grade - 1); it has no
categories, so coverage is reported only for the demo catalog.
Writes a PNG and a markdown table into artifacts/.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

from shopray.bench.report import markdown_table, print_command

REPO = Path(__file__).resolve().parents[1]
HOMEDEPOT = REPO.parent / "shared" / "data" / "homedepot" / "judgments_dev.csv"
LEVELS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
METHODS = ["mmr", "dpp", "caps"]


def demo_queries(n: int, seed: int = 5) -> list[tuple[str, dict]]:
    """(query, source product payload) pairs drawn from the demo catalog."""
    from shopray.catalog.demo import generate_demo_catalog

    rng = random.Random(seed)
    products = [p for p in generate_demo_catalog() if p.category]
    out = []
    for p in rng.sample(products, n):
        leaf = p.category.split(" > ")[-1].lower()
        out.append((rng.choice([leaf, f"{p.color or ''} {leaf}".strip(), f"{leaf} gift", f"best {leaf}"]), p.payload()))
    return out


def demo_gain(source: dict, payload: dict) -> float:
    if payload.get("category") != source["category"]:
        return 0.0
    same = (payload.get("brand") == source.get("brand")) + (payload.get("color") == source.get("color"))
    return float(1 + same)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["demo", "homedepot"], default="demo")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--ranker", choices=["auto", "biencoder", "crossencoder"], default="auto", help="ranker kind (auto: the production cross-encoder when the registry has one)")
    ns = parser.parse_args(argv)
    cmd = print_command(argv)

    from shopray.api import SearchRequest
    from shopray.config import AppConfig, IndexConfig, RankerConfig, RetrieverConfig
    from shopray.evaluation import dcg, load_judgments
    from shopray.graph import SearchContext
    from shopray.pipeline import Pipeline
    from shopray.stages.diversify.methods import diversify
    from shopray.stages.diversify.metrics import coverage, intra_list_diversity

    if ns.dataset == "homedepot":
        if not HOMEDEPOT.exists():
            print(f"skipped: {HOMEDEPOT} not found")
            return 0
        judgments = load_judgments(HOMEDEPOT)
        queries = [(q, g) for q, g in list(judgments.items())[: ns.queries] if max(g.values()) > 0]
    else:
        queries = demo_queries(ns.queries)
    config = AppConfig(index=IndexConfig(name=ns.dataset, qdrant_url=None), retriever=RetrieverConfig(candidates=50), ranker=RankerConfig(kind=ns.ranker))
    upstream = Pipeline.from_config(config, keys=("parse", "retrieve", "rank"))  # the diversifier is what varies

    sets = []
    for query, truth in queries:
        c = upstream.run(SearchContext(request=SearchRequest(query=query[:512], k=ns.k))).ctx.candidates
        gains = [demo_gain(truth, p) for p in c.payloads] if ns.dataset == "demo" else [truth.get(pid, 0.0) for pid in c.ids]
        # demo: the best the candidate pool allows; homedepot: every judged product
        ideal = gains if ns.dataset == "demo" else list(truth.values())
        sets.append((c, np.array(gains), ideal))

    rows = []
    for method in METHODS:
        for level in LEVELS:
            ndcg, ild, cov = [], [], []
            for c, gains, ideal in sets:
                order = diversify(method, c.scores, c.embeddings, c.payloads, ns.k, level)
                ideal_dcg = dcg(sorted(ideal, reverse=True)[: ns.k])
                ndcg.append(dcg(gains[order]) / ideal_dcg if ideal_dcg else 0.0)
                ild.append(intra_list_diversity(c.embeddings[order]))
                cov.append(coverage([c.payloads[i] for i in order], "category", k=ns.k))
            rows.append({"method": method, "diversity": level, "ndcg@10": float(np.mean(ndcg)), "ild": float(np.mean(ild)), "category_coverage": float(np.mean(cov))})

    base = {r["method"]: r for r in rows if r["diversity"] == 0.0}
    table, best = [], None
    for r in rows:
        b = base[r["method"]]
        r["ild_gain"] = r["ild"] / b["ild"] - 1 if b["ild"] else 0.0
        r["ndcg_change"] = r["ndcg@10"] / b["ndcg@10"] - 1 if b["ndcg@10"] else 0.0
        if r["ndcg_change"] >= -0.02 and (best is None or r["ild_gain"] > best["ild_gain"]):
            best = r
        cov = f"{r['category_coverage']:.3f}" if ns.dataset == "demo" else "n/a"
        table.append([r["method"], f"{r['diversity']:.1f}", f"{r['ndcg@10']:.4f}", f"{r['ild']:.4f}", cov, f"{r['ild_gain']:+.1%}", f"{r['ndcg_change']:+.1%}"])
    lines = [
        f"dataset {ns.dataset}, {len(sets)} queries, k={ns.k}, ranker {upstream['rank'].scorer.version}",
        "",
        markdown_table(["method", "diversity", "NDCG@10", "ILD", "category coverage", "ILD gain", "NDCG change"], table),
        "",
        f"largest ILD gain with NDCG loss <= 2%: {best['method']} at diversity {best['diversity']:.1f}: ILD {best['ild_gain']:+.1%}, NDCG {best['ndcg_change']:+.1%}",
        f"command: {cmd}",
    ]
    out = REPO / "artifacts"
    out.mkdir(exist_ok=True)
    (out / f"diversity-tradeoff-{ns.dataset}.md").write_text("\n".join(lines) + "\n")
    (out / f"diversity-tradeoff-{ns.dataset}.json").write_text(json.dumps(rows, indent=2))
    plot(rows, ns.dataset, out / f"diversity-tradeoff-{ns.dataset}.png")
    print("\n".join(lines[:-1]))  # the command line was printed first
    return 0


def plot(rows: list[dict], dataset: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("ild", "intra-list diversity")] + ([("category_coverage", "category coverage")] if dataset == "demo" else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels):
        for method in METHODS:
            pts = [r for r in rows if r["method"] == method]
            ax.plot([r[key] for r in pts], [r["ndcg@10"] for r in pts], marker="o", label=method)
            for r in pts[::5]:
                ax.annotate(f"{r['diversity']:.1f}", (r[key], r["ndcg@10"]), fontsize=7)
        ax.set_xlabel(label)
        ax.set_ylabel("NDCG@10")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(f"relevance vs diversity ({dataset}); labels: diversity knob")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
