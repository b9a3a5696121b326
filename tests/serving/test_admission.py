"""Admission control in-process: body size, rate limit, in-flight cap."""

import asyncio

from starlette.requests import Request

from shopray.config import LimitsConfig
from shopray.serving.admission import Admission


def _request(body: bytes = b"{}", headers: dict | None = None, chunked: bool = False, client: str = "1.2.3.4") -> Request:
    raw = {"content-type": "application/json", **(headers or {})}
    if not chunked:
        raw.setdefault("content-length", str(len(body)))
    chunks = [body[i : i + 1000] for i in range(0, len(body), 1000)] or [b""]

    async def receive():
        chunk = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    scope = {
        "type": "http", "method": "POST", "path": "/search", "headers": [(k.encode(), v.encode()) for k, v in raw.items()],
        "client": (client, 1234), "query_string": b"",
    }
    return Request(scope, receive)


def _check(admission, request):
    return asyncio.run(admission.check(request))


def test_body_limit_by_header_and_by_stream():
    admission = Admission(LimitsConfig(max_body_bytes=2048))
    assert _check(admission, _request(b"x" * 2048)) is None
    admission.release()
    assert _check(admission, _request(b"x" * 4096)).status_code == 413
    assert _check(admission, _request(b"x" * 4096, chunked=True)).status_code == 413
    assert _check(admission, _request(b"x" * 100, chunked=True)) is None
    assert _check(admission, _request(headers={"content-length": "abc"})).status_code == 413


def test_an_event_batch_may_be_larger_than_a_query():
    admission = Admission(LimitsConfig(max_body_bytes=2048, max_batch_bytes=8192))
    assert asyncio.run(admission.check(_request(b"x" * 8192), batch=True)) is None
    admission.release()
    assert asyncio.run(admission.check(_request(b"x" * 8193, chunked=True), batch=True)).status_code == 413
    assert _check(admission, _request(b"x" * 4096)).status_code == 413


def test_rate_limit_per_client_with_retry_after():
    admission = Admission(LimitsConfig(rate_limit_per_s=0.001, rate_limit_burst=3, max_in_flight=100))
    statuses = []
    for _ in range(5):
        rejection = _check(admission, _request())
        statuses.append(200 if rejection is None else rejection.status_code)
    assert statuses == [200, 200, 200, 429, 429]
    assert _check(admission, _request()).headers["retry-after"] == "1"
    assert _check(admission, _request(client="5.6.7.8")) is None  # another client has its own bucket
    assert _check(admission, _request(headers={"x-forwarded-for": "9.9.9.9, 10.0.0.1"})) is None


def test_in_flight_cap_sheds_with_503_and_recovers():
    admission = Admission(LimitsConfig(max_in_flight=2))
    assert _check(admission, _request()) is None
    assert _check(admission, _request()) is None
    shed = _check(admission, _request())
    assert shed.status_code == 503 and shed.headers["retry-after"] == "1"
    admission.release()
    assert _check(admission, _request()) is None


def test_admin_key(monkeypatch):
    from shopray.serving.admission import admin_denied, admin_key

    monkeypatch.delenv("TEST_ADMIN_KEY", raising=False)
    assert admin_denied(admin_key("TEST_ADMIN_KEY"), "anything", "TEST_ADMIN_KEY").status_code == 403
    monkeypatch.setenv("TEST_ADMIN_KEY", "")
    assert admin_key("TEST_ADMIN_KEY") is None
    denied = admin_denied(admin_key("TEST_ADMIN_KEY"), "anything", "TEST_ADMIN_KEY")
    assert denied.status_code == 403 and b"TEST_ADMIN_KEY is not set" in denied.body
    monkeypatch.setenv("TEST_ADMIN_KEY", "s3cret")
    key = admin_key("TEST_ADMIN_KEY")
    assert admin_denied(key, None, "TEST_ADMIN_KEY").status_code == 401
    assert admin_denied(key, "wrong", "TEST_ADMIN_KEY").status_code == 401
    assert admin_denied(key, "s3cret", "TEST_ADMIN_KEY") is None


def test_admission_applies_under_a_route_prefix():
    # Serve passes route_prefix as the ASGI root_path; /promo/search is still the search route.
    from starlette.testclient import TestClient

    from shopray.serving.ingress import app

    app.state.admission = Admission(LimitsConfig(max_body_bytes=1024))
    try:
        client = TestClient(app, root_path="/promo")
        assert client.post("/promo/search", content=b"x" * 4000).status_code == 413
    finally:
        del app.state.admission
