"""FastAPI ingress: admits or sheds requests, walks the stage handles under their budgets, degrades softly."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
import uuid
from pathlib import Path

from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from ray import serve
from ray.actor import ActorHandle
from ray.exceptions import RayActorError, RayTaskError
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle
from ray.serve.schema import ReplicaState

from shopray.api import CatalogChanges, RecommendRequest, RecommendResponse, SearchRequest, SearchResponse, SessionSignal
from shopray.config import AppConfig
from shopray.events import EventBatch
from shopray.graph import SearchContext, Stage, StageFailed, StageSpec, arun
from shopray.pipeline import STAGES
from shopray.registry import Registry
from shopray.registry.promotion import PromoteRequest, PromotionRefused, promote
from shopray.serving.admission import Admission, admin_denied, admin_key
from shopray.serving.catalog import start_catalog_writer
from shopray.serving.metrics import ingress_metrics
from shopray.serving.shoppers import Shoppers
from shopray.stages.retrieve.changes import ChangeRejected, FeedMismatch

# Serve formats records of the "ray.serve" logger (JSON with request_id when the config asks for it).
log = logging.getLogger("ray.serve")
PAGE = Path(__file__).with_name("static") / "index.html"
# Shoppers' routes: body size, per-client rate and the in-flight cap apply (admin routes have their key instead).
SHOPPERS_RETRY_S = 10.0
ADMITTED = frozenset({"/search", "/recommend", "/suggest", "/events"})

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
    path = path.removeprefix(root.rstrip("/"))
    if admission is None or path not in ADMITTED:
        return await call_next(request)
    # The body is JSON whatever the declared type: `curl -d '{...}'` labels it form-encoded.
    request.scope["headers"] = [(k, v) for k, v in request.scope["headers"] if k != b"content-type"] + [(b"content-type", b"application/json")]
    rejection = await admission.check(request, batch=path == "/events")
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
        self._admin_key = admin_key(self.config.limits.admin_key_env)
        # Where the admin routes are open, the writer's process starts with the replica, so that a shop's first batch
        # does not wait seconds for a worker to start and import; elsewhere none is started.
        self._catalog: ActorHandle | None = start_catalog_writer(self.config) if self._admin_key else None
        self._shoppers: Shoppers | None = None
        self._shoppers_started = 0.0
        self._start_shoppers()

    def _denied(self, given: str | None) -> JSONResponse | None:
        return admin_denied(self._admin_key, given, self.config.limits.admin_key_env)

    def _start_shoppers(self) -> None:
        """Events, features, recommendations and suggestions start beside search, on a thread: a log or index that is
        not there yet must not keep search from starting. Retried at most every SHOPPERS_RETRY_S."""
        self._shoppers_started = time.monotonic()

        def start() -> None:
            try:
                self._shoppers = Shoppers(self.config)
            except Exception:
                log.exception("events, recommendations and suggestions are unavailable")

        threading.Thread(target=start, name="shoppers", daemon=True).start()

    def shoppers(self) -> Shoppers:
        """The running ``Shoppers``, or HTTPException 503 (with Retry-After) while it starts."""
        if self._shoppers is None:
            if time.monotonic() - self._shoppers_started > SHOPPERS_RETRY_S:
                self._start_shoppers()
            raise HTTPException(503, "events, recommendations and suggestions are starting", headers={"Retry-After": str(self.config.limits.retry_after_s)})
        return self._shoppers

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
        if body.session_id is not None:
            ctx = self._with_history(ctx)
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

    def _with_history(self, ctx: SearchContext) -> SearchContext:
        """The session's server-side history before what the client sent in ``session.clicked``."""
        if self._shoppers is None:
            ctx.degraded.append("session_history_unavailable")
            return ctx
        req = ctx.request
        clicked = self._shoppers.history(req.session_id) + (req.session.clicked if req.session else [])
        ctx.request = req.model_copy(update={"session": SessionSignal(clicked=list(dict.fromkeys(reversed(clicked)))[::-1])})
        return ctx

    @app.post("/events", status_code=202, responses={503: {"description": "The event log is starting or unreachable; retry after Retry-After seconds."}})
    async def events(self, body: EventBatch):
        """Append shoppers' events, all or nothing; 202 once they are durable. An event sent twice (same event_id, or
        same session, type, product, query and ts) is counted once."""
        appended = await asyncio.to_thread(self.shoppers().record, body.events)
        return {"accepted": appended.accepted, "duplicates": appended.duplicates}

    @app.post("/recommend", response_model=RecommendResponse)
    async def recommend(self, body: RecommendRequest):
        """Products similar to one, for a session, bought together, or popular; diversified, saying which model answered."""
        return await asyncio.to_thread(self.shoppers().recommend, body)

    @app.get("/suggest")
    async def suggest(self, q: str = Query(default="", max_length=512, description="What the shopper has typed so far."),
                      k: int | None = Query(default=None, ge=1, le=20, description="Suggestions to return; default from config.")):
        """Typo-tolerant completions from the catalog's phrases and popular past queries."""
        return {"q": q, "suggestions": [s.model_dump() for s in self.shoppers().suggest(q, k)]}

    @app.delete("/sessions/{session_id}")
    async def erase_session(self, session_id: str = PathParam(min_length=1, max_length=128), x_admin_key: str | None = Header(default=None)):
        """Erase a session's events and what was derived from them (needs the admin key)."""
        if (denied := self._denied(x_admin_key)) is not None:
            return denied
        return {"session_id": session_id, "erased": await asyncio.to_thread(self.shoppers().erase, session_id)}

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
        if (denied := self._denied(x_admin_key)) is not None:
            return denied
        return self.config.model_dump(mode="json")

    @app.post("/admin/catalog")
    async def admin_catalog(self, body: CatalogChanges, x_admin_key: str | None = Header(default=None)):
        """Apply a batch of catalog changes (needs the admin key): all or nothing, durable once answered; every retriever
        replica shows it within `retriever.feed_check_s`. A rejected batch gets 422 naming its line, and nothing is applied."""
        if (denied := self._denied(x_admin_key)) is not None:
            return denied
        assert self._catalog is not None  # the key admitted this call, so the writer started with the replica
        try:
            applied = await self._catalog.apply.remote(body.changes)
        except RayActorError:
            # The feed committed the batch whole or not at all; its rows are whole product states, so a resend is harmless.
            return JSONResponse(status_code=503, content={"detail": "the catalog writer restarted during this batch: send it again"},
                                headers={"Retry-After": "1"})
        except RayTaskError as exc:  # the feed's store failed (Redis unreachable, say): nothing of the batch was stored
            log.error("catalog batch not applied: %s", exc.cause)
            return JSONResponse(status_code=503, content={"detail": f"the catalog feed is unavailable ({type(exc.cause).__name__}): send it again"},
                                headers={"Retry-After": "5"})
        if isinstance(applied, ChangeRejected):
            return JSONResponse(status_code=422, content={"detail": str(applied), "line": applied.line})
        if isinstance(applied, FeedMismatch):
            return JSONResponse(status_code=409, content={"detail": str(applied)})
        log.info("catalog batch applied: changes %d..%d, %d upserted, %d deleted", applied.first_seq, applied.last_seq, applied.upserted, applied.deleted)
        return dataclasses.asdict(applied)

    @app.post("/admin/promote")
    async def admin_promote(self, body: PromoteRequest, x_admin_key: str | None = Header(default=None)):
        """Move the registry's `production` alias (needs the admin key); the stages' replicas follow it within `refresh_s`."""
        if (denied := self._denied(x_admin_key)) is not None:
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
