"""Scenario: the AI tutor's streaming path, against a fake model provider.

    python bench/tutor.py [--questions N] [--first-token-delay S] [--streams N]
                          [--stream-duration S] [--rounds R] [--json PATH] [--py-spy]

1. Starts its own embedded PostgreSQL in a temp dir, creates a fresh database and
   migrates it, loads the demo catalog (`lyceum demo`) and indexes one course's lessons
   (`lyceum reindex --course`, the demo's "The Living Cell"), so that every question's
   retrieval finds real passages to cite.
2. Starts the fake provider (`python -m tests.support.fake_llm`, the Anthropic Messages
   API by default, OpenAI Chat Completions with `--provider openai`) as a process of its
   own, then Lyceum (uvicorn, one worker) pointed at it with AI_BASE_URL, the tutor's
   rate limit raised, its answer cache off (TUTOR_CACHE_TTL_SECONDS=0) so that every
   question reaches the provider, and a database pool of 40 + 40 connections.
   Registers `--learners` accounts through the API and enrols them in the course.
3. Time to first streamed byte: with the fake's first-token delay D, `--questions`
   questions one at a time (`Accept: text/event-stream`), each in a new conversation,
   from a separate process: time from writing the request to reading the first `delta`
   event, minus D. Alternating with them, the same question streamed straight from the
   fake (a raw Messages request), minus D, as the baseline. Target: Lyceum p50 < 30 ms.
4. Concurrent streams: Lyceum restarted on a second fake whose answers each stream for
   `--stream-duration` seconds (first-token delay 0). `--streams` questions are sent at
   once, each on its own connection, from a separate process; W is the wall time until
   the last `done` event. Ratio = stream duration / W (1.0: Lyceum adds nothing). The
   same burst straight against the fake is the control. Median of `--rounds`. Target:
   ratio >= 0.9.

Exit code 0 whatever the figures; 1 if a server fails to start or any request fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal

import httpx
import psutil
import psycopg

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    LOOPBACK,
    REPO_ROOT,
    BenchError,
    Server,
    frame_parts,
    load_average,
    median,
    migrated_postgres,
    percentile,
    scenario_main,
    start_server,
    stop_server,
    tail,
    uvicorn_argv,
    wait_until_settled,
)

SCENARIO = "tutor"
DATABASE = "lyceum_bench_tutor"
COURSE_SLUG = "cell-biology"
PASSWORD = "benchmark passphrase 2026"  # noqa: S105 (throwaway benchmark accounts)
TARGET_TTFB_P50_MS = 30.0
TARGET_RATIO = 0.9
LYCEUM_STARTUP_TIMEOUT = 120.0
FAKE_STARTUP_TIMEOUT = 30.0
REQUEST_TIMEOUT = 120.0
MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_CHUNKS = 200_000
TUTOR_RATE_LIMIT = "1000000/hour"
WARM_QUESTIONS = 5  # one at a time on a fresh server, before its first burst
FAKE_MODEL = {"claude": "claude-sonnet-4-6", "openai": "gpt-5.2"}

# Questions about "The Living Cell"; the fake echoes each one back with a citation [1].
QUESTIONS = (
    "What does the mitochondrion do for the cell?",
    "How does osmosis move water across a membrane?",
    "What is the difference between prokaryotic and eukaryotic cells?",
    "Why do plant cells have a cell wall?",
    "How is DNA copied before a cell divides?",
    "What happens during transcription?",
    "How do ribosomes build a protein?",
    "What is active transport and why does it need energy?",
    "What are the phases of mitosis?",
    "How is meiosis different from mitosis?",
    "What does the Golgi apparatus do?",
    "How do chloroplasts capture energy from light?",
    "What is the plasma membrane made of?",
    "Why are most cells so small?",
    "What is a gene?",
    "How does diffusion differ from facilitated diffusion?",
    "What does the nucleus contain?",
    "What is ATP used for?",
    "How do lysosomes break things down?",
    "What does cell theory say?",
)

FAKE_PREAMBLE = (
    "<context> Course: The Living Cell: An Introduction to Cell Biology. Syllabus: cell "
    "theory and microscopes; prokaryotic and eukaryotic cells; the plasma membrane; a tour "
    "of the organelles; DNA, genes and chromosomes; from DNA to protein. </context>"
)

Kind = Literal["lyceum", "anthropic", "openai"]


# The streaming client ---------------------------------------------------------------------


@dataclass(frozen=True)
class StreamRequest:
    """One streamed POST: where, what, and how to recognise its content deltas."""

    port: int
    path: str
    body: bytes
    headers: tuple[tuple[str, str], ...]
    kind: Kind

    def wire(self) -> bytes:
        lines = [
            f"POST {self.path} HTTP/1.1",
            f"Host: {LOOPBACK}:{self.port}",
            "User-Agent: lyceum-bench",
            "Content-Type: application/json",
            f"Content-Length: {len(self.body)}",
            *(f"{name}: {value}" for name, value in self.headers),
            "",
            "",
        ]
        return "\r\n".join(lines).encode("latin-1") + self.body


@dataclass
class StreamSample:
    """One streamed answer, times in seconds from writing the request."""

    kind: str
    status: int = 0
    head: float = math.nan  # the status line and headers were read
    first_delta: float = math.nan  # the first content delta event was read
    last_delta: float = math.nan
    done: float = math.nan  # the whole response was read
    deltas: int = 0
    max_gap: float = math.nan  # the longest wait between two deltas
    events: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    started_at: float = 0.0  # perf_counter when the request was written (same process)

    @property
    def ok(self) -> bool:
        return self.error is None


def _event_name(block: bytes, kind: Kind) -> str:
    """The SSE event's name, or for OpenAI's unnamed chunks `delta`/`chunk`/`end`."""
    if kind == "openai":
        if block.startswith(b"data: [DONE]"):
            return "end"
        if b'"delta":{"content":"' in block and b'"delta":{"content":""' not in block:
            return "delta"
        return "chunk"
    for line in block.split(b"\n"):
        if line.startswith(b"event:"):
            name = line[6:].strip().decode("ascii", "replace")
            if kind == "anthropic" and name == "content_block_delta":
                return "delta"
            return name
    return "-"


def _parse_head(head: bytes) -> tuple[int, bool, int | None, bool]:
    """(status, chunked, content length, connection stays open)."""
    lines = head.split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    if not version.startswith(b"HTTP/1."):
        raise ValueError(f"bad status line {lines[0][:80]!r}")
    status = int(rest[:3])
    keep_alive = version == b"HTTP/1.1"
    chunked = False
    length: int | None = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            keep_alive = False
    return status, chunked, length, keep_alive


async def _read_stream(
    reader: asyncio.StreamReader, sample: StreamSample, kind: Kind, sent: float
) -> bool:
    """Read one response into `sample`; returns whether the connection stays open."""
    perf_counter = time.perf_counter
    head = await reader.readuntil(b"\r\n\r\n")
    sample.head = perf_counter() - sent
    status, chunked, length, keep_alive = _parse_head(head)
    sample.status = status
    if not chunked:
        if length is None:
            body = await reader.read(MAX_BODY_BYTES)
            keep_alive = False
        else:
            body = await reader.readexactly(min(length, MAX_BODY_BYTES))
        sample.done = perf_counter() - sent
        sample.error = f"HTTP {status} without a stream: {body[:200]!r}"
        return keep_alive
    events: Counter[str] = Counter()
    buffer = b""
    total = 0
    previous = math.nan
    for _ in range(MAX_CHUNKS):
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            for _ in range(100):  # trailers, up to an empty line
                if await reader.readuntil(b"\r\n") == b"\r\n":
                    break
            break
        data = await reader.readexactly(size + 2)
        now = perf_counter() - sent
        total += size
        if total > MAX_BODY_BYTES:
            raise ValueError("streamed body too large")
        buffer += data[:-2]
        while (end := buffer.find(b"\n\n")) >= 0:
            block, buffer = buffer[:end], buffer[end + 2 :]
            name = _event_name(block, kind)
            events[name] += 1
            if name == "delta":
                if sample.deltas == 0:
                    sample.first_delta = now
                else:
                    gap = now - previous
                    if not gap <= sample.max_gap:  # also replaces the initial NaN
                        sample.max_gap = gap
                previous = now
                sample.last_delta = now
                sample.deltas += 1
    else:
        raise ValueError("too many chunks")
    sample.done = perf_counter() - sent
    sample.events = dict(events)
    if status not in (200, 201):
        sample.error = f"HTTP {status}"
    elif kind == "lyceum" and (events.get("error") or not events.get("done")):
        sample.error = f"stream ended without a clean done event: {dict(events)}"
    elif sample.deltas == 0:
        sample.error = f"no content delta in the stream: {dict(events)}"
    return keep_alive


# How a write on a keep-alive connection the server has already closed ends.
CLOSED_IDLE = ("IncompleteReadError: 0 bytes", "ConnectionResetError", "BrokenPipeError")


class _Connection:
    """A keep-alive connection to one port, reopened when the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def stream(self, request: StreamRequest) -> StreamSample:
        reused = self.writer is not None
        sample = await self._stream(request)
        if reused and sample.status == 0 and (sample.error or "").startswith(CLOSED_IDLE):
            # The server closed the idle keep-alive connection (uvicorn's keep-alive
            # timeout) before reading the request: nothing was sent to the application,
            # so the request is written again on a new connection, as HTTP clients do.
            sample = await self._stream(request)
        return sample

    async def _stream(self, request: StreamRequest) -> StreamSample:
        sample = StreamSample(kind=request.kind)
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                if self.writer is None:
                    self.reader, self.writer = await asyncio.open_connection(
                        LOOPBACK, self.port, limit=MAX_HEAD_BYTES
                    )
                assert self.reader is not None
                sample.started_at = sent = time.perf_counter()
                self.writer.write(request.wire())
                keep_alive = await _read_stream(self.reader, sample, request.kind, sent)
        except (OSError, EOFError, ValueError, TimeoutError, asyncio.LimitOverrunError) as error:
            sample.error = f"{type(error).__name__}: {error}"[:300]
            keep_alive = False
        if not keep_alive:
            self.close()
        return sample

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass(frozen=True)
class SequentialSpec:
    """Scenario 1: pairs (baseline, lyceum) one request at a time, alternating."""

    pairs: tuple[tuple[StreamRequest, StreamRequest], ...]
    pause: float = 0.02  # between two requests, so one answer's storing does not overlap


