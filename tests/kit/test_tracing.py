"""OpenTelemetry tracing (kit.tracing) with an in-memory exporter: request, SQL, job,
outgoing HTTP and model-call spans, linked into one trace; with tracing off, no hook at
all; and, in a child process, a real OTLP/HTTP export to a local receiver."""

from __future__ import annotations

import http.server
import json
import os
import secrets
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import httpx2
import pytest
import sqlalchemy.exc
from fastapi import APIRouter, FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic_ai import Agent
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.config import Settings
from lyceum.kit import tracing
from lyceum.kit.db import Session, driver_execute
from lyceum.kit.jobs import defer
from lyceum.kit.middleware import RequestContextMiddleware
from lyceum.kit.runtime import Runtime
from tests.conftest import client_for, client_on_fake_provider, make_app
from tests.support import jobs as test_jobs
from tests.support.clock import FrozenClock
from tests.support.fake_llm import FakeLLM, fake_llm_server
from tests.support.servers import REPO_ROOT

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"

router = APIRouter(prefix="/api/v1/tracing-probe")


@router.post("/jobs/{token}")
async def enqueue(token: str, session: Session) -> dict[str, int | None]:
    return {"job_id": await defer(session, test_jobs.record, token=token)}


@router.post("/failing-jobs/{token}")
async def enqueue_failing(token: str, session: Session) -> dict[str, int | None]:
    return {"job_id": await defer(session, test_jobs.always_fails, token=token)}


@pytest.fixture
def spans(runtime: Runtime) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.install_exporter(exporter)
    assert tracing.instrument_engine(runtime.database.engine)
    yield exporter
    tracing.shutdown()


@pytest.fixture
async def committing_client(
    settings: Settings, runtime: Runtime
) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(settings, runtime, None)
    app.include_router(router)
    async with client_for(app) as http:
        yield http


def server_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.kind is SpanKind.SERVER]


def children_of(exporter: InMemorySpanExporter, parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [
        span
        for span in exporter.get_finished_spans()
        if span.parent is not None and span.parent.span_id == parent.context.span_id
    ]


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def everything_recorded(exporter: InMemorySpanExporter) -> str:
    """Every name, attribute, event and status text of every span, in one string."""
    parts: list[str] = []
    for span in exporter.get_finished_spans():
        parts += [span.name, repr(attributes(span)), str(span.status.description)]
        parts += [f"{event.name} {dict(event.attributes or {})!r}" for event in span.events]
    return "\n".join(parts)


async def test_a_request_is_a_server_span_by_route_with_its_sql_and_the_callers_parent(
    spans: InMemorySpanExporter, client: httpx.AsyncClient
) -> None:
    missing = uuid.uuid4()
    response = await client.get(
        f"/api/v1/courses/{missing}",
        headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "X-Request-ID": "trace-me-1"},
    )
    assert response.status_code == 404

    [server] = server_spans(spans)
    assert server.name == "GET /api/v1/courses/{course_id}"
    assert attributes(server) == {
        "http.request.method": "GET",
        "http.route": "/api/v1/courses/{course_id}",
        "http.response.status_code": 404,
        "url.path": f"/api/v1/courses/{missing}",
        "url.scheme": "http",
        "lyceum.request_id": "trace-me-1",
    }
    # The caller's span is the parent: the trace continues across the hop.
    assert server.parent is not None and server.parent.is_remote
    assert format(server.parent.span_id, "016x") == PARENT_ID
    assert server.context is not None and format(server.context.trace_id, "032x") == TRACE_ID

    sql = [span for span in children_of(spans, server) if span.kind is SpanKind.CLIENT]
    assert sql, "the course lookup ran SQL inside the request span"
    for span in sql:
        found = attributes(span)
        assert found["db.system"] == found["db.system.name"] == "postgresql"
        assert span.name == found["db.operation.name"]
        # The statement with its placeholders: the course id is a parameter, never in it.
        assert str(missing) not in found["db.query.text"]
    assert any(
        "courses" in attributes(span)["db.query.text"] and span.name == "SELECT" for span in sql
    )


