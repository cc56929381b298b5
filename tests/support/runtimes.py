"""An app (and the jobs a test runs) under other settings for one test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI

from lyceum.kit.runtime import Runtime
from tests.support.jobs import with_settings


@contextmanager
def settings_changed(app: FastAPI, runtime: Runtime, **changes: Any) -> Iterator[Runtime]:
    """Requests to `app` see a runtime whose settings have `changes` (run jobs with the
    runtime this yields); the sandbox processes that runtime starts are stopped after."""
    changed = with_settings(runtime, **changes)
    previous = app.state.runtime
    app.state.runtime = changed
    try:
        yield changed
    finally:
        app.state.runtime = previous
        if "sandbox" in changed.__dict__:
            changed.sandbox.close()
