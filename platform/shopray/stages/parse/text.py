"""Text rules both parsers share: which numbers can be prices, and plural-insensitive word forms.

The rule parser reads prices and matches catalog phrases with these; the LLM
path offers the model only the numbers the query writes as prices, and names
catalog values by the same word forms. One definition, so a fix lands in both.
"""

from __future__ import annotations

import re

# A number that can be a price; one inside a fraction ("1/2 to 1 pvc elbow") is a size.
PRICE_DIGITS = r"(?<![\d./])(\d+(?:\.\d+)?)(?![\d/])"

# Words that ask for something cheap without a number; the LLM may say "cheap" only for a query holding one.
CHEAP = re.compile(r"\b(?:cheap|cheapest|budget|affordable|inexpensive|bargain|economical|low[ -]?(?:cost|priced?))\b")

_TOKEN = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower().replace("’", "'"))


def singular(word: str) -> str:
    """Plural-insensitive form; enough for catalog nouns ("dresses" -> "dress", "batteries" -> "battery")."""
    for suffix, repl in (("ies", "y"), ("ches", "ch"), ("shes", "sh"), ("sses", "ss"), ("s", "")):
        if word.endswith(suffix) and len(word) > len(suffix) + 2 and not word.endswith("ss"):
            return word[: -len(suffix)] + repl
    return word
