"""How shoppers name catalog values: the surface forms the LLM parser's hints match and synthetic queries use.

Forms come from the catalog itself (brand, leaf category, color and attribute
strings, with plural, punctuation and word-order variants) plus the everyday
English synonyms in ``synonyms.yaml``. A form that would name
two different categories is dropped, so every generated query has one truth.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from pathlib import Path

import yaml

from shopray.domain import Vocabulary
from shopray.stages.parse.text import singular

SYNONYMS = Path(__file__).with_name("synonyms.yaml")

_NON_WORD = re.compile(r"[^a-z0-9 ]+")
_INCHES = re.compile(r"^(\d+(?:\.\d+)?) in$")


def _words(text: str) -> str:
    return f" {' '.join(re.findall(r'[a-z0-9]+', text.lower()))} "


@functools.cache
def synonyms() -> dict[str, dict[str, list[str]]]:
    """The synonym tables of synonyms.yaml: categories, colors, genders."""
    return yaml.safe_load(SYNONYMS.read_text(encoding="utf-8"))


def _brand_forms(brand: str) -> list[str]:
    low = brand.lower()
    forms = [low]
    plain = " ".join(_NON_WORD.sub("", low.replace("&", " and ").replace("-", " ").replace("+", " ")).split())
    squashed = _NON_WORD.sub("", low)
    for extra in (plain, squashed, low[4:] if low.startswith("the ") else ""):
        if extra and extra not in forms:
            forms.append(extra)
    return forms


def _attribute_forms(key: str, value: str) -> list[str]:
    genders = synonyms()["genders"]
    if key == "gender" and value in genders:
        return genders[value]
    if m := _INCHES.match(value):
        return [value, f"{m.group(1)} inch", f'{m.group(1)}"']
    if key == "size" and (re.fullmatch(r"\d+(?:\.\d+)?", value) or len(value) <= 3):
        return [f"size {value}"]
    return [value]


class Lexicon:
    """Surface forms for every vocabulary value, and a check for vocabulary mentions."""

    def __init__(self, vocabulary: Vocabulary):
        self.vocabulary = vocabulary
        self.brands = {b: _brand_forms(b) for b in vocabulary.brands}
        self.colors = {c: [c, *synonyms()["colors"].get(c, [])] for c in vocabulary.colors}
        self.categories = self._category_forms(vocabulary.categories)
        phrases = {form for table in (self.brands, self.colors, self.categories) for forms in table.values() for form in forms}
        self._phrases = {_words(p) for p in phrases | set(vocabulary.attributes)} - {"  "}

    @staticmethod
    def _category_forms(categories: list[str]) -> dict[str, list[str]]:
        owners: dict[str, set[str]] = defaultdict(set)
        proposed: dict[str, list[str]] = {}
        for path in categories:
            leaf = path.split(" > ")[-1].lower()
            forms = [leaf, singular(leaf), *synonyms()["categories"].get(leaf, [])]
            forms = list(dict.fromkeys(f for f in forms if f))
            proposed[path] = forms
            for f in forms:
                owners[f].add(path)
        return {path: [f for f in forms if len(owners[f]) == 1] or forms[:1] for path, forms in proposed.items()}

    def attribute_forms(self, key: str, value: str) -> list[str]:
        return _attribute_forms(key, value)

    def mentions(self, text: str) -> bool:
        """Does the text contain any catalog phrase as whole words? (So "no structure" really has none.)"""
        words = _words(text)
        return any(p in words for p in self._phrases)
