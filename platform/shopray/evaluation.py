"""Offline relevance evaluation: NDCG@k, recall@k and MRR against graded judgments.

Gains are ``relevance - min grade`` of the judgment file; unjudged products
count as 0. A product is relevant (for recall and MRR) when its gain is > 0.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

Judgments = dict[str, dict[str, float]]  # query -> product_id -> gain


def load_judgments(path: str | Path) -> Judgments:
    rows: list[tuple[str, str, float]] = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            rows.append((row["query"], str(row["product_id"]), float(row["relevance"])))
    if not rows:
        raise ValueError(f"{path} has no judgments")
    floor = min(r for _, _, r in rows)
    judgments: Judgments = defaultdict(dict)
    for query, pid, rel in rows:
        judgments[query][pid] = rel - floor
    return dict(judgments)


def intent_gain(product: dict, intent) -> int:
    """Synthetic judgment of a product for a query whose true intent is known: 2 when it matches every field the
    intent names (brand, category, color, price range), 1 when it matches the category (or the brand, when no
    category is named), else 0."""
    checks = {}
    for f in ("brand", "category", "color"):
        if getattr(intent, f) is not None:
            checks[f] = product.get(f) == getattr(intent, f)
    if intent.price_min is not None or intent.price_max is not None:
        price = product.get("price")
        checks["price"] = price is not None and (intent.price_min is None or price >= intent.price_min) and (intent.price_max is None or price <= intent.price_max)
    if checks and all(checks.values()):
        return 2
    anchor = "category" if "category" in checks else "brand" if "brand" in checks else None
    return 1 if anchor and checks[anchor] else 0


def dcg(gains: Iterable[float]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ndcg_at_k(ranked: list[str], gains: dict[str, float], k: int) -> float:
    ideal = dcg(sorted(gains.values(), reverse=True)[:k])
    if ideal <= 0:
        return 0.0
    return dcg(gains.get(pid, 0.0) for pid in ranked[:k]) / ideal


def recall_at_k(ranked: list[str], gains: dict[str, float], k: int) -> float:
    relevant = {pid for pid, g in gains.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def reciprocal_rank(ranked: list[str], gains: dict[str, float]) -> float:
    for i, pid in enumerate(ranked):
        if gains.get(pid, 0.0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def evaluate(judgments: Judgments, search: Callable[[str], list[str]], k: int = 10, progress: bool = False, per_query: bool = False) -> dict:
    """Run ``search`` for every judged query (skipping queries with no positive gain).

    ``per_query`` adds each query's NDCG, in judgment order, for paired comparisons between systems.
    """
    queries = [q for q, g in judgments.items() if max(g.values()) > 0]
    if progress:
        from tqdm import tqdm

        queries = tqdm(queries, desc="eval", unit="q")
    ndcg, recall, rr = [], [], []
    for query in queries:
        ranked = search(query)
        gains = judgments[query]
        ndcg.append(ndcg_at_k(ranked, gains, k))
        recall.append(recall_at_k(ranked, gains, k))
        rr.append(reciprocal_rank(ranked[:k], gains))
    result = {
        "queries": len(ndcg),
        "k": k,
        f"ndcg@{k}": round(float(np.mean(ndcg)), 4) if ndcg else 0.0,
        f"recall@{k}": round(float(np.mean(recall)), 4) if recall else 0.0,
        "mrr": round(float(np.mean(rr)), 4) if rr else 0.0,
    }
    if per_query:
        result["per_query_ndcg"] = np.asarray(ndcg)
    return result
