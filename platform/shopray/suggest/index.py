"""Search-box suggestions: prefix completion over catalog phrases and popular past queries, tolerant of typos.

Keys sit in one sorted list, so the phrases a typed prefix completes are one
bisect range, and numpy's argpartition takes the heaviest of that range without
sorting it: no keystroke reads every phrase. Earlier words must be indexed words
or are corrected to the closest ones; the word being typed must begin one or is
corrected to the closest word beginning (one SymSpell dictionary over words, one
over their beginnings). Corrections are cached per word, since a shopper types
the same earlier words again at every keystroke. ``update_queries`` builds a new
index and swaps it in whole, so a request in flight reads one consistent index.
"""

from __future__ import annotations

import bisect
from collections import Counter
from functools import lru_cache
from typing import Iterable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from symspellpy import SymSpell, Verbosity

from shopray.config import SuggestConfig
from shopray.domain import Product
from shopray.suggest.cooccur import TitleWords
from shopray.suggest.phrases import Entry, Kind, catalog_entries, merge, query_entries, words_of

MAX_QUERY_CHARS = 100  # characters of q read; the rest is ignored, not refused
_ALTERNATIVES = 3  # corrections tried per word: the closest, most common ones
# Shorter words have too many neighbours to correct: "nik" is one edit from little but "nike",
# while a three-letter beginning such as "bat" is one edit from "wat(er)", "bas(ketball)" and "bac(klit)".
_MIN_TYPO_WORD = 3
_MIN_TYPO_BEGINNING = 4
_LONG_WORD = 8  # two edits only from here, as the query speller allows (stages/retrieve/spelling.py)
_MAX_HEADS = 12  # combinations of corrected earlier words kept, each one a bisect
_MIN_TAIL = 2  # words a text's tail keeps when only it completes: "... 6 f" alone would complete to anything
_CORRECTIONS_CACHED = 16_384


