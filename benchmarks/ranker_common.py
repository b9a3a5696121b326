"""Shared by the ranker Serve benchmarks: a model to serve and realistic ranker requests."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np


def model_dir(ref: str) -> Path:
    """The registry model, or a fresh-head MiniLM cross-encoder: serving speed does not depend on training."""
    from shopray.cross_encoder import init_cross_encoder, resolve_model_dir

    try:
        return resolve_model_dir(ref)
    except (KeyError, FileNotFoundError):
        print(f"no model {ref!r} in the registry: serving a fresh-head MiniLM cross-encoder", file=sys.stderr)
        return init_cross_encoder(tempfile.mkdtemp(prefix="ce-init-"))


def contexts(n: int, top_n: int, seed: int = 0) -> list:
    """Ranker inputs: a real validation query and top_n random catalog titles (Home Depot when present, else demo)."""
    from shopray.api import SearchRequest
    from shopray.models import CandidateSet, Intent
    from shopray.pipeline import SearchContext
    from shopray.training.ranker_data import default_homedepot_dir, homedepot_split, synthetic_groups

    rng = np.random.default_rng(seed)
    data = default_homedepot_dir()
    if data is not None:
        _, val, catalog = homedepot_split(data)
        titles = list(catalog.items())
        val_queries = sorted(val)
        queries = [val_queries[i] for i in rng.choice(len(val_queries), n)]
    else:
        from shopray.catalog.demo import generate_demo_catalog

        titles = [(p.product_id, p.title) for p in generate_demo_catalog(n=4000, seed=seed)]
        queries = [g.query for g in synthetic_groups(n, seed=seed)]
    out = []
    for query in queries:
        chosen = [titles[i] for i in rng.choice(len(titles), top_n, replace=False)]
        cands = CandidateSet(
            ids=[pid for pid, _ in chosen],
            payloads=[{"product_id": pid, "title": t} for pid, t in chosen],
            scores=np.arange(top_n, 0, -1.0),
            embeddings=np.zeros((top_n, 384), np.float32),
        )
        out.append(SearchContext(request=SearchRequest(query=query), intent=Intent(keywords=query), candidates=cands))
    return out


def percentile_ms(latencies: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(latencies) * 1000, q)), 1) if latencies else float("nan")
