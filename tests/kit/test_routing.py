"""`kit.routing.Router`: it may only turn a path away earlier, never change which route
answers; and every API router of the app is one (or the gate does not apply)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from starlette.routing import Match

from lyceum.app import create_app
from lyceum.config import Settings
from lyceum.kit.routing import Router
from tests.support.authorization import routes_of


def small_app() -> FastAPI:
    inner = Router()

    @inner.get("/grades/{grade_id}")
    async def grade(grade_id: int) -> dict[str, int]:
        return {"grade": grade_id}

    outer = Router(prefix="/rooms")

    @outer.get("/{room_id}/messages")
    async def messages(room_id: str) -> dict[str, str]:
        return {"room": room_id}

    outer.include_router(inner, prefix="/nested")
    catch_all = Router()

    @catch_all.get("/{anything}")
    async def anything(anything: str) -> dict[str, str]:
        return {"anything": anything}

    app = FastAPI()
    app.include_router(outer, prefix="/api")
    app.include_router(catch_all, prefix="/api")
    return app


async def test_the_gate_only_ever_says_no_earlier() -> None:
    app = small_app()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        assert (await client.get("/api/rooms/r1/messages")).json() == {"room": "r1"}
        assert (await client.get("/api/rooms/nested/grades/7")).json() == {"grade": 7}
        # Not a path of `outer`: turned away by its heads, answered by the catch-all.
        assert (await client.get("/api/lobby")).json() == {"anything": "lobby"}
        assert (await client.get("/elsewhere/x")).status_code == 404


def test_heads_of_nested_routers_and_a_root_route_disables_the_gate() -> None:
    outer = Router(prefix="/rooms")

    @outer.get("/{room_id}")
    async def room(room_id: str) -> None:
        return None

    inner = Router()

    @inner.get("/grades")
    async def grades() -> None:
        return None

    outer.include_router(inner)
    assert outer._literal_heads() == ("/grades", "/rooms/")
    scope = {"type": "http", "path": "/api/v1/courses", "method": "GET", "root_path": ""}
    assert outer.matches(scope) == (Match.NONE, {})

    root = Router()

    @root.get("/{slug}")
    async def page(slug: str) -> None:
        return None

    assert root._literal_heads() is None


def test_every_api_route_of_the_app_is_on_a_gated_router() -> None:
    app = create_app(Settings())
    api_routes = [route for route in routes_of(app) if route.path_format.startswith("/api/")]
    assert api_routes
    gated = 0
    for included in app.router.routes:
        router = getattr(included, "original_router", None)
        if router is None or not any(
            route.path_format.startswith("/api/") for route in routes_of([included])
        ):
            continue
        assert isinstance(router, Router), router
        gated += 1
    assert gated >= 9  # auth, users, courses, lessons, learning, content, tutor, ...


def test_routes_added_to_the_app_document_as_the_included_router_did() -> None:
    from lyceum.kit.errors import PROBLEM_RESPONSES
    from lyceum.kit.routing import add_to_app
    from lyceum.system.endpoints import router as system_router

    included, added = FastAPI(), FastAPI()
    included.include_router(system_router, responses=PROBLEM_RESPONSES)
    add_to_app(added, system_router, responses=PROBLEM_RESPONSES)
    assert added.openapi()["paths"] == included.openapi()["paths"]
    assert added.openapi()["paths"]  # the probes are documented at all
