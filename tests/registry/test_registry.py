"""Model registry: versioned directories, cards written last, atomic aliases, and how the ranker resolves a reference."""

import json

import pytest

from shopray.registry import ModelCard, ModelNotFound, Registry, model_label, resolve_model


def _model_dir(tmp_path, name="model"):
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"name": name}))
    return d


def _card(score=0.5):
    return ModelCard(kind="ranker", base_model="minilm", metric="ndcg@10", metrics={"ndcg@10": score}, data={"rows": 3})


def test_register_copies_and_writes_the_card(tmp_path):
    reg = Registry(tmp_path / "reg")
    version = reg.register("ranker", _model_dir(tmp_path), _card(0.61))
    assert reg.versions("ranker") == [version]
    assert (reg.path("ranker", version) / "config.json").exists()
    card = reg.card("ranker", version)
    assert card.version == version and card.kind == "ranker" and card.created_at
    assert card.score == 0.61 and card.data == {"rows": 3}


def test_aliases_resolve_and_move(tmp_path):
    reg = Registry(tmp_path / "reg")
    first = reg.register("ranker", _model_dir(tmp_path, "a"), _card(), alias="production")
    second = reg.register("ranker", _model_dir(tmp_path, "b"), _card())  # default alias: candidate
    assert reg.resolve("ranker", "production") == first
    assert reg.resolve("ranker", "candidate") == second
    reg.set_alias("ranker", "production", second)
    assert reg.path("ranker", "production") == reg.path("ranker", second)
    assert reg.aliases("ranker") == {"production": second, "candidate": second}


def test_bad_references_are_errors(tmp_path):
    reg = Registry(tmp_path / "reg")
    with pytest.raises(KeyError, match="production"):
        reg.resolve("ranker", "production")
    with pytest.raises(KeyError):
        reg.resolve("ranker", "v-nope")
    version = reg.register("ranker", _model_dir(tmp_path), _card(), alias=None)
    with pytest.raises(ValueError, match="alias"):
        reg.set_alias("ranker", "staging", version)
    with pytest.raises(KeyError):
        reg.set_alias("ranker", "production", "v-nope")
    with pytest.raises(ValueError, match="kind"):
        reg.versions("tokenizer")


def test_a_version_without_a_card_is_not_listed(tmp_path):
    reg = Registry(tmp_path / "reg")
    done = reg.register("ranker", _model_dir(tmp_path), _card())
    (reg.root / "ranker" / "v-half-written").mkdir()  # a crash before the card was written
    assert reg.versions("ranker") == [done]


def test_ranker_model_reference_is_a_path_a_version_or_an_alias(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOPRAY_HOME", str(tmp_path / "home"))
    reg = Registry()
    assert reg.root == tmp_path / "home" / "registry"
    version = reg.register("ranker", _model_dir(tmp_path), _card(), alias="production")
    by_alias = resolve_model("ranker", "production")
    assert by_alias == reg.path("ranker", version)
    assert resolve_model("ranker", version) == by_alias
    assert resolve_model("ranker", str(by_alias)) == by_alias
    assert model_label(by_alias) == version
    assert model_label(_model_dir(tmp_path, "plain")) == "plain"
    with pytest.raises(ModelNotFound, match="candidate"):
        resolve_model("ranker", "candidate")
    with pytest.raises(ModelNotFound, match="does not exist"):
        resolve_model("ranker", str(tmp_path / "missing" / "model"))
