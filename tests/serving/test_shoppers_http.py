"""Events, recommendations, suggestions and session erasure on real Serve, with the embedded event log."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from shopray.config import RankerConfig

pytestmark = pytest.mark.ray
KEY = "test-admin-key-19"


@pytest.fixture(scope="module")
def shop_url(tmp_path_factory, app_config, serve_port):
    """A fourth app (route /shop) over the shared test index, with its own event log, popularity at the shipped
    weight, and the admin key set."""
    from ray import serve

    from shopray.serving.app import bind_app

    config = app_config.model_copy(update={"events": app_config.events.model_copy(update={"path": tmp_path_factory.mktemp("events") / "e.sqlite",
                                                                                          "refresh_s": 0.1}),
                                         "ranker": app_config.ranker.model_copy(update={"popularity_weight": RankerConfig().popularity_weight})})
    env = {"runtime_env": {"env_vars": {"SHOPRAY_ADMIN_KEY": KEY}}, "num_cpus": 0.1}
    serve.run(bind_app(config, {"SearchIngress": {"ray_actor_options": env}}), name="shop", route_prefix="/shop")
    url = f"http://127.0.0.1:{serve_port}/shop"
    deadline = time.monotonic() + 60
    while httpx.get(f"{url}/suggest", params={"q": "a"}).status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.5)  # events, recommendations and suggestions start on a thread beside search
    yield url
    serve.delete("shop")


def _until(call, done, timeout_s: float = 10.0):
    """Features follow the log within refresh_s, on a background thread: ask until ``done``."""
    deadline = time.monotonic() + timeout_s
    while True:
        resp = call()
        if done(resp) or time.monotonic() > deadline:
            return resp
        time.sleep(0.1)


def _recommend(url: str, **body) -> httpx.Response:
    return httpx.post(f"{url}/recommend", json=body, timeout=30)


def test_events_are_accepted_once_and_bad_ones_are_refused(shop_url, small_catalog):
    events = [{"session_id": "s-1", "type": "view", "product_id": small_catalog[0].product_id, "ts": time.time() - 5, "query": "shoes"}]
    first = httpx.post(f"{shop_url}/events", json={"events": events})
    assert first.status_code == 202 and first.json() == {"accepted": 1, "duplicates": 0}
    assert httpx.post(f"{shop_url}/events", json={"events": events}).json() == {"accepted": 0, "duplicates": 1}
    for bad in ({**events[0], "session_id": "jane.doe@example.com"}, {**events[0], "session_id": "+1 (555) 010-9999"},
                {**events[0], "type": "like"}, {**events[0], "ts": time.time() + 86400}, {**events[0], "extra": 1}):
        resp = httpx.post(f"{shop_url}/events", json={"events": [events[0], bad]})
        assert resp.status_code == 422, bad
        assert "jane" not in resp.text  # the offending input is never echoed
    assert httpx.post(f"{shop_url}/events", json={"events": []}).status_code == 422


def test_recommendations_in_every_mode(shop_url, small_catalog):
    a, b, c, d = (p.product_id for p in small_catalog[10:14])
    similar = _recommend(shop_url, mode="similar", product_id=a, k=5).json()
    assert similar["model"] == "qdrant-recommend" and similar["based_on"] == [a] and similar["fallback"] is None
    assert 0 < len(similar["results"]) <= 5 and a not in [r["product_id"] for r in similar["results"]]

    cold = _recommend(shop_url, mode="for_you", session_id="s-new", k=5).json()
    assert cold["fallback"] == "no_history" and cold["model"] == "popularity"

    now = time.time()
    events = [{"session_id": "s-2", "type": t, "product_id": p, "ts": now - 60 + i} for i, (t, p) in
              enumerate([("view", a), ("add_to_cart", a), ("add_to_cart", b), ("purchase", b), ("click", c)])]
    events += [{"session_id": "s-3", "type": "purchase", "product_id": p, "ts": now - 30} for p in (a, b, d)]
    assert httpx.post(f"{shop_url}/events", json={"events": events}).status_code == 202
    mine = _until(lambda: _recommend(shop_url, mode="for_you", session_id="s-2", k=10).json(), lambda r: r["fallback"] is None)
    assert mine["model"] == "qdrant-recommend" and mine["based_on"] == [a, b, c]
    assert b not in [r["product_id"] for r in mine["results"]]  # bought already

    together = _until(lambda: _recommend(shop_url, mode="bought_together", product_id=a, k=5).json(), lambda r: r["model"] == "co-occurrence")
    assert [r["product_id"] for r in together["results"]][:2] == [b, d]  # b: two sessions, d: one

    popular = _recommend(shop_url, mode="popular", k=3).json()
    assert [r["product_id"] for r in popular["results"]][:2] == [b, a]  # purchases weigh most; b was bought twice
    assert _recommend(shop_url, mode="similar").status_code == 422
    assert _recommend(shop_url, mode="bought_together", product_id=a, k=1000).status_code == 422


def test_a_search_uses_the_sessions_history_like_clicked(shop_url, small_catalog):
    clicked = [p.product_id for p in small_catalog[20:23]]
    events = [{"session_id": "s-4", "type": "click", "product_id": p, "ts": time.time() - 10 + i} for i, p in enumerate(clicked)]
    assert httpx.post(f"{shop_url}/events", json={"events": events}).status_code == 202

    def both() -> tuple[list[str], list[str]]:
        # Asked together: the clicks also count towards popularity, which the ranker folds in on its own schedule.
        by_client = httpx.post(f"{shop_url}/search", json={"query": "gift", "session": {"clicked": clicked}}, timeout=30).json()
        by_server = httpx.post(f"{shop_url}/search", json={"query": "gift", "session_id": "s-4"}, timeout=30).json()
        return [x["product_id"] for x in by_client["results"]], [x["product_id"] for x in by_server["results"]]

    by_client, by_server = _until(both, lambda pair: pair[0] == pair[1])
    assert by_server == by_client
    plain = httpx.post(f"{shop_url}/search", json={"query": "gift"}, timeout=30).json()
    assert [x["product_id"] for x in plain["results"]] != by_client


def test_purchases_lift_a_product_in_search_through_the_rankers_popularity(shop_url):
    def search() -> list[dict]:
        body = {"query": "gift", "k": 10, "diversity": 0, "explain": True}
        return httpx.post(f"{shop_url}/search", json=body, timeout=30).json()["results"]

    before = search()
    target = before[-1]["product_id"]
    events = [{"session_id": f"buyer-{i}", "type": "purchase", "product_id": target, "ts": time.time() - 5} for i in range(30)]
    assert httpx.post(f"{shop_url}/events", json={"events": events}).status_code == 202
    after = _until(search, lambda r: any(x["product_id"] == target and x["explanation"]["popularity"] for x in r))
    rank = {x["product_id"]: i for i, x in enumerate(after)}
    assert target in rank and rank[target] < len(before) - 1, [x["product_id"] for x in after]
    explained = next(x["explanation"] for x in after if x["product_id"] == target)
    assert explained["popularity"] == 1.0  # now the most popular product of the log
    assert all(x["explanation"]["popularity"] is not None for x in after if x["explanation"]["scorer"] is not None)


def test_suggestions_complete_and_tolerate_typos(shop_url, small_catalog):
    brand = next(p.brand for p in small_catalog if p.brand and len(p.brand) > 5)
    typed = brand[:4].lower()
    got = httpx.get(f"{shop_url}/suggest", params={"q": typed}).json()["suggestions"]
    assert got and all(s["text"].startswith(typed) or f" {typed}" in s["text"] for s in got)
    typo = brand.lower()[0] + brand.lower()[2] + brand.lower()[1] + brand.lower()[3:]
    assert httpx.get(f"{shop_url}/suggest", params={"q": typo}).json()["suggestions"]
    assert httpx.get(f"{shop_url}/suggest", params={"q": "x", "k": 0}).status_code == 422
    assert httpx.get(f"{shop_url}/suggest", params={"q": "\u0000" * 10 + "😀"}).status_code == 200


def test_an_erased_session_is_forgotten(shop_url, small_catalog):
    pid = small_catalog[30].product_id
    assert httpx.post(f"{shop_url}/events", json={"events": [{"session_id": "s-5", "type": "click", "product_id": pid}]}).status_code == 202
    assert _until(lambda: _recommend(shop_url, mode="for_you", session_id="s-5").json(), lambda r: r["fallback"] is None)["based_on"] == [pid]
    assert httpx.delete(f"{shop_url}/sessions/s-5").status_code == 401
    erased = httpx.delete(f"{shop_url}/sessions/s-5", headers={"X-Admin-Key": KEY})
    assert erased.status_code == 200 and erased.json()["erased"] == 1
    assert _recommend(shop_url, mode="for_you", session_id="s-5").json()["fallback"] == "no_history"  # this replica, at once


def test_no_client_address_and_no_query_text_reach_the_logs(shop_url, small_catalog):
    import ray

    marker, address = "zebraquokka", "203.0.113.77"  # text and an address that appear nowhere else
    headers = {"X-Forwarded-For": address}
    assert httpx.post(f"{shop_url}/search", json={"query": f"{marker} shoes"}, headers=headers, timeout=30).status_code == 200
    assert httpx.get(f"{shop_url}/suggest", params={"q": marker}, headers=headers).status_code == 200
    event = {"session_id": "s-6", "type": "view", "product_id": small_catalog[0].product_id, "query": marker}
    assert httpx.post(f"{shop_url}/events", json={"events": [event]}, headers=headers).status_code == 202
    time.sleep(2)  # log lines are flushed by the replicas' handlers
    logs = Path(ray._private.worker.global_worker.node.get_logs_dir_path())
    files = {f.name: f.read_bytes() for f in logs.rglob("*") if f.is_file()}
    assert any(b"/suggest 200" in data for data in files.values())  # the access log is among them
    assert not [name for name, data in files.items() if marker.encode() in data or address.encode() in data]