async def test_a_statement_sent_on_the_driver_connection_is_a_sql_span_too(
    spans: InMemorySpanExporter, runtime: Runtime
) -> None:
    """`kit.db.driver_execute` (a graded quiz's side effects) bypasses SQLAlchemy's
    cursor events, so it makes the same span itself; a failing one is an error span
    with the class only."""
    async with runtime.database.sessionmaker() as session:
        found = await driver_execute(session, "SELECT %(secret)s::int + 1 AS probe", {"secret": 41})
        with pytest.raises(sqlalchemy.exc.DataError):
            await driver_execute(session, "SELECT 1 / %(zero)s::int AS probe", {"zero": 0})
        await session.rollback()
    assert found.rows == [(42,)] and found.rowcount == 1
    url = runtime.database.engine.url
    probes = [
        span
        for span in spans.get_finished_spans()
        if "AS probe" in str(attributes(span).get("db.query.text", ""))
    ]
    assert [span.name for span in probes] == ["SELECT", "SELECT"]
    ok, failed = probes
    assert ok.kind is SpanKind.CLIENT
    assert attributes(ok) == {
        "db.system": "postgresql",
        "db.system.name": "postgresql",
        "db.operation.name": "SELECT",
        "db.query.text": "SELECT %(secret)s::int + 1 AS probe",
        "db.namespace": url.database,
        "server.address": url.host or "",
        "server.port": url.port or 5432,
    }
    assert ok.status.status_code.name == "UNSET"
    assert failed.status.status_code.name == "ERROR"
    assert attributes(failed)["exception.type"] == "psycopg.errors.DivisionByZero"
    assert "41" not in everything_recorded(spans)


async def test_a_request_without_traceparent_starts_a_trace_and_a_500_is_an_error(
    spans: InMemorySpanExporter, settings: Settings, runtime: Runtime
) -> None:
    app = make_app(settings, runtime, None)

    @app.get("/api/v1/tracing-probe/boom")
    async def boom() -> None:
        # SQLAlchemy's message of a failed INSERT carries its parameters: never recorded.
        raise RuntimeError("boom [parameters: {'password_hash': 'hash-secret-1'}]")

    async with client_for(app) as http:
        response = await http.get("/api/v1/tracing-probe/boom")
    assert response.status_code == 500
    [server] = server_spans(spans)
    assert server.parent is None
    assert attributes(server)["http.response.status_code"] == 500
    assert server.status.is_ok is False
    # The exception's class, not its message or traceback.
    assert server.status.description == "RuntimeError"
    assert attributes(server)["exception.type"] == "RuntimeError"
    assert server.events == ()
    assert "hash-secret-1" not in everything_recorded(spans)
    assert attributes(server)["lyceum.request_id"] == response.headers["x-request-id"]


async def test_a_job_deferred_in_a_traced_request_runs_in_a_child_span_of_it(
    spans: InMemorySpanExporter, committing_client: httpx.AsyncClient, runtime: Runtime
) -> None:
    token = uuid.uuid4().hex
    response = await committing_client.post(f"/api/v1/tracing-probe/jobs/{token}")
    assert response.status_code == 200
    [server] = server_spans(spans)
    assert server.context is not None

    async with runtime.database.engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT args FROM procrastinate_jobs WHERE id = :id"),
                {"id": response.json()["job_id"]},
            )
        ).scalar_one()
    assert stored["token"] == token
    traceparent = stored[tracing.TRACE_KEY]["traceparent"]
    assert traceparent.split("-")[1:3] == [
        format(server.context.trace_id, "032x"),
        format(server.context.span_id, "016x"),
    ]

    await test_jobs.run_jobs([test_jobs.QUEUE])

    # The task got its own arguments only, and ran inside a span of the request's trace.
    assert token in test_jobs.executed
    [job_span] = [
        span
        for span in children_of(spans, server)
        if span.kind is SpanKind.CONSUMER and span.name == "run tests.record"
    ]
    assert job_span.context is not None
    assert job_span.context.trace_id == server.context.trace_id
    assert attributes(job_span)["messaging.destination.name"] == test_jobs.QUEUE
    assert attributes(job_span)["messaging.message.id"] == str(response.json()["job_id"])
    assert attributes(job_span)["lyceum.job.attempt"] == 0


