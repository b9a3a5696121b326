"""Synthetic (query -> intent) pairs generated from the catalog.

Each structured example starts from a real product, so every brand, category,
color and attribute combination exists and a price bound is near a real
price. The truth is built from the chosen fields, never by parsing the text.
Typos, word orders, price phrasings, free text with no structure and prompt
injection strings are all part of the mix.

    examples = generate(products, vocabulary, n=20000, split="train", seed=0)
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from shopray.domain import Intent, Product, Vocabulary
from shopray.stages.parse.lexicon import Lexicon
from shopray.training.parser.templates import SPLITS, TemplateSet

_SLOT_WITH_CONNECTOR = {
    slot: re.compile(rf"(?:(?:in the color|made by|featuring|from|with|by|in) )?\{{{slot}\}}(?: colored)?")
    for slot in "BCAKP"
}
_KEYBOARD = "qwertyuiopasdfghjklzxcvbnm"


@dataclass(frozen=True)
class Example:
    query: str
    intent: Intent  # the truth; keywords are left empty (they come from the query text)
    cheap: bool  # the price bound came from "cheap", not from a number
    kind: str  # structured | free_text | injection
    frame: str
    typo: bool = False


@dataclass(frozen=True)
class Mix:
    """Probabilities of each part of a query; the same for both splits."""

    free_text: float = 0.06
    injection: float = 0.02
    brand: float = 0.55
    category: float = 0.8
    color: float = 0.4
    attribute: float = 0.3
    second_attribute: float = 0.25
    price: float = 0.5
    typo: float = 0.2


def _nice_amount(rng: random.Random, value: float) -> float:
    """A price a shopper would type: round numbers mostly, sometimes exact or .99."""
    r = rng.random()
    if r < 0.15:
        return float(max(1, round(value)))
    if r < 0.25:
        return max(1, int(value)) + 0.99 if value < 100 else float(int(value // 10) * 10 + 9.99)
    step = 5 if value < 50 else 10 if value < 200 else 50 if value < 1000 else 100 if value < 3000 else 500
    return float(max(step, round(value / step) * step))


def _amount_text(rng: random.Random, x: float) -> str:
    if x >= 1000 and x % 500 == 0 and rng.random() < 0.3:
        return f"{x / 1000:g}k"
    return f"{x:g}" if not x.is_integer() else str(int(x))


def _typo(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not candidates:
        return text
    i = rng.choice(candidates)
    w = words[i]
    j = rng.randrange(1, len(w) - 1)
    op = rng.randrange(4)
    if op == 0:
        w = w[:j] + w[j + 1 :]
    elif op == 1:
        w = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    elif op == 2:
        w = w[:j] + w[j] + w[j:]
    else:
        w = w[:j] + rng.choice(_KEYBOARD) + w[j + 1 :]
    words[i] = w
    return " ".join(words)


class Generator:
    def __init__(self, products: list[Product], vocabulary: Vocabulary, split: str, seed: int, mix: Mix = Mix()):
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; one of {sorted(SPLITS)}")
        self.products = [p for p in products if p.category]
        if not self.products:
            raise ValueError("the catalog has no categorised products to generate queries from")
        self.vocabulary = vocabulary
        self.lexicon = Lexicon(vocabulary)
        self.t: TemplateSet = SPLITS[split]
        self.rng = random.Random(f"{split}:{seed}")
        self.mix = mix

    def example(self) -> Example:
        r = self.rng.random()
        if r < self.mix.injection:
            return self._injection()
        if r < self.mix.injection + self.mix.free_text:
            return self._free_text()
        return self._structured()

    def _free_text(self) -> Example:
        rng, t = self.rng, self.t
        for _ in range(50):
            query = rng.choice(t.free_text).format(adj=rng.choice(t.adjectives), thing=rng.choice(t.things), who=rng.choice(t.whos))
            if not self.lexicon.mentions(query):
                return Example(query, Intent(keywords="", source="none"), False, "free_text", "free_text")
        return Example("asdf qwerty", Intent(keywords="", source="none"), False, "free_text", "free_text")

    def _injection(self) -> Example:
        query = self.rng.choice(self.t.injections)
        return Example(query, Intent(keywords="", source="none"), False, "injection", "injection")

    def _price(self, price: float | None, category: str | None) -> tuple[str, float | None, float | None, bool]:
        rng, t = self.rng, self.t
        if price is None or rng.random() >= self.mix.price:
            return "", None, None, False
        kind = rng.choices(("max", "min", "range", "cheap"), weights=(0.45, 0.2, 0.2, 0.15))[0]
        if kind == "cheap":
            cap = self.vocabulary.category_price_p25.get(category or "", self.vocabulary.price_p25)
            return rng.choice(t.cheap), None, cap, True
        if kind == "max":
            x = _nice_amount(rng, price * rng.uniform(1.0, 1.8))
            return rng.choice(t.price_max).format(x=_amount_text(rng, x)), None, x, False
        if kind == "min":
            x = _nice_amount(rng, price * rng.uniform(0.5, 1.0))
            return rng.choice(t.price_min).format(x=_amount_text(rng, x)), x, None, False
        lo = _nice_amount(rng, price * rng.uniform(0.4, 0.95))
        hi = _nice_amount(rng, price * rng.uniform(1.05, 1.8))
        if hi <= lo:
            hi = lo * 2
        text = rng.choice(t.price_range).format(lo=_amount_text(rng, lo), hi=_amount_text(rng, hi))
        return text, lo, hi, False

    def _structured(self) -> Example:
        rng, mix, lex = self.rng, self.mix, self.lexicon
        p = rng.choice(self.products)
        frame = rng.choice(self.t.frames)
        use_category = "{K}" in frame and rng.random() < mix.category
        use_brand = "{B}" in frame and bool(p.brand) and rng.random() < mix.brand
        if not use_category and not use_brand:
            use_category = "{K}" in frame
            use_brand = not use_category and bool(p.brand)
        use_color = "{C}" in frame and bool(p.color) and rng.random() < mix.color
        attrs: list[tuple[str, str]] = []
        if "{A}" in frame and p.attributes and rng.random() < mix.attribute:
            items = sorted(p.attributes.items())
            rng.shuffle(items)
            attrs = items[: 2 if rng.random() < mix.second_attribute else 1]

        category = p.category if use_category else None
        price_text, lo, hi, cheap = self._price(p.price, category) if "{P}" in frame else ("", None, None, False)
        slots = {
            "B": rng.choice(lex.brands[p.brand]) if use_brand else "",
            "C": rng.choice(lex.colors[p.color]) if use_color else "",
            "K": rng.choice(lex.categories[p.category]) if use_category else "",
            "A": " ".join(rng.choice(lex.attribute_forms(k, v)) for k, v in attrs),
            "P": price_text,
        }
        text = frame
        for slot, value in slots.items():
            text = _SLOT_WITH_CONNECTOR[slot].sub(lambda m: m.group(0).replace(f"{{{slot}}}", value) if value else "", text)
        text = " ".join([rng.choice(self.t.prefixes), text, rng.choice(self.t.suffixes)])
        text = " ".join(text.split())
        typo = rng.random() < mix.typo
        if typo:
            text = _typo(rng, text)
        intent = Intent(
            keywords="",
            category=category,
            brand=p.brand if use_brand else None,
            color=p.color if use_color else None,
            price_min=lo,
            price_max=hi,
            attributes=[v for _, v in attrs],
            source="none",
        )
        return Example(text, intent, cheap, "structured", frame, typo)


def generate(products: list[Product], vocabulary: Vocabulary, n: int, split: str = "train", seed: int = 0, exclude: set[str] | None = None) -> list[Example]:
    """``n`` distinct queries; ``exclude`` drops queries seen elsewhere (the training set, for held-out data)."""
    gen = Generator(products, vocabulary, split, seed)
    seen = set(exclude or ())
    out: list[Example] = []
    attempts = 0
    while len(out) < n and attempts < n * 20:
        attempts += 1
        ex = gen.example()
        # Fixed strings (free text, injections) may repeat a few times; structured queries never do.
        key = ex.query if ex.kind == "structured" else f"{ex.query}#{attempts % 7}"
        if key in seen or ex.query in (exclude or ()):
            continue
        seen.add(key)
        out.append(ex)
    return out
