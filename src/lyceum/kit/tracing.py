"""OpenTelemetry tracing, on when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (docs/operations.md,
"Tracing"): spans for requests, SQL, outgoing HTTP, jobs and model calls, sent in batches
over OTLP/HTTP.

Off (the default) it costs nothing: no middleware layer, no engine event listener, no
patched httpx transport, no pydantic-ai instrumentation; what remains is one check of a
module global where a job is deferred, and where a job starts one dict lookup that drops
the trace context a traced process may have put in it.

- requests: `TracingMiddleware`, a pure-ASGI layer just inside the request context (so
  it sees the request id and the 500 answer), a SERVER span named by the route template,
  continuing an incoming W3C `traceparent`;
- SQL: CLIENT spans from SQLAlchemy's cursor events on each engine (`instrument_engine`),
  the statement text with its placeholders, never the parameters;
- outgoing HTTP: opentelemetry-instrumentation-httpx on every httpx transport (webhooks,
  payment providers, the AI providers' SDKs), which injects `traceparent`;
- jobs: `defer` stores the W3C trace context in the job's arguments under `TRACE_KEY`;
  the worker middleware `job_middleware` takes it out again and runs the job in a CONSUMER
  span that is a *child* of the span that deferred it (see docs/operations.md for why);
- model calls (the GenAI semantic conventions: `gen_ai.request.model`,
  `gen_ai.usage.input_tokens` / `output_tokens`, ...), without the prompts and answers
  (learners' questions are personal data): the tutor's streamed requests from
  `tutor.llm` (`tracer()`), the agents' (catalog advisor, essay scoring) from
  pydantic-ai's own instrumentation; `span()` for Lyceum's own spans such as
  `tutor.answer`.
"""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import fastapi.routing
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.textmap import DefaultGetter
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy import event
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lyceum import __version__

# FastAPI >= 0.160 keeps the full template of the matched route in its scope; a private
# helper reads it, looked up so that an older or newer FastAPI falls back to scope["route"].
_effective_route: Callable[[Scope], Any] | None = getattr(
    fastapi.routing, "_get_scope_effective_route_context", None
)

if TYPE_CHECKING:
    # The SDK is imported when tracing is turned on: a process that does not trace does
    # not pay for importing it (about 0.1 s).
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.sampling import Sampler
    from sqlalchemy.ext.asyncio import AsyncEngine

    from lyceum.config import Settings

# The job argument that carries the W3C trace context of the span that deferred the job.
TRACE_KEY = "lyceum_trace"
# Traces exported per batch, and how long the batch processor waits to fill one.
EXPORT_BATCH_SIZE = 512
EXPORT_DELAY_MILLIS = 2000

DEFAULT_SERVICE_NAMES = {"api": "lyceum-api", "worker": "lyceum-worker"}

_PROPAGATOR = TraceContextTextMapPropagator()
_GETTER: DefaultGetter = DefaultGetter()
_INSTRUMENTATION = "lyceum"


@dataclass
class _Tracing:
    provider: TracerProvider
    tracer: trace.Tracer
    engines: list[Any] = field(default_factory=list)


_active: _Tracing | None = None


def enabled() -> bool:
    """Whether this process traces (`configure` or `install` ran, `shutdown` did not)."""
    return _active is not None


def configure(settings: Settings, *, role: str) -> bool:
    """Turn tracing on for this process when `OTEL_EXPORTER_OTLP_ENDPOINT` is set: spans
    are batched and sent over OTLP/HTTP. `role` is `api` or `worker` (the default
    service name, and the `lyceum.process.role` resource attribute). Returns whether
    tracing is on. A second call in the same process changes nothing."""
    if settings.otel_exporter_otlp_endpoint is None:
        return False
    if _active is not None:
        return True
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    endpoint = str(settings.otel_exporter_otlp_endpoint).rstrip("/") + "/v1/traces"
    resource = Resource.create(
        {
            "service.name": settings.otel_service_name or DEFAULT_SERVICE_NAMES.get(role, role),
            "service.version": __version__,
            "service.instance.id": f"{socket.gethostname()}:{os.getpid()}",
            "deployment.environment.name": settings.environment.value,
            "lyceum.process.role": role,
        }
    )
    provider = TracerProvider(resource=resource, sampler=sampler(settings.otel_sample_ratio))
    provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint=endpoint),
            max_export_batch_size=EXPORT_BATCH_SIZE,
            schedule_delay_millis=EXPORT_DELAY_MILLIS,
        )
    )
    # Libraries that look the provider up themselves find this one.
    trace.set_tracer_provider(provider)
    install(provider)
    return True


