"""FastAPI ingress: admits or sheds requests, walks the stage handles under their budgets, degrades softly."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from pathlib import Path

from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from ray import serve
from ray.actor import ActorHandle
from ray.exceptions import RayActorError
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle
from ray.serve.schema import ReplicaState

from shopray.api import CatalogChanges, SearchRequest, SearchResponse
from shopray.config import AppConfig
from shopray.graph import SearchContext, Stage, StageFailed, StageSpec, arun
from shopray.pipeline import STAGES
from shopray.registry import Registry
from shopray.registry.promotion import PromoteRequest, PromotionRefused, promote
from shopray.serving.admission import Admission, admin_denied
from shopray.serving.catalog import start_catalog_writer
from shopray.serving.metrics import ingress_metrics
from shopray.stages.retrieve.changes import ChangeRejected

# Serve formats records of the "ray.serve" logger (JSON with request_id when the config asks for it).
log = logging.getLogger("ray.serve")
PAGE = Path(__file__).with_name("static") / "index.html"

app = FastAPI(title="shopray", description="Ranked, diverse products for a free-text query.", version="0.1.0")


@app.exception_handler(RequestValidationError)
async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
    # FastAPI's default echoes the offending input: a NaN there cannot be rendered as JSON
    # (a 500), and a 1 MB body would be sent straight back. Name the field, drop the input.
    errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return JSONResponse(status_code=422, content={"detail": errors})


@app.middleware("http")
async def _admit(request: Request, call_next):
    admission: Admission | None = getattr(request.app.state, "admission", None)
    # Under a route prefix (Serve's route_prefix becomes the ASGI root_path) the path still carries it.
    path, root = request.url.path, request.scope.get("root_path", "")
    if admission is None or path.removeprefix(root.rstrip("/")) != "/search":
        return await call_next(request)
    # The body is JSON whatever the declared type: `curl -d '{...}'` labels it form-encoded.
    request.scope["headers"] = [(k, v) for k, v in request.scope["headers"] if k != b"content-type"] + [(b"content-type", b"application/json")]
    rejection = await admission.check(request)
    if rejection is not None:
        ingress_metrics().requests.inc(tags={"status": str(rejection.status_code)})
        return rejection
    try:
        return await call_next(request)
    finally:
        admission.release()


def _running_replicas(app_name: str) -> dict[str, int]:
    """Running replicas per deployment of ``app_name``, as Serve's controller sees them."""
    status = serve.status().applications.get(app_name)
    if status is None:
        return {}
    return {name: d.replica_states.get(ReplicaState.RUNNING, 0) for name, d in status.deployments.items()}


def _detached(ctx: SearchContext) -> SearchContext:
    """A context a stage in this process may change freely, as a replica changes the copy a handle call sends it."""
    return dataclasses.replace(ctx, degraded=list(ctx.degraded), versions=dict(ctx.versions))


async def _stage_ready(handle: DeploymentHandle) -> bool:
    try:
        return bool(await asyncio.wait_for(handle.ready.remote(), timeout=2))
    except Exception:  # noqa: BLE001 - a timeout or a dead replica: not ready
        return False


async def _down() -> bool:
    return False