async def test_a_failed_sql_statement_records_the_error_class_never_the_value(
    spans: InMemorySpanExporter, runtime: Runtime
) -> None:
    secret = f"alice-{secrets.token_hex(4)}@example.org"
    async with runtime.database.engine.connect() as conn:
        with pytest.raises(DBAPIError) as raised:
            await conn.execute(text("SELECT CAST(:value AS integer)"), {"value": secret})
    # PostgreSQL's own message names the value (as a unique violation's DETAIL does)...
    assert secret in str(raised.value.orig)
    # ...SQLAlchemy's adds no `[parameters: ...]` (hide_parameters), for logs too...
    assert "[parameters:" not in str(raised.value)
    assert "parameters hidden" in str(raised.value)
    # ...and the span has the error's class only.
    [failed] = [span for span in spans.get_finished_spans() if not span.status.is_ok]
    assert failed.kind is SpanKind.CLIENT and failed.name == "SELECT"
    assert failed.status.description == "InvalidTextRepresentation"
    assert attributes(failed)["exception.type"] == "psycopg.errors.InvalidTextRepresentation"
    assert failed.events == ()
    assert secret not in everything_recorded(spans)


async def test_a_failed_job_attempt_records_the_error_class_never_the_message(
    spans: InMemorySpanExporter, committing_client: httpx.AsyncClient, runtime: Runtime
) -> None:
    token = f"token-{secrets.token_hex(6)}"
    response = await committing_client.post(f"/api/v1/tracing-probe/failing-jobs/{token}")
    assert response.status_code == 200
    await test_jobs.run_jobs([test_jobs.QUEUE])

    # This job's span: another test's `always_fails`, due for its retry, may run too.
    [job_span] = [
        span
        for span in spans.get_finished_spans()
        if span.name == "run tests.always_fails"
        and attributes(span)["messaging.message.id"] == str(response.json()["job_id"])
    ]
    assert job_span.status.is_ok is False
    assert job_span.status.description == "RuntimeError"
    assert attributes(job_span)["exception.type"] == "RuntimeError"
    assert job_span.events == ()
    # (The token is in the request's url.path, by design; the job span has none of it.)
    assert token not in repr(attributes(job_span))

    # Its retry would be due in 2 s, in another test's worker run: the last attempt now.
    async with runtime.database.engine.begin() as conn:
        await conn.execute(
            text("UPDATE procrastinate_jobs SET attempts = 3, scheduled_at = now() WHERE id = :id"),
            {"id": response.json()["job_id"]},
        )
    await test_jobs.run_jobs([test_jobs.QUEUE])


async def test_a_clients_not_sampled_flag_is_ignored_and_its_tracestate_dropped(
    spans: InMemorySpanExporter, settings: Settings, runtime: Runtime
) -> None:
    app = make_app(settings, runtime, None)
    async with client_for(app) as http:
        # Not-sampled flag: with a ratio of 1 (the default) recorded all the same; the
        # trace goes on, without the client's tracestate.
        response = await http.get(
            "/health/live",
            headers={
                "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-00",
                "tracestate": "vendor=client-chosen",
            },
        )
    assert response.status_code == 200
    [server] = server_spans(spans)
    assert server.context is not None
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.context.trace_flags.sampled
    assert len(server.context.trace_state) == 0


async def test_a_clients_sampled_flag_does_not_force_sampling(
    settings: Settings, runtime: Runtime
) -> None:
    exporter = InMemorySpanExporter()
    tracing.install_exporter(exporter, sample_ratio=0.0)
    try:
        app = make_app(settings, runtime, None)
        async with client_for(app) as http:
            # Sampled flag set: with a ratio of 0 the request is still not recorded.
            response = await http.get(
                "/health/live", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
            )
        assert response.status_code == 200
        assert server_spans(exporter) == []
    finally:
        tracing.shutdown()


async def test_a_job_deferred_while_tracing_runs_on_a_worker_that_does_not_trace(
    committing_client: httpx.AsyncClient, runtime: Runtime
) -> None:
    exporter = InMemorySpanExporter()
    tracing.install_exporter(exporter)
    try:
        token = uuid.uuid4().hex
        response = await committing_client.post(f"/api/v1/tracing-probe/jobs/{token}")
        assert response.status_code == 200
    finally:
        tracing.shutdown()
    await test_jobs.run_jobs([test_jobs.QUEUE])
    assert token in test_jobs.executed


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    with fake_llm_server() as server:
        yield server


@pytest.fixture
async def tutor_client(
    fake: FakeLLM, runtime: Runtime, spans: InMemorySpanExporter
) -> AsyncIterator[httpx.AsyncClient]:
    async with client_on_fake_provider(
        runtime, fake, ai_max_retries=0, tutor_cache_ttl_seconds=0
    ) as http:
        yield http