def sampler(ratio: float) -> Sampler:
    """`ratio` of the traces, by trace id, whoever started them. A caller's `traceparent`
    is not trusted to decide: its sampled flag is ignored (a remote parent, sampled or
    not, is sampled by the same ratio of its trace id), so a client cannot force its
    requests into the trace backend with the flag. A job's parent is remote too (its
    context comes from the job's arguments): same trace id, same ratio, so it gets the
    decision of the span that deferred it. Local parents are followed."""
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    by_ratio = TraceIdRatioBased(ratio)
    return ParentBased(
        root=by_ratio, remote_parent_sampled=by_ratio, remote_parent_not_sampled=by_ratio
    )


def install_exporter(
    exporter: SpanExporter, *, service_name: str = "lyceum-test", sample_ratio: float = 1.0
) -> TracerProvider:
    """Tracing on with an explicit exporter (tests: an InMemorySpanExporter), each span
    exported as it ends, sampled as `configure` does. Not set as the global provider:
    `shutdown` undoes it all."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}), sampler=sampler(sample_ratio)
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    install(provider)
    return provider


def install(provider: TracerProvider) -> None:
    """Trace with `provider`: outgoing httpx calls and pydantic-ai agents are
    instrumented from now on; engines with `instrument_engine`, apps when they build
    their middleware stack."""
    global _active
    if _active is not None:
        shutdown()
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from pydantic_ai import Agent
    from pydantic_ai.models.instrumented import InstrumentationSettings

    _active = _Tracing(provider=provider, tracer=provider.get_tracer(_INSTRUMENTATION, __version__))
    HTTPXClientInstrumentor().instrument(
        tracer_provider=provider,
        request_hook=_origin_only_hook,
        async_request_hook=_async_origin_only_hook,
    )
    _instrument_sdk_transports(_active.tracer)
    Agent.instrument_all(InstrumentationSettings(tracer_provider=provider, include_content=False))


def shutdown() -> None:
    """Send the spans still buffered and turn tracing off again (process exit, tests)."""
    global _active
    state, _active = _active, None
    if state is None:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from pydantic_ai import Agent

    for sync_engine in state.engines:
        _remove_listeners(sync_engine)
    HTTPXClientInstrumentor().uninstrument()
    _uninstrument_sdk_transports()
    Agent.instrument_all(False)
    state.provider.shutdown()  # flushes the batch processor


def tracer() -> trace.Tracer | None:
    return _active.tracer if _active is not None else None


@contextmanager
def span(
    name: str, attributes: Mapping[str, str | int | float | bool] | None = None
) -> Iterator[trace.Span | None]:
    """A span of Lyceum's own around a block, current inside it (None when tracing is
    off: the block then runs as it would without it)."""
    if _active is None:
        yield None
        return
    with _active.tracer.start_as_current_span(
        name, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as current:
        try:
            yield current
        except BaseException as error:
            mark_error(current, error)
            raise


def mark_error(current: trace.Span, error: BaseException) -> None:
    """Status ERROR with the exception's class, and its class in `exception.type`: never
    its message or traceback, which carry data (psycopg's DETAIL `Key (email)=(...)`,
    SQLAlchemy's `[parameters: ...]`, a provider's echo of a prompt)."""
    kind = type(error)
    current.set_status(Status(StatusCode.ERROR, kind.__name__))
    qualified = kind.__qualname__
    if kind.__module__ not in ("builtins", "__main__"):
        qualified = f"{kind.__module__}.{qualified}"
    current.set_attribute("exception.type", qualified)


# Requests --------------------------------------------------------------------------


def route_template(scope: Scope) -> str | None:
    """The matched route's full template (`/api/v1/courses/{course_id}`). FastAPI keeps
    included routers' routes under their own paths (`/courses/{course_id:uuid}`) and
    records the effective one, prefix included, in its scope; Starlette routes (mounts,
    pages) carry theirs in `scope["route"]`."""
    effective = _effective_route(scope) if _effective_route is not None else None
    template = getattr(effective, "path_format", None)
    if template:
        return str(template)
    route: Any = scope.get("route")
    found = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(found) if found else None


def _carrier(scope: Scope) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in scope["headers"]:
        # A client's `tracestate` is never taken: it would ride along on every
        # outgoing call and job of the request (docs/operations.md, "Tracing").
        if key == b"traceparent":
            found["traceparent"] = value.decode("latin-1")
    return found


class TracingMiddleware:
    """A SERVER span per HTTP request, current while the app handles it: named
    `METHOD /route/{template}`, with the request id, the route template and the status.
    An incoming `traceparent` makes it the child of the caller's span."""

    def __init__(self, app: ASGIApp, *, tracer: trace.Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        carrier = _carrier(scope)
        parent = _PROPAGATOR.extract(carrier) if carrier else None
        request_span = self.tracer.start_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.path": scope["path"],
                "url.scheme": scope.get("scheme", "http"),
                "lyceum.request_id": scope.get("state", {}).get("request_id", ""),
            },
        )
        status = 500
        failed = False

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        token = otel_context.attach(trace.set_span_in_context(request_span))
        try:
            await self.app(scope, receive, send_status)
        except BaseException as error:
            failed = True
            mark_error(request_span, error)
            raise
        finally:
            otel_context.detach(token)
            template = route_template(scope)
            if template:
                request_span.update_name(f"{method} {template}")
                request_span.set_attribute("http.route", template)
            request_span.set_attribute("http.response.status_code", status)
            if status >= 500 and not failed:
                request_span.set_status(Status(StatusCode.ERROR))
            request_span.end()


