"""The fake LLM provider (tests/support/fake_llm.py), driven over real HTTP the way production
drives a model: through pydantic-ai's `AnthropicModel` and `OpenAIChatModel`, and through the
official `anthropic` and `openai` SDKs."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest
from pydantic_ai import (
    Agent,
    AgentRunResultEvent,
    FunctionToolCallEvent,
    FunctionToolResultEvent,
    ModelConnectionError,
    ModelHTTPError,
    ModelRateLimitError,
    ModelSettings,
    PartDeltaEvent,
    TextPartDelta,
)
from pydantic_ai.models import Model
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.openai import OpenAIProvider

from tests.support.fake_llm import (
    FakeLLM,
    RecordedRequest,
    ToolResult,
    echo_reply,
    estimate_tokens,
    fake_llm_server,
)

APIS = pytest.mark.parametrize("api", ["anthropic", "openai"])
# A `max_tokens` this small keeps pydantic-ai's Anthropic requests unstreamed: with the model's
# default maximum, `agent.run()` streams behind the scenes (the SDK refuses long non-streamed ones).
SHORT = ModelSettings(max_tokens=1024)


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeLLM]:
    with fake_llm_server() as server:
        yield server


@pytest.fixture
def llm(fake_server: FakeLLM) -> Iterator[FakeLLM]:
    fake_server.reset()
    yield fake_server
    errors = fake_server.errors
    fake_server.reset()
    assert not errors


def model_for(llm: FakeLLM, api: str) -> Model:
    if api == "anthropic":
        return AnthropicModel(
            "claude-sonnet-4-6", provider=AnthropicProvider(base_url=llm.base_url, api_key="test")
        )
    return OpenAIChatModel(
        "gpt-5.2", provider=OpenAIProvider(base_url=llm.openai_base_url, api_key="test")
    )


def tutor_agent(llm: FakeLLM, api: str, calls: list[str] | None = None) -> Agent[None, str]:
    agent = Agent(model_for(llm, api), instructions="You are a patient tutor.")

    @agent.tool_plain
    def search_notes(query: str) -> str:
        """Search the course notes."""
        if calls is not None:
            calls.append(query)
        return f"Notes on {query}: chlorophyll absorbs light."

    return agent


def completions(llm: FakeLLM) -> list[RecordedRequest]:
    return [r for r in llm.requests if r.method == "POST"]


# -- the official Anthropic SDK -------------------------------------------------------------------


async def test_anthropic_sdk_message(llm: FakeLLM) -> None:
    llm.reply("Light becomes sugar.")
    async with anthropic.AsyncAnthropic(base_url=llm.base_url, api_key="test") as client:
        message = await client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=256,
            system="Be brief.",
            messages=[{"role": "user", "content": "What is photosynthesis?"}],
            tools=[{"name": "search_notes", "input_schema": {"type": "object", "properties": {}}}],
        )
    assert message.content[0].type == "text"
    assert message.content[0].text == "Light becomes sugar."
    assert message.stop_reason == "end_turn"
    [request] = llm.requests
    assert (request.api, request.path, request.stream) == ("anthropic", "/v1/messages", False)
    assert request.system == "Be brief."
    assert request.tool_names == ["search_notes"]
    assert request.last_user_text == "What is photosynthesis?"
    assert "anthropic-version" in request.headers
    assert message.usage.input_tokens == request.input_tokens
    assert message.usage.output_tokens == estimate_tokens("Light becomes sugar.")


async def test_anthropic_sdk_stream_sends_the_documented_event_sequence(llm: FakeLLM) -> None:
    llm.reply("One two three", chunks=3)
    async with anthropic.AsyncAnthropic(base_url=llm.base_url, api_key="test") as client:
        stream = await client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=256,
            messages=[{"role": "user", "content": "Count"}],
            stream=True,
        )
        events = [event async for event in stream]
    assert [event.type for event in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    deltas = [
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    ]
    assert deltas == ["One ", "two t", "hree"]
    start, delta = events[0], events[-2]
    assert start.type == "message_start" and start.message.stop_reason is None
    assert start.message.usage.input_tokens == llm.requests[0].input_tokens
    assert delta.type == "message_delta"
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens == estimate_tokens("One two three")


async def test_anthropic_sdk_tool_use_round_trip(llm: FakeLLM) -> None:
    call_id = llm.call_tool(
        "search_notes", {"query": "chlorophyll", "limit": 3}, text="Let me look."
    )
    llm.reply(lambda request: f"The notes say: {request.tool_results[-1].content}")
    async with anthropic.AsyncAnthropic(base_url=llm.base_url, api_key="test") as client:
        async with client.messages.stream(
            model="claude-sonnet-4-6",
            max_tokens=256,
            messages=[{"role": "user", "content": "What is chlorophyll?"}],
        ) as stream:
            first = await stream.get_final_message()
        assert first.stop_reason == "tool_use"
        assert [block.type for block in first.content] == ["text", "tool_use"]
        tool_use = first.content[1]
        assert tool_use.type == "tool_use"
        assert (tool_use.id, tool_use.name, tool_use.input) == (
            call_id,
            "search_notes",
            {"query": "chlorophyll", "limit": 3},
        )
        second = await client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=256,
            messages=[
                {"role": "user", "content": "What is chlorophyll?"},
                {"role": "assistant", "content": first.content},
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": call_id,
                            "content": "a green pigment",
                        }
                    ],
                },
            ],
        )
    assert second.content[0].type == "text"
    assert second.content[0].text == "The notes say: a green pigment"
    assert llm.requests[-1].tool_results == [ToolResult(call_id, "search_notes", "a green pigment")]


async def test_anthropic_sdk_lists_models(llm: FakeLLM) -> None:
    async with anthropic.AsyncAnthropic(base_url=llm.base_url, api_key="test") as client:
        page = await client.models.list()
    assert [model.id for model in page.data] == llm.models


# -- the official OpenAI SDK ----------------------------------------------------------------------


async def test_openai_sdk_completion(llm: FakeLLM) -> None:
    llm.reply("Light becomes sugar.")
    async with openai.AsyncOpenAI(base_url=llm.openai_base_url, api_key="test") as client:
        completion = await client.chat.completions.create(
            model="gpt-5.2",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is photosynthesis?"},
            ],
        )
    choice = completion.choices[0]
    assert (choice.message.content, choice.finish_reason) == ("Light becomes sugar.", "stop")
    [request] = llm.requests
    assert (request.api, request.path, request.system) == (
        "openai",
        "/v1/chat/completions",
        "Be brief.",
    )
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == request.input_tokens
    assert completion.usage.completion_tokens == estimate_tokens("Light becomes sugar.")
    assert completion.usage.total_tokens == request.input_tokens + estimate_tokens(
        "Light becomes sugar."
    )


@pytest.mark.parametrize("include_usage", [True, False])
async def test_openai_sdk_stream(llm: FakeLLM, include_usage: bool) -> None:
    llm.reply("One two three", chunks=3)
    async with openai.AsyncOpenAI(base_url=llm.openai_base_url, api_key="test") as client:
        stream = await client.chat.completions.create(
            model="gpt-5.2",
            messages=[{"role": "user", "content": "Count"}],
            stream=True,
            stream_options={"include_usage": include_usage},
        )
        chunks = [chunk async for chunk in stream]
    with_choices = [chunk for chunk in chunks if chunk.choices]
    assert [c.choices[0].delta.content for c in with_choices[1:-1]] == ["One ", "two t", "hree"]
    assert with_choices[0].choices[0].delta.role == "assistant"
    assert with_choices[-1].choices[0].finish_reason == "stop"
    usage = [chunk.usage for chunk in chunks if chunk.usage is not None]
    if include_usage:
        assert chunks[-1].choices == []
        assert [(u.prompt_tokens, u.completion_tokens) for u in usage] == [
            (llm.requests[0].input_tokens, estimate_tokens("One two three"))
        ]
    else:
        assert usage == []


async def test_openai_sdk_streams_tool_call_fragments(llm: FakeLLM) -> None:
    first_id, second_id = llm.call_tools(
        [("search_notes", {"query": "leaves"}), ("quiz", {"topic": "light", "count": 2})]
    )
    async with openai.AsyncOpenAI(base_url=llm.openai_base_url, api_key="test") as client:
        stream = await client.chat.completions.create(
            model="gpt-5.2", messages=[{"role": "user", "content": "Help"}], stream=True
        )
        calls: dict[int, dict[str, str]] = {}
        finish_reasons: list[str | None] = []
        async for chunk in stream:
            choice = chunk.choices[0]
            finish_reasons.append(choice.finish_reason)
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += delta.id or ""
                if delta.function is not None:
                    call["name"] += delta.function.name or ""
                    call["arguments"] += delta.function.arguments or ""
    assert finish_reasons[-1] == "tool_calls"
    assert [(c["id"], c["name"], json.loads(c["arguments"])) for c in calls.values()] == [
        (first_id, "search_notes", {"query": "leaves"}),
        (second_id, "quiz", {"topic": "light", "count": 2}),
    ]


async def test_openai_sdk_lists_models(llm: FakeLLM) -> None:
    async with openai.AsyncOpenAI(base_url=llm.openai_base_url, api_key="test") as client:
        page = await client.models.list()
    assert [model.id for model in page.data] == llm.models


# -- pydantic-ai ----------------------------------------------------------------------------------


@APIS
async def test_agent_run_returns_text_and_usage(llm: FakeLLM, api: str) -> None:
    llm.reply("Photosynthesis turns light into sugar [1].")
    result = await tutor_agent(llm, api).run("What is photosynthesis?", model_settings=SHORT)
    assert result.output == "Photosynthesis turns light into sugar [1]."
    [request] = llm.requests
    assert request.api == api
    assert not request.stream
    assert "You are a patient tutor." in request.system
    assert request.tool_names == ["search_notes"]
    assert request.last_user_text == "What is photosynthesis?"
    usage = result.usage
    assert (usage.requests, usage.input_tokens) == (1, request.input_tokens)
    assert usage.output_tokens == estimate_tokens("Photosynthesis turns light into sugar [1].")


async def test_anthropic_agent_run_streams_with_the_default_max_tokens(llm: FakeLLM) -> None:
    llm.reply("Streamed behind the scenes.")
    result = await tutor_agent(llm, "anthropic").run("Hi")
    assert result.output == "Streamed behind the scenes."
    assert llm.requests[0].stream


@APIS
async def test_agent_stream_text_arrives_in_order(llm: FakeLLM, api: str) -> None:
    llm.chunk_delay = 0.01
    text = "Chlorophyll absorbs red and blue light, and reflects green [1]."
    llm.reply(text, chunks=6)
    async with tutor_agent(llm, api).run_stream("Why are leaves green?") as result:
        deltas = [delta async for delta in result.stream_text(delta=True, debounce_by=None)]
    assert len(deltas) == 6
    assert "".join(deltas) == text
    assert llm.requests[0].stream
    usage = result.usage
    assert (usage.input_tokens, usage.output_tokens) == (
        llm.requests[0].input_tokens,
        estimate_tokens(text),
    )


@APIS
async def test_agent_tool_round_trip(llm: FakeLLM, api: str) -> None:
    calls: list[str] = []
    call_id = llm.call_tool("search_notes", {"query": "chlorophyll"})

    def answer(request: RecordedRequest) -> str:
        [result] = request.tool_results
        assert result.call_id == call_id
        assert result.name == "search_notes"
        return f"From the notes: {result.content}"

    llm.reply(answer)
    result = await tutor_agent(llm, api, calls).run("What is chlorophyll?", model_settings=SHORT)
    assert calls == ["chlorophyll"]
    assert result.output == "From the notes: Notes on chlorophyll: chlorophyll absorbs light."
    first, second = llm.requests
    assert first.tool_results == []
    assert second.tool_calls == [(call_id, "search_notes", {"query": "chlorophyll"})]
    assert second.tool_names == ["search_notes"]
    assert result.usage.requests == 2
    assert result.usage.tool_calls == 1
    assert llm.pending == 0


@APIS
async def test_agent_runs_parallel_tool_calls(llm: FakeLLM, api: str) -> None:
    calls: list[str] = []
    ids = llm.call_tools(
        [("search_notes", {"query": "roots"}), ("search_notes", {"query": "leaves"})]
    )
    llm.reply(lambda request: " | ".join(r.content for r in request.tool_results))
    result = await tutor_agent(llm, api, calls).run(
        "Compare roots and leaves", model_settings=SHORT
    )
    assert sorted(calls) == ["leaves", "roots"]
    assert [r.call_id for r in llm.requests[-1].tool_results] == ids
    assert result.output.count("Notes on") == 2


@APIS
async def test_agent_stream_events_with_a_tool(llm: FakeLLM, api: str) -> None:
    """`run_stream_events` runs the tool and streams the answer after it: the tutor's shape."""
    call_id = llm.call_tool("search_notes", {"query": "xylem"})
    llm.reply("Xylem carries water [1].", chunks=3)
    events: list[Any] = []
    async with tutor_agent(llm, api).run_stream_events("What is xylem?") as stream:
        events = [event async for event in stream]
    [tool_call] = [e for e in events if isinstance(e, FunctionToolCallEvent)]
    [tool_result] = [e for e in events if isinstance(e, FunctionToolResultEvent)]
    assert (tool_call.part.tool_name, tool_call.part.args_as_dict(), tool_call.tool_call_id) == (
        "search_notes",
        {"query": "xylem"},
        call_id,
    )
    assert tool_result.part.content == "Notes on xylem: chlorophyll absorbs light."
    text_deltas = [
        e.delta.content_delta
        for e in events
        if isinstance(e, PartDeltaEvent) and isinstance(e.delta, TextPartDelta)
    ]
    assert "".join(text_deltas).endswith("[1].")
    assert isinstance(events[-1], AgentRunResultEvent)
    assert events[-1].result.output == "Xylem carries water [1]."


