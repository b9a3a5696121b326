"""The word being typed, completed among the titles that hold every word typed before it.

Phrases keep title order, so "cordless dr" completes no phrase when the titles read 'Cordless 1/2" Drill Driver
Kit'. Then the earlier words stay as typed and the last completes to the words that share the most titles with
all of them ("cordless drill", "cordless driver"): counted over the products themselves, which no list of phrases
could enumerate.
"""

from __future__ import annotations

from collections import Counter
from functools import reduce
from typing import Iterable

import numpy as np

from shopray.suggest.phrases import words_of

_MAX_TITLES = 5_000  # titles read per completion: a head as broad as "black" is a sample, not the catalog


class TitleWords:
    def __init__(self, titles: Iterable[str]):
        self.titles: list[tuple[str, ...]] = [tuple(dict.fromkeys(words_of(t))) for t in titles]
        postings: dict[str, list[int]] = {}
        for i, words in enumerate(self.titles):
            for w in words:
                postings.setdefault(w, []).append(i)
        self.postings = {w: np.array(ids, dtype=np.int32) for w, ids in postings.items()}

    def __contains__(self, word: str) -> bool:
        return word in self.postings

    def complete(self, head: list[str], partial: str, k: int) -> list[tuple[str, int]]:
        """Up to ``k`` words beginning ``partial`` (none of ``head``), with the number of titles holding them and every
        word of ``head``, most first."""
        if not head or any(w not in self.postings for w in head):
            return []
        shared = reduce(np.intersect1d, sorted((self.postings[w] for w in head), key=len))
        typed = set(head)
        counts = Counter(w for i in shared[:_MAX_TITLES] for w in self.titles[i] if w.startswith(partial) and w not in typed)
        return sorted(counts.items(), key=lambda wn: (-wn[1], wn[0]))[:k]
