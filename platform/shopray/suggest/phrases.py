"""What the search box can complete to: weighted phrases from the catalog and from shoppers' past queries.

A phrase's key is its words as the parsers tokenise them (``tokens``) joined by
one space; typed text is matched against keys, so "Hoodies & Sweatshirts" is
found by "hoodies sw". Phrases that differ only in plurals ("air fryer", the
category "air fryers") are one entry, found by either spelling. Catalog weights
count the products a phrase covers, so a brand with 300 products outranks one
with 3.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, replace
from typing import Iterable, Literal

from wordfreq import zipf_frequency

from shopray.domain import Product
from shopray.stages.parse.text import singular, tokens

Kind = Literal["brand", "category", "phrase", "query"]

# Title n-grams stay within one clause: "Shorts - Navy, Size L" holds no phrase "shorts navy".
_CLAUSE = re.compile(r"\s[-–|]\s|[,;()]")
# A title phrase that starts or ends on a function word ("shampoo for") is half a phrase;
# Zipf 6 in English (once per 1,000 words) is where "for", "with" and "the" sit and product words do not.
_FUNCTION_ZIPF = 6.0
_NGRAM_SIZES = (1, 2, 3, 4)
_PRECEDENCE: dict[Kind, int] = {"brand": 0, "category": 0, "phrase": 1, "query": 2}


@dataclass(frozen=True)
class Entry:
    key: str  # what typed text is matched against
    text: str  # what the box shows
    kind: Kind
    category: str | None  # full path, for a suggestion that names a category
    weight: float
    aliases: tuple[str, ...] = ()  # other keys that find it: its plural-insensitive twins


def words_of(text: str) -> list[str]:
    """The parsers' tokens of ``text`` with accents and full-width forms folded first, so "Café" and "ｃａｆｅ" read "cafe"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return tokens("".join(c for c in decomposed if not unicodedata.combining(c)))


def key_of(text: str) -> str:
    return " ".join(words_of(text))


def catalog_entries(products: list[Product], *, min_products: int, max_phrases: int) -> list[Entry]:
    """Brands, category leaves, brand + leaf and color + leaf pairs that occur, and frequent title phrases; the heaviest ``max_phrases``."""
    brands = Counter(p.brand for p in products if p.brand)
    paths = Counter(p.category for p in products if p.category)
    pairs = Counter((qualifier, p.category) for p in products if p.category for qualifier in (p.brand, p.color) if qualifier)
    found = [Entry(key_of(b), b.lower(), "brand", None, n) for b, n in brands.items()]
    found += [Entry(key_of(_leaf(c)), _leaf(c).lower(), "category", c, n) for c, n in paths.items()]
    found += [Entry(key_of(f"{q} {_leaf(c)}"), f"{q} {_leaf(c)}".lower(), "category", c, n) for (q, c), n in pairs.items()]
    found += [Entry(g, g, "phrase", None, n) for g, n in _title_ngrams(p.title for p in products).items() if n >= min_products]
    return _heaviest(merge(found), max_phrases)


def query_entries(queries: Iterable[tuple[str, int]], *, min_count: int, weight: float, max_queries: int) -> list[Entry]:
    """Past queries searched at least ``min_count`` times, weighted ``count * weight``; counts of queries that tokenise alike add up."""
    counts: Counter[str] = Counter()
    for text, count in queries:
        counts[key_of(text)] += count
    counts.pop("", None)
    return _heaviest([Entry(k, k, "query", None, n * weight) for k, n in counts.items() if n >= min_count], max_queries)


def _leaf(path: str) -> str:
    return path.split(" > ")[-1]


def merge(entries: Iterable[Entry]) -> list[Entry]:
    """One entry per plural-insensitive key, as heavy as its heaviest source and found by every spelling.

    Catalog spellings win over a query's, and brands and categories (which carry a path) over title phrases.
    """
    groups: dict[str, list[Entry]] = {}
    for e in entries:
        if e.key:
            groups.setdefault(" ".join(map(singular, e.key.split())), []).append(e)
    merged = []
    for group in groups.values():
        best = min(group, key=lambda e: (_PRECEDENCE[e.kind], -e.weight, e.key))
        aliases = sorted({k for e in group for k in (e.key, *e.aliases)} - {best.key})
        merged.append(replace(best, weight=max(e.weight for e in group), aliases=tuple(aliases)))
    return merged


def _heaviest(entries: list[Entry], n: int) -> list[Entry]:
    return sorted(entries, key=lambda e: (-e.weight, e.key))[:n]


def _title_ngrams(titles: Iterable[str]) -> Counter[str]:
    """In how many titles each 1-4 word phrase occurs, for phrases that start and end on a content word and that no longer phrase always extends."""
    counts: Counter[str] = Counter()
    edge_ok: dict[str, bool] = {}
    for title in titles:
        grams: set[str] = set()
        for clause in _CLAUSE.split(title):
            words = words_of(clause)
            for i, first in enumerate(words):
                for n in _NGRAM_SIZES:
                    # A bare number inside is a fraction's or a size's piece ("cordless 1/4 hex" reads "cordless 1 4 hex").
                    if i + n <= len(words) and _edge(first, edge_ok) and _edge(words[i + n - 1], edge_ok) and not any(w.isdigit() for w in words[i : i + n]):
                        grams.add(" ".join(words[i : i + n]))
        counts.update(grams)
    # A phrase always followed by the same word is a prefix of the longer one, which completes it anyway ("drill driver" -> "drill driver kit").
    shadowed = {head for g, n in counts.items() if " " in (head := g.rpartition(" ")[0]) and counts.get(head) == n}
    return Counter({g: n for g, n in counts.items() if g not in shadowed})


def _edge(word: str, cache: dict[str, bool]) -> bool:
    """Whether a phrase may start or end on ``word``: letters only (no sizes or model numbers), two or more, not a function word."""
    ok = cache.get(word)
    if ok is None:
        ok = cache[word] = len(word) > 1 and word.replace("'", "").isalpha() and zipf_frequency(word, "en") < _FUNCTION_ZIPF
    return ok
