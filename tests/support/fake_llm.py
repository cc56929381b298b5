"""A fake LLM provider over real HTTP on a loopback port, for tests and benchmarks.

It speaks the two wire formats production uses, closely enough for the official SDKs (and
pydantic-ai on top of them) to parse every byte:

- the Anthropic Messages API: `POST /v1/messages` (JSON, or SSE with `"stream": true`),
  `POST /v1/messages/count_tokens` and `GET /v1/models`;
- the OpenAI Chat Completions API: `POST /v1/chat/completions` (JSON, or SSE `data:` lines
  ending with `data: [DONE]`) and `GET /v1/models`.

A test scripts the next turns, each request to a completions endpoint taking the next one, and
falls back to `FakeLLM.default` when the script is empty:

    with fake_llm_server() as llm:
        llm.reply("Photosynthesis turns light into sugar [1].")
        call_id = llm.call_tool("search_course", {"query": "photosynthesis"})
        llm.fail(429, times=2, retry_after=0.01)
        llm.break_stream(after_chunks=3)
        ... AnthropicProvider(base_url=llm.base_url, api_key="test") ...
        ... OpenAIProvider(base_url=llm.openai_base_url, api_key="test") ...
        assert llm.requests[-1].tool_results[0].content == "..."

The server is uvicorn in a background thread with async handlers that never block (the timing
knobs are asyncio timeouts), so hundreds of concurrent streams cost little. Run it on its own with
`python -m tests.support.fake_llm --port 8089 --first-token-delay 0.3 --chunk-delay 0.02`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import math
import re
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

import uvicorn

__all__ = [
    "DEFAULT_MODELS",
    "Api",
    "FakeLLM",
    "RecordedRequest",
    "ReplyText",
    "ToolResult",
    "echo_reply",
    "estimate_tokens",
    "fake_llm_server",
]

Api = Literal["anthropic", "openai"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]

DEFAULT_MODELS: tuple[str, ...] = ("claude-sonnet-4-6", "claude-haiku-4-5", "gpt-5.2", "gpt-5-mini")

_FIXED_CREATED = 1_750_000_000  # a fixed `created` timestamp keeps responses deterministic
_INCOMPLETE_RESPONSE_LOG = "ASGI callable returned without completing response."


def estimate_tokens(text: str) -> int:
    """A deterministic token count for `text`: one token per four characters, at least one."""
    return max(1, math.ceil(len(text) / 4))


@dataclass(frozen=True)
class ToolResult:
    """A tool result a request carried back: Anthropic `tool_result` blocks, OpenAI `tool` messages."""

    call_id: str
    name: str | None  # the tool's name, from the assistant turn that called it
    content: str
    is_error: bool = False


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received, with helpers that read both wire formats alike."""

    api: Api
    method: str
    path: str
    query: str
    json: dict[str, Any]
    headers: dict[str, str]  # lower-cased names
    received_at: float = field(default_factory=time.monotonic)

    @property
    def stream(self) -> bool:
        return bool(self.json.get("stream", False))

    @property
    def model(self) -> str:
        return str(self.json.get("model", ""))

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages = self.json.get("messages", [])
        return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []

    @property
    def system(self) -> str:
        """The system prompt: Anthropic's `system`, or OpenAI's system and developer messages."""
        if self.api == "anthropic":
            return _text_of(self.json.get("system", ""))
        return "\n".join(
            _text_of(m.get("content"))
            for m in self.messages
            if m.get("role") in ("system", "developer")
        )

    @property
    def tool_names(self) -> list[str]:
        """The names of the tools the request offered, in order."""
        names: list[str] = []
        for tool in self.json.get("tools", None) or []:
            if not isinstance(tool, dict):
                continue
            spec = tool.get("function", tool) if self.api == "openai" else tool
            if isinstance(spec, dict) and isinstance(spec.get("name"), str):
                names.append(spec["name"])
        return names

    @property
    def tool_calls(self) -> list[tuple[str, str, dict[str, Any]]]:
        """The tool calls of earlier assistant turns in the history: (call id, name, args)."""
        calls: list[tuple[str, str, dict[str, Any]]] = []
        for message in self.messages:
            if message.get("role") != "assistant":
                continue
            if self.api == "anthropic":
                for block in _blocks(message.get("content")):
                    if block.get("type") == "tool_use":
                        calls.append(
                            (
                                str(block.get("id")),
                                str(block.get("name")),
                                _as_dict(block.get("input")),
                            )
                        )
            else:
                for call in message.get("tool_calls") or []:
                    function = call.get("function", {}) if isinstance(call, dict) else {}
                    try:
                        args = json.loads(function.get("arguments") or "{}")
                    except json.JSONDecodeError:
                        args = {}
                    calls.append((str(call.get("id")), str(function.get("name")), _as_dict(args)))
        return calls

    @property
    def tool_results(self) -> list[ToolResult]:
        """Every tool result in the history, in order, with the called tool's name when known."""
        names = {call_id: name for call_id, name, _ in self.tool_calls}
        results: list[ToolResult] = []
        for message in self.messages:
            if self.api == "anthropic" and message.get("role") == "user":
                for block in _blocks(message.get("content")):
                    if block.get("type") == "tool_result":
                        call_id = str(block.get("tool_use_id"))
                        results.append(
                            ToolResult(
                                call_id,
                                names.get(call_id),
                                _text_of(block.get("content", "")),
                                bool(block.get("is_error", False)),
                            )
                        )
            elif self.api == "openai" and message.get("role") == "tool":
                call_id = str(message.get("tool_call_id"))
                results.append(
                    ToolResult(call_id, names.get(call_id), _text_of(message.get("content")))
                )
        return results

    @property
    def input_tokens(self) -> int:
        """The input token count the fake reports for this request (`estimate_tokens` of its
        system prompt, messages and tools)."""
        return _input_tokens(self.json)

    @property
    def last_user_text(self) -> str:
        """The text of the last user message that has text (tool results are not text)."""
        for message in reversed(self.messages):
            if message.get("role") == "user" and (text := _text_of(message.get("content"))):
                return text
        return ""