@serve.deployment
@serve.ingress(app)
class SearchIngress:
    """Walks the stages (``graph.arun``), each under its budget: through its Serve handle (``handles``, keyed by stage
    key), or in this replica for the stages ``graph.in_ingress`` names."""

    def __init__(self, handles: dict[str, DeploymentHandle], config: dict):
        self.config = AppConfig.model_validate(config)
        self.handles = handles
        self.local: dict[str, Stage] = {spec.key: spec.build(self.config) for spec in STAGES if spec.key in self.config.graph.in_ingress}
        app.state.admission = Admission(self.config.limits)
        self.metrics = ingress_metrics()
        self._catalog: ActorHandle | None = None  # started on the first change: most apps never take one

    async def _call(self, spec: StageSpec, ctx: SearchContext) -> SearchContext:
        local = self.local.get(spec.key)
        try:
            if local is not None:
                # A thread, so the budget holds and the event loop keeps serving; a copy, so a stage past its budget
                # cannot change the context its fallback answers from.
                return await asyncio.wait_for(asyncio.to_thread(local.run, _detached(ctx)), timeout=spec.budget_s(self.config))
            return await asyncio.wait_for(self.handles[spec.key].run.remote(ctx), timeout=spec.budget_s(self.config))
        except asyncio.TimeoutError as exc:
            raise StageFailed(spec, "timeout") from exc
        except BackPressureError as exc:
            raise StageFailed(spec, "overloaded") from exc
        except Exception as exc:  # a replica died or the stage raised
            log.warning("stage %s failed: %s: %s", spec.key, type(exc).__name__, exc)
            raise StageFailed(spec, "unavailable") from exc

    def _observe(self, spec: StageSpec, ms: float, ctx: SearchContext, failure: StageFailed | None) -> None:
        if failure is not None:
            self.metrics.degraded.inc(tags={"reason": failure.label})
        self.metrics.stage_latency.observe(ms, tags={"stage": spec.key})
        if "candidates" in spec.produces and ctx.candidates is not None:
            self.metrics.candidates.observe(len(ctx.candidates), tags={"stage": spec.key})

    @app.post("/search", response_model=SearchResponse, responses={503: {"description": "Overloaded, or a required stage is unavailable; retry after Retry-After seconds."}})
    async def search(self, body: SearchRequest, x_request_id: str | None = Header(default=None, max_length=128)):
        # Serve's proxy puts the client's X-Request-ID (or a fresh one) on the request and echoes it back.
        ctx = SearchContext(request=body, request_id=x_request_id or uuid.uuid4().hex)
        try:
            outcome = await arun(STAGES, ctx, self._call, self._observe)
        except StageFailed as failure:  # a required stage: there is nothing to show
            self.metrics.requests.inc(tags={"status": "503"})
            log.warning("search failed: %s", failure.label)
            return JSONResponse(
                status_code=503,
                headers={"Retry-After": str(self.config.limits.retry_after_s)},
                content={"detail": f"{failure.spec.label} unavailable ({failure.reason})", "request_id": ctx.request_id},
            )
        total = outcome.timings_ms["total"]
        self.metrics.stage_latency.observe(total, tags={"stage": "total"})
        self.metrics.requests.inc(tags={"status": "200"})
        self.metrics.saw_index_version(outcome.ctx.versions.get("index"))
        log.info("search done results=%d degraded=%s total_ms=%.1f", len(outcome.ctx.candidates or []), ",".join(outcome.ctx.degraded) or "-", total)
        return outcome.response()

    @app.get("/", include_in_schema=False)
    async def page(self) -> FileResponse:
        return FileResponse(PAGE, media_type="text/html")

    @app.get("/healthz")
    async def healthz(self):
        """200 only when every stage has a running replica and it says it is ready.

        Serve's handles retry a request whose replica died and wait for its replacement, so a ready call alone would
        report a stage that is down as slow; the controller's replica states say it is down."""
        running = await asyncio.to_thread(_running_replicas, serve.get_replica_context().app_name)
        ready = await asyncio.gather(*(_stage_ready(h) if running.get(h.deployment_name) else _down() for h in self.handles.values()))
        stages = dict(zip(self.handles, ready)) | {key: stage.ready() for key, stage in self.local.items()}
        stages = {spec.key: stages[spec.key] for spec in STAGES}
        ok = all(stages.values())
        return JSONResponse(status_code=200 if ok else 503, headers={} if ok else {"Retry-After": "5"}, content={"ready": ok, "stages": stages})

    @app.get("/admin/config")
    async def admin_config(self, x_admin_key: str | None = Header(default=None)):
        """The running configuration; needs the admin key."""
        if (denied := admin_denied(self.config.limits.admin_key_env, x_admin_key)) is not None:
            return denied
        return self.config.model_dump(mode="json")

    @app.post("/admin/catalog")
    async def admin_catalog(self, body: CatalogChanges, x_admin_key: str | None = Header(default=None)):
        """Apply a batch of catalog changes (needs the admin key): all or nothing, durable once answered; every retriever
        replica shows it within `retriever.feed_check_s`. A rejected batch gets 422 naming its line, and nothing is applied."""
        if (denied := admin_denied(self.config.limits.admin_key_env, x_admin_key)) is not None:
            return denied
        if self._catalog is None:
            self._catalog = start_catalog_writer(self.config)
        try:
            applied = await self._catalog.apply.remote(body.changes)
        except RayActorError:
            # The feed committed the batch whole or not at all; its rows are whole product states, so a resend is harmless.
            return JSONResponse(status_code=503, content={"detail": "the catalog writer restarted during this batch: send it again"},
                                headers={"Retry-After": "1"})
        if isinstance(applied, ChangeRejected):
            return JSONResponse(status_code=422, content={"detail": str(applied), "line": applied.line})
        log.info("catalog batch applied: changes %d..%d, %d upserted, %d deleted", applied.first_seq, applied.last_seq, applied.upserted, applied.deleted)
        return dataclasses.asdict(applied)

    @app.post("/admin/promote")
    async def admin_promote(self, body: PromoteRequest, x_admin_key: str | None = Header(default=None)):
        """Move the registry's `production` alias (needs the admin key); the stages' replicas follow it within `refresh_s`."""
        if (denied := admin_denied(self.config.limits.admin_key_env, x_admin_key)) is not None:
            return denied
        root = self.config.ranker.registry if body.kind == "ranker" else self.config.parser.registry
        try:
            result = await asyncio.to_thread(promote, Registry(root), body.kind, body.version, body.force)
        except PromotionRefused as exc:
            return JSONResponse(status_code=409, content={"detail": str(exc)})
        except KeyError as exc:
            return JSONResponse(status_code=404, content={"detail": str(exc).strip("'\"")})
        log.info("promoted %s %s (previous %s, forced=%s)", body.kind, result["version"], result["previous"], result.get("forced"))
        return result