@dataclass(frozen=True)
class BurstSpec:
    """Scenario 2: every request at once, each on a fresh connection."""

    requests: tuple[StreamRequest, ...]


@dataclass
class BurstResult:
    samples: list[StreamSample]
    wall: float  # from the first write to the last response read in full
    client_cpu: float  # client CPU seconds / wall


async def _sequential(spec: SequentialSpec) -> list[tuple[StreamSample, StreamSample]]:
    connections: dict[int, _Connection] = {}
    results = []
    for baseline, lyceum in spec.pairs:
        pair = []
        for request in (baseline, lyceum):
            connection = connections.setdefault(request.port, _Connection(request.port))
            pair.append(await connection.stream(request))
            await asyncio.sleep(spec.pause)
        results.append((pair[0], pair[1]))
    for connection in connections.values():
        connection.close()
    return results


async def _burst(spec: BurstSpec) -> BurstResult:
    cpu_started = time.process_time()
    started = time.perf_counter()

    async def one(request: StreamRequest) -> StreamSample:
        connection = _Connection(request.port)
        try:
            return await connection.stream(request)
        finally:
            connection.close()

    samples = await asyncio.gather(*(one(request) for request in spec.requests))
    ends = [s.started_at + s.done for s in samples if s.done == s.done]
    wall = (max(ends) if ends else time.perf_counter()) - started
    client_cpu = (time.process_time() - cpu_started) / max(wall, 1e-9)
    return BurstResult(list(samples), wall, client_cpu)


async def _client(spec: SequentialSpec | BurstSpec) -> Any:
    return await (_sequential(spec) if isinstance(spec, SequentialSpec) else _burst(spec))


def _child_main(
    work: Callable[[Any], Coroutine[Any, Any, Any]], spec: Any, results: Connection
) -> None:
    """Entry point of a measuring process: run `work(spec)` on uvloop, report, exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        try:
            import uvloop

            result: Any = uvloop.run(work(spec))
        except ImportError:
            result = asyncio.run(work(spec))
        results.send(("ok", result))
    except Exception as error:
        with contextlib.suppress(OSError):
            results.send(("error", f"{type(error).__name__}: {error}"))
        raise
    finally:
        results.close()


def run_child(
    work: Callable[[Any], Coroutine[Any, Any, Any]], spec: Any, budget: float, name: str
) -> Any:
    """Run `work(spec)` in a separate OS process (its own interpreter and GIL): the
    client, and the provider path measured alone. `work` is a module-level coroutine
    function (the process is spawned, so it is pickled by name)."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child_main, args=(work, spec, sender), name=name, daemon=True)
    process.start()
    sender.close()
    try:
        if not receiver.poll(budget):
            raise BenchError(f"{name} did not report within {budget:.0f}s")
        try:
            kind, payload = receiver.recv()
        except EOFError:
            raise BenchError(
                f"{name} died without reporting (exit code {process.exitcode})"
            ) from None
        if kind != "ok":
            raise BenchError(f"{name} failed: {payload}")
        return payload
    except BaseException:
        process.terminate()
        raise
    finally:
        receiver.close()
        process.join(10.0)
        if process.is_alive():
            process.kill()
            process.join(5.0)


def run_client(spec: SequentialSpec | BurstSpec, budget: float) -> Any:
    return run_child(_client, spec, budget, "bench-tutor-client")


# The provider path alone ------------------------------------------------------------------


@dataclass(frozen=True)
class FloorSpec:
    """`streams` answers at once from the fake, in one process, through the provider's
    SDK alone and through Lyceum's own `llm.stream_answer` (its stream and tool loop over
    the same SDK client), without the rest of Lyceum."""

    port: int
    provider: str
    streams: int
    question: str


