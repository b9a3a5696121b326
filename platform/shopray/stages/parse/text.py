"""Text rules both parsers share: which numbers can be prices, and plural-insensitive word forms.

The rule parser reads prices and matches catalog phrases with these; the LLM
path offers the model only the numbers the query writes as prices, and names
catalog values by the same word forms. One definition, so a fix lands in both.
"""

from __future__ import annotations

import re

# A number followed by a unit, a count noun or a dimension is a size or a count ("16 oz", "20 in x 20 in", "2x4",
# "2-light", "4 players", "ages 8+"), not a price.
_UNITS = (r"oz|fl|in|inch(?:es)?|ft|feet|foot|lbs?|pounds?|gal(?:lons?)?|qts?|quarts?|pt|ml|mm|cm|kg|g|l|v|volts?|w|watts?|amps?|mah"
          r"|gb|tb|mb|hz|khz|ghz|pack|pk|pcs?|pieces?|count|ct|sq|cu|gauge|ga|awg|btu|psi|rpm|mph|cfm|lumens?|ply|tbsp|tsp"
          r"|players?|people|persons?|seats?|seater|drawers?|shel(?:f|ves)|tiers?|burners?|cups?|slices?|ports?|outlets?|speeds?"
          r"|lights?|gang|handles?|doors?|panels?|blades?|steps?|wheels?|sheets?|rolls?|bags?|bottles?|cans?|servings?|layers?"
          r"|years?|yrs?|months?|days?|hours?|hrs?")
PRICE_DIGITS = rf"(?<![\d./])(?<!\dx)(?<!\dx )(?<!ages )(?<!age )(\d+(?:\.\d+)?)(?![\d/])(?!\s*-?\s*(?:(?:{_UNITS})\b|[%\"'”″]|x\s*\d))"

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