async def test_a_tutor_answer_has_gen_ai_spans_with_tokens_and_calls_out_with_traceparent(
    tutor_client: httpx.AsyncClient, runtime: Runtime, fake: FakeLLM, spans: InMemorySpanExporter
) -> None:
    from tests.tutor.test_tutor_providers import ask, course_about

    course, learner, _ = await course_about(
        tutor_client, runtime, "# Energy\n\nMitochondria turn glucose into ATP."
    )
    spans.clear()
    fake.reply("Mitochondria turn glucose into ATP [1].")
    events = await ask(tutor_client, learner, course["id"], "What do mitochondria do?")
    assert events[-1][0] == "done"

    finished = spans.get_finished_spans()
    [answer] = [span for span in finished if span.name == "tutor.answer"]
    assert attributes(answer)["lyceum.tutor.mode"] == "model"
    assert answer.context is not None
    trace_id = answer.context.trace_id
    [request] = [
        span
        for span in server_spans(spans)
        if attributes(span).get("http.route", "").endswith("/messages")
    ]
    assert request.context is not None and request.context.trace_id == trace_id

    model_calls = [span for span in finished if "gen_ai.usage.input_tokens" in attributes(span)]
    chat = [span for span in model_calls if span.kind is SpanKind.CLIENT]
    assert chat, [span.name for span in finished]
    provider_request = fake.requests[-1]
    for span in chat:
        found = attributes(span)
        assert span.context is not None and span.context.trace_id == trace_id
        assert found["gen_ai.request.model"] == provider_request.model
        assert found["gen_ai.response.model"] == provider_request.model
        assert found["gen_ai.usage.input_tokens"] > 0
        assert found["gen_ai.usage.output_tokens"] > 0
        assert "anthropic" in {found.get("gen_ai.system"), found.get("gen_ai.provider.name")}
        # No prompt or answer text in the spans: learners' questions are personal data.
        assert "mitochondria" not in json.dumps(found, default=str).lower()

    # The SDK's HTTP call is a span of the trace, and the provider was told so.
    http_spans = [
        span
        for span in finished
        if span.kind is SpanKind.CLIENT
        and attributes(span).get("http.request.method") == "POST"
        and "db.system" not in attributes(span)
    ]
    assert http_spans
    assert all(attributes(span)["http.response.status_code"] == 200 for span in http_spans)
    # The provider's origin, without the path (`/v1/messages`).
    assert {attributes(span)["url.full"] for span in http_spans} == {fake.base_url}
    traceparent = provider_request.headers["traceparent"]
    assert traceparent.split("-")[1] == format(trace_id, "032x")
    sent_from = {format(span.context.span_id, "016x") for span in http_spans if span.context}
    assert traceparent.split("-")[2] in sent_from


async def test_an_offline_answer_is_a_tutor_answer_span_in_offline_mode(
    spans: InMemorySpanExporter, runtime: Runtime
) -> None:
    from tests.tutor.test_tutor_providers import ask, course_about

    assert runtime.settings.ai_offline
    app = make_app(runtime.settings, runtime, None)
    app.state.clock = FrozenClock()
    await runtime.rate_limiter.reset()
    async with client_for(app) as http:
        course, learner, _ = await course_about(
            http, runtime, "# Energy\n\nMitochondria turn glucose into ATP."
        )
        await ask(http, learner, course["id"], "What do mitochondria do?")
    [answer] = [span for span in spans.get_finished_spans() if span.name == "tutor.answer"]
    assert attributes(answer)["lyceum.tutor.mode"] == "offline"
    assert not [
        s for s in spans.get_finished_spans() if "gen_ai.usage.input_tokens" in attributes(s)
    ]


