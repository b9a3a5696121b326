"""What a fresh machine trains, keyed by content: the plan per catalog, the keys, the registry lookup, progress."""

from __future__ import annotations

import time

import pytest

from shopray.api import SearchRequest
from shopray.bootstrap import progress
from shopray.bootstrap.keys import AutoModel, bootstrap_key, find, is_structured
from shopray.bootstrap.run import plan
from shopray.config import AppConfig, ParserConfig, ParserRecipe, RankerConfig, RankerRecipe
from shopray.domain import Vocabulary
from shopray.follow import Follower
from shopray.graph import SearchContext
from shopray.registry import ModelCard, Registry
from shopray.stages.parse.stage import ParseStage
from shopray.stages.parse.terms import CatalogTerms
from shopray.stages.retrieve.index.base import IndexManifest

SHOP = Vocabulary(brands=["Nike"], categories=["Shoes > Running"], colors=["red"], price_max=200.0)
TITLES_ONLY = Vocabulary()


def _manifest(vocabulary: Vocabulary, sha: str = "a" * 64) -> IndexManifest:
    return IndexManifest(name="shop", version="v1", created_at="", count=3, dim=384, embedding_model="minilm", catalog_sha256=sha, vocabulary=vocabulary)


def _config(tmp_path) -> AppConfig:
    registry = tmp_path / "registry"
    return AppConfig(parser=ParserConfig(kind="llm", registry=registry), ranker=RankerConfig(kind="crossencoder", registry=registry))


def _register(tmp_path, kind: str, key: str, role: str = "student") -> str:
    model = tmp_path / f"model-{kind}-{len(list(tmp_path.glob('model-*')))}"
    model.mkdir()
    (model / "config.json").write_text("{}")
    card = ModelCard(kind=kind, base_model="x", metric="m", data={"bootstrap_key": key, "bootstrap_role": role})
    return Registry(tmp_path / "registry").register(kind, model, card, alias=None)


def test_keys_change_with_the_catalog_the_recipe_and_the_kind():
    parser = bootstrap_key("parser", ParserRecipe(), "a" * 64)
    assert parser == bootstrap_key("parser", ParserRecipe(), "a" * 64)
    assert parser != bootstrap_key("parser", ParserRecipe(), "b" * 64)
    assert parser != bootstrap_key("parser", ParserRecipe(steps=10), "a" * 64)
    assert bootstrap_key("ranker", RankerRecipe(), "a" * 64) != bootstrap_key("ranker", RankerRecipe(max_steps=7), "a" * 64)
    assert bootstrap_key("ranker", RankerRecipe(), "a" * 64) != bootstrap_key("ranker", RankerRecipe(), "b" * 64)


def test_a_structured_catalog_gets_both_models_and_titles_only_gets_no_parser(tmp_path):
    config = _config(tmp_path)
    shop = plan(config, _manifest(SHOP))
    assert [j.kind for j in shop.jobs] == ["parser", "ranker"]
    titles = plan(config, _manifest(TITLES_ONLY))
    assert titles.jobs == [] and "no brand, category or color" in titles.lines[0] and "the retriever's order" in titles.lines[1]
    assert is_structured(SHOP) and not is_structured(TITLES_ONLY)


def test_registered_models_are_found_by_key_and_not_trained_again(tmp_path):
    config = _config(tmp_path)
    jobs = plan(config, _manifest(SHOP)).jobs
    versions = {job.kind: _register(tmp_path, job.kind, job.key) for job in jobs}
    again = plan(config, _manifest(SHOP))
    assert again.jobs == [] and versions["parser"] in again.lines[0] and versions["ranker"] in again.lines[1]
    assert [j.kind for j in plan(config, _manifest(SHOP, sha="c" * 64)).jobs] == ["parser", "ranker"]  # another catalog: other models
    registry = Registry(tmp_path / "registry")
    newer = _register(tmp_path, "ranker", jobs[1].key)
    assert find(registry, "ranker", jobs[1].key).name == newer


def test_the_ranker_job_is_done_when_its_student_is_registered(tmp_path):
    config = _config(tmp_path)
    ranker_job = plan(config, _manifest(SHOP)).jobs[1]
    teacher = _register(tmp_path, "ranker", ranker_job.key, role="teacher")
    pending = plan(config, _manifest(SHOP))
    assert ranker_job in pending.jobs and f"{teacher} answers while its 3-layer student is distilled" in pending.lines[1]
    without_student = config.model_copy(update={"bootstrap": config.bootstrap.model_copy(update={"ranker": RankerRecipe(student_layers=None)})})
    assert [j.kind for j in plan(without_student, _manifest(SHOP)).jobs] == ["parser", "ranker"]  # another recipe, another key
    student = _register(tmp_path, "ranker", ranker_job.key, role="student")
    done = plan(config, _manifest(SHOP))
    assert [j.kind for j in done.jobs] == ["parser"] and student in done.lines[1]
    with pytest.raises(ValueError, match="fewer than layers"):
        RankerRecipe(layers=3, student_layers=3)


def test_progress_says_warming_while_fresh_and_keeps_a_failure(tmp_path):
    auto, sha = AutoModel("ranker", RankerRecipe(), tmp_path / "registry"), "a" * 64
    assert not auto.training(sha)
    reporter = progress.Reporter(auto.registry, "ranker", auto.key(sha))
    assert progress.read(auto.registry, "ranker", auto.key(sha)).phase == "queued" and auto.training(sha)
    reporter.update("training", 0.5)
    state = progress.read(auto.registry, "ranker", auto.key(sha))
    assert auto.training(sha) and state.phase == "training" and state.done == 0.5 and state.eta_s is not None
    reporter.fail("RuntimeError: out of memory")
    assert not auto.training(sha) and progress.read(auto.registry, "ranker", auto.key(sha)).error == "RuntimeError: out of memory"
    stale = progress.Progress(kind="ranker", key="k", updated_at=time.time() - progress.STALE_S - 1)
    assert not stale.running()


def test_a_titles_only_catalog_is_served_by_rules_and_says_so():
    terms = Follower.fixed(CatalogTerms.build("v1", TITLES_ONLY, "a" * 64))
    stage = ParseStage(terms, Follower(lambda: None, lambda key: None, name="model", every_s=0), ParserConfig(kind="llm"))
    ctx = stage.run(SearchContext(request=SearchRequest(query="cordless drill under 100")))
    assert ctx.degraded == ["parser_unstructured_catalog"] and ctx.intent.source == "rule" and ctx.intent.price_max == 100