@dataclass(frozen=True)
class FloorResult:
    path: str
    answers: int
    deltas: int
    wall_s: float
    cpu_ms_per_answer: float


async def _floor(spec: FloorSpec) -> list[FloorResult]:
    from pydantic import AnyHttpUrl, SecretStr
    from tests.support.fake_llm import NoTutorTools

    from lyceum.config import AIProvider, Settings
    from lyceum.kit.ai.models import choose_model, close_streaming_clients
    from lyceum.tutor import llm

    provider = AIProvider.claude if spec.provider == "claude" else AIProvider.openai
    base = f"http://{LOOPBACK}:{spec.port}" + ("" if provider is AIProvider.claude else "/v1")
    settings = Settings(
        ai_provider=provider,
        ai_api_key=SecretStr("bench-key"),
        ai_base_url=AnyHttpUrl(base),
        ai_model=FAKE_MODEL[spec.provider],
    )
    choice = choose_model(settings)
    prompt = f"{FAKE_PREAMBLE}\n\n{spec.question}"

    # One client each, as Lyceum keeps one (`kit.ai.models._build`): a client per answer would
    # measure client construction and connection set-up.
    from anthropic import AsyncAnthropic
    from anthropic import DefaultAioHttpClient as AnthropicAioHttp
    from openai import AsyncOpenAI
    from openai import DefaultAioHttpClient as OpenAIAioHttp

    default_transport = (
        AsyncAnthropic(api_key="bench-key", base_url=base, max_retries=0),
        AsyncOpenAI(api_key="bench-key", base_url=base, max_retries=0),
    )
    # The SDKs' documented aiohttp transport (their `aiohttp` extra), which Lyceum
    # streams over (`kit.ai.models.streaming_client`): the like-for-like floor.
    aiohttp_transport = (
        AsyncAnthropic(
            api_key="bench-key", base_url=base, max_retries=0, http_client=AnthropicAioHttp()
        ),
        AsyncOpenAI(api_key="bench-key", base_url=base, max_retries=0, http_client=OpenAIAioHttp()),
    )

    async def through_sdk(clients: tuple[AsyncAnthropic, AsyncOpenAI] = default_transport) -> int:
        anthropic, openai = clients
        deltas = 0
        if provider is AIProvider.claude:
            stream = await anthropic.messages.create(
                model=FAKE_MODEL["claude"],
                max_tokens=1024,
                messages=[{"role": "user", "content": prompt}],
                stream=True,
            )
            async for event in stream:
                deltas += event.type == "content_block_delta"
            return deltas
        chunks = await openai.chat.completions.create(
            model=FAKE_MODEL["openai"],
            messages=[{"role": "user", "content": prompt}],
            stream=True,
        )
        async for chunk in chunks:
            deltas += bool(chunk.choices and chunk.choices[0].delta.content)
        return deltas

    async def through_stream_answer() -> int:
        deltas = 0
        async for event in llm.stream_answer(
            choice,
            instructions="You are the tutor of a course.",
            history=[],
            prompt=prompt,
            deps=llm.TutorDeps(tools=NoTutorTools()),
        ):
            deltas += isinstance(event, llm.TextDelta)
        return deltas

    results = []

    async def through_sdk_aiohttp() -> int:
        return await through_sdk(aiohttp_transport)

    try:
        for label, one in (
            ("SDK alone", through_sdk),
            ("SDK alone, aiohttp transport", through_sdk_aiohttp),
            ("llm.stream_answer", through_stream_answer),
        ):
            await asyncio.gather(*(one() for _ in range(5)))  # warm: imports, connections
            cpu, started = time.process_time(), time.perf_counter()
            counts = await asyncio.gather(*(one() for _ in range(spec.streams)))
            wall, used = time.perf_counter() - started, time.process_time() - cpu
            results.append(
                FloorResult(
                    path=label,
                    answers=spec.streams,
                    deltas=int(median([float(count) for count in counts])),
                    wall_s=wall,
                    cpu_ms_per_answer=used / spec.streams * 1000,
                )
            )
    finally:
        for client in (*default_transport, *aiohttp_transport):
            await client.close()
        await close_streaming_clients()
    return results


def run_floor(spec: FloorSpec, budget: float) -> list[FloorResult]:
    """In a process of its own, like the client: Lyceum's interpreter is not involved."""
    floor: list[FloorResult] = run_child(_floor, spec, budget, "bench-tutor-provider-path")
    return floor


# Requests ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Learner:
    email: str
    token: str


def lyceum_request(port: int, conversation_id: str, token: str, question: str) -> StreamRequest:
    return StreamRequest(
        port=port,
        path=f"/api/v1/tutor/conversations/{conversation_id}/messages",
        body=json.dumps({"content": question}).encode(),
        headers=(("Authorization", f"Bearer {token}"), ("Accept", "text/event-stream")),
        kind="lyceum",
    )


def fake_request(port: int, provider: str, question: str) -> StreamRequest:
    """A raw streamed request straight to the fake, as an SDK would send it. The fake
    echoes the first 200 characters of the prompt, so a preamble as long as Lyceum's
    context block gives answers of the same length (about as many deltas)."""
    messages = [{"role": "user", "content": f"{FAKE_PREAMBLE}\n\n{question}"}]
    if provider == "claude":
        body: dict[str, Any] = {
            "model": FAKE_MODEL["claude"],
            "max_tokens": 1024,
            "stream": True,
            "messages": messages,
        }
        return StreamRequest(
            port=port,
            path="/v1/messages",
            body=json.dumps(body).encode(),
            headers=(
                ("x-api-key", "bench-key"),
                ("anthropic-version", "2023-06-01"),
                ("Accept", "application/json"),
            ),
            kind="anthropic",
        )
    body = {"model": FAKE_MODEL["openai"], "stream": True, "messages": messages}
    return StreamRequest(
        port=port,
        path="/v1/chat/completions",
        body=json.dumps(body).encode(),
        headers=(("Authorization", "Bearer bench-key"), ("Accept", "application/json")),
        kind="openai",
    )


# Processes --------------------------------------------------------------------------------