@APIS
async def test_agent_429_then_success_via_sdk_retries(llm: FakeLLM, api: str) -> None:
    llm.fail(429, times=2, retry_after=0.01)
    result = await tutor_agent(llm, api).run("Hi", model_settings=SHORT)
    assert result.output == echo_reply(llm.requests[-1])
    requests = completions(llm)
    assert len(requests) == 3  # the SDK's default max_retries=2
    assert [r.headers["x-stainless-retry-count"] for r in requests] == ["0", "1", "2"]
    assert result.usage.requests == 1  # pydantic-ai counts the request once


@APIS
async def test_agent_429_beyond_sdk_retries_raises(llm: FakeLLM, api: str) -> None:
    llm.fail(429, times=3, retry_after=0.01)
    with pytest.raises(ModelRateLimitError) as caught:
        await tutor_agent(llm, api).run("Hi", model_settings=SHORT)
    assert isinstance(caught.value, ModelHTTPError)
    assert caught.value.status_code == 429
    assert len(completions(llm)) == 3
    assert llm.pending == 0


@APIS
async def test_agent_max_retries_zero_fails_at_once(llm: FakeLLM, api: str) -> None:
    llm.fail(529)
    with pytest.raises(ModelHTTPError) as caught:
        await tutor_agent(llm, api).run(
            "Hi", model_settings=ModelSettings(max_tokens=1024, max_retries=0)
        )
    assert caught.value.status_code == 529
    assert len(completions(llm)) == 1


