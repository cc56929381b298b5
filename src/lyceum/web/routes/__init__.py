"""The web app's pages, one router per area (each module owns its templates folder
under `templates/web/`)."""

from __future__ import annotations

from fastapi import APIRouter

from lyceum.web.routes import account, admin, learn, live, public, teach

ROUTERS: tuple[APIRouter, ...] = (
    public.router,
    account.router,
    learn.router,
    teach.router,
    live.router,
    admin.router,
)