def lyceum_cli(temp: Path, url: str, *argv: str, timeout: float = 300.0) -> str:
    """Run `python -m lyceum ARGV` on the bench database; returns its output."""
    env = {**os.environ, "DATABASE_URL": url, "LYCEUM_DATA_DIR": str(temp / "data")}
    env["LOG_LEVEL"] = "WARNING"
    result = subprocess.run(
        [sys.executable, "-m", "lyceum", *argv],
        cwd=temp,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(
            f"`lyceum {' '.join(argv)}` exited with {result.returncode}:\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )
    return result.stdout


def seed_course(temp: Path, url: str) -> tuple[str, str, int, int]:
    """The demo catalog, then the lesson index of one course: (id, title, lessons, chunks)."""
    started = time.perf_counter()
    lyceum_cli(temp, url, "demo")
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT id, title FROM courses WHERE slug = %s", (COURSE_SLUG,)
        ).fetchone()
        if row is None:
            raise BenchError(f"`lyceum demo` did not create the course {COURSE_SLUG!r}")
        course_id, title = str(row[0]), str(row[1])
    lyceum_cli(temp, url, "reindex", "--course", course_id)
    with psycopg.connect(url) as conn:
        lessons = conn.execute(
            "SELECT count(*) FROM lessons WHERE course_id = %s", (course_id,)
        ).fetchone()
        chunks = conn.execute(
            "SELECT count(*) FROM content_chunks WHERE course_id = %s", (course_id,)
        ).fetchone()
    lesson_count = int(lessons[0]) if lessons else 0
    chunk_count = int(chunks[0]) if chunks else 0
    print(
        f"  demo catalog loaded, {lesson_count} lessons of {title!r} indexed into "
        f"{chunk_count} chunks in {time.perf_counter() - started:.1f}s",
        flush=True,
    )
    if chunk_count == 0:
        raise BenchError("the course's lessons were not indexed")
    return course_id, title, lesson_count, chunk_count


def start_fake(
    temp: Path,
    name: str,
    *,
    first_token_delay: float,
    chunk_delay: float = 0.0,
    stream_duration: float | None = None,
) -> Server:
    def argv(port: int) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "tests.support.fake_llm",
            "--port",
            str(port),
            "--first-token-delay",
            f"{first_token_delay:g}",
            "--chunk-delay",
            f"{chunk_delay:g}",
        ]
        if stream_duration is not None:
            command += ["--stream-duration", f"{stream_duration:g}"]
        return command

    return start_server(
        name,
        argv,
        log_path=temp / f"{name}.log",
        env=os.environ,
        cwd=REPO_ROOT,  # `tests.support.fake_llm` imports from the checkout
        ready_path="/v1/models",
        timeout=FAKE_STARTUP_TIMEOUT,
    )


def lyceum_env(
    temp: Path, url: str, fake: Server, args: argparse.Namespace, secret: str
) -> dict[str, str]:
    base = f"http://{LOOPBACK}:{fake.port}"
    threads: dict[str, str] = {}
    if args.torch_threads:
        threads = {"OMP_NUM_THREADS": str(args.torch_threads)}
    return {
        **os.environ,
        "DATABASE_URL": url,
        "LYCEUM_DATA_DIR": str(temp / "data"),
        "LOG_LEVEL": "INFO",  # Lyceum's own access log stays on, as in a default install
        "ENVIRONMENT": "development",
        "SECRET_KEY": secret,  # the same for both servers, so the learners' tokens carry over
        "ACCESS_TOKEN_EXPIRE_MINUTES": "600",
        "AI_PROVIDER": args.provider,
        "AI_API_KEY": "bench-key",
        "AI_BASE_URL": base if args.provider == "claude" else f"{base}/v1",
        "TUTOR_RATE_LIMIT": TUTOR_RATE_LIMIT,
        "TUTOR_CACHE_TTL_SECONDS": "0",
        "DB_POOL_SIZE": str(args.db_pool_size),
        "DB_MAX_OVERFLOW": str(args.db_max_overflow),
        "LOGIN_RATE_LIMIT": "1000000/minute",
        "LOGIN_ACCOUNT_RATE_LIMIT": "1000000/minute",
        "REGISTRATION_RATE_LIMIT": "1000000/minute",
        **threads,
    }


def start_lyceum(temp: Path, name: str, env: dict[str, str]) -> Server:
    server = start_server(
        name,
        lambda port: uvicorn_argv("lyceum.app:create_app", port, "--factory"),
        log_path=temp / f"{name}.log",
        env=env,
        cwd=temp,  # away from the checkout, so a developer's `.env` does not leak in
        timeout=LYCEUM_STARTUP_TIMEOUT,
    )
    wait_until_settled(server)
    return server


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    """The embedded server's postmaster and its backends."""
    for process in psutil.process_iter(["cmdline"]):
        try:
            cmdline = process.info["cmdline"] or []
        except psutil.Error:
            continue
        if any(str(pgdata) in part for part in cmdline) and "postgres" in " ".join(cmdline[:1]):
            with contextlib.suppress(psutil.Error):
                return [process, *process.children(recursive=True)]
    return []


@dataclass
class CpuMeter:
    """CPU seconds used by the servers, PostgreSQL and the whole machine over a window.
    PostgreSQL's figure is a lower bound: a backend that exits within the window (a
    pool's overflow connection closed) takes its CPU time with it."""

    servers: dict[str, Server]
    pgdata: Path
    before: dict[str, float] = field(default_factory=dict)
    postgres_before: dict[int, float] = field(default_factory=dict)

    def _postgres(self) -> dict[int, float]:
        times: dict[int, float] = {}
        for process in postgres_processes(self.pgdata):
            with contextlib.suppress(psutil.Error):
                cpu = process.cpu_times()
                times[process.pid] = cpu.user + cpu.system
        return times

    def _now(self) -> dict[str, float]:
        figures = {name: server.cpu_seconds() for name, server in self.servers.items()}
        machine = psutil.cpu_times()
        figures["machine_busy"] = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
        return figures

    def start(self) -> None:
        self.before = self._now()
        self.postgres_before = self._postgres()

    def stop(self) -> dict[str, float]:
        after = self._now()
        used = {name: after[name] - self.before.get(name, 0.0) for name in after}
        used["postgres"] = sum(
            cpu - self.postgres_before.get(pid, 0.0) for pid, cpu in self._postgres().items()
        )
        return used


# Setup through the API ------------------------------------------------------------------


def register_learners(port: int, url: str, course_id: str, count: int) -> list[Learner]:
    """Register, verify (SQL), sign in and enrol `count` learners."""
    base = f"http://{LOOPBACK}:{port}"
    tag = secrets.token_hex(4)
    learners = []
    with httpx.Client(base_url=base, timeout=60) as http:
        ids = []
        emails = [f"learner-{tag}-{index}@example.com" for index in range(count)]
        for index, email in enumerate(emails):
            response = http.post(
                "/api/v1/auth/register",
                json={"email": email, "password": PASSWORD, "full_name": f"Learner {index}"},
            )
            if response.status_code != 201:
                raise BenchError(f"register: {response.status_code} {response.text[:300]}")
            ids.append(response.json()["id"])
        with psycopg.connect(url) as conn:
            conn.execute(
                "UPDATE users SET email_verified_at = created_at WHERE id = ANY(%s::uuid[])",
                (ids,),
            )
        for email in emails:
            response = http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
            if response.status_code != 200:
                raise BenchError(f"login: {response.status_code} {response.text[:300]}")
            token = response.json()["access_token"]
            enrolled = http.post(
                f"/api/v1/courses/{course_id}/enrollments",
                headers={"Authorization": f"Bearer {token}"},
            )
            if enrolled.status_code != 201:
                raise BenchError(f"enrol: {enrolled.status_code} {enrolled.text[:300]}")
            learners.append(Learner(email, token))
    return learners


