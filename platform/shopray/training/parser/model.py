"""The parser's own causal LM: a small Qwen2, saved as a standard Hugging Face directory.

Qwen2 because vLLM, transformers and every serving stack load it natively, so
the trained parser and a downloaded instruct model are interchangeable.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field
from transformers import Qwen2Config, Qwen2ForCausalLM

from shopray.training.parser.tokenizer import IM_END, PAD


class TinyQwenSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hidden_size: int = Field(default=192, ge=32, description="Width of the residual stream.")
    layers: int = Field(default=3, ge=1, description="Transformer blocks.")
    heads: int = Field(default=6, ge=1, description="Attention heads; hidden_size / heads must be a head size vLLM's CPU kernel supports (32, 64, ...).")
    kv_heads: int = Field(default=2, ge=1, description="Key/value heads (grouped-query attention).")
    intermediate_size: int = Field(default=512, ge=32, description="MLP width.")
    max_positions: int = Field(default=512, ge=64, description="Longest sequence the model is built for.")


def build_config(spec: TinyQwenSpec, tokenizer):
    return Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.kv_heads,
        max_position_embeddings=spec.max_positions,
        tie_word_embeddings=True,
        rope_theta=10000.0,
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids(IM_END),
        pad_token_id=tokenizer.convert_tokens_to_ids(PAD),
        torch_dtype="float32",
    )


def build_model(spec: TinyQwenSpec, tokenizer, seed: int = 0):
    torch.manual_seed(seed)
    return Qwen2ForCausalLM(build_config(spec, tokenizer))


def save(model, tokenizer, out_dir: Path) -> None:
    """config.json, model.safetensors, generation_config.json and the tokenizer: loadable by vLLM as is."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    eos = tokenizer.convert_tokens_to_ids(IM_END)
    generation = {"eos_token_id": eos, "pad_token_id": tokenizer.convert_tokens_to_ids(PAD), "do_sample": False}
    (out_dir / "generation_config.json").write_text(json.dumps(generation, indent=2))
    # Tells the server this model learned the bare one-turn prompt (no instructions, no examples).
    (out_dir / "shopray_parser.json").write_text(json.dumps({"prompt": "bare-chatml", "output": "shopray.stages.parse.schema"}, indent=2))


def parameter_count(model) -> int:
    return sum(p.numel() for p in model.parameters())
