"""What the ranker speed benchmarks serve and send: a cross-encoder to time and realistic ranker requests."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from shopray.api import SearchRequest
from shopray.catalog.demo import generate_demo_catalog
from shopray.domain import CandidateSet, Intent
from shopray.graph import SearchContext
from shopray.registry import ModelNotFound, resolve_model
from shopray.training.ranker.data import default_homedepot_dir, homedepot_split, synthetic_groups
from shopray.training.ranker.fit import init_cross_encoder


def cross_encoder_dir(ref: str) -> Path:
    """The registry's model ``ref`` names, or a fresh-head MiniLM cross-encoder: speed does not depend on training."""
    try:
        return resolve_model("ranker", ref)
    except ModelNotFound:
        print(f"no ranker model {ref!r} in the registry: timing a fresh-head MiniLM cross-encoder", file=sys.stderr)
        return init_cross_encoder(tempfile.mkdtemp(prefix="ce-init-"))


def ranker_contexts(n: int, top_n: int, seed: int = 0) -> list[SearchContext]:
    """Ranker inputs: a real validation query and ``top_n`` random catalog titles (Home Depot when present, else demo)."""
    rng = np.random.default_rng(seed)
    data = default_homedepot_dir()
    if data is not None:
        _, val, catalog = homedepot_split(data)
        titles = list(catalog.items())
        val_queries = sorted(val)
        queries = [val_queries[i] for i in rng.choice(len(val_queries), n)]
    else:
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