def new_conversations(
    port: int, course_id: str, learners: Sequence[Learner], count: int
) -> list[tuple[str, Learner]]:
    """`count` fresh conversations, the learners taking turns; 8 requests at a time."""

    async def create() -> list[tuple[str, Learner]]:
        limits = httpx.Limits(max_connections=8)
        async with httpx.AsyncClient(
            base_url=f"http://{LOOPBACK}:{port}", timeout=60, limits=limits
        ) as http:
            semaphore = asyncio.Semaphore(8)

            async def one(index: int) -> tuple[str, Learner]:
                learner = learners[index % len(learners)]
                async with semaphore:
                    response = await http.post(
                        "/api/v1/tutor/conversations",
                        json={"course_id": course_id, "title": f"bench {index}"},
                        headers={"Authorization": f"Bearer {learner.token}"},
                    )
                if response.status_code != 201:
                    raise BenchError(
                        f"new conversation: {response.status_code} {response.text[:300]}"
                    )
                return str(response.json()["id"]), learner

            return list(await asyncio.gather(*(one(index) for index in range(count))))

    return asyncio.run(create())


# py-spy -----------------------------------------------------------------------------------


class Profiler:
    """`py-spy record` on a server for a window (raw collapsed stacks), when asked for."""

    def __init__(self, enabled: bool, temp: Path) -> None:
        self.executable = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.enabled = enabled and Path(self.executable).exists()
        if enabled and not self.enabled:
            print("  py-spy not found: profiling skipped", flush=True)
        self.temp = temp
        self.process: subprocess.Popen[bytes] | None = None
        self.output: Path | None = None

    def start(self, server: Server, label: str) -> None:
        if not self.enabled:
            return
        self.output = self.temp / f"py-spy-{label}.txt"
        log = (self.temp / f"py-spy-{label}.log").open("wb")
        self.process = subprocess.Popen(
            [
                self.executable,
                "record",
                "--pid",
                str(server.pid),
                "--rate",
                "250",
                "--format",
                "raw",
                "--threads",
                "--gil",  # only the thread running Python: no idle event loop, no waits
                "--nonblocking",
                "--output",
                str(self.output),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        time.sleep(0.5)  # let it attach

    def stop(self) -> Path | None:
        process, self.process = self.process, None
        if process is None:
            return None
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        return self.output if self.output is not None and self.output.exists() else None


def _frame_label(frame: str) -> str:
    """`func (path/to/module.py:12)` -> `module.py:func`, shortened to the package path."""
    name, path = frame_parts(frame)
    return f"{path}:{name}"


# Where the event loop's samples go: the first rule whose marker is on the stack wins.
# SQLAlchemy runs the ORM's synchronous side in greenlets, whose stacks py-spy shows
# without the awaiting coroutine, so that work has a bucket of its own.
PHASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("answer: store the answer (AnswerService._store)", ("AnswerService._store",)),
    ("answer: model stream (llm.stream_answer: SDK request, SSE parsing)", ("stream_answer",)),
    ("answer: Lyceum's loop over the model events", ("AnswerService._produce",)),
    ("answer: SSE framing and writes", ("ask.<locals>.stream", "StreamingResponse")),
    ("ask: retrieval (search_course_material)", ("search_course_material",)),
    ("ask: grounding (syllabus, progress)", ("TurnService._grounding",)),
    ("ask: rest of TurnService.prepare", ("TurnService.prepare",)),
    ("ask: commit, response", ("ask (lyceum/tutor/endpoints.py",)),
    ("dependencies: auth, session, conversation, membership", ("solve_dependencies",)),
    ("SQLAlchemy ORM in greenlets (any phase)", ("greenlet", "Session.")),
    ("middleware (request id, access log, cache)", ("lyceum/kit/middleware", "responsecache")),
    ("uvicorn: HTTP parsing", ("httptools_impl",)),
)


def summarize_profile(path: Path, top: int = 15) -> dict[str, Any]:
    """Samples per thread; in the event loop's thread, samples per phase of a turn and
    the functions at the top of the stack (self time)."""
    threads: Counter[str] = Counter()
    phases: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    loop_total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0]
        threads[thread.split(": ", 1)[-1]] += count
        if "MainThread" not in thread:  # the event loop runs in the main thread
            continue
        loop_total += count
        body = ";".join(frames[1:])
        phase = next(
            (name for name, markers in PHASES if any(marker in body for marker in markers)),
            "other (event loop, truncated stacks)",
        )
        phases[phase] += count
        if len(frames) > 1:
            leaf[_frame_label(frames[-1])] += count
    return {
        "threads": dict(threads.most_common()),
        "loop_samples": loop_total,
        "phases": phases.most_common(),
        "self": leaf.most_common(top),
    }


# Statistics -------------------------------------------------------------------------------


