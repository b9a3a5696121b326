"""The shipped configuration end to end: deployments/local.yaml's app, with its LLM parser on vLLM inside Serve and a
cross-encoder ranker, both trained here by the bootstrap code `shopray serve` runs (small recipes, same path).

A search must be fully modelled (``degraded == []``), name both models in ``versions``, and honour a removed intent
chip under ``parser.kind: llm``.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from shopray.bootstrap import progress
from shopray.bootstrap.run import _train, plan
from shopray.config import AppConfig, load_serve_file
from shopray.registry import Registry
from shopray.stages.rank.cross_encoder import served_arithmetic
from shopray.stages.retrieve.index import open_store

pytestmark = pytest.mark.ray
LOCAL = Path(__file__).resolve().parents[2] / "deployments" / "local.yaml"
SMALL_RECIPES = {
    "parser": {"examples": 800, "heldout": 0, "steps": 60, "batch_size": 32, "model_size": "xs"},
    "ranker": {"synthetic_queries": 200, "max_steps": 8, "batch_size": 16, "max_length": 32, "student_queries": 100},
}


@pytest.fixture(scope="module")
def shipped(app_config, serve_port, small_catalog, tmp_path_factory):
    """local.yaml's args and Serve options, on the test index, with the models bootstrapped into a fresh registry."""
    from ray import serve

    from shopray.serving.app import bind_app

    serve_file = load_serve_file(LOCAL)
    app = serve_file["applications"][0]
    args = app["args"]
    registry = tmp_path_factory.mktemp("shipped-registry")
    args["index"] = app_config.index.model_dump(mode="json")
    args["embedding"] = app_config.embedding.model_dump(mode="json")
    args["catalog"] = None  # the test index holds the small catalog already
    args["parser"] = {**args["parser"], "registry": str(registry)}
    args["ranker"] = {**args["ranker"], "registry": str(registry)}
    args["bootstrap"] = {**args["bootstrap"], **SMALL_RECIPES, "threads": 1}
    config = AppConfig.model_validate(args)
    assert (config.parser.kind, config.parser.model, config.ranker.kind, config.ranker.model) == ("llm", "auto", "crossencoder", "auto")

    store = open_store(config.index)
    jobs = plan(config, store.manifest(store.current_version())).jobs
    assert [j.kind for j in jobs] == ["parser", "ranker"]
    versions = {}
    for job in jobs:  # what the bootstrap task does, in this process; the products are the test index's
        reporter = progress.Reporter(Registry(registry), job.kind, job.key)
        versions[job.kind] = _train(job, config, reporter, products=small_catalog)
        reporter.close()
    assert plan(config, store.manifest(store.current_version())).jobs == []  # cached by content now

    options = {d["name"]: {k: v for k, v in d.items() if k != "name"} for d in app["deployments"]}
    serve.run(bind_app(config, options), name="shipped", route_prefix="/shipped")
    url = f"http://127.0.0.1:{serve_port}/shipped"
    yield url, versions
    serve.delete("shipped")


def _search(url: str, body: dict, timeout_s: float = 120) -> dict:
    """Search until the replicas have swapped both models in (the parser's engine takes a while to start)."""
    deadline = time.monotonic() + timeout_s
    while True:
        resp = httpx.post(f"{url}/search", json=body, timeout=60)
        assert resp.status_code == 200, resp.text
        answer = resp.json()
        if not any(label.endswith("_warming") for label in answer["degraded"]) or time.monotonic() > deadline:
            return answer
        time.sleep(1)


def test_the_shipped_config_answers_fully_modelled(shipped, small_catalog):
    url, versions = shipped
    product = next(p for p in small_catalog if p.brand and p.color and p.category)
    answer = _search(url, {"query": f"{product.color} {product.brand} {product.leaf_category}", "k": 5})
    assert answer["degraded"] == [], answer["degraded"]
    assert answer["versions"]["parser"].startswith(f"llm:{versions['parser']}@")
    assert answer["versions"]["ranker"] == f"crossencoder:{versions['ranker']}:{served_arithmetic()}"
    assert answer["intent"]["source"] == "llm" and len(answer["results"]) == 5


def test_removing_an_intent_chip_works_with_the_llm_parser(shipped, small_catalog):
    """The fields the LLM filled are the chips a shopper can remove; removed, they are gone from the LLM's intent."""
    url, _ = shipped
    chips = {"brand": ("brand",), "color": ("color",), "category": ("category",), "price": ("price_min", "price_max")}
    for product in [p for p in small_catalog if p.brand and p.color and p.category][:10]:
        query = f"{product.color} {product.brand} {product.leaf_category} under 500"
        kept = _search(url, {"query": query, "k": 5})
        assert kept["intent"]["source"] == "llm" and kept["degraded"] == []
        filled = [chip for chip, fields in chips.items() if any(kept["intent"][f] is not None for f in fields)]
        if filled:
            break
    assert filled, "the small parser filled no field for any of ten queries"
    removed = _search(url, {"query": query, "k": 5, "ignore_intent": filled})
    assert removed["intent"]["source"] == "llm" and removed["degraded"] == []
    assert all(removed["intent"][f] is None for chip in filled for f in chips[chip]), (filled, removed["intent"])
