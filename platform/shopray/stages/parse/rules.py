"""The rule parser: free text -> Intent with the catalog's own words, in well under a millisecond.

It answers when ``parser.kind`` is "rule" and whenever the LLM parser cannot
(see ``stage.ParseStage``), and it supplies every parse's keywords. It never
emits a brand, category or color the catalog does not have.
"""

from __future__ import annotations

import re

from shopray.domain import Intent, Vocabulary
from shopray.stages.parse.text import CHEAP, PRICE_DIGITS, singular, tokens

_NUM = rf"\$?\s*{PRICE_DIGITS}\s*(?:k\b)?\s*(?:dollars?|bucks|usd)?"
_RANGE = re.compile(rf"\b(?:between|from)?\s*{_NUM}\s*(?:-|to|and|–)\s*{_NUM}")
_MAX = re.compile(rf"\b(?:under|below|less than|cheaper than|max(?:imum)?|up to|no more than|at most|within|<=?)\s*{_NUM}")
_MIN = re.compile(rf"\b(?:over|above|more than|at least|min(?:imum)?|from|starting at|>=?)\s*{_NUM}")
STOPWORDS = frozenset("a an the for with and or of in on to by my me i want need looking show find some any please".split())
COLOR_SYNONYMS = {"gray": "grey", "grey": "gray"}


def _key(text: str) -> tuple[str, ...]:
    return tuple(singular(t) for t in tokens(text))


class _PhraseIndex:
    """Longest-match lookup of vocabulary phrases in a token list."""

    def __init__(self, phrases: dict[tuple[str, ...], str]):
        self.phrases = {k: v for k, v in phrases.items() if k}
        self.max_len = max((len(k) for k in self.phrases), default=0)

    def find(self, stems: list[str], taken: set[int]) -> tuple[str, range] | None:
        """Longest phrase wins; among equals the rightmost, since English puts the head noun last."""
        for n in range(min(self.max_len, len(stems)), 0, -1):
            for i in range(len(stems) - n, -1, -1):
                span = range(i, i + n)
                if taken.intersection(span):
                    continue
                value = self.phrases.get(tuple(stems[i : i + n]))
                if value is not None:
                    return value, span
        return None


def _category_phrases(categories: list[str]) -> dict[tuple[str, ...], str]:
    """'Shoes > Running' answers to 'running shoes', 'shoes running' and, if unambiguous, 'running'."""
    leaf_count: dict[tuple[str, ...], int] = {}
    for path in categories:
        leaf_count[_key(path.split(" > ")[-1])] = leaf_count.get(_key(path.split(" > ")[-1]), 0) + 1
    phrases: dict[tuple[str, ...], str] = {}
    for path in categories:
        levels = [_key(level) for level in path.split(" > ")]
        leaf, parent = levels[-1], levels[-2] if len(levels) > 1 else ()
        if parent:
            phrases.setdefault(leaf + parent, path)
            phrases.setdefault(parent + leaf, path)
            # "Shoes > Running" -> "running shoe": leaf words followed by the parent's last word
            phrases.setdefault(leaf + parent[-1:], path)
        if leaf_count[leaf] == 1:
            phrases.setdefault(leaf, path)
    return phrases


class RuleParser:
    """Deterministic parser over a catalog vocabulary."""

    def __init__(self, vocabulary: Vocabulary):
        self.vocabulary = vocabulary
        self._brands = _PhraseIndex({_key(b): b for b in vocabulary.brands})
        self._categories = _PhraseIndex(_category_phrases(vocabulary.categories))
        colors = {_key(c): c for c in vocabulary.colors}
        for a, b in COLOR_SYNONYMS.items():
            if (b,) in colors and (a,) not in colors:
                colors[(a,)] = colors[(b,)]
        self._colors = _PhraseIndex(colors)
        self._attributes = _PhraseIndex({_key(a): a for a in vocabulary.attributes})

    def parse(self, query: str) -> Intent:
        text = query.lower()
        price_min, price_max, text = self._prices(text)
        raw = tokens(text)
        stems = [singular(t) for t in raw]
        taken: set[int] = set()
        found: dict[str, str | None] = {}
        for name, index in (("brand", self._brands), ("category", self._categories), ("color", self._colors)):
            match = index.find(stems, taken)
            found[name] = match[0] if match else None
            if match:
                taken.update(match[1])
        found_attributes = []
        while (match := self._attributes.find(stems, taken)) is not None:
            found_attributes.append((match[1].start, match[0]))
            taken.update(match[1])
        attributes = [value for _, value in sorted(found_attributes)]
        if CHEAP.search(text) and price_max is None:
            price_max = self.vocabulary.category_price_p25.get(found["category"] or "", self.vocabulary.price_p25)
        keywords = " ".join(t for t in raw if t not in STOPWORDS and not CHEAP.fullmatch(t))
        return Intent(
            keywords=keywords or query.strip()[:512],
            category=found["category"],
            brand=found["brand"],
            color=found["color"],
            price_min=price_min,
            price_max=price_max,
            attributes=attributes,
            source="rule",
        )

    @staticmethod
    def _prices(text: str) -> tuple[float | None, float | None, str]:
        """Pull price bounds out; return the text without the price phrases."""

        def amount(s: str, whole: str) -> float:
            value = float(s)
            return value * 1000 if re.search(rf"{re.escape(s)}\s*k\b", whole) else value

        lo = hi = None
        if m := _RANGE.search(text):
            a, b = amount(m.group(1), m.group(0)), amount(m.group(2), m.group(0))
            if re.search(r"[a-z$]|-", m.group(0)) and a != b:
                lo, hi = min(a, b), max(a, b)
                text = text.replace(m.group(0), " ")
        if hi is None and (m := _MAX.search(text)):
            hi = amount(m.group(1), m.group(0))
            text = text.replace(m.group(0), " ")
        if lo is None and (m := _MIN.search(text)):
            lo = amount(m.group(1), m.group(0))
            text = text.replace(m.group(0), " ")
        return lo, hi, text
