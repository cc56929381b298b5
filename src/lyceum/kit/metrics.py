"""Prometheus metrics: HTTP traffic, DB pool usage and jobs by state.

Pool and job gauges are read when `/metrics` is scraped, not on every request.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
