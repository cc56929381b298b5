from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


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
    status: Literal["ok", "unavailable"]
    checks: dict[str, CheckResult] = Field(
        description="Each dependency checked: `database`, `migrations`, `redis` when "
        "REDIS_URL is set, and `embedding_model`."
    )
