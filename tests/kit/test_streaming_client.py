"""The tutor's streaming client (`kit.ai.models.streaming_client`): answers stream over
the provider SDK's own aiohttp transport, with one client per event loop (an aiohttp
session belongs to the loop it was first used on), closed when the runtime stops."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
from pydantic import AnyHttpUrl, SecretStr

from lyceum.config import AIProvider, Settings
from lyceum.kit.ai.models import (
    ModelChoice,
    choose_model,
    close_streaming_clients,
    streaming_client,
)
from lyceum.tutor import llm
from tests.support.fake_llm import FakeLLM, NoTutorTools, fake_llm_server

PROVIDERS = [AIProvider.claude, AIProvider.openai]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    with fake_llm_server() as server:
        yield server


def choice_on(fake: FakeLLM, provider: AIProvider, timeout: float = 60.0) -> ModelChoice:
    base = fake.base_url if provider is AIProvider.claude else fake.openai_base_url
    return choose_model(
        Settings(
            ai_provider=provider,
            ai_api_key=SecretStr("test-key"),
            ai_base_url=AnyHttpUrl(base),
            ai_max_retries=0,
            ai_timeout_seconds=timeout,
        )
    )


async def answer(choice: ModelChoice) -> str:
    parts = []
    async for event in llm.stream_answer(
        choice,
        instructions="You are the tutor of a course.",
        history=[],
        prompt="What do mitochondria do?",
        deps=llm.TutorDeps(tools=NoTutorTools()),
    ):
        if isinstance(event, llm.TextDelta):
            parts.append(event.text)
    return "".join(parts)


async def answered(fake: FakeLLM, provider: AIProvider, text: str) -> ModelChoice:
    """A model choice on the fake whose first answer (`text`) has streamed on this loop."""
    fake.reset()
    choice = choice_on(fake, provider)
    fake.reply(text, chunks=5)
    assert await answer(choice) == text
    return choice


def session_of(client: Any) -> aiohttp.ClientSession:
    """The aiohttp session under an SDK client's HTTP client (made at its first request)."""
    session = client._client._transport.client
    assert isinstance(session, aiohttp.ClientSession), type(client._client._transport)
    return session


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_answer_streams_over_the_sdks_aiohttp_transport(
    fake: FakeLLM, provider: AIProvider
) -> None:
    choice = await answered(fake, provider, "Mitochondria turn glucose into ATP.")
    client = streaming_client(choice)
    assert streaming_client(choice) is client  # one per loop and configuration
    # The pydantic-ai model's client (essay scoring, the catalog advisor) is not it.
    assert client is not choice.client
    session = session_of(client)
    assert not session.closed
    # Same key, base URL and retries as the configured client.
    assert client.api_key == "test-key"
    assert str(client.base_url).rstrip("/") == str(choice.client.base_url).rstrip("/")
    assert client.max_retries == 0

    await close_streaming_clients()
    assert session.closed
    # The next answer on this loop opens a new one.
    fake.reply("Again.")
    assert await answer(choice) == "Again."
    assert streaming_client(choice) is not client


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_each_event_loop_streams_with_its_own_client(
    fake: FakeLLM, provider: AIProvider
) -> None:
    choice = await answered(fake, provider, "On the test's loop.")
    here = streaming_client(choice)

    seen: dict[str, Any] = {}

    async def on_another_loop() -> None:
        seen["text"] = await answer(choice)
        seen["client"] = streaming_client(choice)
        seen["session"] = session_of(seen["client"])
        await close_streaming_clients()

    def run() -> None:
        try:
            asyncio.run(on_another_loop())
        except BaseException as error:  # reported below, on the test's thread
            seen["error"] = error

    fake.reply("On another loop.")
    thread = threading.Thread(target=run)
    thread.start()
    await asyncio.to_thread(thread.join, 60)
    assert "error" not in seen, seen.get("error")
    assert seen["text"] == "On another loop."
    assert seen["client"] is not here
    assert seen["session"].closed  # closed by that loop's own close

    # This loop's client is untouched and still answers.
    assert not session_of(here).closed
    fake.reply("Still here.")
    assert await answer(choice) == "Still here."
    assert streaming_client(choice) is here


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_stream_that_stalls_past_the_timeout_fails_as_a_timeout(
    fake: FakeLLM, provider: AIProvider
) -> None:
    """AI_TIMEOUT_SECONDS bounds each read of the stream on this transport as on the
    default one: the SDK's timeout error (the stalled provider would otherwise answer,
    six seconds a chunk, and the answer would come back whole)."""
    fake.reset()
    choice = choice_on(fake, provider, timeout=0.5)
    fake.chunk_delay = 6.0
    fake.reply("one two three", chunks=3)
    try:
        with pytest.raises((anthropic.APITimeoutError, openai.APITimeoutError)):
            await answer(choice)
    finally:
        fake.reset()
