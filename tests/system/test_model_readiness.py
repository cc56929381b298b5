"""/health/ready reports the embedding model, which the API server loads in the
background when it starts: loading (still ready: a question waits for it), ready, or
failed (not ready)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx

from lyceum.config import Settings
from lyceum.kit.ai.embedding import Embedder, EmbedderLoader, get_embedder
from lyceum.kit.runtime import Runtime
from tests.conftest import client_for, make_app


async def settled(loader: EmbedderLoader) -> str:
    """The loader's state once its background load has ended (bounded wait)."""
    for _ in range(1200):
        state = loader.status().state
        if state not in ("loading", "idle"):
            return state
        await asyncio.sleep(0.05)
    raise AssertionError("the model load did not end")


async def readiness(settings: Settings, runtime: Runtime, loader: EmbedderLoader) -> httpx.Response:
    app = make_app(settings, runtime, None)
    app.state.embedder_loader = loader
    async with client_for(app) as http:
        return await http.get("/health/ready")


async def test_the_model_is_reported_loading_then_ready(
    settings: Settings, runtime: Runtime
) -> None:
    release = threading.Event()

    def slow_model() -> Embedder:
        release.wait(timeout=60)
        return get_embedder()

    loader = EmbedderLoader(slow_model)
    idle = (await readiness(settings, runtime, loader)).json()["checks"]["embedding_model"]
    assert idle == {"ok": True, "state": "idle", "detail": "not loaded yet; loads on first use"}

    loader.start()
    loading = await readiness(settings, runtime, loader)
    assert loading.status_code == 200 and loading.json()["status"] == "ok"
    check = loading.json()["checks"]["embedding_model"]
    assert check["ok"] is True and check["state"] == "loading"
    assert check["detail"].startswith("loading for ")

    release.set()
    assert await settled(loader) == "ready"
    ready = (await readiness(settings, runtime, loader)).json()["checks"]["embedding_model"]
    assert ready["ok"] is True and ready["state"] == "ready"
    assert ready["detail"].startswith("loaded in ")
    assert loader.get() is get_embedder()


async def test_a_model_that_fails_to_load_makes_the_server_not_ready(
    settings: Settings, runtime: Runtime, tmp_path: Path
) -> None:
    loader = EmbedderLoader(lambda: Embedder(tmp_path / "no-model-here"))
    loader.start()
    assert await settled(loader) == "failed"
    response = await readiness(settings, runtime, loader)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert "embedding_model" in body["detail"]
    check = body["checks"]["embedding_model"]
    assert check["ok"] is False and check["state"] == "failed" and check["detail"]
    assert body["checks"]["database"]["ok"] is True


async def test_the_app_checks_the_process_wide_model(client: httpx.AsyncClient) -> None:
    check = (await client.get("/health/ready")).json()["checks"]["embedding_model"]
    assert check["state"] in {"idle", "loading", "ready"} and check["ok"] is True