class Suggestion(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str = Field(description="What the search box shows and searches for when picked.")
    kind: Kind = Field(description="Where it comes from: a brand, a category (leaf or qualified leaf), a title phrase, or a popular query.")
    category: str | None = Field(default=None, description='For kind "category": the full path ("Shoes > Running") to filter on.')
    score: float = Field(description="Weight: products the phrase covers, or a query's searches times queries_weight. Exact matches come before corrected ones.")


class _Index:
    """One immutable generation of phrases, keys and spelling dictionaries."""

    def __init__(self, entries: list[Entry], max_edits: int):
        self.entries = sorted(entries, key=lambda e: (-e.weight, e.key))  # position = popularity rank, the cold-start order
        pairs = sorted((key, i) for i, e in enumerate(self.entries) for key in (e.key, *e.aliases))
        self.keys = [key for key, _ in pairs]
        self.owner = np.array([i for _, i in pairs], dtype=np.int64)
        self.max_edits = max_edits
        words: Counter[str] = Counter()
        for e in self.entries:
            words.update(dict.fromkeys({w for key in (e.key, *e.aliases) for w in key.split()}, max(1, round(e.weight))))
        beginnings: Counter[str] = Counter()
        for word, n in words.items():
            beginnings.update(dict.fromkeys((word[:i] for i in range(_MIN_TYPO_BEGINNING - 1, len(word) + 1)), n))
        self.words, self.word_speller, self.beginning_speller = set(words), _speller(words, max_edits), _speller(beginnings, max_edits)
        self.word_options = lru_cache(maxsize=_CORRECTIONS_CACHED)(self._word_options)
        self.beginning_options = lru_cache(maxsize=_CORRECTIONS_CACHED)(self._beginning_options)

    def range(self, prefix: str, whole_word: bool) -> tuple[int, int]:
        """Keys starting with ``prefix``; with ``whole_word``, only those where its last word ends there.

        Keys hold only [a-z0-9' ], so "!" sorts right after the space and "~" after every key character.
        """
        return bisect.bisect_left(self.keys, prefix), bisect.bisect_left(self.keys, prefix + ("!" if whole_word else "~"))

    def heaviest(self, lo: int, hi: int, k: int) -> list[int]:
        """Entries owning keys[lo:hi], most popular first, at most k (aliases of one entry count once)."""
        owners = self.owner[lo:hi]
        if len(owners) > 2 * k:  # room for aliases: one entry may own two keys in the range
            owners = owners[np.argpartition(owners, 2 * k)[: 2 * k]]
        return sorted(set(owners.tolist()))[:k]

    def _word_options(self, word: str) -> tuple[str, ...]:
        if word in self.words or len(word) < _MIN_TYPO_WORD:
            return (word,)
        found = self.word_speller.lookup(word, Verbosity.CLOSEST, max_edit_distance=self._edits(word))
        return tuple(s.term for s in found[:_ALTERNATIVES]) or (word,)

    def _beginning_options(self, partial: str) -> tuple[str, ...]:
        """The partial word, then, when it begins no indexed word, the nearest word beginnings.

        A partial that begins a word is never corrected, even when it completes to fewer than k:
        filling with neighbours puts "upholstered" under "ipho".
        """
        if len(partial) < _MIN_TYPO_BEGINNING:
            return (partial,)
        found = self.beginning_speller.lookup(partial, Verbosity.CLOSEST, max_edit_distance=self._edits(partial))
        return (partial, *(s.term for s in found[:_ALTERNATIVES] if s.term != partial))

    def _edits(self, word: str) -> int:
        return self.max_edits if len(word) >= _LONG_WORD else 1


def _speller(counts: dict[str, int], max_edits: int) -> SymSpell:
    speller = SymSpell(max_dictionary_edit_distance=max_edits)
    for term, n in counts.items():
        speller.create_dictionary_entry(term, n)
    return speller


class Suggester:
    def __init__(self, catalog: list[Entry], config: SuggestConfig, titles: TitleWords | None = None):
        """``titles``: the catalog's title words, which complete the last word when no phrase completes the text."""
        self.config = config
        self._catalog, self._titles = catalog, titles
        self._index = _Index(catalog, config.max_edits)

    @classmethod
    def from_products(cls, products: list[Product], config: SuggestConfig) -> "Suggester":
        entries = catalog_entries(products, min_products=config.min_products, max_phrases=config.max_phrases)
        return cls(entries, config, TitleWords(p.title for p in products))

    def __len__(self) -> int:
        return len(self._index.entries)

    def update_queries(self, queries: list[tuple[str, int]]) -> None:
        """Replace the popular past queries with ``(query text, times searched)``; those under ``min_count`` are left out."""
        c = self.config
        popular = query_entries(queries, min_count=c.min_count, weight=c.queries_weight, max_queries=c.max_phrases)
        self._index = _Index(merge([*self._catalog, *popular]), c.max_edits)

    def suggest(self, q: str, k: int | None = None) -> list[Suggestion]:
        """Up to k completions of ``q``: exact prefix matches by weight, then those of typo corrections; too short a q gets the most popular."""
        k = self.config.k if k is None else k
        if k < 1:
            raise ValueError(f"k must be at least 1, not {k}")
        index, text = self._index, q[:MAX_QUERY_CHARS]
        if len(text.strip()) < self.config.min_prefix:
            return _suggestions(index, range(min(k, len(index.entries))))
        words = words_of(text)
        if not words:  # nothing a key can hold: emoji, punctuation, other scripts
            return []
        typing = text[-1].isalnum()  # after a space or a comma the last word is complete
        # Phrases hold at most four words, so a longer text often completes only from a later word:
        # "bose quietcomfort ultra noise cancelli" -> "bose quietcomfort ultra noise cancelling", the head kept as typed.
        for start in range(max(1, len(words) - _MIN_TAIL + 1)):
            found = _complete(index, words[start:], typing, k)
            if found:
                head = "".join(f"{w} " for w in words[:start])
                return _suggestions(index, found, head)
        return self._last_word(index, words, k) if typing and len(words) > 1 else []

    def _last_word(self, index: _Index, words: list[str], k: int) -> list[Suggestion]:
        """The earlier words kept (each corrected when no title holds it), the last completed from the titles holding them all."""
        titles = self._titles
        if titles is None:
            return []
        head = [w if w in titles else next((o for o in index.word_options(w) if o in titles), w) for w in words[:-1]]
        for partial in index.beginning_options(words[-1]):
            if found := titles.complete(head, partial, k):
                prefix = " ".join(head)
                return [Suggestion(text=f"{prefix} {word}", kind="phrase", score=float(n)) for word, n in found]
        return []


def _complete(index: _Index, words: list[str], typing: bool, k: int) -> list[int]:
    """Entries whose keys complete ``words``: exact matches by weight, then those of typo corrections."""
    complete, partial = (words[:-1], words[-1]) if typing else (words, "")
    heads = [("", False)]
    for word in complete:
        heads = [(f"{h}{o} ", fixed or o != word) for h, fixed in heads for o in index.word_options(word)]
        heads = [(h, fixed) for h, fixed in heads if _nonempty(index.range(h[:-1], True))][:_MAX_HEADS]
    if typing:
        spans = [(f"{h}{o}", fixed or o != partial, False) for h, fixed in heads for o in index.beginning_options(partial)]
    else:  # the last complete word must end there: "nike " completes to "nike running shoes", not "nikes"
        spans = [(h[:-1], fixed, True) for h, fixed in heads]
    found = [i for prefix, fixed, whole in spans if not fixed for i in index.heaviest(*index.range(prefix, whole), k)]
    if len(found) < k:
        corrected = {i for prefix, fixed, whole in spans if fixed for i in index.heaviest(*index.range(prefix, whole), k)}
        found += sorted(corrected - set(found))[: k - len(found)]
    return found


def _nonempty(span: tuple[int, int]) -> bool:
    return span[0] < span[1]


def _suggestions(index: _Index, positions: Iterable[int], head: str = "") -> list[Suggestion]:
    return [Suggestion(text=head + e.text, kind=e.kind, category=e.category, score=e.weight) for e in (index.entries[i] for i in positions)]
