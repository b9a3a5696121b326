"""Load generators for benchmarks and drills: closed-loop clients, open-loop arrivals, a ramp of clients.

The generic loops time any coroutine ``send(i)``, where ``i`` numbers the
requests in the order they are sent (it picks the request's query or input),
and return one ``Timed`` per request. ``steady_load``, ``searches`` and
``arrivals`` drive a running shopray's ``POST /search`` with them over httpx
and return one ``Answer`` per request (start time, status, the model versions
the response names, degraded labels), so a drill can count failures and see
when a new model started answering.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Awaitable, Callable, Generic, Sequence, TypeVar

import httpx

from shopray.bench.report import percentiles
from shopray.catalog.demo import generate_demo_catalog

T = TypeVar("T")
Send = Callable[[int], Awaitable[T]]

QUERIES = ["red running shoes", "leather sofa", "wireless headphones under 100", "kids winter jacket", "stainless steel cookware",
           "blue denim jeans", "cheap office chair", "yoga mat", "gaming laptop", "ceramic coffee mug"]


@dataclass
class Timed(Generic[T]):
    t: float  # seconds since the load started (after any warm-up), when the request was sent
    latency_ms: float
    value: T


async def closed_loop(send: Send[T], concurrency: int, *, duration_s: float | None = None, requests: int | None = None, warmup_s: float = 0.0) -> list[Timed[T]]:
    """``concurrency`` clients, each sending its next request when its last one answered.

    Runs for ``warmup_s`` (not recorded) plus ``duration_s``, or until ``requests``
    requests have been sent; exactly one of the two must be given.
    """
    if (duration_s is None) == (requests is None):
        raise ValueError("closed_loop needs one of duration_s or requests")
    numbers = itertools.count()
    out: list[Timed[T]] = []
    start = time.monotonic() + warmup_s
    stop = math.inf if duration_s is None else start + duration_s

    async def client() -> None:
        while time.monotonic() < stop:
            i = next(numbers)
            if requests is not None and i >= requests:
                return
            sent = time.monotonic()
            value = await send(i)
            if sent >= start:
                out.append(Timed(sent - start, (time.monotonic() - sent) * 1000, value))

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return sorted(out, key=lambda r: r.t)


async def open_loop(send: Send[T], rate: float, duration_s: float) -> list[Timed[T]]:
    """Requests sent at ``rate`` per second for ``duration_s``, whether or not earlier ones answered (arrivals, like shoppers)."""
    out: list[Timed[T]] = []
    start = time.monotonic()

    async def one(i: int) -> None:
        sent = time.monotonic()
        value = await send(i)
        out.append(Timed(sent - start, (time.monotonic() - sent) * 1000, value))

    tasks = []
    for n in itertools.count(1):
        if time.monotonic() - start >= duration_s:
            break
        tasks.append(asyncio.create_task(one(n - 1)))
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
    await asyncio.gather(*tasks)
    return sorted(out, key=lambda r: r.t)


async def ramp(send: Send[object], steps: Sequence[tuple[int, float]], on_tick: Callable[[float, int, list[float]], None], tick_s: float = 1.0) -> None:
    """Closed-loop clients whose number follows ``steps`` (``(clients, seconds)``, ...).

    Every ``tick_s``, ``on_tick(seconds since start, clients, latencies_ms)`` gets the
    latencies of the requests that finished during that tick. A client above the
    current count stops after its request in flight.
    """
    numbers = itertools.count()
    window: list[float] = []
    wanted = 0
    start = time.monotonic()

    async def client(rank: int) -> None:
        while rank < wanted:
            sent = time.monotonic()
            await send(next(numbers))
            window.append((time.monotonic() - sent) * 1000)

    clients: dict[int, asyncio.Task] = {}
    for count, seconds in steps:
        wanted = count
        for rank in range(count):
            if rank not in clients or clients[rank].done():
                clients[rank] = asyncio.create_task(client(rank))
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await asyncio.sleep(tick_s)
            done, window[:] = list(window), []
            on_tick(time.monotonic() - start, count, done)
    wanted = 0
    await asyncio.gather(*clients.values())


# ---------------------------------------------------------------------- POST /search


@dataclass
class Answer:
    t: float  # seconds since the load started, when the request was sent
    status: int  # HTTP status; 0 when no response came (connection error, timeout)
    versions: dict = field(default_factory=dict)
    degraded: list = field(default_factory=list)
    latency_ms: float = 0.0
    error: str = ""
    timings_ms: dict = field(default_factory=dict)  # the response's per-stage timings


def search_sender(client: httpx.AsyncClient, queries: Sequence[str], k: int = 10) -> Send[Answer]:
    """``send(i)`` for the loops: search ``queries[i % len(queries)]``; every failure is an Answer, never an exception."""

    async def send(i: int) -> Answer:
        try:
            resp = await client.post("/search", json={"query": queries[i % len(queries)], "k": k})
            data = resp.json() if resp.status_code == 200 else {}
        except Exception as exc:  # noqa: BLE001 - every failure is a data point
            return Answer(0.0, 0, error=f"{type(exc).__name__}: {exc}"[:200])
        return Answer(0.0, resp.status_code, data.get("versions", {}), data.get("degraded", []), timings_ms=data.get("timings_ms", {}))

    return send


def as_answers(timed: list[Timed[Answer]]) -> list[Answer]:
    """Answers stamped with when each request was sent and how long it took."""
    return [replace(r.value, t=r.t, latency_ms=r.latency_ms) for r in timed]


def _client(url: str, timeout_s: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url.rstrip("/"), timeout=timeout_s)


async def steady_load(url: str, duration_s: float, concurrency: int = 4, timeout_s: float = 30.0, queries: Sequence[str] | None = None, k: int = 10) -> list[Answer]:
    """``concurrency`` searches in flight for ``duration_s`` (closed loop)."""
    async with _client(url, timeout_s) as client:
        return as_answers(await closed_loop(search_sender(client, queries or QUERIES, k), concurrency, duration_s=duration_s))


async def searches(url: str, queries: Sequence[str], concurrency: int = 1, k: int = 10, timeout_s: float = 30.0) -> list[Answer]:
    """Every query searched once, by ``concurrency`` closed-loop clients (1: one after another)."""
    async with _client(url, timeout_s) as client:
        return as_answers(await closed_loop(search_sender(client, queries, k), concurrency, requests=len(queries)))


async def arrivals(url: str, rate: float, duration_s: float, queries: Sequence[str], k: int = 10, timeout_s: float = 60.0) -> list[Answer]:
    """``rate`` searches per second for ``duration_s`` (open loop); arrival ``i`` asks ``queries[i % len(queries)]``."""
    async with _client(url, timeout_s) as client:
        return as_answers(await open_loop(search_sender(client, queries, k), rate, duration_s))


def statuses(answers: Sequence[Answer]) -> dict[str, int]:
    """Answers by HTTP status, or by the exception's class name when none came."""
    return dict(Counter(str(a.status) if a.status else a.error.split(":")[0] or "0" for a in answers))


