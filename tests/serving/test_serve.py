"""The four-stage graph on real Ray Serve, over HTTP."""

import httpx
import pytest

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def server(serve_url):
    with httpx.Client(base_url=serve_url, timeout=60) as client:
        yield client


def test_search_end_to_end(server):
    resp = server.post("/search", json={"query": "red running shoes under 80", "k": 5})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert resp.headers["x-request-id"] == body["request_id"]
    assert len(body["results"]) == 5
    assert body["intent"]["price_max"] == 80
    assert set(body["timings_ms"]) == {"parse", "retrieve", "rank", "diversify", "total"}
    assert body["degraded"] == []
    for r in body["results"]:
        assert {"product_id", "title", "score"} <= set(r)


def test_removed_intent_chips_are_ignored(server):
    body = {"query": "red running shoes under 80", "k": 5, "ignore_intent": ["price", "color"]}
    intent = server.post("/search", json=body).json()["intent"]
    assert intent["price_max"] is None and intent["color"] is None
    assert server.post("/search", json={**body, "ignore_intent": ["size"]}).status_code == 422


def test_request_id_is_taken_from_the_client(server):
    resp = server.post("/search", json={"query": "drill"}, headers={"X-Request-ID": "abc-123"})
    assert resp.headers["x-request-id"] == "abc-123" and resp.json()["request_id"] == "abc-123"


def test_healthz_and_docs(server):
    health = server.get("/healthz")
    assert health.status_code == 200 and health.json()["ready"] is True
    assert set(health.json()["stages"]) == {"parse", "retrieve", "rank", "diversify"}
    assert server.get("/docs").status_code == 200
    assert "/search" in server.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "query"),
        ({"query": ""}, "query"),
        ({"query": "   "}, "query"),
        ({"query": "x" * 513}, "query"),
        ({"query": "shoes", "k": 0}, "k"),
        ({"query": "shoes", "k": 101}, "k"),
        ({"query": "shoes", "diversity": 1.5}, "diversity"),
        ({"query": "shoes", "diversity": "high"}, "diversity"),
        ({"query": "shoes", "session": {"clicked": "abc"}}, "clicked"),
        ({"query": "shoes", "filters": {"price_min": -1}}, "price_min"),
        ({"query": "shoes", "filters": {"brand": {"nested": {"deep": 1}}}}, "brand"),
        ({"query": "shoes", "unknown": 1}, "unknown"),
    ],
)
def test_invalid_input_gets_422_naming_the_field(server, body, field):
    resp = server.post("/search", json=body)
    assert resp.status_code == 422, resp.text
    assert field in resp.text


@pytest.mark.parametrize(
    "content, headers",
    [
        (b"not json", {"content-type": "application/json"}),
        (b"[1, 2]", {"content-type": "application/json"}),
        (b'{"query": "NaN test", "diversity": NaN}', {"content-type": "application/json"}),
        (b"\xff\xfe\x00bad", {"content-type": "application/json"}),
    ],
)
def test_malformed_bodies_are_4xx(server, content, headers):
    resp = server.post("/search", content=content, headers=headers)
    assert 400 <= resp.status_code < 500, resp.text


def test_exact_matches_first_and_the_answer_says_what_was_relaxed(server, scarce):
    """The test catalog's "nike blue running shoes under 90", typed: the rule parser understands it, and the graph on
    Serve keeps what it understood first."""
    intent, _ = scarce
    query = f"{intent.color} {intent.brand} {intent.keywords} under {intent.price_max:g}"
    body = server.post("/search", json={"query": query, "k": 10}).json()
    parsed = body["intent"]
    assert (parsed["brand"], parsed["color"], parsed["price_max"]) == (intent.brand, intent.color, intent.price_max), parsed
    assert body["stated"][:2] == ["color", "brand"] and body["results"][0]["meets"] == body["stated"]
    stated = len(body["stated"])
    kept = [len(r["meets"]) for r in body["results"]]
    first_miss = next(i for i, n in enumerate(kept) if n < stated)
    assert first_miss >= 1 and all(n < stated for n in kept[first_miss:])  # every exact match, then the near misses
    assert body["relaxed"] and body["relaxed"][0] == "color"
    strict = server.post("/search", json={"query": query, "k": 10, "strict": True}).json()
    assert strict["relaxed"] == [] and [r["product_id"] for r in strict["results"]] == [r["product_id"] for r in body["results"][:first_miss]]
    assert server.post("/search", json={"query": query, "strict": "maybe"}).status_code == 422


def test_the_diversifier_answers_the_same_in_the_ingress_as_in_its_own_deployment(app_config, serve_url, serve_port):
    from ray import serve

    from shopray.config import GraphConfig
    from shopray.serving.app import bind_app

    serve.run(bind_app(app_config.model_copy(update={"graph": GraphConfig(in_ingress=[])})), name="hops", route_prefix="/hops")
    try:
        deployments = {app: set(status.deployments) for app, status in serve.status().applications.items()}
        assert "Diversifier" in deployments["hops"] and "Diversifier" not in deployments["shopray"]
        for body in ({"query": "running shoes", "k": 8, "diversity": 0.8}, {"query": "red hoodie under 60", "k": 5}, {"query": "drill", "k": 6, "diversity": float("nan")}):
            inline = httpx.post(f"{serve_url}/search", content=_json(body), timeout=60)
            hop = httpx.post(f"{serve_url}/hops/search", content=_json(body), timeout=60)
            assert inline.status_code == hop.status_code, (inline.text, hop.text)
            if inline.status_code == 200:
                assert [r["product_id"] for r in inline.json()["results"]] == [r["product_id"] for r in hop.json()["results"]]
                assert inline.json()["degraded"] == hop.json()["degraded"]
    finally:
        serve.delete("hops")


def _json(body: dict) -> str:
    import json

    return json.dumps(body)  # NaN as the bare token a careless client sends