def wrap_app(app: ASGIApp) -> ASGIApp:
    """`app` inside a `TracingMiddleware` when tracing is on; `app` itself when off."""
    if _active is None:
        return app
    return TracingMiddleware(app, tracer=_active.tracer)


# The AI providers' SDKs (anthropic, openai) send over httpx2, a fork of httpx that
# opentelemetry-instrumentation-httpx does not know: the same CLIENT span and injected
# `traceparent`, on its async transport and on the aiohttp transport each SDK vendors
# (`DefaultAioHttpClient`, which the tutor's streamed answers use).

_SDK_TRANSPORTS = (
    ("httpx2", "AsyncHTTPTransport"),
    ("anthropic._vendor.httpx_aiohttp.transport", "AiohttpTransport"),
    ("openai._vendor.httpx_aiohttp.transport", "AiohttpTransport"),
)


def _sdk_transports() -> list[Any]:
    found = []
    for module, name in _SDK_TRANSPORTS:
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):  # pragma: no cover - an SDK without it
            continue
    return found


def _instrument_sdk_transports(tracer: trace.Tracer) -> None:
    for transport in _sdk_transports():
        _instrument_transport(transport, tracer)


def _instrument_transport(transport: Any, tracer: trace.Tracer) -> None:
    if hasattr(transport.handle_async_request, "__wrapped__"):
        return
    original = transport.handle_async_request

    async def handle_async_request(self: Any, request: Any) -> Any:
        url = request.url
        with tracer.start_as_current_span(
            request.method,
            kind=SpanKind.CLIENT,
            record_exception=False,
            set_status_on_exception=False,
            attributes={
                "http.request.method": request.method,
                "url.full": _origin(url.scheme, url.host, url.port),
                "server.address": url.host,
                "server.port": url.port or (443 if url.scheme == "https" else 80),
            },
        ) as current:
            _PROPAGATOR.inject(request.headers)
            try:
                response = await original(self, request)
            except BaseException as error:
                mark_error(current, error)
                raise
            current.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 400:
                current.set_status(Status(StatusCode.ERROR))
            return response

    handle_async_request.__wrapped__ = original  # type: ignore[attr-defined]  # undone by shutdown
    transport.handle_async_request = handle_async_request


def _origin(scheme: str, host: str, port: int | None) -> str:
    """`scheme://host:port`: all an outgoing span records of a URL. The path and query
    are left out (a webhook URL carries its secret in either), and so are credentials."""
    if port is None:
        port = 443 if scheme == "https" else 80
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def _origin_only_hook(current: trace.Span, request: Any) -> None:
    """opentelemetry-instrumentation-httpx's request hook: replaces the recorded URL
    (`http.url`, or `url.full` with the stable conventions) by its origin."""
    url = request.url if hasattr(request, "url") else request[1]
    if isinstance(url, tuple):  # httpx's raw (scheme, host, port, target) form
        scheme, host, port = (
            part.decode() if isinstance(part, bytes) else part for part in url[:3]
        )
    else:
        scheme, host, port = url.scheme, url.host, url.port
    origin = _origin(str(scheme), str(host), int(port) if port else None)
    recorded = getattr(current, "attributes", None) or {}
    for key in ("http.url", "url.full"):
        if key in recorded:
            current.set_attribute(key, origin)


async def _async_origin_only_hook(current: trace.Span, request: Any) -> None:
    _origin_only_hook(current, request)


def _uninstrument_sdk_transports() -> None:
    for transport in _sdk_transports():
        original = getattr(transport.handle_async_request, "__wrapped__", None)
        if original is not None:
            transport.handle_async_request = original


