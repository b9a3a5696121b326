"""Synthetic training data: truths name only catalog values; held-out data shares no template with training."""

import pytest

from shopray.domain import Intent, Vocabulary
from shopray.stages.parse.lexicon import Lexicon
from shopray.training.parser.eval import exact_match, field_scores
from shopray.training.parser.synth import generate
from shopray.training.parser.templates import HELDOUT, TRAIN


@pytest.fixture(scope="module")
def catalog(small_catalog):
    return small_catalog, Vocabulary.from_products(small_catalog)


def test_train_and_heldout_templates_are_disjoint():
    for part in ("frames", "price_max", "price_min", "price_range", "free_text", "adjectives", "things", "whos", "injections"):
        assert not set(getattr(TRAIN, part)) & set(getattr(HELDOUT, part)), part
    assert not (set(TRAIN.prefixes) & set(HELDOUT.prefixes)) - {""}
    assert not (set(TRAIN.suffixes) & set(HELDOUT.suffixes)) - {""}


def test_truths_use_only_the_vocabulary(catalog):
    products, vocab = catalog
    for ex in generate(products, vocab, 600, "train", seed=3):
        t = ex.intent
        assert t.brand is None or t.brand in vocab.brands
        assert t.category is None or t.category in vocab.categories
        assert t.color is None or t.color in vocab.colors
        assert set(t.attributes) <= set(vocab.attributes)
        if t.price_min is not None and t.price_max is not None:
            assert t.price_min < t.price_max
        if ex.kind != "structured":
            assert (t.brand, t.category, t.color, t.price_min, t.price_max) == (None,) * 5


def test_heldout_never_repeats_a_training_query(catalog):
    products, vocab = catalog
    train = generate(products, vocab, 800, "train", seed=0)
    heldout = generate(products, vocab, 300, "heldout", seed=1, exclude={e.query for e in train})
    assert len(heldout) == 300
    assert not {e.query for e in heldout} & {e.query for e in train}
    assert {e.frame for e in heldout if e.kind == "structured"} <= set(HELDOUT.frames)


def test_generation_is_deterministic_per_seed(catalog):
    products, vocab = catalog
    a = [e.query for e in generate(products, vocab, 50, "train", seed=5)]
    b = [e.query for e in generate(products, vocab, 50, "train", seed=5)]
    c = [e.query for e in generate(products, vocab, 50, "train", seed=6)]
    assert a == b and a != c


def test_free_text_mentions_no_catalog_phrase(catalog):
    products, vocab = catalog
    lex = Lexicon(vocab)
    free = [e for e in generate(products, vocab, 1500, "heldout", seed=2) if e.kind == "free_text"]
    assert free and not any(lex.mentions(e.query) for e in free)


def test_category_forms_are_unambiguous(catalog):
    _, vocab = catalog
    owners = {}
    for path, forms in Lexicon(vocab).categories.items():
        for f in forms:
            owners.setdefault(f, set()).add(path)
    assert all(len(paths) == 1 for paths in owners.values())


def test_field_scores_count_wrong_values_against_precision_and_recall():
    truth = [Intent(brand="Nike", price_max=80), Intent(brand="Sony"), Intent()]
    pred = [Intent(brand="Nike", price_max=80), Intent(brand="Bose"), Intent(color="red")]
    scores = field_scores(zip(pred, truth))
    assert scores["brand"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "tp": 1, "fp": 1, "fn": 1}
    assert scores["price"]["f1"] == 1.0
    assert scores["color"]["precision"] == 0.0 and scores["color"]["fp"] == 1
    assert exact_match(zip(pred, truth)) == pytest.approx(1 / 3, abs=1e-4)
