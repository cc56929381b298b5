"""create_app(): the ASGI application with its lifespan, middleware and routers."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Receive, Scope, Send

from lyceum import __version__, apidocs, web
from lyceum.analytics import endpoints as analytics_endpoints
from lyceum.analytics import report_endpoints as analytics_report_endpoints
from lyceum.analytics import xapi_endpoints
from lyceum.assessments import endpoints as assessment_endpoints
from lyceum.assessments.guard import AssessmentGuard
from lyceum.channels import endpoints as channel_endpoints
from lyceum.chat import endpoints as chat_endpoints
from lyceum.chat.gateway import ChatGateway
from lyceum.config import Settings, get_settings
from lyceum.content import endpoints as content_endpoints
from lyceum.courses import endpoints as course_endpoints
from lyceum.courses.service import CATALOG_VERSION_KEY
from lyceum.identity import endpoints as identity_endpoints
from lyceum.kit import tracing
from lyceum.kit.accesslog import access_log
from lyceum.kit.ai.embedding import embedder_loader, get_embedder, use_serving_threads
from lyceum.kit.errors import PROBLEM_RESPONSES, install_error_handlers
from lyceum.kit.errortracking import init_sentry
from lyceum.kit.gcpolicy import GcPolicy
from lyceum.kit.jobs import BULK_QUEUES, USER_FACING_QUEUES, run_worker
from lyceum.kit.logging import configure_logging
from lyceum.kit.looplag import watch_event_loop
from lyceum.kit.middleware import (
    BodySizeLimitMiddleware,
    RequestContextMiddleware,
)
from lyceum.kit.openapi import DocumentedAPI
from lyceum.kit.responsecache import ResponseCacheMiddleware
from lyceum.kit.routing import add_to_app
from lyceum.kit.runtime import Runtime
from lyceum.kit.shutdown import Drain
from lyceum.kit.workerprocess import supervise
from lyceum.learning import endpoints as learning_endpoints
from lyceum.notifications import endpoints as notification_endpoints
from lyceum.payments import endpoints as payment_endpoints
from lyceum.payments import registry as payment_registry
from lyceum.payments import report_endpoints as payment_report_endpoints
from lyceum.payments import sandbox as payment_pages
from lyceum.privacy import endpoints as privacy_endpoints
from lyceum.recommendations import endpoints as recommendation_endpoints
from lyceum.system import endpoints as system_endpoints
from lyceum.system import pages
from lyceum.system.endpoints import router as system_router
from lyceum.tutor import endpoints as tutor_endpoints
from lyceum.tutor.interfaces import use_graded_question_guard
from lyceum.webhooks import endpoints as webhook_endpoints

logger = structlog.get_logger("lyceum.app")


def assessment_guard(
    session: AsyncSession, settings: Settings, now: dt.datetime
) -> AssessmentGuard:
    """The tutor's graded-work guard, from the assessments domain: the tutor owns the
    interface (`tutor.interfaces.GradedQuestionGuard`), the app composes the two."""
    return AssessmentGuard(
        session,
        embedder=get_embedder,
        threshold=settings.assessment_guard_similarity,
        now=now,
    )


API_PREFIX = "/api/v1"
# Room for the multipart headers and boundaries around an uploaded file.
UPLOAD_ENVELOPE = 64 * 1024

DESCRIPTION = """
Lyceum is an AI tutor and learning platform backend.

* Every API route lives under `/api/v1`; ids are UUIDs and times are UTC ISO-8601.
* Every error is an RFC 9457 `application/problem+json` document with a stable `type`;
  validation errors list each offending field under `errors`.
* Every list answers with the same envelope: the list under `items`, with `total`.
* Strings are raw text, returned as they were stored: display names, titles, file names,
  messages and essays may contain `<`, `&` or quotes. Clients must escape them wherever
  they render HTML. The one exception is the catalog's `snippet`, an HTML fragment whose
  text Lyceum has escaped, with hits in `<mark>`.
