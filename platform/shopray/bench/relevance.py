"""Relevance protocol shared by the relevance benchmarks: a BM25 baseline over the same product text, and paired intervals.

Full-catalog protocol: each system retrieves from the whole catalog; NDCG@k with
gain = relevance - lowest grade, unjudged products counted as 0.
"""

from __future__ import annotations

import numpy as np
import yaml


class BM25:
    """bm25s (Lucene BM25, English stemming and stopwords) over each product's text: the baseline every row is compared with."""

    def __init__(self, texts: dict[str, str]):
        import bm25s
        import Stemmer

        self.ids = list(texts)
        self.stemmer = Stemmer.Stemmer("english")
        self.index = {pid: i for i, pid in enumerate(self.ids)}
        self.model = bm25s.BM25()
        self.model.index(bm25s.tokenize([texts[p] for p in self.ids], stopwords="en", stemmer=self.stemmer, show_progress=False), show_progress=False)

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


def _resamples(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, (resamples, n))


def paired_ci(a: np.ndarray, b: np.ndarray, resamples: int = 2000, seed: int = 0) -> list[float]:
    """95% bootstrap interval of mean(a - b) over the same queries: a win is "clear" when it excludes 0."""
    means = (a - b)[_resamples(len(a), resamples, seed)].mean(axis=1)
    return [round(float(x), 4) + 0.0 for x in np.percentile(means, [2.5, 97.5])]  # + 0.0: no "-0.0"


def ratio_ci(a: np.ndarray, b: np.ndarray, resamples: int = 2000, seed: int = 0) -> list[float]:
    """95% bootstrap interval of mean(a) / mean(b), queries resampled in pairs."""
    idx = _resamples(len(a), resamples, seed)
    ratios = a[idx].mean(axis=1) / np.maximum(b[idx].mean(axis=1), 1e-12)
    return [round(float(x), 3) for x in np.percentile(ratios, [2.5, 97.5])]


def config_row(spec: str, index: str) -> tuple[str, dict]:
    """``NAME[=dotted.path: yaml; ...]``: a row's name and its AppConfig overrides on the index ``index`` at diversity 0."""
    name, _, overrides = spec.partition("=")
    config: dict = {"index": {"name": index}, "diversifier": {"default_diversity": 0.0}}
    for assignment in filter(None, (a.strip() for a in overrides.split(";"))):
        path, _, value = assignment.partition(":")
        node = config
        *parents, leaf = path.strip().split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = yaml.safe_load(value)
    return name.strip(), config
