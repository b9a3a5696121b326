"""The parser's output contract, generated from the indexed catalog's vocabulary.

The LLM never writes an Intent directly. It fills a JSON object whose every
filter field is an enum of catalog values (or null) and whose prices are
bounded numbers; vLLM's xgrammar backend enforces that object token by token,
and ``validate`` re-checks it with ``jsonschema`` before it becomes an Intent.
So an intent can only name things the catalog has, whatever the query says.

Fields are optional and absent means "not asked for": a typical query names two
or three things, so the answer is about 8 tokens instead of 17, and on CPU
each decoding step is latency. Two more choices keep the model's job small
and the catalog the source of truth:
- ``keywords`` are not generated: they come from the query text itself
  (the rule parser's tokenizer), so injected text can only ever become keywords.
- "cheap" is a boolean, not a number: what cheap means (the 25th percentile
  price, per category) is read from the current catalog, not memorised in weights.
"""

from __future__ import annotations

import json
import math
import re

import jsonschema

from shopray.domain import MAX_PRICE, Intent, Vocabulary
from shopray.stages.parse.text import CHEAP, PRICE_DIGITS

FIELDS = ("brand", "category", "color", "price_min", "price_max", "cheap", "attributes")
MAX_ATTRIBUTES = 4


def price_ceiling(vocabulary: Vocabulary) -> float:
    """An order of magnitude above the dearest product: "under 10k" still parses, 1e300 cannot."""
    top = vocabulary.price_max or 0.0
    if top <= 0:
        return MAX_PRICE
    return float(min(MAX_PRICE, 10 ** math.ceil(math.log10(top * 10))))


def _enum(values: list[str], description: str) -> dict:
    # An empty enum is not valid JSON schema: a catalog without, say, colors gets a field nothing can fill.
    return {"enum": list(values), "description": description} if values else {"not": {}, "description": description}


def intent_schema(vocabulary: Vocabulary) -> dict:
    price = {"type": "number", "minimum": 0, "maximum": price_ceiling(vocabulary)}
    return {
        "type": "object",
        "properties": {
            "brand": _enum(vocabulary.brands, "Brand named in the query."),
            "category": _enum(vocabulary.categories, "Category the query asks for."),
            "color": _enum(vocabulary.colors, "Color the query asks for."),
            "price_min": {**price, "description": "Lowest acceptable price."},
            "price_max": {**price, "description": "Highest acceptable price."},
            "cheap": {"type": "boolean", "description": "The query asks for something cheap without a number."},
            "attributes": {
                "type": "array",
                "items": _enum(vocabulary.attributes, "An attribute value."),
                "minItems": 1,
                "maxItems": MAX_ATTRIBUTES,
                "description": "Attribute values the query asks for.",
            },
        },
        "required": [],
        "additionalProperties": False,
    }


class InvalidOutput(ValueError):
    """The model's text is not a schema-valid parse. The message names what is wrong, never a value: values come
    from the query, and no query text is logged."""


def validate(text: str, schema: dict) -> dict:
    """Parsed and checked answer, with every field present (absent ones as None)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidOutput(f"not JSON: {exc.msg}") from exc
    try:
        jsonschema.validate(data, schema)
    except jsonschema.ValidationError as exc:
        raise InvalidOutput(f"schema violation at {list(exc.absolute_path)} ({exc.validator})") from exc
    if not isinstance(data, dict):
        raise InvalidOutput("not a JSON object")
    data = {f: data.get(f) for f in FIELDS}
    low, high = data["price_min"], data["price_max"]
    if low is not None and high is not None:
        if low == high:
            # Nobody shops for exactly one price: the model copied one number into both bounds
            # ("$35 - $140" -> 35..35, "under 550" -> 550..550), so the rule parser answers instead.
            raise InvalidOutput("zero-width price range")
        if low > high:
            # "$345 - $120" is still a range: the bounds are read in the order written.
            data["price_min"], data["price_max"] = high, low
    return data


# Fields the query has to mention (by a catalog form or within a typo of one) to fill: free text
# and injections get none, and "in stock" cannot turn into Socks.
MENTIONED = {"brand": "brand", "category": "category", "color": "color", "attributes": "attribute"}


_NUMBER = re.compile(rf"{PRICE_DIGITS}\s*(k\b)?", re.IGNORECASE)


def mentioned_prices(query: str, ceiling: float) -> list[float | int]:
    """Numbers the query writes ("10k" is 10000), as the model writes them: ints when whole."""
    out: list[float | int] = []
    for digits, thousands in _NUMBER.findall(query):
        value = float(digits) * (1000 if thousands else 1)
        value = int(value) if value.is_integer() else round(value, 2)
        if value <= ceiling and value not in out:
            out.append(value)
    return out


def narrowed(schema: dict, found: dict[str, list[str]], query: str, infer_category: bool = False) -> dict:
    """The schema for one query: brand, category, color and attribute enums cut to what its words
    may mean (``CandidateFinder.find``), prices to the numbers it writes, "cheap" to a query that says so; a field with no candidates
    is left out, so it cannot be emitted. ``infer_category`` keeps every category open."""
    props = dict(schema["properties"])
    prices = mentioned_prices(query, props["price_max"]["maximum"])
    for bound in ("price_min", "price_max"):
        if prices:
            props[bound] = {**props[bound], "enum": prices}
        else:
            props.pop(bound)
    if not CHEAP.search(query):
        props.pop("cheap")  # a title such as "Dove ... Shampoo, 16 oz" was read as cheap: a price cap nobody asked for
    for field, key in MENTIONED.items():
        if field == "category" and infer_category:
            continue
        values = found.get(key) or []
        if not values:
            props.pop(field, None)
        elif field == "attributes":
            props[field] = {**props[field], "items": {**props[field]["items"], "enum": list(values)}}
        else:
            props[field] = {**props[field], "enum": list(values)}
    return {**schema, "properties": props}


def to_intent(data: dict, keywords: str, vocabulary: Vocabulary) -> Intent:
    """A validated parse plus the query's own keywords -> Intent; "cheap" is resolved against the catalog."""
    price_max = data["price_max"]
    if data["cheap"] and price_max is None:
        price_max = vocabulary.category_price_p25.get(data["category"] or "", vocabulary.price_p25)
    seen: list[str] = []
    for value in data["attributes"] or ():
        if value not in seen:
            seen.append(value)
    return Intent(
        keywords=keywords,
        category=data["category"],
        brand=data["brand"],
        color=data["color"],
        price_min=None if data["price_min"] is None else float(data["price_min"]),
        price_max=None if price_max is None else float(price_max),
        attributes=seen,
        source="llm",
    )


def target_json(intent: Intent, cheap: bool) -> str:
    """The exact text the model is trained to emit for an intent: compact, fields in schema order."""

    def num(v: float | None):
        if v is None:
            return None
        return int(v) if float(v).is_integer() else round(float(v), 2)

    data = {
        "brand": intent.brand,
        "category": intent.category,
        "color": intent.color,
        "price_min": num(intent.price_min),
        "price_max": None if cheap else num(intent.price_max),
        "cheap": cheap or None,
        "attributes": intent.attributes[:MAX_ATTRIBUTES] or None,
    }
    return json.dumps({k: v for k, v in data.items() if v is not None}, separators=(",", ":"), ensure_ascii=False)
