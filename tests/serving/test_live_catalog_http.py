"""POST /admin/catalog on real Serve: the admin key, a rejected batch naming its line, a change visible in search."""

from __future__ import annotations

import time

import httpx
import pytest

pytestmark = pytest.mark.ray
KEY = "test-admin-key-21"


@pytest.fixture(scope="module")
def live_url(tmp_path_factory, app_config, serve_port, small_catalog):
    """A third app (route /live) over its own index of 40 products, with the admin key set."""
    from ray import serve

    from shopray.serving.app import bind_app
    from shopray.stages.retrieve.index import open_store
    from shopray.stages.retrieve.ingest import build_index

    config = app_config.model_copy(update={
        "index": app_config.index.model_copy(update={"root": tmp_path_factory.mktemp("live"), "name": "live"}),
        "retriever": app_config.retriever.model_copy(update={"feed_check_s": 0.2, "budget_ms": 20000}),
    })
    build_index(small_catalog[:40], open_store(config.index), config.embedding)
    env = {"runtime_env": {"env_vars": {"SHOPRAY_ADMIN_KEY": KEY}}, "num_cpus": 0.1}
    serve.run(bind_app(config, {"SearchIngress": {"ray_actor_options": env}}), name="live", route_prefix="/live")
    yield f"http://127.0.0.1:{serve_port}/live"
    serve.delete("live")


def test_a_price_change_through_the_admin_route_shows_in_search(live_url, small_catalog):
    target = small_catalog[5]
    body = {"changes": [{"product_id": target.product_id, "price": 3.21}]}
    assert httpx.post(f"{live_url}/admin/catalog", json=body).status_code == 401
    bad = {"changes": [body["changes"][0], {"product_id": target.product_id, "price": -4}]}
    resp = httpx.post(f"{live_url}/admin/catalog", json=bad, headers={"X-Admin-Key": KEY}, timeout=60)
    assert resp.status_code == 422 and resp.json()["line"] == 2 and "price" in resp.json()["detail"]

    resp = httpx.post(f"{live_url}/admin/catalog", json=body, headers={"X-Admin-Key": KEY}, timeout=60)
    assert resp.status_code == 200, resp.text
    seq = resp.json()["last_seq"]
    assert seq == 1  # the rejected batch wrote nothing
    acked = time.monotonic()
    while True:
        found = httpx.post(f"{live_url}/search", json={"query": target.title, "k": 5}, timeout=30).json()
        prices = {r["product_id"]: r.get("price") for r in found["results"]}
        if prices.get(target.product_id) == 3.21 or time.monotonic() - acked > 30:
            break
        time.sleep(0.1)
    assert prices.get(target.product_id) == 3.21
    assert found["versions"]["index"].endswith(f"+{seq}")
