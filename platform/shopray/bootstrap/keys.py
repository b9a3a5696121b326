"""Which model ``model: auto`` names: the one trained from this content with this recipe and this training code.

A bootstrapped model's card carries ``data.bootstrap_key``. The key hashes
what the model is a function of: the catalog's content (the parser's output
space is its vocabulary; the ranker learns from queries made of its facets),
the recipe, and the source of the code that trains and serves the model. A
replica resolves ``auto`` by looking the key up in the registry, so a model
registered by a training task is picked up like a promotion, and a changed
catalog, recipe or trainer never reuses a stale one.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from shopray.bootstrap import progress
from shopray.domain import Vocabulary
from shopray.registry import Registry

Kind = Literal["parser", "ranker"]
AUTO = "auto"
PACKAGE = Path(__file__).resolve().parents[1]
# The code a model is a function of: what trains it and the contract it is served under.
CODE = {
    "parser": ("training/parser", "stages/parse/schema.py", "stages/parse/prompt.py", "stages/parse/candidates.py",
               "stages/parse/lexicon.py", "stages/parse/text.py", "stages/parse/synonyms.yaml"),
    "ranker": ("training/ranker", "stages/rank/cross_encoder.py"),
}  # fmt: skip


@functools.cache
def code_sha256(kind: Kind) -> str:
    digest = hashlib.sha256()
    for entry in CODE[kind]:
        path = PACKAGE / entry
        for f in sorted(path.rglob("*") if path.is_dir() else [path]):
            if f.is_file() and f.suffix in (".py", ".yaml"):
                digest.update(f.relative_to(PACKAGE).as_posix().encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()


def bootstrap_key(kind: Kind, recipe: BaseModel, catalog_sha256: str) -> str:
    """The content key of the ``kind`` model trained with ``recipe`` for the catalog ``catalog_sha256``."""
    parts = [kind, recipe.model_dump_json(), code_sha256(kind), catalog_sha256]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def find(registry: Registry, kind: Kind, key: str, field: str = "bootstrap_key") -> Path | None:
    """The most recently registered model whose card's ``data[field]`` is ``key``, or None while there is none.
    ``field="catalog_sha256"`` finds a model trained on a catalog's own judged queries."""
    cards = [card for card in (registry.card(kind, v) for v in registry.versions(kind)) if card.data.get(field) == key]
    # Version ids sort by the second; the card's registration time tells two of one second apart.
    return registry.path(kind, max(cards, key=lambda c: c.created_at).version) if cards else None


def is_structured(vocabulary: Vocabulary) -> bool:
    """Whether a catalog has fields a parser can learn to fill: titles alone (Home Depot's) teach it nothing."""
    return bool(vocabulary.brands or vocabulary.categories or vocabulary.colors)


def can_train(kind: Kind, vocabulary: Vocabulary) -> bool:
    """Whether the bootstrap can make training data for ``kind`` from this catalog: the ranker's queries are
    built around categories."""
    return bool(vocabulary.categories) if kind == "ranker" else is_structured(vocabulary)


class AutoModel:
    """What a stage needs to follow ``model: auto``: the model the content key names, and whether it is being trained."""

    def __init__(self, kind: Kind, recipe: BaseModel, registry_root: Path | None = None):
        self.kind, self.recipe, self.registry = kind, recipe, Registry(registry_root)

    def key(self, catalog_sha256: str) -> str:
        return bootstrap_key(self.kind, self.recipe, catalog_sha256)

    def resolve(self, catalog_sha256: str) -> Path | None:
        return find(self.registry, self.kind, self.key(catalog_sha256))

    def training(self, catalog_sha256: str) -> bool:
        state = progress.read(self.registry, self.kind, self.key(catalog_sha256))
        return state is not None and state.running()