"""

TAGS = [
    {
        "name": "auth",
        "description": "Accounts, tokens, sessions, email verification, passwords, MFA.",
    },
    {"name": "users", "description": "Profiles, avatars, and account administration."},
    {"name": "courses", "description": "Catalog, course authoring, modules and lessons."},
    {"name": "learning", "description": "Enrollment, progress and rosters."},
    {
        "name": "content",
        "description": "Course files (uploads, signed downloads) and search over the "
        "course's material.",
    },
    {
        "name": "tutor",
        "description": "The AI tutor: conversations grounded in the course's material, "
        "streamed answers with citations, per-course settings, usage.",
    },
    {
        "name": "chat",
        "description": "Course and direct chat rooms, history, presence and moderation; "
        "the live side is Socket.IO at `/socket.io` (see the README).",
    },
    {
        "name": "assessments",
        "description": "Question banks, quizzes with server-timed attempts and auto-grading, "
        "essay assignments scored against a rubric (AI or offline estimate) and reviewed by "
        "instructors, grade audit, and the gradebook.",
    },
    {"name": "system", "description": "Liveness, readiness and Prometheus metrics."},
    {
        "name": "webhooks",
        "description": "Outgoing webhooks (admins): endpoints, signing secrets, the delivery "
        "log, redelivery and test events. What is delivered is in the `webhooks` section.",
    },
    {
        "name": "payments",
        "description": "Paid courses: checkout with an Idempotency-Key, the buyer's orders, "
        "coupons, refunds, receipts, payment reports, and the payment providers' webhooks. "
        "Amounts are integers in the currency's minor units (ISO 4217: 2 decimals for USD, "
        "3 for KWD, 0 for JPY).",
    },
    {
        "name": "analytics",
        "description": "Learning analytics: apps post learners' events in batches; the "
        "platform records its own facts (enrollments, completions, grades, tutor questions, "
        "chat activity); instructors and admins read reports built from rollups.",
    },
    {
        "name": "notifications",
        "description": "The notification centre, preferences per category and channel, "
        "quiet hours, one-click unsubscribe, course announcements and the delivery log.",
    },
]


# What other origins may call: the API (bearer tokens), health and the schema.
CORS_PATHS = (API_PREFIX + "/", "/health/", "/openapi.json")


class ApiOnlyCors:
    """CORS for the API's paths (`CORS_PATHS`), and nothing at all for the others: the
    web app's pages and `/live/token` ride on a session cookie, and a CORS answer with
    credentials would let a listed origin's scripts read them."""

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        self.app = app
        self.cors = CORSMiddleware(app, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(CORS_PATHS):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _operation_id(route: APIRoute) -> str:
    return route.name


class LyceumAPI(DocumentedAPI):
    """The documented API (kit.openapi) with the request context (request id, security headers, access log,
    metrics) around the *whole* middleware stack. Added with `add_middleware` it would
    sit inside Starlette's ServerErrorMiddleware, and the 500 answer to an unhandled
    error (in a route or in a middleware) would leave without them."""

    def __init__(self, *, hsts: bool, **kwargs: Any) -> None:
        self.hsts = hsts
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        # With tracing on, its span layer sits just inside the request context: it reads
        # the request id and sees the 500 answers. Off, the stack is exactly as without it.
        inner = tracing.wrap_app(super().build_middleware_stack())
        return RequestContextMiddleware(inner, hsts=self.hsts)


async def stop_tasks(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel background tasks and wait for them (a job worker cancelled stops fetching
    and gives its running jobs their grace period)."""
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "background_task_failed", task=task.get_name(), error=repr(task.exception())
            )


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the app. With `runtime` given (tests, benchmarks) the caller owns it;
    otherwise the lifespan starts one, and in embedded mode an in-process worker."""
    settings = settings or get_settings()
    payment_registry.check(settings)
    configure_logging(settings.log_level, settings.effective_log_format)
    init_sentry(settings, role="api")
    tracing.configure(settings, role="api")  # on when OTEL_EXPORTER_OTLP_ENDPOINT is set

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime is not None:
            app.state.runtime = runtime
            yield
            return
        drain: Drain = app.state.drain
        # The embedding model takes seconds to load (tens on a busy machine): start now,
        # in the background, so the first tutor or search question does not wait for
        # it from scratch. /health/ready reports it.
        use_serving_threads()
        app.state.embedder_loader.start()
        owned = await Runtime.start(settings)
        app.state.runtime = owned
        if owned.embedded is not None and settings.embedded_worker:
            # Two workers: user-facing queues (mail, certificates, ...) never wait
            # behind bulk work (indexing a textbook, scoring a class's essays), which
            # runs in a child process so it never holds up requests either. Both stop
            # when the drain begins, with its grace for their running jobs.
            grace = settings.shutdown_grace_seconds
            workers = [
                asyncio.create_task(
                    run_worker(
                        owned,
                        name="embedded",
                        concurrency=settings.worker_concurrency,
                        install_signal_handlers=False,
                        queues=USER_FACING_QUEUES,
                        shutdown_graceful_timeout=grace,
                    ),
                    name="embedded-worker",
                ),
                asyncio.create_task(
                    supervise(settings, owned.database_url, BULK_QUEUES)
                    if settings.embedded_bulk_worker == "process"
                    else run_worker(
                        owned,
                        name="embedded-bulk",
                        concurrency=1,
                        install_signal_handlers=False,
                        queues=BULK_QUEUES,
                        shutdown_graceful_timeout=grace,
                    ),
                    name="embedded-bulk-worker",
                ),
            ]
            owned.tasks.extend(workers)
            drain.on_drain("job-workers", lambda: stop_tasks(workers))
        # Everything built so far lives as long as the process: move it out of the
        # collector's reach so full collections only scan what requests allocate.
        gc.collect()
        gc.freeze()
        owned.tasks.append(asyncio.create_task(GcPolicy().run(), name="gc-policy"))
        owned.tasks.append(asyncio.create_task(watch_event_loop(), name="event-loop-lag"))
        logger.info(
            "lyceum_started",
            version=__version__,
            environment=settings.environment.value,
            database="embedded" if owned.embedded else "external",
            cache=owned.cache.backend,
            in_process_worker=owned.embedded is not None and settings.embedded_worker,
        )
        try:
            yield
        finally:
            await drain.finished()
            await owned.stop()
            access_log.flush()
            payment_http = getattr(app.state, "payment_http", None)  # payments.permissions
            if payment_http is not None:
                await payment_http.aclose()
            tracing.shutdown()  # sends the spans still buffered

    chat = ChatGateway(settings)
    app = LyceumAPI(
        hsts=settings.is_production,
        title="Lyceum API",
        version=__version__,
        summary="AI tutor and learning platform backend",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=chat.lifespan(lifespan),
        debug=settings.debug,
        generate_unique_id_function=_operation_id,
        # Served by lyceum.apidocs, with their scripts from the package (no CDN).
        docs_url=None,
        redoc_url=None,
        # FastAPI's built-in OpenTelemetry hooks look up the global tracer, meter and
        # logger providers on every request (three environment reads), about 5% of a
        # request that needs no database. Lyceum records its own request metrics
        # (kit.metrics); the hooks stay off.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    # Begun by `lyceum serve` on SIGTERM (kit.shutdown): readiness fails, the chat and
    # the in-process workers let go.
    app.state.drain = Drain(settings.shutdown_grace_seconds)
    app.state.embedder_loader = embedder_loader()
    if runtime is not None:
        app.state.runtime = runtime
    install_error_handlers(app)
    use_graded_question_guard(app, assessment_guard)

    add_to_app(app, system_router, responses=PROBLEM_RESPONSES)
    for domain in (
        identity_endpoints.auth,
        identity_endpoints.users,
        course_endpoints.courses,
        course_endpoints.lessons,
        learning_endpoints.learning,
        content_endpoints.content,
        tutor_endpoints.tutor,
        assessment_endpoints.assessments,
        chat_endpoints.chat,
        webhook_endpoints.webhooks,
        notification_endpoints.notifications,
        channel_endpoints.channels,
        system_endpoints.admin_jobs,
        payment_endpoints.payments,
        payment_report_endpoints.router,
        xapi_endpoints.router,
        analytics_endpoints.router,
        analytics_report_endpoints.router,
        recommendation_endpoints.router,
        privacy_endpoints.privacy,
    ):
        app.include_router(domain, prefix=API_PREFIX, responses=PROBLEM_RESPONSES)
    app.include_router(pages.router)
    app.include_router(payment_pages.pages)
    app.include_router(apidocs.router)
    web.install(app)  # the web app at / (pages, /static)
    app.mount(apidocs.ASSETS_PATH, apidocs.assets(), name="docs-assets")
    chat.attach(app)  # Socket.IO at /socket.io, on the same app and middleware

    # Starlette wraps each middleware added around the ones before it: the response
    # cache sits inside CORS, so a cached catalog page gets its CORS headers like any
    # other answer.
    catalog_paths = (f"{API_PREFIX}/courses", f"{API_PREFIX}/courses/popular")
    app.add_middleware(
        ResponseCacheMiddleware,
        versioned_paths=dict.fromkeys(catalog_paths, CATALOG_VERSION_KEY),
        ttl=settings.cache_ttl_seconds,
    )
    if settings.cors_origins:
        # Only the JSON API answers other origins: it authenticates by bearer token. The
        # web app's pages (cookie sessions) must never be readable from another origin.
        app.add_middleware(
            ApiOnlyCors,  # type: ignore[arg-type]  # a plain ASGI class, as Starlette's
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=[
                "X-Request-ID",
                "Retry-After",
                "Location",
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Reset",
            ],
        )
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_request_body_bytes,
        # A course file upload: the file and its multipart envelope.
        path_limits=[
            (f"{API_PREFIX}/courses/[^/]+/files", settings.max_upload_bytes + UPLOAD_ENVELOPE),
            # The web app's upload forms: the same file limit, refused before any is read.
            *web.upload_limits(settings.max_upload_bytes + UPLOAD_ENVELOPE),
        ],
    )
    return app
