"""Failure paths over real HTTP: a late stage is labelled, a retriever failure is a 503, overload and rate limits shed
load with Retry-After, and /healthz says 503 while a stage has no replica. Every fault here is real (a budget, a limit, a
killed replica), nothing is mocked."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from shopray.config import LimitsConfig

pytestmark = pytest.mark.ray
QUERY = {"query": "red running shoes under 80", "k": 5}


def _deploy(app_config, serve_port, name: str, **updates):
    from ray import serve

    from shopray.serving.app import bind_app

    config = app_config.model_copy(update=updates)
    serve.run(bind_app(config), name=name, route_prefix=f"/{name}")
    return f"http://127.0.0.1:{serve_port}/{name}"


@pytest.fixture(scope="module")
def faults_url(app_config, serve_port):
    """The graph with a 1 ms ranker budget (every search runs past it), two searches in flight at most, and a
    per-client rate limit of 1/s with a burst of 3."""
    from ray import serve

    url = _deploy(
        app_config, serve_port, "faults",
        ranker=app_config.ranker.model_copy(update={"budget_ms": 1}),
        limits=LimitsConfig(max_in_flight=2, rate_limit_per_s=1.0, rate_limit_burst=3, retry_after_s=2),
    )  # fmt: skip
    yield url
    serve.delete("faults")


def test_a_stage_past_its_budget_gives_its_labelled_fallback(faults_url):
    resp = httpx.post(f"{faults_url}/search", json=QUERY, headers={"X-Forwarded-For": "10.0.0.1"}, timeout=30)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["degraded"] == ["ranker_timeout"] and len(body["results"]) == 5
    assert "rank" in body["timings_ms"] and "ranker" not in body["versions"]


def test_the_rate_limit_gives_429_with_retry_after(faults_url):
    with httpx.Client(timeout=30, headers={"X-Forwarded-For": "10.0.0.2"}) as client:
        statuses = [client.post(f"{faults_url}/search", json=QUERY) for _ in range(6)]
    assert [r.status_code for r in statuses[:3]] == [200, 200, 200]  # the burst
    limited = [r for r in statuses if r.status_code == 429]
    assert limited and all(r.headers["retry-after"] == "2" for r in limited)
    assert {r.status_code for r in statuses} <= {200, 429}


def test_in_flight_overload_gives_503_with_retry_after(faults_url):
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            # A client address each, so the rate limit stays out of it: only the in-flight cap can refuse.
            return await asyncio.gather(*(client.post(f"{faults_url}/search", json=QUERY, headers={"X-Forwarded-For": f"10.1.0.{i}"}) for i in range(16)))

    responses = asyncio.run(burst())
    statuses = [r.status_code for r in responses]
    shed = [r for r in responses if r.status_code == 503]
    assert set(statuses) <= {200, 503} and 200 in statuses, statuses
    assert shed and all(r.headers["retry-after"] == "2" and "overloaded" in r.json()["detail"] for r in shed), statuses


def test_a_retriever_failure_is_503_with_retry_after_never_made_up_results(app_config, serve_port):
    from ray import serve

    url = _deploy(app_config, serve_port, "faults-retriever", retriever=app_config.retriever.model_copy(update={"budget_ms": 1}))
    try:
        resp = httpx.post(f"{url}/search", json=QUERY, timeout=30)
    finally:
        serve.delete("faults-retriever")
    assert resp.status_code == 503 and resp.headers["retry-after"] == "1"
    assert resp.json()["detail"] == "retriever unavailable (timeout)" and "results" not in resp.json()


def _poll(url: str, until, timeout_s: float = 90) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            resp = httpx.get(url, timeout=30)
            if until(resp) or time.monotonic() > deadline:
                return resp
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def test_healthz_is_503_while_a_stage_has_no_replica_and_200_once_it_has(app_config, serve_port):
    from ray import serve

    from shopray.serving.app import bind_app

    name = "stage-down"
    healthz = f"http://127.0.0.1:{serve_port}/{name}/healthz"
    # The ranker asks for a resource no node has, so Serve cannot place its replica: the stage is down.
    unplaceable = {"Ranker": {"ray_actor_options": {"resources": {"nowhere": 1}}}}
    serve._run(bind_app(app_config, unplaceable), name=name, route_prefix=f"/{name}", _blocking=False)
    try:
        others_up = lambda r: r.status_code == 503 and all(up for key, up in r.json()["stages"].items() if key != "rank")  # noqa: E731
        down = _poll(healthz, others_up)
        assert down.status_code == 503 and down.headers["retry-after"] == "5", down.text
        assert down.json() == {"ready": False, "stages": {"parse": True, "retrieve": True, "rank": False, "diversify": True}}
        serve.run(bind_app(app_config), name=name, route_prefix=f"/{name}")  # the same graph, placeable
        up = httpx.get(healthz, timeout=30)
        assert up.status_code == 200 and up.json()["ready"] is True, up.text
    finally:
        serve.delete(name)


def test_a_killed_replica_is_replaced_and_healthz_is_200_again(faults_url):
    import ray

    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["namespace"] == "serve" and "faults#Ranker#" in a["name"]]
    assert names
    for name in names:
        ray.kill(ray.get_actor(name, namespace="serve"), no_restart=True)
    back = _poll(f"{faults_url}/healthz", lambda r: r.status_code == 200 and not {a["name"] for a in ray.util.list_named_actors(all_namespaces=True)} & set(names))
    assert back.status_code == 200 and back.json()["stages"]["rank"] is True, back.text
    resp = httpx.post(f"{faults_url}/search", json=QUERY, headers={"X-Forwarded-For": "10.0.0.9"}, timeout=30)
    assert resp.status_code == 200 and len(resp.json()["results"]) == 5, resp.text