ReplyText = str | Callable[[RecordedRequest], str]
"""A scripted answer: fixed text, or computed from the request it answers."""


def echo_reply(request: RecordedRequest) -> str:
    """The default answer: echoes the question and cites source [1], like a grounded tutor."""
    question = " ".join(request.last_user_text.split())[:200] or "your question"
    return f"Here is what the course material says about: {question}. See the notes [1]."


# ---------------------------------------------------------------------------------------------
# The script


@dataclass(frozen=True)
class _ScriptedCall:
    call_id: str
    name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class _Reply:
    text: ReplyText
    chunks: int | None = None


@dataclass(frozen=True)
class _ToolUse:
    calls: tuple[_ScriptedCall, ...]
    text: str = ""


@dataclass(frozen=True)
class _Fail:
    status: int
    retry_after: float | None
    message: str | None


@dataclass(frozen=True)
class _Break:
    after_chunks: int
    text: ReplyText | None
    chunks: int | None


_Turn = _Reply | _ToolUse | _Fail | _Break


@dataclass(frozen=True)
class _Plan:
    """What one answer says, independent of the wire format."""

    pieces: list[str]  # the text, split into the deltas a stream sends
    calls: tuple[_ScriptedCall, ...]
    input_tokens: int
    break_after: int | None = None  # drop the connection after this many deltas

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def output_tokens(self) -> int:
        return estimate_tokens(self.text + "".join(_args_json(call.args) for call in self.calls))


class _ScriptError(Exception):
    """A reply callable raised: answered as a 400, recorded in `FakeLLM.errors`."""


