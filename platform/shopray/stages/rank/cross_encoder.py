"""Cross-encoder relevance scorer: query and product title read together by one MiniLM.

The model is a Hugging Face ``BertForSequenceClassification`` with one output,
initialised from the packaged all-MiniLM-L6-v2 encoder plus a fresh scoring head
and fine-tuned by ``shopray train ranker`` (``shopray.training.ranker``). Scores are
``sigmoid(logit)``: an estimate of graded relevance in [0, 1], on the same scale
as the bi-encoder's cosine so the ranker can add the session term to either.

Placement, precision and runtime follow the hardware, with one code path: CUDA
in fp16 when a GPU is visible; on CPU bf16 in torch where the cores multiply bf16
natively (AMX or AVX512-BF16: about 2.5x the pairs/s of fp32 for no measurable
NDCG, README "Ranker"), else int8 (dynamic quantization of the linear layers) on
ONNX Runtime (``shopray.onnx_runtime``), which also runs fp32 when asked.
"""

from __future__ import annotations

import logging
import threading
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from shopray.config import Backend
from shopray.domain import CandidateSet
from shopray.embedding import Precision, resolve_device, resolve_precision
from shopray.onnx_runtime import OnnxForward, export, resolve_backend
from shopray.registry import model_label

log = logging.getLogger(__name__)

VERSION_PREFIX = "crossencoder:"  # a scorer version: crossencoder:<registry version or directory name>:<dtype>


def model_of(scorer_version: str) -> str | None:
    """The cross-encoder (registry version or directory name) a scorer version names; None for any other scorer."""
    return scorer_version[len(VERSION_PREFIX):].rsplit(":", 1)[0] if scorer_version.startswith(VERSION_PREFIX) else None


