from __future__ import annotations

from typing import Literal

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
