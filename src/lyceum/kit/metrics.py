"""Prometheus metrics: HTTP traffic, DB pool usage, jobs, the AI provider, chat, payments
and webhooks.

Pool and job gauges are read when `/metrics` is scraped, not on every request.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "lyceum_http_requests_total",
    "HTTP requests by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "lyceum_http_request_duration_seconds",
    "HTTP request latency by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
EVENT_LOOP_LAG = Histogram(
    "lyceum_event_loop_lag_seconds",
    "How late this process's event loop woke a timer due now: the time every request "
    "and job of the process waits behind work already running (kit.looplag).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
DB_POOL = Gauge(
    "lyceum_db_pool_connections",
    "SQLAlchemy pool connections of this process by state.",
    ["state"],
    registry=REGISTRY,
)
JOBS = Gauge(
    "lyceum_jobs",
    "Background jobs by queue and status (todo, doing, succeeded, failed, cancelled, aborted).",
    ["queue", "status"],
    registry=REGISTRY,
)
JOB_OLDEST_WAITING = Gauge(
    "lyceum_job_oldest_waiting_seconds",
    "Per queue, how long its oldest job that could run now has waited (0: none waits).",
    ["queue"],
    registry=REGISTRY,
)

# --- Jobs, as the worker process that runs them sees them (its own /metrics port). ---
JOB_RUNS = Counter(
    "lyceum_job_runs_total",
    "Job attempts finished by queue, task and outcome (succeeded, failed, retried, aborted).",
    ["queue", "task", "outcome"],
    registry=REGISTRY,
)
JOB_DURATION = Histogram(
    "lyceum_job_duration_seconds",
    "Time a job attempt ran, by queue and task.",
    ["queue", "task"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
    registry=REGISTRY,
)

# --- The AI provider (tutor answers and essay scoring). ---
PASSWORD_HASH_REJECTED = Counter(
    "lyceum_password_hash_rejected_total",
    "Password hashes refused by the admission gate, by reason: queue (the queue was"
    " full on arrival) or wait (the wait for a hashing thread passed its bound).",
    ["reason"],
    registry=REGISTRY,
)
TUTOR_ANSWERS = Counter(
    "lyceum_tutor_answers_total",
    "Tutor answers by provider, model and outcome (answered, cached, offline, error).",
    ["provider", "model", "outcome"],
    registry=REGISTRY,
)
AI_TOKENS = Counter(
    "lyceum_ai_tokens_total",
    "Model tokens by provider, model, feature (tutor, scoring) and direction (input, output).",
    ["provider", "model", "feature", "direction"],
    registry=REGISTRY,
)
AI_COST = Counter(
    "lyceum_ai_cost_usd_total",
    "Estimated model cost in US dollars by provider, model and feature.",
    ["provider", "model", "feature"],
    registry=REGISTRY,
)
TUTOR_FIRST_TOKEN = Histogram(
    "lyceum_tutor_first_token_seconds",
    "Time from a learner's question to the first streamed token of the answer.",
    ["provider"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0),
    registry=REGISTRY,
)
AI_PROVIDER_ERRORS = Counter(
    "lyceum_ai_provider_errors_total",
    "Failed calls to the AI provider by provider, feature and kind (timeout, rate_limited, "
    "server, other).",
    ["provider", "feature", "kind"],
    registry=REGISTRY,
)

# --- Chat (Socket.IO) in this API process. ---
CHAT_SOCKETS = Gauge(
    "lyceum_chat_sockets",
    "Socket.IO connections open on this process.",
    registry=REGISTRY,
)
CHAT_MESSAGES = Counter(
    "lyceum_chat_messages_total",
    "Chat messages received by this process by outcome (delivered, rejected).",
    ["outcome"],
    registry=REGISTRY,
)
CHAT_DELIVERY = Histogram(
    "lyceum_chat_delivery_seconds",
    "Time from receiving a chat message to handing it to the room's sockets.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
    registry=REGISTRY,
)

# --- Notifications. ---
NOTIFICATIONS = Counter(
    "lyceum_notifications_total",
    "Notifications written (one per recipient, in-app row), by category; counted as "
    "they are written, in the transaction that writes them.",
    ["category"],
    registry=REGISTRY,
)

# --- Payments and webhooks. ---
PAYMENTS = Counter(
    "lyceum_payments_total",
    "Payment events by provider and outcome (checkout_started, paid, failed, refunded).",
    ["provider", "outcome"],
    registry=REGISTRY,
)
PAYMENT_NOTIFICATIONS = Counter(
    "lyceum_payment_notifications_total",
    "Provider callbacks (webhooks) received by provider and outcome (accepted, rejected).",
    ["provider", "outcome"],
    registry=REGISTRY,
)
PAYMENT_PROVIDER_ERRORS = Counter(
    "lyceum_payment_provider_errors_total",
    "Failed calls to a payment provider's API by provider.",
    ["provider"],
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "lyceum_webhook_deliveries_total",
    "Outgoing webhook delivery attempts by outcome (delivered, failed).",
    ["outcome"],
    registry=REGISTRY,
)
WEBHOOK_DELIVERY_DURATION = Histogram(
    "lyceum_webhook_delivery_seconds",
    "Time an outgoing webhook delivery attempt took.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
WEBHOOK_ENDPOINTS_DISABLED = Gauge(
    "lyceum_webhook_endpoints_disabled",
    "Webhook endpoints Lyceum disabled after repeated failures (read when scraped).",
    registry=REGISTRY,
)


def serve_metrics(port: int, host: str = "0.0.0.0") -> tuple[int, Callable[[], None]]:  # noqa: S104 (scraped from other hosts)
    """Serve REGISTRY at http://host:port/metrics on a thread of its own (a worker has
    no HTTP server). Returns the port listened on (`port` 0 picks a free one) and the
    function that stops serving."""
    server, thread = start_http_server(port, addr=host, registry=REGISTRY)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return int(server.server_port), stop