def stats_ms(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(v for v in values if v == v)
    ms = 1000.0
    return {
        "n": float(len(ordered)),
        "p50_ms": percentile(ordered, 50) * ms,
        "p90_ms": percentile(ordered, 90) * ms,
        "p99_ms": percentile(ordered, 99) * ms,
        "max_ms": (ordered[-1] * ms) if ordered else math.nan,
        "mean_ms": (sum(ordered) / len(ordered) * ms) if ordered else math.nan,
    }


def fmt(value: float, digits: int = 1) -> str:
    return "-" if value != value else f"{value:,.{digits}f}"


# Scenario 1: time to first streamed byte ------------------------------------------------


def scenario_ttfb(
    args: argparse.Namespace,
    course_id: str,
    learners: list[Learner],
    servers: dict[str, Server],
    profiler: Profiler,
    pgdata: Path,
) -> dict[str, Any]:
    lyceum, fake = servers["lyceum-ttfb"], servers["fake-ttfb"]
    delay = args.first_token_delay
    total = args.warmup_questions + args.questions
    chats = new_conversations(lyceum.port, course_id, learners, total)
    pairs = tuple(
        (
            fake_request(fake.port, args.provider, QUESTIONS[index % len(QUESTIONS)]),
            lyceum_request(lyceum.port, chat, learner.token, QUESTIONS[index % len(QUESTIONS)]),
        )
        for index, (chat, learner) in enumerate(chats)
    )
    print(
        f"time to first byte: {args.warmup_questions} warm-up + {args.questions} measured "
        f"questions, one at a time, fake first-token delay {delay * 1000:g} ms, alternating "
        "with the same request straight to the fake ...",
        flush=True,
    )
    warm = run_client(SequentialSpec(pairs[: args.warmup_questions]), 120 + 30 * total)
    meter = CpuMeter({"lyceum": lyceum, "fake": fake}, pgdata)
    profiler.start(lyceum, "ttfb")
    meter.start()
    started = time.perf_counter()
    measured = run_client(SequentialSpec(pairs[args.warmup_questions :]), 120 + 30 * total)
    elapsed = time.perf_counter() - started
    cpu = meter.stop()
    profile = profiler.stop()
    baseline = [b for b, _ in measured]
    ours = [x for _, x in measured]
    errors = [s for s in baseline + ours if not s.ok]
    warm_errors = [s for pair in warm for s in pair if not s.ok]
    for sample in (errors + warm_errors)[:5]:
        print(f"    error ({sample.kind}): {sample.error}", flush=True)
    ok_ours = [s for s in ours if s.ok]
    ok_base = [s for s in baseline if s.ok]
    figures = {
        "baseline_ttfb_minus_delay": stats_ms([s.first_delta - delay for s in ok_base]),
        "baseline_head": stats_ms([s.head for s in ok_base]),
        "lyceum_ttfb_minus_delay": stats_ms([s.first_delta - delay for s in ok_ours]),
        "lyceum_head": stats_ms([s.head for s in ok_ours]),
        "lyceum_head_to_first_delta_minus_delay": stats_ms(
            [s.first_delta - s.head - delay for s in ok_ours]
        ),
        "lyceum_last_delta_to_done": stats_ms([s.done - s.last_delta for s in ok_ours]),
        "lyceum_total": stats_ms([s.done for s in ok_ours]),
        "baseline_total": stats_ms([s.done for s in ok_base]),
    }
    overhead = [s.first_delta - delay for s in ok_ours]
    return {
        "first_token_delay_s": delay,
        "chunk_delay_s": args.chunk_delay,
        "questions": args.questions,
        "warmup_questions": args.warmup_questions,
        "elapsed_s": elapsed,
        "cpu_seconds": cpu,
        "lyceum_cpu_ms_per_question": cpu["lyceum"] / max(len(ours), 1) * 1000,
        "deltas_per_answer": median([float(s.deltas) for s in ok_ours]) if ok_ours else math.nan,
        "figures": figures,
        "overhead_p50_ms": percentile(sorted(overhead), 50) * 1000,
        "overhead_p99_ms": percentile(sorted(overhead), 99) * 1000,
        "errors": len(errors) + len(warm_errors),
        "profile": str(profile) if profile else None,
        "samples": [{"baseline": asdict(b), "lyceum": asdict(x)} for b, x in measured],
    }


# Scenario 2: concurrent streams ----------------------------------------------------------


def burst_figures(result: BurstResult, duration: float) -> dict[str, Any]:
    ok = [s for s in result.samples if s.ok]
    start = min((s.started_at for s in result.samples), default=0.0)
    # Seconds from the burst's first write, so queueing before the write counts too.
    return {
        "streams": len(result.samples),
        "ok": len(ok),
        "errors": len(result.samples) - len(ok),
        "wall_s": result.wall,
        "ratio": duration / result.wall if result.wall > 0 else 0.0,
        "streams_per_s": len(ok) / result.wall if result.wall > 0 else 0.0,
        "head": stats_ms([s.started_at - start + s.head for s in ok]),
        "first_delta": stats_ms([s.started_at - start + s.first_delta for s in ok]),
        "done": stats_ms([s.started_at - start + s.done for s in ok]),
        "stream_span": stats_ms([s.last_delta - s.first_delta for s in ok]),
        "max_gap": stats_ms([s.max_gap for s in ok]),
        "deltas_per_stream": median([float(s.deltas) for s in ok]) if ok else math.nan,
        "client_cpu": result.client_cpu,
        "error_samples": [s.error for s in result.samples if not s.ok][:5],
        # Per stream, ms: write of the request (from the burst's first write), then head,
        # first delta and done from that write; deltas and the longest gap between two.
        "samples": [
            [
                round((s.started_at - start) * 1000, 1),
                round(s.head * 1000, 1),
                round(s.first_delta * 1000, 1),
                round(s.done * 1000, 1),
                s.deltas,
                round(s.max_gap * 1000, 1),
            ]
            for s in result.samples
        ],
    }


def scenario_streams(
    args: argparse.Namespace,
    course_id: str,
    learners: list[Learner],
    servers: dict[str, Server],
    profiler: Profiler,
    pgdata: Path,
) -> dict[str, Any]:
    lyceum, fake = servers["lyceum-streams"], servers["fake-streams"]
    n = args.streams
    total_rounds = args.warmup_rounds + args.rounds
    print(
        f"concurrent streams: {args.warmup_rounds} warm-up + {args.rounds} measured rounds of "
        f"{n} streams of {args.stream_duration:g} s, each round also straight against the "
        "fake ...",
        flush=True,
    )
    chats = new_conversations(lyceum.port, course_id, learners, n * total_rounds + WARM_QUESTIONS)
    # A few questions one at a time first: the new server loads the embedding model on
    # its first question (seconds), which must not land in a burst.
    warm = [
        (
            fake_request(fake.port, args.provider, QUESTIONS[i]),
            lyceum_request(lyceum.port, chat, learner.token, QUESTIONS[i]),
        )
        for i, (chat, learner) in enumerate(chats[:WARM_QUESTIONS])
    ]
    chats = chats[WARM_QUESTIONS:]
    warm_errors = sum(
        1 for pair in run_client(SequentialSpec(tuple(warm)), 300) for s in pair if not s.ok
    )
    rounds: list[dict[str, Any]] = []
    profiled: Path | None = None
    for index in range(total_rounds):
        warmup = index < args.warmup_rounds
        label = "warm-up" if warmup else f"round {index - args.warmup_rounds + 1}"
        batch = chats[index * n : (index + 1) * n]
        control = BurstSpec(
            tuple(
                fake_request(fake.port, args.provider, QUESTIONS[i % len(QUESTIONS)])
                for i in range(n)
            )
        )
        ours = BurstSpec(
            tuple(
                lyceum_request(lyceum.port, chat, learner.token, QUESTIONS[i % len(QUESTIONS)])
                for i, (chat, learner) in enumerate(batch)
            )
        )
        budget = 120 + REQUEST_TIMEOUT
        meter = CpuMeter({"lyceum": lyceum, "fake": fake}, pgdata)
        meter.start()
        fake_result = burst_figures(run_client(control, budget), args.stream_duration)
        fake_result["cpu_seconds"] = meter.stop()
        time.sleep(0.5)
        profile_this = not warmup and index == args.warmup_rounds
        if profile_this:
            profiler.start(lyceum, "streams")
        meter.start()
        lyceum_result = burst_figures(run_client(ours, budget), args.stream_duration)
        cpu = meter.stop()
        if profile_this:
            profiled = profiler.stop()
        lyceum_result["cpu_seconds"] = cpu
        rounds.append(
            {"round": label, "warmup": warmup, "fake": fake_result, "lyceum": lyceum_result}
        )
        print(
            f"  {label:<8} lyceum W {lyceum_result['wall_s']:.2f}s ratio "
            f"{lyceum_result['ratio']:.2f} ({lyceum_result['ok']}/{n} ok) | fake W "
            f"{fake_result['wall_s']:.2f}s ratio {fake_result['ratio']:.2f} | lyceum CPU "
            f"{cpu['lyceum']:.1f}s, postgres {cpu['postgres']:.1f}s, machine busy "
            f"{cpu['machine_busy']:.1f} cpu-s",
            flush=True,
        )
        for target, figures in (("lyceum", lyceum_result), ("fake", fake_result)):
            for error in figures["error_samples"][:3]:
                print(f"    error ({target}): {error}", flush=True)
        time.sleep(1.0)  # let the answers' storing finish before the next burst
    print("  the provider path alone, in one process (no HTTP server, no database) ...", flush=True)
    floor = run_floor(FloorSpec(fake.port, args.provider, n, QUESTIONS[0]), 300)
    measured = [r for r in rounds if not r["warmup"]]
    return {
        "floor": [asdict(result) for result in floor],
        "streams": n,
        "stream_duration_s": args.stream_duration,
        "rounds": rounds,
        "ratio": median([r["lyceum"]["ratio"] for r in measured]),
        "fake_ratio": median([r["fake"]["ratio"] for r in measured]),
        "wall_s": median([r["lyceum"]["wall_s"] for r in measured]),
        "errors": warm_errors + sum(r["lyceum"]["errors"] + r["fake"]["errors"] for r in rounds),
        "profile": str(profiled) if profiled else None,
    }


# Report -----------------------------------------------------------------------------------


def print_ttfb(report: dict[str, Any]) -> None:
    f = report["figures"]
    delay_ms = report["first_token_delay_s"] * 1000
    print(
        f"time to first streamed byte, {report['questions']} questions one at a time, "
        f"provider first-token delay D = {delay_ms:g} ms (ms):"
    )
    header = f"{'':<46} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}"
    print(header)
    print("-" * len(header))
    rows = (
        ("fake directly: first delta - D", f["baseline_ttfb_minus_delay"]),
        ("lyceum: first delta - D  (the overhead)", f["lyceum_ttfb_minus_delay"]),
        ("  of which: response head (prepare, commit)", f["lyceum_head"]),
        (
            "  of which: head -> first delta - D (model)",
            f["lyceum_head_to_first_delta_minus_delay"],
        ),
        ("lyceum: last delta -> done (store answer)", f["lyceum_last_delta_to_done"]),
        ("lyceum: whole answer", f["lyceum_total"]),
        ("fake directly: whole answer", f["baseline_total"]),
    )
    for label, s in rows:
        print(
            f"{label:<46} {fmt(s['p50_ms']):>7} {fmt(s['p90_ms']):>7} {fmt(s['p99_ms']):>7} "
            f"{fmt(s['max_ms']):>7}"
        )
    cpu = report["cpu_seconds"]
    print(
        f"lyceum CPU {report['lyceum_cpu_ms_per_question']:.1f} ms per question; "
        f"postgres {cpu['postgres'] / max(report['questions'], 1) * 1000:.1f} ms; "
        f"{fmt(report['deltas_per_answer'], 0)} deltas per answer"
    )


def print_streams(report: dict[str, Any]) -> None:
    n, duration = report["streams"], report["stream_duration_s"]
    print(
        f"{n} concurrent streams of {duration:g} s (times in ms from the burst's first "
        "request; W = wall time to the last done):"
    )
    header = (
        f"{'round':<8} {'target':<7} {'W s':>6} {'ratio':>6} {'ok':>4} {'head p50':>8} "
        f"{'p99':>7} {'1st p50':>8} {'p99':>7} {'gap p50':>8} {'max':>7} "
        f"{'fake CPU':>8} {'lyceum CPU':>10} {'pg CPU':>6} {'cli CPU':>7}"
    )
    print(header)
    print("-" * len(header))
    for entry in report["rounds"]:
        for target in ("fake", "lyceum"):
            r = entry[target]
            cpu = r.get("cpu_seconds", {})
            per_stream = max(r["streams"], 1) / 1000  # CPU seconds -> ms per stream
            print(
                f"{entry['round']:<8} {target:<7} {r['wall_s']:>6.2f} {r['ratio']:>6.2f} "
                f"{r['ok']:>4} {fmt(r['head']['p50_ms'], 0):>8} {fmt(r['head']['p99_ms'], 0):>7} "
                f"{fmt(r['first_delta']['p50_ms'], 0):>8} "
                f"{fmt(r['first_delta']['p99_ms'], 0):>7} {fmt(r['max_gap']['p50_ms'], 0):>8} "
                f"{fmt(r['max_gap']['max_ms'], 0):>7} "
                f"{cpu.get('fake', math.nan) / per_stream:>8.1f} "
                f"{cpu.get('lyceum', math.nan) / per_stream:>10.1f} "
                f"{cpu.get('postgres', math.nan) / per_stream:>6.1f} {r['client_cpu'] * 100:>6.0f}%"
            )
    print(
        "head: response headers (the question checked, stored, retrieval done); 1st: first "
        "delta; gap: the longest wait between two deltas of a stream (the fake spaces them "
        f"{duration * 1000:g} ms / (deltas - 1)); CPU: ms per stream of each process in that "
        "burst (pg: PostgreSQL, a lower bound); cli CPU: the client's CPU / wall time"
    )
    cores = os.cpu_count() or 1
    print(f"the provider path alone: {n} answers at once from the same fake, in one process")
    for result in report["floor"]:
        # CPU-bound, the burst cannot end before its CPU seconds are spent: on one core
        # (one process) W >= n x CPU per answer, on all of the machine's cores W >= that
        # / cores, even if the fake and the client cost nothing.
        need = n * result["cpu_ms_per_answer"] / 1000
        print(
            f"  {result['path']:<32} {result['cpu_ms_per_answer']:6.1f} ms CPU per answer "
            f"({result['deltas']} deltas), W {result['wall_s']:.2f}s: {need:.1f} CPU-s for "
            f"{n}, so a ratio of at most {min(1.0, duration / need):.2f} in one process, "
            f"{min(1.0, cores * duration / need):.2f} on {cores} cores"
        )


def print_profile(label: str, summary: dict[str, Any]) -> None:
    total = sum(summary["threads"].values())
    print(f"py-spy, {label}: {total} samples holding the GIL (250 Hz), by thread:")
    for thread, count in list(summary["threads"].items())[:5]:
        print(f"  {count:>7}  {thread[:90]}")
    loop = summary["loop_samples"] or 1
    print("  event loop thread, by phase:")
    for name, count in summary["phases"]:
        print(f"  {count / loop * 100:>5.1f}%  {name}")
    print("  event loop thread, top of the stack:")
    for name, count in summary["self"]:
        print(f"  {count / loop * 100:>5.1f}%  {name[:100]}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="The tutor's streaming path: time to first byte and concurrent streams, "
        "against a fake model provider."
    )
    parser.add_argument("--provider", choices=("claude", "openai"), default="claude")
    parser.add_argument("--questions", type=int, default=100, help="measured questions (100)")
    parser.add_argument("--warmup-questions", type=int, default=10, help="unmeasured (10)")
    parser.add_argument(
        "--first-token-delay", type=float, default=0.2, help="fake's delay D, seconds (0.2)"
    )
    parser.add_argument(
        "--chunk-delay", type=float, default=0.005, help="fake's delay between deltas (0.005)"
    )
    parser.add_argument("--streams", type=int, default=200, help="concurrent streams (200)")
    parser.add_argument(
        "--stream-duration", type=float, default=1.0, help="seconds each answer streams (1)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="measured burst rounds (3)")
    parser.add_argument("--warmup-rounds", type=int, default=1, help="unmeasured bursts (1)")
    parser.add_argument("--learners", type=int, default=20, help="learner accounts (20)")
    # 20 + 20 is not enough for a burst of 200: requests queue for a connection behind
    # the ones whose retrieval waits for the CPU, and some time out after 30 s (HTTP 500).
    # 40 + 40 stays under the embedded PostgreSQL's max_connections of 100.
    parser.add_argument("--db-pool-size", type=int, default=40, help="DB_POOL_SIZE (40)")
    parser.add_argument("--db-max-overflow", type=int, default=40, help="DB_MAX_OVERFLOW (40)")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="set OMP_NUM_THREADS for Lyceum, so torch embeds on this many threads "
        "(0: leave it unset, torch's default of one per core, as a default install)",
    )
    parser.add_argument(
        "--only", choices=("ttfb", "streams"), help="run only one of the two scenarios"
    )
    parser.add_argument(
        "--py-spy",
        action="store_true",
        help="profile Lyceum with py-spy during the measured questions and the first "
        "measured burst, and print the busiest functions",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument(
        "--keep-temp", action="store_true", help="keep the temp dir (logs, data) afterwards"
    )
    args = parser.parse_args(argv)
    if (
        args.questions < 1
        or args.warmup_questions < 0
        or args.first_token_delay < 0
        or args.chunk_delay < 0
        or args.streams < 1
        or args.stream_duration <= 0
        or args.rounds < 1
        or args.warmup_rounds < 0
        or args.learners < 1
        or args.torch_threads < 0
    ):
        parser.error(
            "need --questions, --streams, --rounds, --learners >= 1, --stream-duration > 0 "
            "and the other counts and delays >= 0"
        )
    return args


def run(args: argparse.Namespace, temp: Path) -> dict[str, Any]:
    load_before = load_average()
    run_started = time.perf_counter()
    postgres, url = migrated_postgres(temp, DATABASE)
    pgdata = temp / "pg"
    servers: dict[str, Server] = {}
    secret = secrets.token_urlsafe(48)
    profiler = Profiler(args.py_spy, temp)
    ttfb: dict[str, Any] | None = None
    streams: dict[str, Any] | None = None
    profiles: dict[str, Any] = {}
    settings = {
        "AI_PROVIDER": args.provider,
        "TUTOR_RATE_LIMIT": TUTOR_RATE_LIMIT,
        "TUTOR_CACHE_TTL_SECONDS": 0,
        "DB_POOL_SIZE": args.db_pool_size,
        "DB_MAX_OVERFLOW": args.db_max_overflow,
        "LOG_LEVEL": "INFO",
        "OMP_NUM_THREADS": args.torch_threads or os.environ.get("OMP_NUM_THREADS", "unset"),
    }

    def stop(*names: str) -> None:
        for name in names:
            server = servers.pop(name, None)
            if server is not None:
                code = stop_server(server)
                if code not in (0, None, -signal.SIGINT):
                    print(f"  {name} exited with code {code}; log {server.log_path}")

    try:
        print("loading the demo catalog and indexing one course ...", flush=True)
        course_id, _, lessons, chunks = seed_course(temp, url)
        learners: list[Learner] = []
        print(
            "lyceum settings: " + ", ".join(f"{name}={value}" for name, value in settings.items()),
            flush=True,
        )

        def start_pair(tag: str, **fake_knobs: Any) -> Server:
            fake = start_fake(temp, f"fake-{tag}", **fake_knobs)
            servers[fake.name] = fake
            lyceum = start_lyceum(temp, f"lyceum-{tag}", lyceum_env(temp, url, fake, args, secret))
            servers[lyceum.name] = lyceum
            print(
                f"  fake-{tag} pid {fake.pid} port {fake.port} ({fake_knobs}); "
                f"lyceum-{tag} pid {lyceum.pid} port {lyceum.port}, ready in "
                f"{lyceum.started_in:.1f}s",
                flush=True,
            )
            return lyceum

        if args.only in (None, "ttfb"):
            print("starting the fake provider and Lyceum for time to first byte ...", flush=True)
            lyceum = start_pair(
                "ttfb", first_token_delay=args.first_token_delay, chunk_delay=args.chunk_delay
            )
            learners = register_learners(lyceum.port, url, course_id, args.learners)
            print(f"  {len(learners)} learners registered and enrolled", flush=True)
            ttfb = scenario_ttfb(args, course_id, learners, servers, profiler, pgdata)
            stop("lyceum-ttfb", "fake-ttfb")
        if args.only in (None, "streams"):
            print("starting the fake provider and Lyceum for concurrent streams ...", flush=True)
            lyceum = start_pair(
                "streams", first_token_delay=0.0, stream_duration=args.stream_duration
            )
            if not learners:
                learners = register_learners(lyceum.port, url, course_id, args.learners)
                print(f"  {len(learners)} learners registered and enrolled", flush=True)
            streams = scenario_streams(args, course_id, learners, servers, profiler, pgdata)
            stop("lyceum-streams", "fake-streams")
    finally:
        profiler.stop()
        logs = {name: server.log_path for name, server in servers.items()}
        stop(*list(servers))
        for name, log in logs.items():
            if "Traceback" in tail(log, 200):
                print(f"  {name} logged a traceback; see {log}")
        postgres.stop()

    load_after = load_average()
    print()
    if ttfb is not None:
        print_ttfb(ttfb)
        print()
    if streams is not None:
        print_streams(streams)
        print()
    for label, report in (("time to first byte", ttfb), ("concurrent streams", streams)):
        if report is not None and report.get("profile"):
            summary = summarize_profile(Path(report["profile"]))
            profiles[label] = summary
            print_profile(label, summary)
            print()
    print(f"load average before/after: {load_before} / {load_after}; {os.cpu_count()} CPUs")
    print(f"run time {time.perf_counter() - run_started:.0f}s")
    parts = []
    if ttfb is not None:
        parts.append(
            f"tutor TTFB overhead p50 {ttfb['overhead_p50_ms']:.1f} ms, p99 "
            f"{ttfb['overhead_p99_ms']:.1f} ms (target p50 < {TARGET_TTFB_P50_MS:g} ms)"
        )
    if streams is not None:
        parts.append(
            f"{streams['streams']} streams of {streams['stream_duration_s']:g} s: ratio "
            f"{streams['ratio']:.2f} of ideal (target >= {TARGET_RATIO}; fake alone "
            f"{streams['fake_ratio']:.2f})"
        )
    print("; ".join(parts))
    return {
        "scenario": SCENARIO,
        "settings": {
            **{key: value for key, value in vars(args).items() if key != "json"},
            "lyceum_env": settings,
            "course": COURSE_SLUG,
            "lessons": lessons,
            "chunks": chunks,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "ttfb": ttfb,
        "streams": streams,
        "profiles": profiles,
        "errors": (ttfb or {}).get("errors", 0) + (streams or {}).get("errors", 0),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return scenario_main("tutor", args, run, keep_temp=args.py_spy)


if __name__ == "__main__":
    sys.exit(main())
