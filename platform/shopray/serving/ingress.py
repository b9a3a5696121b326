"""FastAPI ingress: validates requests, walks the stage handles, degrades softly."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ray import serve
from ray.serve.handle import DeploymentHandle

from shopray.api import SearchRequest, SearchResponse
from shopray.config import AppConfig
from shopray.models import Intent
from shopray.pipeline import SearchContext

log = logging.getLogger("shopray.ingress")

app = FastAPI(
    title="shopray",
    description="Ranked, diverse products for a free-text query.",
    version="0.1.0",
)



@app.exception_handler(RequestValidationError)
async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
    # FastAPI's default echoes the offending input: a NaN there cannot be rendered as JSON
    # (a 500), and a 1 MB body would be sent straight back. Name the field, drop the input.
    errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return JSONResponse(status_code=422, content={"detail": errors})


# Which stages may fail without failing the request, and the label the response then carries.
SOFT_FAILURES = {"parse": "parser_unavailable", "rank": "ranker_unavailable", "diversify": "diversifier_error"}


class StageUnavailable(Exception):
    def __init__(self, stage: str, reason: str):
        super().__init__(f"{stage}: {reason}")
        self.stage, self.reason = stage, reason


@serve.deployment(max_ongoing_requests=64)
@serve.ingress(app)
class SearchIngress:
    def __init__(self, parser: DeploymentHandle, retriever: DeploymentHandle, ranker: DeploymentHandle, diversifier: DeploymentHandle, config: dict):
        self.config = AppConfig.model_validate(config)
        self.stages = [("parse", parser), ("retrieve", retriever), ("rank", ranker), ("diversify", diversifier)]

    async def _call(self, key: str, handle: DeploymentHandle, ctx: SearchContext) -> SearchContext:
        try:
            return await asyncio.wait_for(handle.run.remote(ctx), timeout=self.config.stage_timeout_s)
        except asyncio.TimeoutError as exc:
            raise StageUnavailable(key, "timeout") from exc
        except Exception as exc:  # a replica died, was overloaded, or the stage raised
            log.exception("stage %s failed for request %s", key, ctx.request_id)
            raise StageUnavailable(key, type(exc).__name__) from exc

    async def _apply_fallback(self, key: str, ctx: SearchContext) -> SearchContext:
        ctx.degraded.append(SOFT_FAILURES[key])
        if key == "parse":
            ctx.intent = Intent(keywords=ctx.request.query, source="none")
        elif key == "diversify" and ctx.candidates is not None:
            ctx.candidates = ctx.candidates.take(range(min(ctx.request.k, len(ctx.candidates))))
        return ctx

    @app.post("/search", response_model=SearchResponse, responses={503: {"description": "A required stage is unavailable; retry later."}})
    async def search(self, body: SearchRequest, x_request_id: str | None = Header(default=None, max_length=128)):
        # Serve's proxy puts the client's X-Request-ID (or a fresh one) on the request and echoes it back.
        ctx = SearchContext(request=body, request_id=x_request_id or uuid.uuid4().hex)
        timings: dict[str, float] = {}
        start = time.perf_counter()
        for key, handle in self.stages:
            t0 = time.perf_counter()
            try:
                ctx = await self._call(key, handle, ctx)
            except StageUnavailable as exc:
                if key not in SOFT_FAILURES:
                    return JSONResponse(
                        status_code=503,
                        headers={"Retry-After": "1"},
                        content={"detail": f"{exc.stage} stage unavailable ({exc.reason})", "request_id": ctx.request_id},
                    )
                ctx = await self._apply_fallback(key, ctx)
            timings[key] = round((time.perf_counter() - t0) * 1000, 3)
        if ctx.candidates is not None and len(ctx.candidates) > body.k:
            ctx.candidates = ctx.candidates.take(range(body.k))
        timings["total"] = round((time.perf_counter() - start) * 1000, 3)
        return ctx.response(timings)

    @app.get("/healthz")
    async def healthz(self):
        names = [key for key, _ in self.stages]
        try:
            ready = await asyncio.wait_for(asyncio.gather(*(h.ready.remote() for _, h in self.stages)), timeout=5)
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            return JSONResponse(status_code=503, content={"ready": False, "error": type(exc).__name__})
        status = dict(zip(names, ready))
        return JSONResponse(status_code=200 if all(ready) else 503, content={"ready": all(ready), "stages": status})
