"""The harness's load generators, driven with in-memory senders and a mock HTTP transport (no server, no timing assertions)."""

import asyncio
import json

import httpx
import pytest

from shopray.bench.load import Answer, as_answers, closed_loop, degraded_labels, open_loop, ramp, search_sender, statuses, summarize


def test_closed_loop_sends_each_numbered_request_once_and_never_more_than_concurrency_at_once():
    in_flight, peak, seen = 0, 0, []

    async def send(i: int) -> int:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0)
        in_flight -= 1
        seen.append(i)
        return i * 10

    runs = asyncio.run(closed_loop(send, 3, requests=10))
    assert sorted(seen) == list(range(10))
    assert sorted(r.value for r in runs) == [i * 10 for i in range(10)]
    assert peak == 3
    assert [r.t for r in runs] == sorted(r.t for r in runs)
    assert all(r.latency_ms >= 0 for r in runs)


def test_closed_loop_needs_exactly_one_stopping_rule():
    async def send(i: int) -> int:
        return i

    with pytest.raises(ValueError):
        asyncio.run(closed_loop(send, 1))
    with pytest.raises(ValueError):
        asyncio.run(closed_loop(send, 1, duration_s=1, requests=1))


def test_open_loop_numbers_arrivals_in_order_from_zero():
    async def send(i: int) -> int:
        return i

    runs = asyncio.run(open_loop(send, rate=1000, duration_s=0.02))
    assert runs and [r.value for r in runs] == list(range(len(runs)))


def test_ramp_runs_the_clients_each_step_asks_for_and_stops_them_all():
    ticks = []

    async def send(i: int) -> None:
        await asyncio.sleep(0.001)

    asyncio.run(ramp(send, [(3, 0.05), (0, 0.03)], lambda t, clients, lat: ticks.append((clients, len(lat))), tick_s=0.01))
    counts = [c for c, _ in ticks]
    assert counts[0] == 3 and counts[-1] == 0 and counts == sorted(counts, reverse=True)
    assert sum(n for c, n in ticks if c == 3) > 0


def _mock_client(responses: dict[str, httpx.Response | Exception]) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        outcome = responses[json.loads(request.content)["query"]]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://shop")


def test_search_sender_turns_every_outcome_into_an_answer():
    body = {"versions": {"ranker": "crossencoder:v2:fp32"}, "degraded": ["parser_timeout"], "timings_ms": {"parse": 1.5}}
    client = _mock_client({
        "ok": httpx.Response(200, json=body),
        "busy": httpx.Response(503, json={"detail": "retriever unavailable (overloaded)"}),
        "down": httpx.ConnectError("refused"),
    })
    queries = ["ok", "busy", "down"]

    async def go():
        async with client:
            return as_answers(await closed_loop(search_sender(client, queries, k=5), 1, requests=3))

    answers = asyncio.run(go())  # one client: sent, and sorted, in query order
    ok, busy, down = answers
    assert (ok.status, ok.versions, ok.degraded, ok.timings_ms) == (200, body["versions"], ["parser_timeout"], {"parse": 1.5})
    assert (busy.status, busy.degraded) == (503, [])
    assert down.status == 0 and down.error.startswith("ConnectError: refused")
    assert statuses(answers) == {"200": 1, "503": 1, "ConnectError": 1}
    assert degraded_labels(answers) == {"parser_timeout": 1}


def test_summarize_counts_failures_and_when_models_switched():
    answers = [
        Answer(0.5, 200, {"ranker": "crossencoder:v-old:fp32"}, latency_ms=10),
        Answer(1.0, 200, {"ranker": "crossencoder:v-old:fp32"}, ["rank_timeout"], latency_ms=20),
        Answer(1.5, 503, error="", latency_ms=5),
        Answer(2.0, 200, {"ranker": "crossencoder:v-new:fp32"}, latency_ms=30),
        Answer(2.5, 200, {"ranker": "crossencoder:v-new:fp32"}, latency_ms=40),
    ]
    s = summarize(answers, old="v-old", new="v-new")
    assert (s["sent"], s["ok"], s["failed"], s["degraded"]) == (5, 4, 1, 1)
    assert s["failures"] == ["503 "]
    assert s["degraded_labels"] == ["rank_timeout"]
    assert (s["first_new_s"], s["last_old_s"]) == (2.0, 1.0)
    assert s["versions_seen"] == ["crossencoder:v-new:fp32", "crossencoder:v-old:fp32"]
    assert (s["p50_ms"], s["p99_ms"]) == (25.0, 39.7)  # of the four 200s only: 10, 20, 30, 40
