"""How shoppers name catalog values: the surface forms synthetic queries use.

Forms come from the catalog itself (brand, leaf category, color and attribute
strings, with plural, punctuation and word-order variants) plus a small table
of everyday English synonyms for common product nouns. A form that would name
two different categories is dropped, so every generated query has one truth.
"""

from __future__ import annotations

import re
from collections import defaultdict

from shopray.models import Vocabulary

# Everyday names for common leaf categories, keyed by the lower-case leaf.
# Leaves not listed still get their catalog name and its singular.
CATEGORY_SYNONYMS: dict[str, list[str]] = {
    "running": ["running shoes", "running shoe", "running sneakers", "road running shoes", "runners"],
    "trail running": ["trail running shoes", "trail runners", "trail shoes", "trail running shoe"],
    "basketball": ["basketball shoes", "basketball shoe", "basketball sneakers", "hoops shoes"],
    "hiking boots": ["hiking boot", "hikers", "trekking boots", "hiking shoes"],
    "sandals": ["sandal", "flip flops", "slides"],
    "casual sneakers": ["sneakers", "sneaker", "casual shoes", "trainers"],
    "dress shoes": ["dress shoe", "oxfords", "oxford shoes", "formal shoes"],
    "t-shirts": ["t-shirt", "t shirt", "tshirt", "tee", "tees"],
    "hoodies & sweatshirts": ["hoodie", "hoodies", "sweatshirt", "sweatshirts"],
    "rain jackets": ["rain jacket", "raincoat", "rain shell"],
    "down jackets": ["down jacket", "puffer jacket", "puffer", "down coat"],
    "jeans": ["denim jeans", "pair of jeans"],
    "running shorts": ["running short", "jogging shorts", "run shorts"],
    "socks": ["sock", "pair of socks"],
    "leggings": ["legging", "yoga pants", "tights"],
    "headphones": ["headphone", "over-ear headphones", "over ear headphones", "headset"],
    "earbuds": ["earbud", "wireless earbuds", "earphones", "in-ear buds"],
    "bluetooth speakers": ["bluetooth speaker", "portable speaker", "wireless speaker"],
    "tvs": ["tv", "television", "smart tv", "televisions"],
    "laptops": ["laptop", "notebook computer", "notebook"],
    "monitors": ["monitor", "computer monitor", "computer screen", "display"],
    "smartphones": ["smartphone", "phone", "cell phone", "mobile phone"],
    "smartwatches": ["smartwatch", "smart watch", "fitness watch"],
    "cameras": ["camera", "digital camera", "mirrorless camera"],
    "skillets": ["skillet", "frying pan", "fry pan"],
    "dutch ovens": ["dutch oven", "cocotte"],
    "blenders": ["blender", "smoothie blender"],
    "coffee makers": ["coffee maker", "coffee machine", "drip coffee maker"],
    "stand mixers": ["stand mixer", "kitchen mixer"],
    "air fryers": ["air fryer", "airfryer"],
    "chef knives": ["chef knife", "chef's knife", "kitchen knife", "cooks knife"],
    "sheet sets": ["sheet set", "bed sheets", "sheets"],
    "drills": ["drill", "cordless drill", "drill driver", "power drill"],
    "circular saws": ["circular saw", "circ saw"],
    "impact drivers": ["impact driver"],
    "hammers": ["hammer", "claw hammer"],
    "screwdriver sets": ["screwdriver set", "screwdrivers", "screwdriver kit"],
    "tool storage": ["tool box", "toolbox", "tool chest"],
    "tents": ["tent", "camping tent", "backpacking tent"],
    "sleeping bags": ["sleeping bag"],
    "yoga mats": ["yoga mat", "exercise mat"],
    "dumbbells": ["dumbbell", "free weights", "hand weights"],
    "bike helmets": ["bike helmet", "bicycle helmet", "cycling helmet"],
    "water bottles": ["water bottle", "drinking bottle"],
    "moisturizers": ["moisturizer", "face cream", "face moisturizer"],
    "sunscreen": ["sunscreens", "sunblock"],
    "shampoo": ["shampoos"],
    "hair dryers": ["hair dryer", "blow dryer", "hairdryer"],
    "fragrance": ["perfume", "cologne", "fragrances"],
    "building sets": ["building set", "building blocks", "construction set"],
    "board games": ["board game", "tabletop game"],
    "puzzles": ["puzzle", "jigsaw puzzle", "jigsaw"],
    "remote control vehicles": ["rc car", "rc truck", "remote control car"],
    "stuffed animals": ["stuffed animal", "plush toy", "plushie"],
    "sofas": ["sofa", "couch", "sectional"],
    "office chairs": ["office chair", "desk chair", "ergonomic chair"],
    "desks": ["desk", "writing desk", "computer desk"],
    "bed frames": ["bed frame", "platform bed"],
    "bookcases": ["bookcase", "bookshelf", "bookshelves"],
}

