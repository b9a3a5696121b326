"""Query repair: a query word the catalog never uses becomes the catalog word nearest to it.

BM25 only matches words the catalog has, so "ancor bolts" finds bolts and
misses anchors. The retriever's encoder and the ranker read the repaired text
too: their subword vocabularies tolerate typos, but less well than a catalog
word (on the Home Depot validation queries, repairing the dense side's and the
cross-encoder's query as well as BM25's raised NDCG@10 by 0.005). Words
shorter than ``min_length`` and anything with a digit (sizes, model numbers)
are left alone, as is every word the catalog uses even once, and every common
English word: "sneakers" in a shop that sells only "shoes" is not a typo of
"speakers". Common means a Zipf frequency of at least ``english`` in wordfreq's
English lists (3: about once per million words; typos such as "toliet" score under 2).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable

from symspellpy import SymSpell, Verbosity
from wordfreq import zipf_frequency

WORD = re.compile(r"[A-Za-z]+")
TOKEN = re.compile(r"\w+")


def term_counts(texts: Iterable[str]) -> dict[str, int]:
    """In how many texts each lower-cased alphabetic word occurs."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update({w for w in WORD.findall(text.lower()) if len(w) > 1})
    return dict(counts)


class Speller:
    def __init__(self, terms: dict[str, int], *, min_length: int = 4, min_count: int = 2, long_word: int = 8, english: float = 3.0):
        """Corrections go to words in at least ``min_count`` products, within one edit, or two from ``long_word`` letters."""
        self.known = terms
        self.min_length, self.long_word, self.english = min_length, long_word, english
        zipf_frequency("the", "en")  # loads wordfreq's English list here (about 0.3 s), not in the first search that needs it
        self._symspell = SymSpell(max_dictionary_edit_distance=2, prefix_length=7)
        for word, count in terms.items():
            if count >= min_count:
                self._symspell.create_dictionary_entry(word, count)

    def _word(self, word: str) -> str:
        lower = word.lower()
        if len(lower) < self.min_length or lower in self.known or zipf_frequency(lower, "en") >= self.english:
            return word
        best = self._symspell.lookup(lower, Verbosity.TOP, max_edit_distance=2 if len(lower) >= self.long_word else 1)
        return best[0].term if best else word

    def correct(self, text: str) -> str:
        # Whole tokens only: "2x4" or "m18" are not words to repair.
        return TOKEN.sub(lambda m: self._word(m.group(0)) if WORD.fullmatch(m.group(0)) else m.group(0), text)