class CrossEncoderScorer:
    """Scores (query, text) pairs; safe to call from several threads."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str = "auto",
        precision: Precision = "auto",
        max_length: int = 64,
        batch_size: int = 64,
        num_threads: int | None = None,
        backend: Backend = "auto",
        onnx_cache: Path | None = None,
    ):
        """``onnx_cache``: where the ONNX export goes (default: shopray's home, ``onnx_runtime.cache_dir``)."""
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if num_threads:
            torch.set_num_threads(num_threads)
        self.model_dir = Path(model_dir)
        self.max_length, self.batch_size = max_length, batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(self.model_dir, local_files_only=True)
        model.eval()
        # int8 runs on CPU only, so it decides the device when the config leaves it to the hardware.
        self.device = "cpu" if precision == "int8" and device == "auto" else resolve_device(device)
        self.dtype = ranker_precision(precision, self.device)
        self.backend = resolve_backend(backend, self.device, self.dtype)
        self.version = f"{VERSION_PREFIX}{model_label(self.model_dir)}:{arithmetic(self.backend, self.dtype)}"
        self._lock = threading.Lock()
        self.onnx: OnnxForward | None = None
        if self.backend == "onnx":
            example = next(self.batches(self.encode(["query"], ["title"])))[1]
            self.onnx = OnnxForward(export(model, self.model_dir, self.dtype, example, onnx_cache), num_threads)
            self.model = None  # the session holds the weights now
            return
        if self.dtype == "int8":
            with warnings.catch_warnings():
                # torch deprecates its quantized tensors in favour of torchao, which is not installed;
                # the eager dynamic-quantized Linear still works in this pinned torch.
                warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*deprecated", category=UserWarning)
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        elif self.dtype != "fp32":
            model = model.to(torch.float16 if self.dtype == "fp16" else torch.bfloat16)
        self.model = model.to(self.device)

    @classmethod
    def from_model(cls, model, tokenizer, *, version: str, max_length: int = 64, batch_size: int = 64) -> "CrossEncoderScorer":
        """Wrap a model already in memory (training evaluates its own weights without a save/load)."""
        self = cls.__new__(cls)
        self.model_dir, self.model, self.tokenizer = None, model, tokenizer
        self.max_length, self.batch_size = max_length, batch_size
        self.device = str(next(model.parameters()).device)
        self.dtype, self.version, self.backend, self.onnx = "fp32", version, "torch", None
        self._lock = threading.Lock()
        return self

    def encode(self, queries: Sequence[str], texts: Sequence[str]) -> tuple[list[list[int]], list[list[int]]]:
        """(token ids, segment ids) of each pair, truncated to max_length, unpadded."""
        enc = self.tokenizer(list(queries), list(texts), truncation="longest_first", max_length=self.max_length, padding=False)
        return enc["input_ids"], enc["token_type_ids"]

    def batches(self, encoded: tuple[list[list[int]], list[list[int]]], batch_size: int | None = None):
        """(positions, tensors) per forward pass over pairs sorted by length, so padding stays small."""
        import torch

        ids, segments = encoded
        size = batch_size or self.batch_size
        order = np.argsort([len(x) for x in ids], kind="stable")
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            width = max(len(ids[i]) for i in chunk)
            input_ids = np.full((len(chunk), width), self.tokenizer.pad_token_id, dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            types = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                n = len(ids[i])
                input_ids[row, :n] = ids[i]
                mask[row, :n] = 1
                types[row, :n] = segments[i]
            tensors = {
                "input_ids": torch.from_numpy(input_ids),
                "attention_mask": torch.from_numpy(mask),
                "token_type_ids": torch.from_numpy(types),
            }
            yield chunk, tensors

    def score_pairs(self, queries: Sequence[str], texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Relevance in [0, 1] for each (query, text) pair, in input order."""
        return 1.0 / (1.0 + np.exp(-self.logits(queries, texts, batch_size)))

    def logits(self, queries: Sequence[str], texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """The model's raw output for each pair, in input order: what a distilled student learns to match."""
        import torch

        if len(queries) != len(texts):
            raise ValueError(f"{len(queries)} queries but {len(texts)} texts")
        out = np.zeros(len(texts), dtype=np.float32)
        if not texts:
            return out
        encoded = self.encode(queries, texts)
        # torch modules are not re-entrant across threads; Serve may call us from several.
        with self._lock, torch.inference_mode():
            for chunk, tensors in self.batches(encoded, batch_size):
                if self.onnx is not None:
                    out[chunk] = self.onnx(tensors)[:, 0]
                    continue
                out[chunk] = self.model(**{k: v.to(self.device) for k, v in tensors.items()}).logits[:, 0].float().cpu().numpy()
        return out

    def score(self, query: str, titles: Sequence[str]) -> np.ndarray:
        return self.score_pairs([query] * len(titles), titles)

    def score_many(self, requests: Sequence[tuple[str, CandidateSet]]) -> list[np.ndarray]:
        """Several requests' (query, candidates) in shared forward passes; one score array each."""
        queries = [query for query, cands in requests for _ in range(len(cands))]
        texts = [pair_text(p) for _, cands in requests for p in cands.payloads]
        flat = self.score_pairs(queries, texts)
        bounds = np.cumsum([0] + [len(cands) for _, cands in requests])
        return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def ranker_precision(precision: Precision, device: str) -> str:
    """What ``auto`` means for the cross-encoder: as for the encoder (fp16 on a GPU, bf16 on CPUs that multiply it
    natively), but int8 rather than fp32 on other CPUs. There, on ONNX Runtime, int8 scored 1.6x fp32's pairs/s and
    NDCG@10 moved by 0.1% relative (demo validation 0.9815 against 0.9823; Home Depot re-ranking 0.9388 against 0.9396)."""
    resolved = resolve_precision(precision, device)
    return "int8" if precision == "auto" and resolved == "fp32" else resolved


def arithmetic(backend: str, dtype: str) -> str:
    """The last part of a scorer version: the dtype, after ``onnx-`` on ONNX Runtime."""
    return f"onnx-{dtype}" if backend == "onnx" else dtype


def served_arithmetic(precision: Precision = "auto", device: str = "cpu", backend: Backend = "auto") -> str:
    """The last part of the version a scorer so configured reports here, e.g. ``onnx-int8``."""
    dtype = ranker_precision(precision, device)
    return arithmetic(resolve_backend(backend, device, dtype), dtype)


def pair_text(payload: dict) -> str:
    """What the cross-encoder reads of a product: its title (training saw titles only)."""
    return str(payload.get("title") or "")
