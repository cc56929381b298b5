"""A real uvicorn server in this process (on a free port, one per xdist worker) serving
the app on committed data, for the Socket.IO tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from lyceum.config import Settings
from lyceum.kit.runtime import Runtime
from tests.chat.helpers import ChatClient, Live
from tests.conftest import client_for, make_app
from tests.support.clock import FrozenClock
from tests.support.servers import free_port


@dataclass
class ChatServer:
    url: str
    app: FastAPI
    http: httpx.AsyncClient
    clock: FrozenClock


@pytest.fixture(scope="session")
async def chat_server(settings: Settings, runtime: Runtime) -> AsyncIterator[ChatServer]:
    app = make_app(settings, runtime, None)
    clock = FrozenClock()
    app.state.clock = clock
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, log_level="warning", lifespan="on"
        )
    )
    serving = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or serving.done():
            break
        await asyncio.sleep(0.02)
    assert server.started, "uvicorn did not start"
    async with client_for(app) as http:
        yield ChatServer(f"http://127.0.0.1:{port}", app, http, clock)
    server.should_exit = True
    await serving


@pytest.fixture
async def live(chat_server: ChatServer, runtime: Runtime) -> AsyncIterator[Live]:
    await runtime.rate_limiter.reset()
    world = Live(chat_server.url, chat_server.http, runtime, chat_server.clock)
    yield world
    await world.cleanup()


Connect = Callable[..., Awaitable[ChatClient]]


@pytest.fixture
async def connect(chat_server: ChatServer) -> AsyncIterator[Connect]:
    """`await connect(token)`: a connected client, disconnected after the test."""
    clients: list[ChatClient] = []

    async def open_client(token: str | None, url: str | None = None) -> ChatClient:
        client = ChatClient()
        clients.append(client)
        await client.connect(url or chat_server.url, token)
        return client

    yield open_client
    for client in clients:
        await client.close()