async def test_tracing_off_adds_no_layer_no_hook_and_nothing_to_jobs(
    settings: Settings,
    runtime: Runtime,
    connection: AsyncConnection,
    committing_client: httpx.AsyncClient,
) -> None:
    assert settings.otel_exporter_otlp_endpoint is None
    assert not tracing.configure(settings, role="api")
    assert not tracing.enabled()

    app: FastAPI = make_app(settings, runtime, connection)
    stack = app.build_middleware_stack()
    assert isinstance(stack, RequestContextMiddleware)
    layers = []
    layer: Any = stack
    while layer is not None:
        layers.append(type(layer).__name__)
        layer = getattr(layer, "app", None)
    # The request context wraps Starlette's error middleware directly, as without tracing.
    assert layers[1] == "ServerErrorMiddleware"
    assert "TracingMiddleware" not in layers

    assert not tracing.engine_is_traced(runtime.database.engine)
    assert not hasattr(httpx.AsyncHTTPTransport.handle_async_request, "__wrapped__")
    assert not hasattr(httpx.HTTPTransport.handle_request, "__wrapped__")
    assert not hasattr(httpx2.AsyncHTTPTransport.handle_async_request, "__wrapped__")
    assert Agent._instrument_default is False

    token = uuid.uuid4().hex
    response = await committing_client.post(f"/api/v1/tracing-probe/jobs/{token}")
    async with runtime.database.engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT args FROM procrastinate_jobs WHERE id = :id"),
                {"id": response.json()["job_id"]},
            )
        ).scalar_one()
    assert stored == {"token": token}
    await test_jobs.run_jobs([test_jobs.QUEUE])


class _Echo(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:
        self.seen.append({key.lower(): value for key, value in self.headers.items()})
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


async def test_an_outgoing_httpx_call_is_a_client_span_and_passes_traceparent_on(
    spans: InMemorySpanExporter,
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with tracing.span("probe.outgoing") as outer:
            assert outer is not None
            async with httpx.AsyncClient() as http_client:
                response = await http_client.get(
                    f"http://user:pw-secret@127.0.0.1:{server.server_port}/hook/path-secret?token=q-secret"
                )
        assert response.status_code == 204
    finally:
        server.shutdown()
    [client_span] = [
        span
        for span in spans.get_finished_spans()
        if span.kind is SpanKind.CLIENT and "db.system" not in attributes(span)
    ]
    assert client_span.context is not None
    assert client_span.parent is not None
    assert client_span.parent.span_id == outer.get_span_context().span_id
    # opentelemetry-instrumentation-httpx's names (the pre-1.0 HTTP conventions by default).
    found = attributes(client_span)
    assert found.get("http.response.status_code", found.get("http.status_code")) == 204
    # The origin only: a webhook URL's path and query carry its secret.
    assert found.get("url.full", found.get("http.url")) == f"http://127.0.0.1:{server.server_port}"
    recorded = everything_recorded(spans)
    assert "path-secret" not in recorded and "q-secret" not in recorded
    assert "pw-secret" not in repr(found)
    version, trace_id, span_id, flags = _Echo.seen[-1]["traceparent"].split("-")
    assert (version, trace_id, span_id) == (
        "00",
        f"{client_span.context.trace_id:032x}",
        f"{client_span.context.span_id:016x}",
    )
    assert int(flags, 16) & 1  # sampled


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.received.append((self.path, self.headers["content-type"], body))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


EXPORT_SCRIPT = """
from lyceum.config import Settings
from lyceum.kit import tracing
assert tracing.configure(Settings(), role="worker")
with tracing.span("probe.work", {"probe": "yes"}):
    pass
tracing.shutdown()
"""


def test_configured_by_the_setting_it_exports_over_otlp_http_and_flushes_on_shutdown() -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}/",
            "ENVIRONMENT": "test",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "PYTHONPATH": str(REPO_ROOT / "src"),
        }
        subprocess.run(
            [sys.executable, "-c", EXPORT_SCRIPT], env=env, check=True, timeout=60, cwd="/"
        )
    finally:
        server.shutdown()
    [(path, content_type, body)] = _Receiver.received
    assert path == "/v1/traces"
    assert content_type == "application/x-protobuf"
    assert b"probe.work" in body
    assert b"lyceum-worker" in body


async def test_an_outgoing_httpx2_call_records_the_origin_only(
    spans: InMemorySpanExporter,
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        async with httpx2.AsyncClient() as http_client:
            response = await http_client.get(
                f"http://127.0.0.1:{server.server_port}/v1/path-secret?key=q-secret"
            )
        assert response.status_code == 204
    finally:
        server.shutdown()
    [client_span] = [
        span
        for span in spans.get_finished_spans()
        if span.kind is SpanKind.CLIENT and "db.system" not in attributes(span)
    ]
    assert attributes(client_span)["url.full"] == f"http://127.0.0.1:{server.server_port}"
    recorded = everything_recorded(spans)
    assert "path-secret" not in recorded and "q-secret" not in recorded
