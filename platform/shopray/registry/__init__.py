"""Model registry: versioned model directories with cards and movable aliases.

Layout under ``~/.shopray/registry`` (``SHOPRAY_HOME`` moves it)::

    <kind>/<version>/          a standard Hugging Face model directory
    <kind>/<version>/card.json the model card (written last: a version without one is incomplete)
    <kind>/aliases.json        {"production": "<version>", "candidate": "<version>"}

Training, Tune sweeps and Serve share it; promotion is an atomic alias switch.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shopray.config import default_home
from shopray.versions import atomic_write_text, new_version

ModelKind = Literal["ranker", "parser", "embedder", "fusion"]
ALIASES = ("production", "candidate")


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    kind: ModelKind = Field(description="What the model does in the graph.")
    version: str = Field(default="", description="Registry version; set on registration.")
    created_at: str = Field(default="", description="UTC ISO time of registration.")
    base_model: str = Field(description="What the weights were initialised from.")
    metric: str = Field(description="Name of the primary validation metric (higher is better).")
    metrics: dict[str, float] = Field(default_factory=dict, description="Validation metrics, the primary one included.")
    config: dict[str, float | int | str | bool | None] = Field(default_factory=dict, description="Training hyper-parameters.")
    data: dict[str, str | int] = Field(default_factory=dict, description="Training data: sources, sizes, content hashes.")
    parent: str | None = Field(default=None, description="Lineage: parent version or the sweep/trial that produced it.")
    parameters: int | None = Field(default=None, description="Number of model parameters.")
    notes: str = Field(default="", description="Free text.")

    @property
    def score(self) -> float | None:
        return self.metrics.get(self.metric)


class Registry:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else default_home() / "registry"

    def _kind_dir(self, kind: str) -> Path:
        if kind not in ModelKind.__args__:  # type: ignore[attr-defined]
            raise ValueError(f"unknown model kind {kind!r}; one of {ModelKind.__args__}")  # type: ignore[attr-defined]
        path = self.root / kind
        path.mkdir(parents=True, exist_ok=True)
        return path

    def register(self, kind: ModelKind, source: Path, card: ModelCard, alias: str | None = "candidate") -> str:
        """Copy a model directory in as a new version; the card is written last."""
        version = new_version()
        staging = self._kind_dir(kind) / f".{version}.staging"
        shutil.copytree(source, staging)
        card = card.model_copy(update={"kind": kind, "version": version, "created_at": dt.datetime.now(dt.timezone.utc).isoformat()})
        (staging / "card.json").write_text(card.model_dump_json(indent=2))
        staging.rename(self._kind_dir(kind) / version)
        if alias:
            self.set_alias(kind, alias, version)
        return version

    def versions(self, kind: ModelKind) -> list[str]:
        return sorted(p.name for p in self._kind_dir(kind).iterdir() if (p / "card.json").exists())

    def aliases(self, kind: ModelKind) -> dict[str, str]:
        path = self._kind_dir(kind) / "aliases.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def set_alias(self, kind: ModelKind, alias: str, version: str) -> None:
        if alias not in ALIASES:
            raise ValueError(f"unknown alias {alias!r}; one of {ALIASES}")
        if version not in self.versions(kind):
            raise KeyError(f"{kind} version {version!r} is not in the registry")
        aliases = {**self.aliases(kind), alias: version}
        atomic_write_text(self._kind_dir(kind) / "aliases.json", json.dumps(aliases, indent=2))

    def resolve(self, kind: ModelKind, ref: str = "production") -> str:
        """A version id from a version id or an alias."""
        if ref in ALIASES:
            version = self.aliases(kind).get(ref)
            if version is None:
                raise KeyError(f"no {kind} model has the alias {ref!r}")
            return version
        if ref not in self.versions(kind):
            raise KeyError(f"{kind} version {ref!r} is not in the registry")
        return ref

    def path(self, kind: ModelKind, ref: str = "production") -> Path:
        return self._kind_dir(kind) / self.resolve(kind, ref)

    def card(self, kind: ModelKind, ref: str = "production") -> ModelCard:
        return ModelCard.model_validate_json((self.path(kind, ref) / "card.json").read_text())


class ModelNotFound(LookupError):
    """A model reference names no directory, registry version or alias (yet)."""


def resolve_model(kind: ModelKind, ref: str, root: Path | None = None) -> Path:
    """The model directory a reference names: a path as given, else a registry version or alias.

    The one resolver for every registered kind: configs name models the same way everywhere.
    """
    path = Path(ref).expanduser()
    if path.is_dir():
        return path.resolve()
    if "/" in ref or ref.startswith("."):
        raise ModelNotFound(f"{kind} model directory {ref} does not exist")
    registry = Registry(root)
    try:
        return registry.path(kind, registry.resolve(kind, ref))
    except KeyError as exc:
        raise ModelNotFound(str(exc).strip("'\"")) from exc


def model_label(model_dir: Path) -> str:
    """The registry version when the directory carries a card, else its name."""
    card = model_dir / "card.json"
    if card.exists():
        version = json.loads(card.read_text()).get("version")
        if version:
            return str(version)
    return model_dir.name