@APIS
async def test_agent_stream_retries_5xx_before_the_stream_opens(llm: FakeLLM, api: str) -> None:
    llm.fail(500, retry_after=0.01)
    llm.fail(529, retry_after=0.01)
    llm.reply("Recovered.")
    async with tutor_agent(llm, api).run_stream("Hi") as result:
        assert await result.get_output() == "Recovered."
    assert len(completions(llm)) == 3


@APIS
async def test_agent_broken_stream_raises(llm: FakeLLM, api: str) -> None:
    llm.break_stream(after_chunks=2, text="one two three four five")
    deltas: list[str] = []

    async def read_stream() -> None:
        async with tutor_agent(llm, api).run_stream("Hi") as result:
            async for delta in result.stream_text(delta=True, debounce_by=None):
                deltas.append(delta)

    with pytest.raises(ModelConnectionError):
        await read_stream()
    assert deltas == ["one", " two"]
    assert len(completions(llm)) == 1  # a stream that broke after opening is not retried


async def test_sdk_broken_streams_raise(llm: FakeLLM) -> None:
    llm.break_stream(after_chunks=1)
    async with anthropic.AsyncAnthropic(base_url=llm.base_url, api_key="test") as client:
        stream = await client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=64,
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
        )
        seen: list[str] = []

        async def read_events() -> None:
            async for event in stream:
                seen.append(event.type)

        # The SDK raises the transport's error, or wraps it as its own connection error
        # when the break lands inside a body read it guards (it depends on timing).
        with pytest.raises((httpx2.RemoteProtocolError, anthropic.APIConnectionError)):
            await read_events()
    assert seen == ["message_start", "content_block_start", "content_block_delta"]

    llm.break_stream(after_chunks=0)
    async with openai.AsyncOpenAI(base_url=llm.openai_base_url, api_key="test") as openai_client:
        chunks = await openai_client.chat.completions.create(
            model="gpt-5.2", messages=[{"role": "user", "content": "Hi"}], stream=True
        )

        async def read_chunks() -> None:
            async for _ in chunks:
                pass

        with pytest.raises(openai.APIConnectionError):
            await read_chunks()