class _DropLog(logging.Filter):
    """Drops uvicorn's error line for the connections `break_stream` drops on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _INCOMPLETE_RESPONSE_LOG


class FakeLLM:
    """A scriptable fake of the Anthropic and OpenAI APIs; see the module docstring.

    Every public method is thread-safe: tests script and inspect it from their own thread and
    event loop while uvicorn serves it from another.
    """

    def __init__(
        self,
        *,
        first_token_delay: float = 0.0,
        chunk_delay: float = 0.0,
        stream_duration: float | None = None,
        default: Callable[[RecordedRequest], str] = echo_reply,
        models: Sequence[str] = DEFAULT_MODELS,
    ) -> None:
        self.first_token_delay = first_token_delay
        """Seconds before the first byte of a body: of a stream's events, or of a JSON answer."""
        self.chunk_delay = chunk_delay
        """Seconds between two deltas of a stream (a JSON answer waits as long as its stream would)."""
        self.stream_duration = stream_duration
        """When set, the deltas of each answer are spread over this many seconds instead."""
        self.default = default
        """The answer when the script is empty."""
        self.models = list(models)
        """What `GET /v1/models` lists."""
        self._lock = threading.Lock()
        self._script: deque[_Turn] = deque()
        self._requests: list[RecordedRequest] = []
        self._errors: list[str] = []
        self._call_ids = itertools.count(1)
        self._response_ids = itertools.count(1)
        self._active_streams = 0
        self._peak_streams = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._log_filter = _DropLog()
        self._stopping = asyncio.Event()  # set, from the server's loop, when stop() is called
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """For Anthropic clients: `http://127.0.0.1:PORT` (the SDK adds `/v1/messages`)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """For OpenAI clients: `http://127.0.0.1:PORT/v1` (the SDK adds `/chat/completions`)."""
        return f"{self.base_url}/v1"

    def start(self, *, port: int = 0, timeout: float = 10.0) -> Self:
        """Serve on 127.0.0.1:`port` (0 picks a free one) from a background thread."""
        if self._server is not None:
            raise RuntimeError("the fake LLM server is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_config=None,  # leave the process's logging alone
            access_log=False,
            lifespan="off",
            interface="asgi3",
            backlog=4096,
            timeout_graceful_shutdown=3,
            timeout_keep_alive=75,  # clients' connection pools outlive uvicorn's 5 s default
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="fake-llm", daemon=True
        )
        logging.getLogger("uvicorn.error").addFilter(self._log_filter)
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                thread.join(timeout)
                sock.close()
                logging.getLogger("uvicorn.error").removeFilter(self._log_filter)
                raise RuntimeError("the fake LLM server did not start")
            time.sleep(0.01)
        self._server, self._thread = server, thread
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving; streams still open are cut off after a few seconds' grace."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        if (loop := self._loop) is not None:  # open streams end now, not after the grace period
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(self._stopping.set)
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():  # pragma: no cover - only when a stream outlives the grace period
            server.force_exit = True
            thread.join(timeout)
        self._server = self._thread = None
        self._stopping, self._loop = asyncio.Event(), None
        logging.getLogger("uvicorn.error").removeFilter(self._log_filter)

    def __enter__(self) -> Self:
        return self.start() if self._server is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if exc_type is None:
            self.assert_no_errors()

    def assert_no_errors(self) -> None:
        """Raise `AssertionError` listing the reply callables that raised while serving."""
        if errors := self.errors:
            raise AssertionError("fake LLM script errors:\n" + "\n".join(errors))

    # -- scripting ------------------------------------------------------------------------------

    def reply(self, text: ReplyText, *, chunks: int | None = None) -> None:
        """Queue a text answer. A stream sends it as `chunks` deltas of about equal length, or one
        delta per word when `chunks` is None. `text` may be a callable of the request it answers."""
        self._queue(_Reply(text, chunks))

    def call_tool(self, name: str, args: Mapping[str, Any], *, text: str = "") -> str:
        """Queue a turn that asks for one tool call (after `text`, if any); returns the call id,
        which the next request's `tool_results` should answer."""
        return self.call_tools([(name, args)], text=text)[0]

    def call_tools(
        self, calls: Sequence[tuple[str, Mapping[str, Any]]], *, text: str = ""
    ) -> list[str]:
        """Queue a turn that asks for several tool calls at once; returns their call ids."""
        if not calls:
            raise ValueError("a tool-use turn needs at least one call")
        scripted = tuple(
            _ScriptedCall(f"call_fake_{next(self._call_ids):04d}", name, dict(args))
            for name, args in calls
        )
        self._queue(_ToolUse(scripted, text))
        return [call.call_id for call in scripted]

    def fail(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: float | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next `times` requests with HTTP `status` and the provider's error body, with
        `retry-after-ms` and `retry-after` headers when `retry_after` (seconds) is given."""
        if status < 400:
            raise ValueError("fail() takes an HTTP error status")
        for _ in range(times):
            self._queue(_Fail(status, retry_after, message))

    def break_stream(
        self, after_chunks: int, *, text: ReplyText | None = None, chunks: int | None = None
    ) -> None:
        """Queue an answer (`text`, or the default one) whose stream drops the connection abruptly
        after `after_chunks` deltas, without the closing events, so the client's read fails.

        A non-streaming request gets half its JSON body before the drop, which the SDKs treat as a
        connection error and so retry (with the next scripted turn)."""
        if after_chunks < 0:
            raise ValueError("after_chunks must be >= 0")
        self._queue(_Break(after_chunks, text, chunks))

    @property
    def pending(self) -> int:
        """How many scripted turns no request has taken yet."""
        with self._lock:
            return len(self._script)

    def reset(self) -> None:
        """Forget the script, the recorded requests and errors, and restore the default knobs."""
        with self._lock:
            self._script.clear()
            self._requests.clear()
            self._errors.clear()
            self._peak_streams = self._active_streams
        self.first_token_delay = 0.0
        self.chunk_delay = 0.0
        self.stream_duration = None
        self.default = echo_reply

    def _queue(self, turn: _Turn) -> None:
        with self._lock:
            self._script.append(turn)

    def _next_turn(self) -> _Turn | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    # -- records --------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a snapshot)."""
        with self._lock:
            return list(self._requests)

    @property
    def errors(self) -> list[str]:
        """Exceptions raised by reply callables (each was answered with a 400)."""
        with self._lock:
            return list(self._errors)

    @property
    def active_streams(self) -> int:
        with self._lock:
            return self._active_streams

    @property
    def peak_streams(self) -> int:
        """The most streams that were open at once since the last `reset()`."""
        with self._lock:
            return self._peak_streams

    # -- the ASGI application -------------------------------------------------------------------

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan is off; nothing else is expected
            return
        self._loop = asyncio.get_running_loop()
        raw = await _read_body(receive)
        headers = _headers(scope)
        method: str = scope["method"]
        path: str = scope["path"].rstrip("/")
        query = scope.get("query_string", b"").decode("latin-1")
        api: Api = (
            "anthropic"
            if "anthropic-version" in headers or path.startswith("/v1/messages")
            else "openai"
        )
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            await _send_json(send, 400, _error_body(api, 400, "the body is not JSON"))
            return
        if not isinstance(body, dict):
            body = {"body": body}
        request = RecordedRequest(api, method, path, query, body, headers)
        with self._lock:
            self._requests.append(request)

        if method == "GET" and path == "/v1/models":
            await _send_json(send, 200, self._models_body(api))
        elif method == "POST" and path == "/v1/messages/count_tokens":
            await _send_json(send, 200, {"input_tokens": _input_tokens(body)})
        elif method == "POST" and path in ("/v1/messages", "/v1/chat/completions"):
            await self._answer(request, receive, send)
        else:
            await _send_json(send, 404, _error_body(api, 404, f"no route for {method} {path}"))

    async def _answer(self, request: RecordedRequest, receive: Receive, send: Send) -> None:
        turn = self._next_turn()
        if isinstance(turn, _Fail):  # answered at once: the knobs time answers, not refusals
            headers: list[tuple[str, str]] = []
            if turn.retry_after is not None:
                headers += [
                    ("retry-after-ms", str(round(turn.retry_after * 1000))),
                    ("retry-after", str(math.ceil(turn.retry_after))),
                ]
            message = turn.message or f"fake LLM scripted failure {turn.status}"
            await _send_json(
                send, turn.status, _error_body(request.api, turn.status, message), headers
            )
            return
        try:
            plan = self._plan(request, turn)
        except _ScriptError as error:
            await _send_json(send, 400, _error_body(request.api, 400, str(error)))
            return
        response_id = next(self._response_ids)
        if request.stream:
            await self._stream(request, plan, response_id, receive, send)
        else:
            await self._respond(request, plan, response_id, send)

    def _plan(self, request: RecordedRequest, turn: _Turn | None) -> _Plan:
        input_tokens = _input_tokens(request.json)
        if isinstance(turn, _ToolUse):
            return _Plan(_split(turn.text, None), turn.calls, input_tokens)
        if isinstance(turn, _Reply):
            return _Plan(_split(self._text(turn.text, request), turn.chunks), (), input_tokens)
        if isinstance(turn, _Break):
            text = self._text(turn.text if turn.text is not None else self.default, request)
            return _Plan(_split(text, turn.chunks), (), input_tokens, break_after=turn.after_chunks)
        return _Plan(_split(self._text(self.default, request), None), (), input_tokens)

    def _text(self, text: ReplyText, request: RecordedRequest) -> str:
        if isinstance(text, str):
            return text
        try:
            return text(request)
        except Exception as error:
            message = (
                f"fake LLM reply callable failed on {request.path}: {type(error).__name__}: {error}"
            )
            with self._lock:
                self._errors.append(message)
            raise _ScriptError(message) from error

    def _delays(self, deltas: int) -> tuple[float, float]:
        """(seconds before the first delta, seconds between two deltas)."""
        if self.stream_duration is not None:
            return self.first_token_delay, self.stream_duration / max(1, deltas - 1)
        return self.first_token_delay, self.chunk_delay

    async def _respond(
        self, request: RecordedRequest, plan: _Plan, response_id: int, send: Send
    ) -> None:
        if request.api == "anthropic":
            body = _anthropic_message(request, plan, response_id)
        else:
            body = _openai_completion(request, plan, response_id)
        deltas = len(plan.pieces) + len(plan.calls)
        first, between = self._delays(deltas)
        await self._sleep(first + between * max(0, deltas - 1))
        data = _dumps(body)
        if plan.break_after is None:
            await _send_json(send, 200, body)
            return
        await _start(send, 200, "application/json", [("content-length", str(len(data)))])
        await send(
            {"type": "http.response.body", "body": data[: len(data) // 2], "more_body": True}
        )
        # Returning without the end of the body makes uvicorn close the connection.

    async def _stream(
        self, request: RecordedRequest, plan: _Plan, response_id: int, receive: Receive, send: Send
    ) -> None:
        if request.api == "anthropic":
            frames = _anthropic_events(request, plan, response_id)
        else:
            frames = _openai_chunks(request, plan, response_id)
        deltas = sum(1 for _, is_delta in frames if is_delta)
        first, between = self._delays(deltas)
        stop_at = _break_index(frames, plan.break_after)

        disconnected = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected.set()

        watcher = asyncio.create_task(watch())
        with self._lock:
            self._active_streams += 1
            self._peak_streams = max(self._peak_streams, self._active_streams)
        try:
            await _start(
                send, 200, "text/event-stream; charset=utf-8", [("cache-control", "no-cache")]
            )
            await self._sleep(first)
            # Frames due at the same moment go out in one write: a stream costs one write per delta.
            pending: list[bytes] = []
            sent_deltas = 0
            for index, (frame, is_delta) in enumerate(frames):
                if index == stop_at or disconnected.is_set() or self._stopping.is_set():
                    if pending:
                        await send(
                            {
                                "type": "http.response.body",
                                "body": b"".join(pending),
                                "more_body": True,
                            }
                        )
                    return  # leaves the body unfinished: uvicorn closes the connection
                if is_delta:
                    if sent_deltas and between:
                        await send(
                            {
                                "type": "http.response.body",
                                "body": b"".join(pending),
                                "more_body": True,
                            }
                        )
                        pending.clear()
                        await self._sleep(between)
                    sent_deltas += 1
                pending.append(frame)
            await send(
                {"type": "http.response.body", "body": b"".join(pending), "more_body": False}
            )
        finally:
            watcher.cancel()
            with self._lock:
                self._active_streams -= 1

    async def _sleep(self, seconds: float) -> None:
        """Sleep, waking early when the server is stopping."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    def _models_body(self, api: Api) -> dict[str, Any]:
        data: list[dict[str, Any]]
        if api == "anthropic":
            data = [
                {"type": "model", "id": m, "display_name": m, "created_at": "2025-06-15T00:00:00Z"}
                for m in self.models
            ]
            return {
                "data": data,
                "has_more": False,
                "first_id": self.models[0] if self.models else None,
                "last_id": self.models[-1] if self.models else None,
            }
        data = [
            {"id": m, "object": "model", "created": _FIXED_CREATED, "owned_by": "fake-llm"}
            for m in self.models
        ]
        return {"object": "list", "data": data}


@contextmanager
def fake_llm_server(
    *,
    first_token_delay: float = 0.0,
    chunk_delay: float = 0.0,
    stream_duration: float | None = None,
    default: Callable[[RecordedRequest], str] = echo_reply,
) -> Iterator[FakeLLM]:
    """A running `FakeLLM` on a free loopback port, stopped on exit. Exiting raises
    `AssertionError` if a reply callable failed while serving (the client saw a 400)."""
    with FakeLLM(
        first_token_delay=first_token_delay,
        chunk_delay=chunk_delay,
        stream_duration=stream_duration,
        default=default,
    ) as server:
        yield server


# ---------------------------------------------------------------------------------------------
# Wire formats


def _anthropic_usage(plan: _Plan, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": plan.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    }


def _anthropic_message(request: RecordedRequest, plan: _Plan, response_id: int) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if plan.text or not plan.calls:
        content.append({"type": "text", "text": plan.text})
    content += [
        {"type": "tool_use", "id": c.call_id, "name": c.name, "input": c.args} for c in plan.calls
    ]
    return {
        "id": f"msg_fake_{response_id:06d}",
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": content,
        "stop_reason": "tool_use" if plan.calls else "end_turn",
        "stop_sequence": None,
        "usage": _anthropic_usage(plan, plan.output_tokens),
    }


def _sse(event: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


_Frame = tuple[bytes, bool]  # (bytes to send, whether it is a content delta)


def _anthropic_events(request: RecordedRequest, plan: _Plan, response_id: int) -> list[_Frame]:
    message = _anthropic_message(request, plan, response_id)
    start = {**message, "content": [], "stop_reason": None, "usage": _anthropic_usage(plan, 1)}
    frames: list[_Frame] = [
        (_sse("message_start", {"type": "message_start", "message": start}), False),
        (_sse("ping", {"type": "ping"}), False),
    ]
    index = 0
    if plan.text or not plan.calls:
        frames.append(
            (
                _sse(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    },
                ),
                False,
            )
        )
        for piece in plan.pieces:
            delta = {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            }
            frames.append((_sse("content_block_delta", delta), True))
        frames.append(
            (_sse("content_block_stop", {"type": "content_block_stop", "index": 0}), False)
        )
        index = 1
    for call in plan.calls:
        block = {"type": "tool_use", "id": call.call_id, "name": call.name, "input": {}}
        frames.append(
            (
                _sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": block},
                ),
                False,
            )
        )
        for fragment in _fragments(_args_json(call.args)):
            delta = {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "input_json_delta", "partial_json": fragment},
            }
            frames.append((_sse("content_block_delta", delta), True))
        frames.append(
            (_sse("content_block_stop", {"type": "content_block_stop", "index": index}), False)
        )
        index += 1
    message_delta = {
        "type": "message_delta",
        "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
        "usage": _anthropic_usage(plan, plan.output_tokens),
    }
    frames.append((_sse("message_delta", message_delta), False))
    frames.append((_sse("message_stop", {"type": "message_stop"}), False))
    return frames


def _openai_usage(plan: _Plan) -> dict[str, Any]:
    return {
        "prompt_tokens": plan.input_tokens,
        "completion_tokens": plan.output_tokens,
        "total_tokens": plan.input_tokens + plan.output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _openai_completion(request: RecordedRequest, plan: _Plan, response_id: int) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": plan.text if plan.text or not plan.calls else None,
        "refusal": None,
        "annotations": [],
    }
    if plan.calls:
        message["tool_calls"] = [
            {
                "id": c.call_id,
                "type": "function",
                "function": {"name": c.name, "arguments": _args_json(c.args)},
            }
            for c in plan.calls
        ]
    return {
        "id": f"chatcmpl-fake{response_id:06d}",
        "object": "chat.completion",
        "created": _FIXED_CREATED,
        "model": request.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if plan.calls else "stop",
            }
        ],
        "usage": _openai_usage(plan),
        "system_fingerprint": None,
    }


def _openai_chunks(request: RecordedRequest, plan: _Plan, response_id: int) -> list[_Frame]:
    options = request.json.get("stream_options") or {}
    include_usage = isinstance(options, dict) and bool(options.get("include_usage"))

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        data: dict[str, Any] = {
            "id": f"chatcmpl-fake{response_id:06d}",
            "object": "chat.completion.chunk",
            "created": _FIXED_CREATED,
            "model": request.model,
            "system_fingerprint": None,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if include_usage:
            data["usage"] = None
        return b"data: " + _dumps(data) + b"\n\n"

    frames: list[_Frame] = [(chunk({"role": "assistant", "content": "", "refusal": None}), False)]
    frames += [(chunk({"content": piece}), True) for piece in plan.pieces]
    for index, call in enumerate(plan.calls):
        opening = {
            "index": index,
            "id": call.call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        frames.append((chunk({"tool_calls": [opening]}), False))
        for fragment in _fragments(_args_json(call.args)):
            frames.append(
                (
                    chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}),
                    True,
                )
            )
    frames.append((chunk({}, "tool_calls" if plan.calls else "stop"), False))
    if include_usage:
        usage = {
            "id": f"chatcmpl-fake{response_id:06d}",
            "object": "chat.completion.chunk",
            "created": _FIXED_CREATED,
            "model": request.model,
            "system_fingerprint": None,
            "choices": [],
            "usage": _openai_usage(plan),
        }
        frames.append((b"data: " + _dumps(usage) + b"\n\n", False))
    frames.append((b"data: [DONE]\n\n", False))
    return frames


_ERROR_TYPES: dict[int, tuple[str, str]] = {
    # status: (Anthropic error type, OpenAI error code)
    400: ("invalid_request_error", "invalid_request_error"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "permission_denied"),
    404: ("not_found_error", "not_found"),
    408: ("timeout_error", "timeout"),
    413: ("request_too_large", "request_too_large"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    500: ("api_error", "server_error"),
    502: ("api_error", "server_error"),
    503: ("api_error", "server_error"),
    504: ("timeout_error", "timeout"),
    529: ("overloaded_error", "server_overloaded"),
}


def _error_body(api: Api, status: int, message: str) -> dict[str, Any]:
    anthropic_type, openai_code = _ERROR_TYPES.get(
        status,
        ("api_error", "server_error")
        if status >= 500
        else ("invalid_request_error", "invalid_request_error"),
    )
    if api == "anthropic":
        return {"type": "error", "error": {"type": anthropic_type, "message": message}}
    openai_type = (
        "server_error"
        if status >= 500
        else ("requests" if status == 429 else "invalid_request_error")
    )
    return {"error": {"message": message, "type": openai_type, "param": None, "code": openai_code}}


# ---------------------------------------------------------------------------------------------
# Helpers


def _dumps(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _args_json(args: Mapping[str, Any]) -> str:
    return json.dumps(args, separators=(",", ":"))


def _fragments(text: str, parts: int = 3) -> list[str]:
    """`text` in up to `parts` pieces, as tool-call arguments stream."""
    size = max(1, math.ceil(len(text) / parts))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _split(text: str, chunks: int | None) -> list[str]:
    """`text` as the deltas a stream sends: `chunks` slices of about equal length, or one per word."""
    if not text:
        return []
    if chunks is None:
        pieces = re.findall(r"\s*\S+", text)
        if not pieces:
            return [text]
        pieces[-1] += text[len("".join(pieces)) :]  # trailing whitespace
        return pieces
    count = max(1, min(chunks, len(text)))
    bounds = [round(i * len(text) / count) for i in range(count + 1)]
    return [text[bounds[i] : bounds[i + 1]] for i in range(count)]


def _break_index(frames: Sequence[_Frame], after: int | None) -> int | None:
    """The index of the first frame not to send: the delta after the first `after` deltas, or,
    with fewer deltas, the frame after the last one."""
    if after is None:
        return None
    seen = 0
    last_delta = -1
    for index, (_, is_delta) in enumerate(frames):
        if is_delta:
            if seen == after:
                return index
            seen += 1
            last_delta = index
    return last_delta + 1 if last_delta >= 0 else len(frames) - 1


def _input_tokens(body: Mapping[str, Any]) -> int:
    prompt = {key: body.get(key) for key in ("system", "messages", "tools")}
    return estimate_tokens(json.dumps(prompt, sort_keys=True, separators=(",", ":")))


def _as_dict(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _blocks(content: object) -> list[dict[str, Any]]:
    if isinstance(content, list):
        return [block for block in content if isinstance(block, dict)]
    return []


def _text_of(content: object) -> str:
    """The text of a message or block content: a string, or the text blocks of a list."""
    if isinstance(content, str):
        return content
    return "\n".join(
        str(block.get("text", ""))
        for block in _blocks(content)
        if block.get("type") in ("text", "input_text")
    )


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _start(
    send: Send, status: int, content_type: str, headers: Sequence[tuple[str, str]] = ()
) -> None:
    all_headers = [
        ("content-type", content_type),
        ("request-id", "req_fake"),
        ("x-request-id", "req_fake"),
    ]
    all_headers += headers
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in all_headers],
        }
    )


async def _send_json(
    send: Send, status: int, body: Mapping[str, Any], headers: Sequence[tuple[str, str]] = ()
) -> None:
    data = _dumps(body)
    await _start(send, status, "application/json", [("content-length", str(len(data))), *headers])
    await send({"type": "http.response.body", "body": data, "more_body": False})


class NoTutorTools:
    """The tutor's tools (`lyceum.tutor.llm.TutorTools`) with nothing behind them: the
    provider path alone (`llm.stream_answer`), tested or measured without a course."""

    async def search_course_material(self, query: str) -> str:
        return ""

    async def get_lesson(self, lesson: int) -> str:
        return ""

    async def get_my_progress(self) -> str:
        return ""

    async def search_catalog(self, query: str) -> str:
        return ""


def main() -> None:  # pragma: no cover - a manual tool
    parser = argparse.ArgumentParser(description="Serve the fake LLM until interrupted.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--first-token-delay", type=float, default=0.0)
    parser.add_argument("--chunk-delay", type=float, default=0.0)
    parser.add_argument("--stream-duration", type=float, default=None)
    options = parser.parse_args()
    server = FakeLLM(
        first_token_delay=options.first_token_delay,
        chunk_delay=options.chunk_delay,
        stream_duration=options.stream_duration,
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with server.start(port=options.port):
        print(f"anthropic: {server.base_url}  openai: {server.openai_base_url}", flush=True)
        while not stop.wait(1):
            pass


if __name__ == "__main__":  # pragma: no cover
    main()
