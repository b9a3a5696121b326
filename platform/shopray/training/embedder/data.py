"""Training data for the retriever's encoder: judged queries of one shop, with hard negatives.

Queries are split by the same salted hash as the ranker's (``split_of``), so
the encoder never sees a validation query the ranker holds out, and the other
way round. Each training query yields its judged positives (gain >= ``min_gain``)
and negatives: products judged poor for it, then products the current encoder
ranks near the top for it that nobody judged. Ranks below ``skip`` are not
mined: judgments are sparse, and the very top of an unjudged list is as likely
relevant as not.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from shopray.evaluation import Judgments
from shopray.training.ranker.data import split_of


@dataclass
class Query:
    text: str
    positives: list[str]
    negatives: list[str]


def split_judgments(judgments: Judgments, titles: dict[str, str]) -> tuple[Judgments, Judgments]:
    """(train, validation) judgments, restricted to products the catalog has."""
    known = {q: {p: g for p, g in gains.items() if p in titles} for q, gains in judgments.items()}
    known = {q: gains for q, gains in known.items() if gains}
    return ({q: g for q, g in known.items() if split_of(q) == "train"}, {q: g for q, g in known.items() if split_of(q) == "val"})


def dense_top(query_vectors: np.ndarray, catalog_vectors: np.ndarray, k: int, chunk: int = 256) -> np.ndarray:
    """Row indices of the ``k`` nearest catalog vectors per query (cosine: the vectors are normalised), best first."""
    out = np.empty((len(query_vectors), k), dtype=np.int64)
    for start in range(0, len(query_vectors), chunk):
        sims = query_vectors[start : start + chunk] @ catalog_vectors.T
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1)
        out[start : start + chunk] = np.take_along_axis(top, order, axis=1)
    return out


def training_queries(train: Judgments, ids: list[str], mined: np.ndarray, *, min_gain: float, max_gain: float, skip: int) -> list[Query]:
    """One Query per judged query with a positive; ``mined[i]`` is the encoder's top rows for the i-th query of ``train``."""
    queries = []
    for (text, gains), rows in zip(train.items(), mined):
        positives = sorted(p for p, g in gains.items() if g >= min_gain)
        if not positives:
            continue
        judged_poor = sorted(p for p, g in gains.items() if g <= max_gain)
        unjudged = [ids[r] for r in rows[skip:] if ids[r] not in gains]
        queries.append(Query(text, positives, judged_poor + unjudged))
    return queries


def epoch_triples(queries: list[Query], rng: random.Random) -> list[tuple[str, str, str]]:
    """(query, positive id, negative id): one per query per epoch, so no query meets its own positive as an in-batch negative."""
    triples = [(q.text, rng.choice(q.positives), rng.choice(q.negatives)) for q in queries if q.negatives]
    rng.shuffle(triples)
    return triples