async def test_a_non_streamed_broken_body_is_retried_by_the_sdk(llm: FakeLLM) -> None:
    llm.break_stream(after_chunks=0)
    llm.reply("Second try.")
    async with openai.AsyncOpenAI(base_url=llm.openai_base_url, api_key="test") as client:
        completion = await client.chat.completions.create(
            model="gpt-5.2", messages=[{"role": "user", "content": "Hi"}]
        )
    assert completion.choices[0].message.content == "Second try."
    assert len(llm.requests) == 2


# -- the default answer, timing and load ----------------------------------------------------------


@APIS
async def test_default_reply_echoes_and_cites(llm: FakeLLM, api: str) -> None:
    result = await tutor_agent(llm, api).run("Explain osmosis", model_settings=SHORT)
    assert "Explain osmosis" in result.output
    assert "[1]" in result.output

    llm.default = lambda request: f"{request.api} default"
    result = await tutor_agent(llm, api).run("Again", model_settings=SHORT)
    assert result.output == f"{api} default"


async def test_first_token_delay_and_chunk_delay(llm: FakeLLM) -> None:
    llm.first_token_delay = 0.2
    llm.chunk_delay = 0.05
    llm.reply("a b c d", chunks=4)
    async with openai.AsyncOpenAI(base_url=llm.openai_base_url, api_key="test") as client:
        started = time.monotonic()
        stream = await client.chat.completions.create(
            model="gpt-5.2", messages=[{"role": "user", "content": "Hi"}], stream=True
        )
        arrivals: list[float] = []
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 4
    assert arrivals[0] >= 0.2
    assert arrivals[-1] - arrivals[0] >= 3 * 0.05 * 0.9
    assert arrivals[-1] < 1.5


