"""The cross-encoder on ONNX Runtime, for CPUs without native bf16.

On an AVX2-only AMD EPYC (2 cores, batch 64, max_length 48; benchmarks/ranker_throughput.py)
the bootstrap cross-encoder scored 218 pairs/s in torch fp32, 240 on ONNX Runtime in fp32
with the same scores, and 383 in int8 (dynamic quantization, per channel). The model is exported
once per model, precision and runtime version, into a cache under shopray's home,
and loaded from there by every replica after.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from shopray.config import default_home

log = logging.getLogger(__name__)

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17


def cache_dir() -> Path:
    return default_home() / "cache" / "onnx"


def _key(model_dir: Path, precision: str) -> str:
    """Changes when the weights, the precision or the exporting and running versions do."""
    import onnxruntime
    import torch

    weights = sorted(p for p in model_dir.iterdir() if p.suffix in (".safetensors", ".bin"))
    stamp = [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in weights]
    text = "|".join([str(model_dir.resolve()), *stamp, precision, str(OPSET), torch.__version__, onnxruntime.__version__])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def export(model, model_dir: Path, precision: str, example: dict, cache: Path | None = None) -> Path:
    """The ONNX file for ``model`` (loaded from ``model_dir``) in ``precision`` (fp32 or int8), exported on first use;
    ``example`` is one batch of the scorer's input tensors. Written under a temporary name and renamed, so replicas
    exporting at once never read half a file."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    name = f"{model_dir.name}-{precision}-{_key(model_dir, precision)}.onnx"
    folders = (cache or cache_dir(), Path(tempfile.gettempdir()) / "shopray-onnx")  # a read-only home still serves
    for folder in folders:
        if (folder / name).exists():
            return folder / name
    cache = next((f for f in folders if _writable(f)), folders[-1])
    path = cache / name
    with tempfile.TemporaryDirectory(dir=cache) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python control flow, fixed here by dynamic axes
        fp32 = Path(tmp) / "model.onnx"
        torch.onnx.export(model, tuple(example[k] for k in INPUTS), str(fp32), input_names=list(INPUTS), output_names=["logits"],
                          dynamic_axes={**{k: {0: "pairs", 1: "tokens"} for k in INPUTS}, "logits": {0: "pairs"}}, opset_version=OPSET, dynamo=False)
        done = fp32
        if precision == "int8":
            done = Path(tmp) / "model-int8.onnx"
            quantize_dynamic(str(fp32), str(done), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(done, path)
    log.info("exported %s (%s) to %s", model_dir, precision, path)
    return path


class OnnxForward:
    """One ONNX Runtime session: logits for a batch of the scorer's input tensors. Thread-safe, as sessions are."""

    def __init__(self, path: Path, num_threads: int | None = None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = num_threads or 0  # 0: ONNX Runtime's own choice, one per core
        options.inter_op_num_threads = 1
        self.path = path
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, tensors: dict) -> np.ndarray:
        feed = {k: tensors[k].numpy() for k in INPUTS}
        return self.session.run(["logits"], feed)[0][:, 0]