# SQL -------------------------------------------------------------------------------


def _sql_attributes(statement: str, url: Any) -> tuple[str, dict[str, Any]]:
    """The span name and attributes of one SQL statement (the database semantic
    conventions), the same whether SQLAlchemy or `kit.db.driver_execute` sent it."""
    operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
    return operation, {
        "db.system": "postgresql",
        "db.system.name": "postgresql",
        "db.operation.name": operation,
        "db.query.text": statement,
        "db.namespace": url.database or "",
        "server.address": url.host or "",
        "server.port": url.port or 5432,
    }


def _before_cursor_execute(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    state = _active
    if state is None or context is None:
        return
    name, attributes = _sql_attributes(statement, conn.engine.url)
    context._lyceum_span = state.tracer.start_span(
        name, kind=SpanKind.CLIENT, attributes=attributes
    )


@contextmanager
def sql_span(statement: str, url: Any) -> Iterator[None]:
    """The span of a statement sent on a driver connection directly (`kit.db.driver_execute`),
    as `_before_cursor_execute` makes one for every statement SQLAlchemy sends; `url` is
    the engine's (`sqlalchemy.engine.URL`)."""
    state = _active
    if state is None:
        yield
        return
    name, attributes = _sql_attributes(statement, url)
    with state.tracer.start_as_current_span(
        name,
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield
        except BaseException as error:
            mark_error(current, error)
            raise


def _after_cursor_execute(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    current = getattr(context, "_lyceum_span", None)
    if current is not None:
        context._lyceum_span = None
        current.end()


def _handle_error(exception_context: Any) -> None:
    context = exception_context.execution_context
    current = getattr(context, "_lyceum_span", None)
    if current is not None:
        context._lyceum_span = None
        # The class only: psycopg's message has the DETAIL with the offending value.
        mark_error(current, exception_context.original_exception)
        current.end()


_LISTENERS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("before_cursor_execute", _before_cursor_execute),
    ("after_cursor_execute", _after_cursor_execute),
    ("handle_error", _handle_error),
)


def instrument_engine(engine: AsyncEngine) -> bool:
    """SQL spans for every statement `engine` runs, when tracing is on."""
    if _active is None:
        return False
    sync_engine = engine.sync_engine
    if not event.contains(sync_engine, "before_cursor_execute", _before_cursor_execute):
        for name, listener in _LISTENERS:
            event.listen(sync_engine, name, listener)
        _active.engines.append(sync_engine)
    return True


def _remove_listeners(sync_engine: Any) -> None:
    for name, listener in _LISTENERS:
        if event.contains(sync_engine, name, listener):
            event.remove(sync_engine, name, listener)


def engine_is_traced(engine: AsyncEngine) -> bool:
    return any(event.contains(engine.sync_engine, name, fn) for name, fn in _LISTENERS)


# Jobs ------------------------------------------------------------------------------


def job_trace_context() -> dict[str, str] | None:
    """The W3C trace context of the current span, to store in a job being deferred
    (None when tracing is off or no span is current)."""
    if _active is None:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier or None


async def job_middleware(call_next: Callable[[], Awaitable[Any]], context: Any, worker: Any) -> Any:
    """Worker middleware: take the trace context out of the job's arguments (always, so
    a job deferred by a traced process runs on an untraced worker too) and, when tracing
    is on, run the job in a CONSUMER span, the child of the span that deferred it."""
    job = context.job
    carrier = job.task_kwargs.pop(TRACE_KEY, None) if job is not None else None
    state = _active
    if state is None or job is None:
        return await call_next()
    parent = _PROPAGATOR.extract(carrier, getter=_GETTER) if isinstance(carrier, Mapping) else None
    with state.tracer.start_as_current_span(
        f"run {job.task_name}",
        context=parent,
        kind=SpanKind.CONSUMER,
        record_exception=False,
        set_status_on_exception=False,
        attributes={
            "messaging.system": "procrastinate",
            "messaging.operation.type": "process",
            "messaging.destination.name": job.queue,
            "messaging.message.id": str(job.id),
            "lyceum.job.task": job.task_name,
            "lyceum.job.attempt": job.attempts,
        },
    ) as current:
        try:
            return await call_next()
        except BaseException as error:
            mark_error(current, error)
            raise


__all__ = [
    "TRACE_KEY",
    "TracingMiddleware",
    "configure",
    "enabled",
    "engine_is_traced",
    "install",
    "install_exporter",
    "instrument_engine",
    "job_middleware",
    "job_trace_context",
    "mark_error",
    "sampler",
    "shutdown",
    "span",
    "tracer",
    "wrap_app",
]
