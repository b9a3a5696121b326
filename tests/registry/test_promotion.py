"""Model promotion: the card gate, the admin key, the registry CLI, and a zero-failure switch in live Serve."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from shopray.registry import ModelCard, Registry
from shopray.registry.promotion import PromotionRefused, promote, refusal
from shopray.stages.rank.cross_encoder import served_arithmetic

KEY = "test-admin-key-6"


def _card(score: float | None, metric: str = "ndcg@10") -> ModelCard:
    return ModelCard(kind="ranker", base_model="minilm", metric=metric, metrics={} if score is None else {metric: score})


def _dummy(tmp_path, name: str):
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text("{}")
    return d


@pytest.fixture
def registry(tmp_path):
    reg = Registry(tmp_path / "reg")
    prod = reg.register("ranker", _dummy(tmp_path, "a"), _card(0.60), alias="production")
    better = reg.register("ranker", _dummy(tmp_path, "b"), _card(0.65), alias=None)
    worse = reg.register("ranker", _dummy(tmp_path, "c"), _card(0.55), alias=None)
    other = reg.register("ranker", _dummy(tmp_path, "d"), _card(0.99, metric="val_ndcg@10"), alias=None)
    return reg, {"prod": prod, "better": better, "worse": worse, "other": other}


def test_the_gate_compares_on_productions_metric(registry):
    reg, v = registry
    prod = reg.card("ranker", v["prod"])
    assert refusal(reg.card("ranker", v["better"]), prod) is None
    assert "worse" in refusal(reg.card("ranker", v["worse"]), prod)
    assert "not comparable" in refusal(reg.card("ranker", v["other"]), prod)
    assert refusal(reg.card("ranker", v["worse"]), None) is None  # nothing in production yet


def test_promote_refuses_a_worse_model_unless_forced(registry):
    reg, v = registry
    with pytest.raises(PromotionRefused, match="worse"):
        promote(reg, "ranker", v["worse"])
    assert reg.resolve("ranker", "production") == v["prod"]
    result = promote(reg, "ranker", v["worse"], force=True)
    assert result["forced"] and result["changed"] and reg.resolve("ranker", "production") == v["worse"]
    result = promote(reg, "ranker", v["better"])
    assert result["previous"] == v["worse"] and not result["forced"]
    assert promote(reg, "ranker", v["better"])["changed"] is False
    with pytest.raises(KeyError):
        promote(reg, "ranker", "v-nope")


def test_the_cli_needs_the_admin_key(registry, monkeypatch, capsys):
    from shopray.cli import main

    reg, v = registry
    monkeypatch.delenv("SHOPRAY_ADMIN_KEY", raising=False)
    assert main(["promote", "ranker", v["better"], "--offline", "--registry", str(reg.root)]) == 2
    assert "SHOPRAY_ADMIN_KEY" in capsys.readouterr().err
    monkeypatch.setenv("SHOPRAY_ADMIN_KEY", KEY)
    assert main(["promote", "ranker", v["worse"], "--offline", "--registry", str(reg.root)]) == 1
    assert "refused" in capsys.readouterr().err and reg.resolve("ranker", "production") == v["prod"]
    assert main(["promote", "ranker", v["better"], "--offline", "--registry", str(reg.root)]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == v["better"]
    assert reg.resolve("ranker", "production") == v["better"]


def test_registry_list_and_show(registry, capsys):
    from shopray.cli import main

    reg, v = registry
    assert main(["registry", "--registry", str(reg.root), "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["version"] for r in rows} == set(v.values())
    assert next(r for r in rows if r["version"] == v["prod"])["aliases"] == "production"
    assert main(["registry", "--registry", str(reg.root), "show", "ranker"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["version"] == v["prod"] and shown["aliases"] == ["production"] and shown["metrics"] == {"ndcg@10": 0.6}
    assert main(["registry", "--registry", str(reg.root), "show", "parser"]) == 1


# ---------------------------------------------------------------------------- live Serve


@pytest.fixture(scope="module")
def promo_app(tmp_path_factory, app_config, serve_port):
    """A second app (route /promo) whose Ranker is a cross-encoder named by the alias `production`."""
    from ray import serve

    from shopray.config import RankerConfig
    from shopray.serving.app import bind_app
    from shopray.training.ranker.fit import init_cross_encoder

    root = tmp_path_factory.mktemp("promo")
    reg = Registry(root / "registry")
    versions = {}
    for name, seed, score in (("old", 0, 0.50), ("new", 1, 0.60), ("worse", 2, 0.40)):
        versions[name] = reg.register("ranker", init_cross_encoder(root / name, seed=seed), _card(score), alias="production" if name == "old" else None)
    config = app_config.model_copy(update={
        "ranker": RankerConfig(kind="crossencoder", model="production", registry=reg.root, refresh_s=0.5, max_length=32, top_n=20, budget_ms=20000),
        "parser": app_config.parser.model_copy(update={"budget_ms": 10000}),
        "retriever": app_config.retriever.model_copy(update={"budget_ms": 20000}),
        "diversifier": app_config.diversifier.model_copy(update={"budget_ms": 10000}),
    })
    env = {"runtime_env": {"env_vars": {"SHOPRAY_ADMIN_KEY": KEY}}, "num_cpus": 0.1}
    serve.run(bind_app(config, {"SearchIngress": {"ray_actor_options": env}}), name="promo", route_prefix="/promo")
    yield f"http://127.0.0.1:{serve_port}/promo", reg, versions
    serve.delete("promo")


@pytest.mark.ray
def test_admin_route_needs_the_key_and_refuses_worse(promo_app):
    import httpx

    url, reg, v = promo_app
    body = {"kind": "ranker", "version": v["worse"]}
    assert httpx.post(f"{url}/admin/promote", json=body).status_code == 401
    assert httpx.post(f"{url}/admin/promote", json=body, headers={"X-Admin-Key": "wrong"}).status_code == 401
    resp = httpx.post(f"{url}/admin/promote", json=body, headers={"X-Admin-Key": KEY})
    assert resp.status_code == 409 and "worse" in resp.json()["detail"]
    resp = httpx.post(f"{url}/admin/promote", json={"kind": "ranker", "version": "v-nope"}, headers={"X-Admin-Key": KEY})
    assert resp.status_code == 404
    assert reg.resolve("ranker", "production") == v["old"]


@pytest.mark.ray
def test_promotion_under_steady_load_fails_no_request(promo_app, monkeypatch):
    from shopray.bench.load import steady_load, summarize
    from shopray.cli import main

    url, reg, v = promo_app
    monkeypatch.setenv("SHOPRAY_ADMIN_KEY", KEY)

    async def drill():
        # On CPUs without native bf16 the replica exports the new model to ONNX Runtime before it answers
        # (about 6-14 s on 2 shared cores), so the load outlasts a slow swap.
        load = asyncio.create_task(steady_load(url, duration_s=40, concurrency=4))
        await asyncio.sleep(4)
        t0 = time.monotonic()
        rc = await asyncio.to_thread(main, ["promote", "ranker", v["new"], "--url", url, "--wait", "30"])
        return rc, time.monotonic() - t0, await load

    rc, took, answers = asyncio.run(drill())
    summary = summarize(answers, old=v["old"], new=v["new"])
    print(json.dumps({**summary, "promote_s": round(took, 2)}))
    assert rc == 0 and reg.resolve("ranker", "production") == v["new"]
    assert summary["failed"] == 0, summary
    assert not [label for label in summary["degraded_labels"] if label.startswith("ranker")], summary
    assert summary["first_new_s"] is not None and summary["last_old_s"] is not None
    # Once the new model answered, the old never did again (one replica swaps one reference).
    assert summary["last_old_s"] <= summary["first_new_s"] + 0.5, summary
    assert answers[-1].versions["ranker"] == f"crossencoder:{v['new']}:{served_arithmetic()}"
