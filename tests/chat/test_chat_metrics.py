"""The chat's Prometheus metrics follow real sockets: the open-socket gauge, messages
delivered and rejected, and the delivery latency."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.chat.conftest import Connect
from tests.chat.helpers import Live
from tests.support.metrics import sample


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(250):  # 5 s
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the metric did not move")


async def test_sockets_messages_and_delivery_latency_are_counted(
    live: Live, connect: Connect
) -> None:
    sockets = sample("lyceum_chat_sockets")
    delivered = sample("lyceum_chat_messages_total", outcome="delivered")
    rejected = sample("lyceum_chat_messages_total", outcome="rejected")
    latencies = sample("lyceum_chat_delivery_seconds_count")

    course_id, _, [ada, bob] = await live.classroom(2)
    ada_client = await connect(ada.token)
    bob_client = await connect(bob.token)
    await _until(lambda: sample("lyceum_chat_sockets") == sockets + 2)
    room_id = (await ada_client.join(course_id=course_id))["room"]["id"]
    await bob_client.join(course_id=course_id)

    answer = await ada_client.send(room_id, "Hello, class!", client_id="metrics-1")
    assert answer["ok"] is True
    assert sample("lyceum_chat_messages_total", outcome="delivered") == delivered + 1
    assert sample("lyceum_chat_delivery_seconds_count") == latencies + 1
    assert sample("lyceum_chat_delivery_seconds_sum") > 0

    # An empty message is refused: counted as rejected, not delivered, not timed.
    refused = await ada_client.send(room_id, "   ", client_id="metrics-2")
    assert refused["ok"] is False
    assert sample("lyceum_chat_messages_total", outcome="rejected") == rejected + 1
    assert sample("lyceum_chat_messages_total", outcome="delivered") == delivered + 1
    assert sample("lyceum_chat_delivery_seconds_count") == latencies + 1

    await bob_client.close()
    await _until(lambda: sample("lyceum_chat_sockets") == sockets + 1)
    await ada_client.close()
    await _until(lambda: sample("lyceum_chat_sockets") == sockets)
