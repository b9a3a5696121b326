"""Models on ONNX Runtime, for CPUs without native bf16: the cross-encoder and the dense encoder.

On an AVX2-only AMD EPYC (2 cores) the bootstrap cross-encoder scored 218 pairs/s in torch fp32, 240 on
ONNX Runtime in fp32 with the same scores, and 383 in int8 (dynamic quantization, per channel; batch 64,
max_length 48, benchmarks/ranker_throughput.py); the encoder embedded one query in 6.5 ms against 25-28 ms
in torch, and titles in batches of 32 at 144/s against 115/s, the same vectors within 1e-6. A model is
exported once per model, role, precision and runtime version, into a cache under shopray's home, and loaded
from there by every replica after.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from shopray.config import Backend, default_home

log = logging.getLogger(__name__)

OPSET = 17


def cache_dir() -> Path:
    return default_home() / "cache" / "onnx"


def resolve_backend(backend: Backend, device: str, dtype: str) -> str:
    """What ``auto`` means: ONNX Runtime on CPU in fp32 and int8 (cores without native bf16), torch on a GPU and for
    bf16. Refuses what ONNX Runtime's CPU build cannot run well."""
    if backend == "auto":
        return "onnx" if device == "cpu" and dtype in ("fp32", "int8") else "torch"
    if backend == "onnx" and (device != "cpu" or dtype not in ("fp32", "int8")):
        raise ValueError(f"the onnx backend runs fp32 or int8 on CPU, not {dtype} on {device}: use backend torch")
    return backend


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


def export(model, model_dir: Path, precision: str, example: dict, cache: Path | None = None, output: str = "logits") -> Path:
    """The ONNX file for ``model`` (loaded from ``model_dir``) in ``precision`` (fp32 or int8), exported on first use.
    ``example`` is one batch of the model's input tensors by name, in the order ``model`` takes them positionally;
    ``output`` names what it returns (its role: a model directory may serve as more than one). Written under a
    temporary name and renamed, so replicas exporting at once never read half a file."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    name = f"{model_dir.name}-{output}-{precision}-{_key(model_dir, precision)}.onnx"
    folders = (cache or cache_dir(), Path(tempfile.gettempdir()) / "shopray-onnx")  # a read-only home still serves
    for folder in folders:
        if (folder / name).exists():
            return folder / name
    cache = next((f for f in folders if _writable(f)), folders[-1])
    path = cache / name
    inputs = list(example)
    with tempfile.TemporaryDirectory(dir=cache) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python control flow, fixed here by dynamic axes
        fp32 = Path(tmp) / "model.onnx"
        torch.onnx.export(model, tuple(example[k] for k in inputs), str(fp32), input_names=inputs, output_names=[output],
                          dynamic_axes={**{k: {0: "rows", 1: "tokens"} for k in inputs}, output: {0: "rows"}}, opset_version=OPSET, dynamo=False)
        done = fp32
        if precision == "int8":
            done = Path(tmp) / "model-int8.onnx"
            quantize_dynamic(str(fp32), str(done), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(done, path)
    log.info("exported %s (%s, %s) to %s", model_dir, output, precision, path)
    return path


class OnnxForward:
    """One ONNX Runtime session: its output for a batch of input arrays (numpy or torch) by name. Thread-safe, as
    sessions are."""

    def __init__(self, path: Path, num_threads: int | None = None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = num_threads or 0  # 0: ONNX Runtime's own choice, one per core
        options.inter_op_num_threads = 1
        # Idle workers sleep instead of spinning: a search runs the encoder, then the cross-encoder, on the same few
        # cores, and the encoder's spinning threads took them from the cross-encoder. In one process (rule parser,
        # the shipped ranker, 2 AVX2 cores) a search took 106 ms with spinning off against 154 ms with it on (retrieve
        # 14 against 34, rank 89 against 117); embedding titles and scoring pairs in a loop ran at the same rates.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = path
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, tensors: dict) -> np.ndarray:
        feed = {k: np.asarray(tensors[k]) for k in self.inputs}
        return self.session.run(None, feed)[0]