COLOR_SYNONYMS: dict[str, list[str]] = {
    "grey": ["gray"],
    "navy": ["navy blue"],
    "multicolor": ["multi color", "multicolored"],
    "burgundy": ["maroon"],
}

GENDER_FORMS = {
    "men": ["men's", "mens", "for men"],
    "women": ["women's", "womens", "for women"],
    "kids": ["kids", "kids'", "for kids"],
    "unisex": ["unisex"],
}

_NON_WORD = re.compile(r"[^a-z0-9 ]+")
_INCHES = re.compile(r"^(\d+(?:\.\d+)?) in$")


def _words(text: str) -> str:
    return f" {' '.join(re.findall(r'[a-z0-9]+', text.lower()))} "


def singular(word: str) -> str:
    for suffix, repl in (("ies", "y"), ("ches", "ch"), ("shes", "sh"), ("sses", "ss"), ("s", "")):
        if word.endswith(suffix) and len(word) > len(suffix) + 2 and not word.endswith("ss"):
            return word[: -len(suffix)] + repl
    return word


def _brand_forms(brand: str) -> list[str]:
    low = brand.lower()
    forms = [low]
    plain = " ".join(_NON_WORD.sub("", low.replace("&", " and ").replace("-", " ").replace("+", " ")).split())
    squashed = _NON_WORD.sub("", low)
    for extra in (plain, squashed, low[4:] if low.startswith("the ") else ""):
        if extra and extra not in forms:
            forms.append(extra)
    return forms


def _attribute_forms(key: str, value: str) -> list[str]:
    if key == "gender" and value in GENDER_FORMS:
        return GENDER_FORMS[value]
    if m := _INCHES.match(value):
        return [value, f"{m.group(1)} inch", f'{m.group(1)}"']
    if key == "size" and (re.fullmatch(r"\d+(?:\.\d+)?", value) or len(value) <= 3):
        return [f"size {value}"]
    return [value]


class Lexicon:
    """Surface forms for every vocabulary value, and a check for vocabulary mentions."""

    def __init__(self, vocabulary: Vocabulary):
        self.vocabulary = vocabulary
        self.brands = {b: _brand_forms(b) for b in vocabulary.brands}
        self.colors = {c: [c, *COLOR_SYNONYMS.get(c, [])] for c in vocabulary.colors}
        self.categories = self._category_forms(vocabulary.categories)
        phrases = {form for table in (self.brands, self.colors, self.categories) for forms in table.values() for form in forms}
        self._phrases = {_words(p) for p in phrases | set(vocabulary.attributes)} - {"  "}

    @staticmethod
    def _category_forms(categories: list[str]) -> dict[str, list[str]]:
        owners: dict[str, set[str]] = defaultdict(set)
        proposed: dict[str, list[str]] = {}
        for path in categories:
            leaf = path.split(" > ")[-1].lower()
            forms = [leaf, singular(leaf), *CATEGORY_SYNONYMS.get(leaf, [])]
            forms = list(dict.fromkeys(f for f in forms if f))
            proposed[path] = forms
            for f in forms:
                owners[f].add(path)
        return {path: [f for f in forms if len(owners[f]) == 1] or forms[:1] for path, forms in proposed.items()}

    def attribute_forms(self, key: str, value: str) -> list[str]:
        return _attribute_forms(key, value)

    def mentions(self, text: str) -> bool:
        """Does the text contain any catalog phrase as whole words? (So "no structure" really has none.)"""
        words = _words(text)
        return any(p in words for p in self._phrases)
