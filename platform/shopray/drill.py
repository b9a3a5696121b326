"""A steady async client that records every answer: for promotion and rollout drills.

``steady_load`` keeps ``concurrency`` searches in flight against ``url`` for
``duration_s`` and returns one record per request (start time, status, the
model versions the response names, degraded labels), so a drill can count
failures and see when a new model started answering.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

QUERIES = ["red running shoes", "leather sofa", "wireless headphones under 100", "kids winter jacket", "stainless steel cookware",
           "blue denim jeans", "cheap office chair", "yoga mat", "gaming laptop", "ceramic coffee mug"]


@dataclass
class Answer:
    t: float  # seconds since the load started, when the request was sent
    status: int  # HTTP status; 0 when no response came (connection error, timeout)
    versions: dict = field(default_factory=dict)
    degraded: list = field(default_factory=list)
    latency_ms: float = 0.0
    error: str = ""


async def steady_load(url: str, duration_s: float, concurrency: int = 4, timeout_s: float = 30.0, queries: list[str] | None = None) -> list[Answer]:
    import httpx

    queries = queries or QUERIES
    answers: list[Answer] = []
    t0 = time.monotonic()

    async def worker(n: int, client: httpx.AsyncClient) -> None:
        i = n
        while time.monotonic() - t0 < duration_s:
            sent = time.monotonic()
            body = {"query": queries[i % len(queries)], "k": 10}
            i += concurrency
            try:
                resp = await client.post("/search", json=body)
                data = resp.json() if resp.status_code == 200 else {}
                answers.append(Answer(sent - t0, resp.status_code, data.get("versions", {}), data.get("degraded", []), (time.monotonic() - sent) * 1000))
            except Exception as exc:  # noqa: BLE001 - every failure is a data point
                answers.append(Answer(sent - t0, 0, error=f"{type(exc).__name__}: {exc}"[:200], latency_ms=(time.monotonic() - sent) * 1000))

    async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=timeout_s) as client:
        await asyncio.gather(*(worker(n, client) for n in range(concurrency)))
    return sorted(answers, key=lambda a: a.t)


def summarize(answers: list[Answer], stage: str = "ranker", old: str | None = None, new: str | None = None) -> dict:
    """Counts, and when ``new`` (a substring of the stage's version) first and ``old`` last answered."""
    failed = [a for a in answers if a.status != 200]
    first_new = next((a.t for a in answers if new and new in a.versions.get(stage, "")), None)
    last_old = max((a.t for a in answers if old and old in a.versions.get(stage, "")), default=None)
    lat = sorted(a.latency_ms for a in answers if a.status == 200)
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
        "p50_ms": round(lat[len(lat) // 2], 1) if lat else None,
        "p99_ms": round(lat[int(len(lat) * 0.99)], 1) if lat else None,
    }