async def test_stream_duration_spreads_the_deltas(llm: FakeLLM) -> None:
    llm.stream_duration = 0.3
    llm.reply("x" * 50, chunks=10)
    async with openai.AsyncOpenAI(base_url=llm.openai_base_url, api_key="test") as client:
        started = time.monotonic()
        completion = await client.chat.completions.create(
            model="gpt-5.2", messages=[{"role": "user", "content": "Hi"}]
        )
        elapsed = time.monotonic() - started
    assert completion.choices[0].message.content == "x" * 50
    assert 0.28 <= elapsed < 1.5  # a JSON answer takes as long as its stream would


async def raw_stream(port: int, body: dict[str, Any]) -> list[str]:
    """POST `body` as a streamed chat completion over a bare HTTP/1.1 socket; its SSE data lines.

    The load test uses a bare socket because httpx's connection pool, not the fake, is what
    slows down past a hundred connections in one process."""
    payload = json.dumps(body).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: fake\r\nconnection: close\r\n"
        b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(payload), payload)
    )
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, chunked = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    body_bytes = b""
    while True:
        size_line, _, chunked = chunked.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        body_bytes, chunked = body_bytes + chunked[:size], chunked[size + 2 :]
    return [line[6:] for line in body_bytes.decode().splitlines() if line.startswith("data: ")]


