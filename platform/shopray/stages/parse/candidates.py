"""Catalog values a query might mean, found by fuzzy word matching: the parser prompt's hints.

The model then chooses among values that are in its prompt (copying a token
it can see) instead of recalling ~1,000 brands, categories and attributes
from its weights; it still decides whether a hint applies ("on sale" is not
the brand On) and reads prices. The same lookup narrows the query's schema
(``schema.narrowed``), so it can name nothing else. Hints are cheap (a
dictionary lookup per word and n-gram):

- every surface form of a value (``Lexicon``: names, synonyms, plurals),
- a query word within one edit (deletion, insertion, substitution or adjacent
  transposition) of a form word of four letters or more, so typos match;
  but a common English word is taken as written ("like" is not a typo of
  Nike, nor "stock" of sock).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from functools import lru_cache

from wordfreq import zipf_frequency

from shopray.domain import Intent, Vocabulary
from shopray.stages.parse.lexicon import Lexicon
from shopray.stages.parse.schema import target_json

FIELDS = ("brand", "category", "color", "attribute")
MAX_PER_FIELD = 3
MAX_NGRAM = 4
# Zipf 3 is once per million words of English: "ned" or "moe" are words, "brrown" and "lenovvo" are not.
COMMON_ZIPF = 3.0
_WORD = re.compile(r"[a-z0-9]+(?:['.+-][a-z0-9]+)*")


def _deletes(word: str) -> set[str]:
    return {word} | {word[:i] + word[i + 1 :] for i in range(len(word))}


@lru_cache(maxsize=65536)
def is_common_word(word: str) -> bool:
    return zipf_frequency(word, "en") >= COMMON_ZIPF


def one_edit(a: str, b: str) -> bool:
    """Within one deletion, insertion, substitution or adjacent transposition.

    Shared deletes only shortlist: "some" and "smeg" both become "sme", "stock"
    and "socks" both "sock", yet each pair is two edits apart."""
    if len(a) > len(b):
        a, b = b, a
    if len(b) - len(a) > 1:
        return False
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if i == len(a):
        return True
    if len(a) < len(b):
        return a[i:] == b[i + 1 :]
    swapped = i + 1 < len(a) and a[i] == b[i + 1] and a[i + 1] == b[i]
    return a[i + 1 :] == b[i + 1 :] or (swapped and a[i + 2 :] == b[i + 2 :])


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
        if len(word) >= 4 and word not in self._known and not is_common_word(word):
            for d in _deletes(word):
                out |= {w for w in self._fuzzy.get(d, ()) if one_edit(w, word)}
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
        """The hint line of the prompt: each field's candidates (values as JSON strings, the answer's own tokens),
        then the answer it most likely is, written as the answer would be: the first candidate of each field as
        compact JSON in the answer's field order. The engine's prompt-lookup speculation
        (``parser.engine.prompt_lookup_tokens``) drafts the answer's next tokens from it, so one decoding step can
        accept a whole field. ``found``: this query's ``find`` result when the caller already has it."""
        found = self.find(query) if found is None else found
        listed = "; ".join(f"{field} " + " ".join(json.dumps(v, ensure_ascii=False) for v in values) for field, values in found.items() if values)
        if not listed:
            return ""
        first = {field: values[0] if values else None for field, values in found.items() if field != "attribute"}
        return f"{listed} {target_json(Intent(**first, attributes=found['attribute']), cheap=False)}"


def _combinations(options: list[set[str]], limit: int = 16):
    """Cartesian product of per-word variants, capped: exact words first keeps the common case cheap."""
    keys: list[tuple[str, ...]] = [()]
    for opts in options:
        keys = [k + (o,) for k in keys for o in sorted(opts)][:limit]
    return keys
