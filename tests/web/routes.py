"""The web app's route table (shared by the API's matrix, which leaves these out, and
the web app's own)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from lyceum.web.routes import ROUTERS


def web_routes() -> list[BaseRoute]:
    return [route for router in ROUTERS for route in router.routes]
