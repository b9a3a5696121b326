"""Typed configuration: the application's whole interface.

One ``AppConfig`` is built from the ``args`` of a Serve config file, so
``shopray serve``, ``serve run deployments/local.yaml`` and KubeRay's
``serveConfigV2`` all feed the same dict into ``shopray.serving.app:build_app``.
Replica counts, GPUs and autoscaling are not here: they are Serve's own
``deployments:`` overrides in the same YAML.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator


def default_home() -> Path:
    return Path(os.environ.get("SHOPRAY_HOME", "~/.shopray")).expanduser()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IndexConfig(_Strict):
    name: str = Field(default="demo", pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="Index name; one catalog per name.")
    root: Path = Field(default_factory=lambda: default_home() / "index", description="Directory of embedded index versions and their manifests.")
    qdrant_url: str | None = Field(
        default_factory=lambda: os.environ.get("QDRANT_URL") or None,
        description="Qdrant server URL. Unset: the embedded qdrant-edge engine. Defaults to $QDRANT_URL.",
    )
    qdrant_api_key: str | None = Field(default_factory=lambda: os.environ.get("QDRANT_API_KEY") or None, description="API key for the Qdrant server, if it needs one.")
    hnsw_ef: int = Field(default=128, ge=8, le=4096, description="HNSW search breadth; higher is slower and more exact.")
    keep_versions: int = Field(default=2, ge=1, description="Published versions kept after a rebuild, the current one included.")

    @field_validator("root", mode="after")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser().resolve()


class EmbeddingConfig(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = Field(default=None, description="Sentence-transformers model directory. None: the packaged all-MiniLM-L6-v2.")
    batch_size: int = Field(default=128, ge=1, le=4096, description="Texts per encoder batch.")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="Where the encoder runs; auto picks CUDA when visible.")


class ParserConfig(_Strict):
    kind: Literal["rule"] = Field(default="rule", description="Which parser answers: the catalog-vocabulary rule parser.")


class RetrieverConfig(_Strict):
    candidates: int = Field(default=100, ge=1, le=1000, description="Candidates returned to the ranker.")
    prefetch: int = Field(default=200, ge=1, le=5000, description="Candidates each of dense and BM25 retrieval feeds into fusion.")
    rrf_k: int = Field(default=60, ge=1, description="Reciprocal-rank-fusion constant.")
    dense_weight: float = Field(default=1.0, ge=0, description="RRF weight of the dense (MiniLM) list.")
    sparse_weight: float = Field(default=1.0, ge=0, description="RRF weight of the BM25 list.")
    min_filtered: int = Field(default=10, ge=0, description="Fewer filtered hits than this: retrieve unfiltered and boost intent matches instead.")
    boost: float = Field(default=0.02, ge=0, description="Score added per intent field a relaxed hit matches.")
    session_weight: float = Field(default=0.3, ge=0, le=1, description="How far clicked products pull the query vector (0: not at all).")


class RankerConfig(_Strict):
    kind: Literal["biencoder"] = Field(default="biencoder", description="Scoring model: MiniLM bi-encoder cosine.")
    top_n: int = Field(default=50, ge=1, le=1000, description="Retriever candidates the ranker scores; the rest keep retriever order below them.")
    session_weight: float = Field(default=0.2, ge=0, le=1, description="Weight of similarity to clicked products in the final score.")


class DiversifierConfig(_Strict):
    method: Literal["mmr", "dpp", "caps", "window"] = Field(default="mmr", description="Diversification algorithm.")
    default_diversity: float = Field(default=0.0, ge=0, le=1, description="Diversity when a request gives none; 0 keeps the ranker's order.")


class AppConfig(_Strict):
    """Everything ``build_app`` needs; every field has a default."""

    index: IndexConfig = Field(default_factory=IndexConfig, description="Where the catalog index lives.")
    catalog: str | None = Field(default=None, description="Catalog file to index at start-up when the index is empty; 'demo' for the generated demo catalog.")
    embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig, description="Dense encoder settings.")
    parser: ParserConfig = Field(default_factory=ParserConfig, description="Stage 1 settings.")
    retriever: RetrieverConfig = Field(default_factory=RetrieverConfig, description="Stage 2 settings.")
    ranker: RankerConfig = Field(default_factory=RankerConfig, description="Stage 3 settings.")
    diversifier: DiversifierConfig = Field(default_factory=DiversifierConfig, description="Stage 4 settings.")
    stage_timeout_s: float = Field(default=10.0, gt=0, description="Longest the ingress waits on any one stage.")


class ServeFile(BaseModel):
    """The parts of a Serve config file that shopray reads itself."""

    model_config = ConfigDict(extra="allow")
    applications: list[dict] = Field(min_length=1, description="Serve applications; shopray's is the first.")


def load_serve_file(path: str | Path) -> dict:
    with open(path) as fh:
        data = yaml.safe_load(fh)
    ServeFile.model_validate(data)
    return data


def app_config_from_serve_file(path: str | Path) -> AppConfig:
    return AppConfig.model_validate(load_serve_file(path)["applications"][0].get("args") or {})
