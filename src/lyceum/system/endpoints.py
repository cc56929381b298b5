"""Liveness, readiness and Prometheus metrics (outside /api/v1: infrastructure probes),
and the admins' job operations (under /api/v1/admin/jobs)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from lyceum.identity.permissions import AdminUser
from lyceum.kit import jobops
from lyceum.kit.ai.embedding import EmbedderLoader, embedder_loader
from lyceum.kit.db import Session, database_reachable, migration_state
from lyceum.kit.errors import PROBLEM_BASE, PROBLEM_CONTENT_TYPE
from lyceum.kit.metrics import (
    DB_POOL,
    JOB_OLDEST_WAITING,
    JOBS,
    REGISTRY,
    WEBHOOK_ENDPOINTS_DISABLED,
)
from lyceum.kit.pagination import Page, Paging
from lyceum.kit.routing import Router
from lyceum.kit.runtime import Runtime
from lyceum.kit.shutdown import Drain
from lyceum.kit.validation import SafeStr
from lyceum.system import service
from lyceum.system.permissions import MetricsScraper
from lyceum.system.schemas import (
    CheckResult,
    JobOut,
    JobSummaryOut,
    Liveness,
    NotReady,
    QueueOut,
    Readiness,
)
from lyceum.webhooks.service import disabled_endpoints

router = APIRouter(tags=["system"])

READY_CHECK_TIMEOUT = 3.0
JOB_COUNT_MAX_AGE = 5.0


_LIVE = b'{"status":"ok"}'


@router.get(
    "/health/live",
    operation_id="health_live",
    summary="The process is up",
    response_model=Liveness,
)
async def live() -> Response:
    # Probed every few seconds by every orchestrator: a constant body, no validation.
    return Response(_LIVE, media_type="application/json")


async def _check(name: str, probe: Any) -> tuple[str, CheckResult]:
    try:
        result = await asyncio.wait_for(probe, READY_CHECK_TIMEOUT)
    except Exception as error:
        return name, CheckResult(ok=False, detail=f"{type(error).__name__}: {error}"[:300])
    if isinstance(result, CheckResult):
        return name, result
    return name, CheckResult(ok=bool(result))


async def _migrations(runtime: Runtime) -> CheckResult:
    state = await migration_state(runtime.database.engine)
    if state.up_to_date:
        return CheckResult(ok=True, detail=",".join(sorted(state.current)))
    return CheckResult(
        ok=False,
        detail=f"at {sorted(state.current)}, expected {sorted(state.heads)}: run `lyceum migrate`",
    )


def _embedding_model(request: Request) -> CheckResult:
    """The embedding model (course search, the tutor, indexing). Loading is not a reason
    to keep traffic away: requests are served meanwhile, and a question that needs the
    model waits for it (its latency says so). A load that failed is."""
    loader: EmbedderLoader = getattr(request.app.state, "embedder_loader", embedder_loader())
    status = loader.status()
    return CheckResult(ok=status.state != "failed", state=status.state, detail=status.detail)


@router.get(
    "/health/ready",
    operation_id="health_ready",
    summary="Dependencies are reachable and the schema is current",
    description="Checks the database, the migrations, Redis (when REDIS_URL is set) and "
    "the embedding model, which the server starts loading in the background when it "
    "starts: `idle`, `loading` (still ready: a question that needs it waits), `ready`, "
    "or `failed` (not ready). From the moment the process is asked to stop (SIGTERM) "
    "until it exits, 503 with the single check `shutdown`: it is draining, send new "
    "work elsewhere.",
    response_model=Readiness,
    responses={
        503: {
            "model": NotReady,
            "description": "A dependency is not ready, or the process is shutting down",
        }
    },
)
async def ready(request: Request) -> Response:
    drain: Drain | None = getattr(request.app.state, "drain", None)
    if drain is not None and drain.draining:
        return _not_ready(
            request, {"shutdown": CheckResult(ok=False, detail="draining: shutting down")}
        )
    runtime: Runtime = request.app.state.runtime
    probes = [
        _check("database", database_reachable(runtime.database.engine)),
        _check("migrations", _migrations(runtime)),
    ]
    if runtime.settings.redis_url:
        probes.append(_check("redis", runtime.cache.ping()))
    checks = dict(await asyncio.gather(*probes))
    checks["embedding_model"] = _embedding_model(request)
    if all(check.ok for check in checks.values()):
        return JSONResponse(Readiness(checks=checks).model_dump())
    return _not_ready(request, checks)


def _not_ready(request: Request, checks: dict[str, CheckResult]) -> Response:
    problem = NotReady(
        type=PROBLEM_BASE + "not-ready",
        title="Not ready",
        status=503,
        detail="A dependency is not ready: "
        + ", ".join(name for name, check in checks.items() if not check.ok),
        instance=request.url.path,
        checks=checks,
    )
    return JSONResponse(
        problem.model_dump(exclude_none=True), status_code=503, media_type=PROBLEM_CONTENT_TYPE
    )


async def _refresh_job_counts(request: Request) -> None:
    state = request.app.state
    now = time.monotonic()
    if now - getattr(state, "job_counts_at", 0.0) < JOB_COUNT_MAX_AGE:
        return
    state.job_counts_at = now
    runtime: Runtime = state.runtime
    async with runtime.database.engine.connect() as connection:
        figures = await jobops.queue_figures(connection)
    async with runtime.database.sessionmaker() as session:
        WEBHOOK_ENDPOINTS_DISABLED.set(await disabled_endpoints(session))
    # A queue that emptied out of the table (a test's, a renamed one) leaves no stale line.
    JOBS.clear()
    JOB_OLDEST_WAITING.clear()
    for queue in figures:
        for status, count in queue.counts.items():
            JOBS.labels(queue.queue, status).set(count)
        JOB_OLDEST_WAITING.labels(queue.queue).set(queue.oldest_waiting_seconds)


@router.get(
    "/metrics",
    operation_id="metrics",
    summary="Prometheus metrics",
    description="With METRICS_TOKEN set: `Authorization: Bearer <METRICS_TOKEN>`, else 401. "
    "Without it: open in development and test, 404 in production.",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
async def metrics(request: Request, scraper: MetricsScraper) -> Response:
    runtime: Runtime = request.app.state.runtime
    for name, value in runtime.database.pool_stats().items():
        DB_POOL.labels(name).set(value)
    await _refresh_job_counts(request)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


# Job operations (admins) ----------------------------------------------------------------

admin_jobs = Router(prefix="/admin/jobs", tags=["jobs"])

JobId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The job's id.")]


@admin_jobs.get(
    "/queues",
    operation_id="list_job_queues",
    summary="Job queues with their jobs by status (admins)",
    description="Every queue: jobs by status (todo, doing, succeeded, failed, cancelled, "
    "aborted) and the age in seconds of the oldest job waiting to run.",
)
async def list_job_queues(admin: AdminUser, session: Session) -> Page[QueueOut]:
    return await service.queues(session)


@admin_jobs.get(
    "/failed",
    operation_id="list_failed_jobs",
    summary="Failed jobs with their error (admins)",
    description="Jobs that failed with no retry left, newest first, each with the "
    "exception of its last attempt.",
)
async def list_failed_jobs(
    admin: AdminUser,
    session: Session,
    paging: Paging,
    queue: Annotated[
        SafeStr | None, Query(max_length=128, description="Only this queue's jobs.")
    ] = None,
) -> Page[JobSummaryOut]:
    return await service.failed(session, paging, queue)


@admin_jobs.get(
    "/{job_id}",
    operation_id="get_job",
    summary="One job with every failed attempt (admins)",
)
async def get_job(job_id: JobId, admin: AdminUser, session: Session) -> JobOut:
    return await service.job(session, job_id)


@admin_jobs.post(
    "/{job_id}/retry",
    operation_id="retry_job",
    summary="Run a failed job again (admins)",
    description="Puts a failed job back in its queue with a fresh set of attempts. "
    "409 when the job has not failed.",
)
async def retry_job(job_id: JobId, admin: AdminUser, session: Session) -> JobOut:
    return await service.retry(session, job_id)


@admin_jobs.post(
    "/{job_id}/cancel",
    operation_id="cancel_job",
    summary="Cancel a waiting job (admins)",
    description="Only a job still waiting in its queue (todo); 409 for one that runs "
    "or has finished.",
)
async def cancel_job(job_id: JobId, admin: AdminUser, session: Session) -> JobOut:
    return await service.cancel(session, job_id)