def degraded_labels(answers: Sequence[Answer]) -> dict[str, int]:
    """How often each degraded label was given."""
    return dict(Counter(label for a in answers for label in a.degraded))


def summarize(answers: list[Answer], stage: str = "ranker", old: str | None = None, new: str | None = None) -> dict:
    """Counts, and when ``new`` (a substring of the stage's version) first and ``old`` last answered."""
    failed = [a for a in answers if a.status != 200]
    first_new = next((a.t for a in answers if new and new in a.versions.get(stage, "")), None)
    last_old = max((a.t for a in answers if old and old in a.versions.get(stage, "")), default=None)
    return {
        "sent": len(answers),
        "ok": len(answers) - len(failed),
        "failed": len(failed),
        "failures": sorted({f"{a.status} {a.error}" for a in failed})[:5],
        "degraded": sum(bool(a.degraded) for a in answers),
        "degraded_labels": sorted({label for a in answers for label in a.degraded}),
        "versions_seen": sorted({a.versions.get(stage, "") for a in answers if a.status == 200}),
        "first_new_s": None if first_new is None else round(first_new, 2),
        "last_old_s": None if last_old is None else round(last_old, 2),
        **percentiles([a.latency_ms for a in answers if a.status == 200], (50, 99)),
    }


def demo_queries(n: int, seed: int = 0) -> list[str]:
    """Queries drawn (deterministically) from the demo catalog's vocabulary: brand, category, color and price."""
    rng = random.Random(seed)
    products = generate_demo_catalog(n=3000)
    queries = []
    for _ in range(n):
        p = rng.choice(products)
        leaf = p.category.split(" > ")[-1].lower() if p.category else ""
        shape = rng.randrange(4)
        if shape == 0:
            queries.append(f"{p.color or ''} {p.brand} {leaf}".strip())
        elif shape == 1:
            queries.append(f"{leaf} under {int((p.price or 50) * 1.2)}")
        elif shape == 2:
            queries.append(" ".join(p.title.lower().split()[:4]))
        else:
            queries.append(f"cheap {p.color or ''} {leaf}".strip())
    return queries