async def test_hundreds_of_concurrent_streams(llm: FakeLLM) -> None:
    """300 streams of 10 deltas 50 ms apart are served side by side, not one after another."""
    llm.chunk_delay = 0.05
    llm.default = lambda request: (
        " ".join(f"w{i}" for i in range(10)) + f" {request.last_user_text}"
    )
    started = time.monotonic()
    answers = await asyncio.gather(
        *(
            raw_stream(
                llm.port,
                {"model": "m", "stream": True, "messages": [{"role": "user", "content": f"q{n}"}]},
            )
            for n in range(300)
        )
    )
    elapsed = time.monotonic() - started
    for n, lines in enumerate(answers):
        assert lines[-1] == "[DONE]"
        chunks = [json.loads(line) for line in lines[:-1]]
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        assert text.endswith(f"w9 q{n}")
    assert llm.peak_streams >= 250
    assert llm.active_streams == 0
    assert elapsed < 3  # serially: 300 x 0.45 s


@APIS
async def test_concurrent_agent_streams(llm: FakeLLM, api: str) -> None:
    """Concurrent pydantic-ai streamed runs each get their own answer, in order."""
    llm.chunk_delay = 0.02
    llm.default = lambda request: f"Answer to {request.last_user_text}: one two three."
    agent = tutor_agent(llm, api)

    async def ask(n: int) -> list[str]:
        async with agent.run_stream(f"question {n}") as result:
            return [delta async for delta in result.stream_text(delta=True, debounce_by=None)]

    answers = await asyncio.gather(*(ask(n) for n in range(30)))
    for n, deltas in enumerate(answers):
        assert "".join(deltas) == f"Answer to question {n}: one two three."
    assert llm.peak_streams >= 10


# -- scripting and lifecycle ----------------------------------------------------------------------


async def test_a_failing_reply_callable_answers_400_and_is_reported(llm: FakeLLM) -> None:
    def broken(request: RecordedRequest) -> str:
        raise KeyError("no such passage")

    llm.reply(broken)
    with pytest.raises(ModelHTTPError) as caught:
        await tutor_agent(llm, "openai").run("Hi", model_settings=SHORT)
    assert caught.value.status_code == 400
    [error] = llm.errors
    assert "KeyError" in error
    llm.reset()  # the fixture would fail the test on the recorded error


def test_exit_raises_on_script_errors_and_unknown_routes_404() -> None:
    def serve_a_failing_script() -> None:
        with fake_llm_server() as server:
            server.reply(lambda request: str(1 / 0))
            answer = httpx.post(server.openai_base_url + "/chat/completions", json={"model": "m"})
            assert answer.status_code == 400
            assert answer.json()["error"]["type"] == "invalid_request_error"
            missing = httpx.post(server.openai_base_url + "/embeddings", json={})
            assert missing.status_code == 404
            assert missing.json()["error"]["code"] == "not_found"

    with pytest.raises(AssertionError, match="ZeroDivisionError"):
        serve_a_failing_script()


async def test_stop_cuts_open_streams_and_frees_the_port() -> None:
    server = FakeLLM(chunk_delay=0.5).start()
    port = server.port
    server.reply("a b c d e f g h i j")
    async with (
        httpx.AsyncClient(base_url=server.openai_base_url, timeout=10) as client,
        client.stream(
            "POST", "/chat/completions", json={"model": "m", "messages": [], "stream": True}
        ) as response,
    ):
        assert response.status_code == 200
        started = time.monotonic()
        await asyncio.to_thread(server.stop)
        with pytest.raises(httpx.RemoteProtocolError):
            await response.aread()
        assert time.monotonic() - started < 2
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_pieces_and_token_estimates_are_deterministic() -> None:
    assert estimate_tokens("") == 1
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    with fake_llm_server() as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.openai_base_url == server.base_url + "/v1"
        for _ in range(2):
            server.reply("Same answer.")
            answer = httpx.post(
                server.base_url + "/v1/messages",
                json={
                    "model": "m",
                    "max_tokens": 10,
                    "messages": [{"role": "user", "content": "Q"}],
                },
                headers={"anthropic-version": "2023-06-01"},
            )
            assert answer.json()["usage"]["output_tokens"] == 3
        first, second = server.requests
        assert first.input_tokens == second.input_tokens
        assert server.pending == 0
