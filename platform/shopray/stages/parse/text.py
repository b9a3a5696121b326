"""Text rules both parsers share: which numbers can be prices, and plural-insensitive word forms.

The rule parser reads prices and matches catalog phrases with these; the LLM
path offers the model only the numbers the query writes as prices, and names
catalog values by the same word forms. One definition, so a fix lands in both.
"""

from __future__ import annotations

import re

# A number followed by a unit or a dimension is a size ("16 oz", "20 in x 20 in", "2x4"), not a price.
_UNITS = (r"oz|fl|in|inch(?:es)?|ft|feet|foot|lbs?|pounds?|gal(?:lons?)?|qt|pt|ml|mm|cm|kg|g|l|v|volts?|w|watts?|amps?|mah|gb|tb|mb"
          r"|hz|khz|ghz|pack|pk|pcs?|pieces?|count|ct|sq|cu|gauge|ga|awg|btu|psi|rpm|mph|cfm|lumens?")
# A number that can be a price; one inside a fraction ("1/2 to 1 pvc elbow") or followed by a unit is a size.
PRICE_DIGITS = rf"(?<![\d./])(?<!\dx)(?<!\dx )(\d+(?:\.\d+)?)(?![\d/])(?!\s*(?:(?:{_UNITS})\b|[%\"'”″]|x\s*\d))"

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
