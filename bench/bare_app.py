"""The baseline: a bare FastAPI app with one JSON endpoint and no middleware.

Run by the harness as `python -m uvicorn bench.bare_app:app` from the repository root.
"""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI(title="bare", openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}
