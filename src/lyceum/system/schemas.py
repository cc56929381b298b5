from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from lyceum.kit.errors import Problem


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class CheckResult(BaseModel):
    ok: bool
    state: str | None = Field(
        default=None,
        description="For checks with more than two states: the embedding model is "
        "`idle`, `loading`, `ready` or `failed`.",
    )
    detail: str | None = None


class Readiness(BaseModel):
    status: Literal["ok"] = "ok"
    checks: dict[str, CheckResult] = Field(
        description="Each dependency checked: `database`, `migrations`, `redis` when "
        "REDIS_URL is set, and `embedding_model`."
    )


class NotReady(Problem):
    """The readiness problem (503): which dependency failed, and why."""

    checks: dict[str, CheckResult]


# Job operations (admins) ----------------------------------------------------------------


class JobCounts(BaseModel):
    todo: int = Field(description="Waiting to run (including retries scheduled for later).")
    doing: int = Field(description="Running on a worker now.")
    succeeded: int
    failed: int = Field(description="Failed with no retry left.")
    cancelled: int
    aborted: int


class QueueOut(BaseModel):
    queue: str
    counts: JobCounts
    oldest_waiting_seconds: float = Field(
        description="How long the oldest job that could run now has waited (0 when none "
        "waits; a retry scheduled for later is not waiting yet)."
    )


class JobSummaryOut(BaseModel):
    id: int
    task: str
    queue: str
    status: str = Field(description="todo, doing, succeeded, failed, cancelled or aborted.")
    attempts: int = Field(description="Runs started so far.")
    error: str | None = Field(description="The exception of the last failed attempt.")
    finished_at: datetime | None


class JobFailureOut(BaseModel):
    attempt: int
    error: str
    traceback: str | None
    failed_at: datetime


class JobOut(JobSummaryOut):
    priority: int
    args: dict[str, Any] = Field(description="The task's arguments (ids, never secrets).")
    lock: str | None
    queueing_lock: str | None
    deferred_at: datetime | None
    scheduled_at: datetime | None = Field(description="Not before this time (retries, delays).")
    failures: list[JobFailureOut] = Field(description="Every failed attempt, oldest first.")
