"""A notification written by a standalone worker (a process without sockets) reaches
the user's socket on an API process through Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from lyceum.chat.transport import redis_relay
from lyceum.kit import live as live_pushes
from lyceum.kit.runtime import Runtime
from tests.chat.conftest import Connect, chat_server, connect, live  # noqa: F401 (fixtures)
from tests.chat.helpers import Live
from tests.chat.test_scale_out import fresh_token
from tests.conftest import TEST_SECRET
from tests.notifications.test_live import tell
from tests.support.servers import free_port, start_lyceum, stop, wait_until_healthy

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def api_process(
    redis_url: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("relay")
    env = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": TEST_SECRET,
        "LYCEUM_DATA_DIR": str(data_dir),
        "LOG_LEVEL": "WARNING",
    }
    port = free_port()
    log = data_dir / "api.log"
    process = start_lyceum(env, port, log)
    try:
        try:
            wait_until_healthy(f"http://127.0.0.1:{port}", "/health/live", 90, process)
        except Exception:
            print(Path(log).read_text())
            raise
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


async def test_a_workers_notification_reaches_a_socket_on_an_api_process(
    live: Live,  # noqa: F811
    connect: Connect,  # noqa: F811
    runtime: Runtime,
    redis_url: str,
    api_process: str,
) -> None:
    learner = await live.member(name="Ada Learner")
    other = await live.member(name="Bob Learner")
    mine = await connect(fresh_token(live, learner), url=api_process)
    theirs = await connect(fresh_token(live, other), url=api_process)

    # What `lyceum worker` registers when REDIS_URL is set.
    stop_relaying = live_pushes.register(redis_relay(redis_url))
    try:
        await tell(runtime, learner.id, "Graded by a worker")
    finally:
        stop_relaying()

    event = await asyncio.wait_for(mine.received["notification"].get(), 10)
    assert event["title"] == "Graded by a worker"
    await asyncio.sleep(0.3)
    assert theirs.received["notification"].empty()
