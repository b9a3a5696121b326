"""Admission control for the shoppers' routes (search, recommend, suggest, events): body size, per-client rate, and in-flight cap.

Each check answers at once with a status a client can act on (413, 429, 503
with Retry-After) instead of letting work pile up in queues.
"""

from __future__ import annotations

import hmac
import os
import time
from collections import OrderedDict

from fastapi import Request
from fastapi.responses import JSONResponse

from shopray.config import LimitsConfig

MAX_TRACKED_CLIENTS = 10_000


class Admission:
    def __init__(self, limits: LimitsConfig):
        self.limits = limits
        self.in_flight = 0
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, last refill)

    def _reject(self, status: int, detail: str) -> JSONResponse:
        headers = {"Retry-After": str(self.limits.retry_after_s)} if status in (429, 503) else {}
        return JSONResponse(status_code=status, headers=headers, content={"detail": detail})

    @staticmethod
    async def _body_too_large(request: Request, limit: int) -> bool:
        declared = request.headers.get("content-length")
        if declared is not None:
            return not declared.isdigit() or int(declared) > limit
        size = 0
        async for chunk in request.stream():  # chunked upload: count as it arrives, stop early
            size += len(chunk)
            if size > limit:
                return True
        return False

    def _rate_limited(self, request: Request) -> bool:
        rate = self.limits.rate_limit_per_s
        if rate is None:
            return False
        forwarded = request.headers.get("x-forwarded-for")
        client = forwarded.split(",")[0].strip() if forwarded else (request.client.host if request.client else "?")
        now = time.monotonic()
        tokens, last = self._buckets.pop(client, (float(self.limits.rate_limit_burst), now))
        tokens = min(float(self.limits.rate_limit_burst), tokens + (now - last) * rate)
        allowed = tokens >= 1.0
        self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > MAX_TRACKED_CLIENTS:
            self._buckets.popitem(last=False)
        return not allowed

    async def check(self, request: Request, batch: bool = False) -> JSONResponse | None:
        """None admits the request (call release() when it finishes); otherwise the response to send. A ``batch``
        (of events) may be larger than a query."""
        limit = self.limits.max_batch_bytes if batch else self.limits.max_body_bytes
        if request.method == "POST" and await self._body_too_large(request, limit):
            return self._reject(413, f"request body exceeds {limit} bytes")
        if self._rate_limited(request):
            return self._reject(429, "rate limit exceeded")
        if self.in_flight >= self.limits.max_in_flight:
            return self._reject(503, "overloaded; retry later")
        self.in_flight += 1
        return None

    def release(self) -> None:
        self.in_flight -= 1


def admin_key(key_env: str) -> str | None:
    """The admin key a replica reads once, at start; None (admin routes closed) while $key_env is unset or empty."""
    return os.environ.get(key_env) or None


def admin_denied(expected: str | None, given: str | None, key_env: str) -> JSONResponse | None:
    """None when ``given`` matches the ``expected`` key (``admin_key``, read from $key_env); closed while it is None."""
    if not expected:
        return JSONResponse(status_code=403, content={"detail": f"admin routes are disabled: {key_env} is not set"})
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        return JSONResponse(status_code=401, content={"detail": "missing or wrong X-Admin-Key"})
    return None
