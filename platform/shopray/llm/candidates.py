"""Catalog values a query might mean, found by fuzzy word matching: the parser prompt's hints.

The model then chooses among values that are in its prompt (copying a token
it can see) instead of recalling ~1,000 brands, categories and attributes
from its weights; it still decides whether a hint applies ("on sale" is not
the brand On), reads prices, and may name values that are not hinted. Hints
are recall-oriented and cheap (a dictionary lookup per word and n-gram):

- every surface form of a value (``Lexicon``: names, synonyms, plurals),
- a query word within one edit (deletion, insertion, substitution, or most
  transpositions) of a form word of four letters or more, so typos match.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict

from shopray.llm.lexicon import Lexicon
from shopray.models import Vocabulary

FIELDS = ("brand", "category", "color", "attribute")
MAX_PER_FIELD = 3
MAX_NGRAM = 4
_WORD = re.compile(r"[a-z0-9]+(?:['.+-][a-z0-9]+)*")


def _deletes(word: str) -> set[str]:
    return {word} | {word[:i] + word[i + 1 :] for i in range(len(word))}


class CandidateFinder:
    def __init__(self, vocabulary: Vocabulary):
        lex = Lexicon(vocabulary)
        self.forms: dict[tuple[str, ...], list[tuple[str, str]]] = defaultdict(list)
        tables = {"brand": lex.brands, "category": lex.categories, "color": lex.colors}
        for field, table in tables.items():
            for value, forms in table.items():
                for form in forms:
                    self._add(form, field, value)
        for value in vocabulary.attributes:
            for form in {value, *lex.attribute_forms("size" if value.replace(".", "").isdigit() else "", value)}:
                self._add(form, "attribute", value)
        self.max_n = min(MAX_NGRAM, max((len(k) for k in self.forms), default=1))
        # One-edit neighbourhoods of form words, for typo-tolerant lookup of long words.
        self._fuzzy: dict[str, set[str]] = defaultdict(set)
        self._known = {word for key in self.forms for word in key}
        for key in self.forms:
            for word in key:
                if len(word) >= 4:
                    for d in _deletes(word):
                        self._fuzzy[d].add(word)

    def _add(self, form: str, field: str, value: str) -> None:
        key = tuple(_WORD.findall(form.lower()))
        if key and (field, value) not in self.forms[key]:
            self.forms[key].append((field, value))

    def _variants(self, word: str) -> set[str]:
        out = {word}
        if len(word) >= 4 and word not in self._known:  # a correctly spelled catalog word needs no neighbours
            for d in _deletes(word):
                out |= {w for w in self._fuzzy.get(d, ()) if abs(len(w) - len(word)) <= 1}
        return out

    def find(self, query: str) -> dict[str, list[str]]:
        words = _WORD.findall(query.lower())
        variants = [self._variants(w) for w in words]
        found: dict[str, list[str]] = {f: [] for f in FIELDS}
        for n in range(min(self.max_n, len(words)), 0, -1):
            for i in range(len(words) - n + 1):
                for key in _combinations(variants[i : i + n]):
                    for field, value in self.forms.get(key, ()):
                        if value not in found[field] and len(found[field]) < MAX_PER_FIELD:
                            found[field].append(value)
        return found

    def hint(self, query: str, found: dict[str, list[str]] | None = None) -> str:
        """The hint line of the prompt; values are JSON strings, the same tokens the answer uses.
        ``found``: this query's ``find`` result when the caller already has it."""
        found = self.find(query) if found is None else found
        parts = [f"{field} " + " ".join(json.dumps(v, ensure_ascii=False) for v in values) for field, values in found.items() if values]
        return "; ".join(parts)


def _combinations(options: list[set[str]], limit: int = 16):
    """Cartesian product of per-word variants, capped: exact words first keeps the common case cheap."""
    keys: list[tuple[str, ...]] = [()]
    for opts in options:
        keys = [k + (o,) for k in keys for o in sorted(opts)][:limit]
    return keys
