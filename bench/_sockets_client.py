"""The load generator of `bench/sockets.py`: a lean Socket.IO client, and the check of it
against the official python-socketio AsyncClient.

The lean client speaks Engine.IO v4 / Socket.IO v5 over an aiohttp websocket
(`/socket.io/?EIO=4&transport=websocket`): it reads the open packet (`0{...}`), sends the
connect packet with the auth payload (`40{"token": ...}`, the access token the chat
gateway checks), answers every ping (`2`) with a pong (`3`), sends events with an ack id
(`42<id>["event", {...}]`) and reads acks (`43<id>[...]`). A chat delivery is matched by
its `client_id` (`<step>-<sequence>-<perf_counter_ns at send>`) found in the frame's text,
without parsing the JSON: a socket costs one reader task and little else.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import psutil

LOOPBACK = "127.0.0.1"
# After a step's sends, how long deliveries may keep arriving before the rest count as
# lost; a loader stops waiting earlier once nothing has arrived for QUIET_SECONDS.
DRAIN_SECONDS = 15.0
QUIET_SECONDS = 2.0
TEXT_PADDING = "x" * 60  # ~80 characters, a typical chat line
JOIN_TIMEOUT = 60.0


@dataclass(frozen=True)
class Seat:
    index: int
    port: int
    token: str
    course_id: str
    active: bool  # sends and is counted in the chat steps


@dataclass(frozen=True)
class LoaderSpec:
    seats: list[Seat]
    room_sizes: dict[str, int]
    connect_concurrency: int
    step_seconds: float
    rate_share: float  # this loader's share of each step's rate
    warm: bool  # opens the warm-up sockets (one per port) before the rest
    warm_ports: list[int]


@dataclass
class StepTally:
    step: int
    sent: int = 0
    send_seconds: float = 0.0
    expected: int = 0
    acked: int = 0
    refused: int = 0
    send_failures: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    ack_ms: list[float] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    cpu: float = 0.0
    last_delivery: float = 0.0


def ws_url(port: int) -> str:
    return f"ws://{LOOPBACK}:{port}/socket.io/?EIO=4&transport=websocket"


class LeanSocket:
    """One Socket.IO connection on a raw websocket."""

    def __init__(self, ws: Any, seat: Seat, tallies: dict[str, StepTally]) -> None:
        self.ws = ws
        self.seat = seat
        self.tallies = tallies
        self.room_id = ""
        self.acks: dict[int, tuple[float, Callable[[Any, float], None]]] = {}
        self.next_ack = itertools.count(1)
        self.reader: asyncio.Task[None] | None = None
        self.dead = False
        self.ended = ""  # why the reader stopped
        self.seen: list[str] = []  # every event frame, when recording (the official check)
        self.recording = False

    @classmethod
    async def open(cls, session: Any, seat: Seat, tallies: dict[str, StepTally]) -> LeanSocket:
        # autoping: aiohttp answers the websocket-level pings (uvicorn sends one every 20 s
        # and closes with 1011 when unanswered); Engine.IO pings are text frames, read below.
        ws = await session.ws_connect(ws_url(seat.port), autoping=True, max_msg_size=0)
        sock = cls(ws, seat, tallies)
        opening = await ws.receive_str()
        if not opening.startswith("0"):
            raise RuntimeError(f"unexpected Engine.IO opening {opening[:80]!r}")
        await ws.send_str("40" + json.dumps({"token": seat.token}))
        answer = await ws.receive_str()
        if not answer.startswith("40"):
            raise RuntimeError(f"connection refused: {answer[:200]}")
        sock.reader = asyncio.create_task(sock.read())
        joined: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def on_join(reply: Any, _: float) -> None:
            if not joined.done():
                joined.set_result(reply)

        await sock.call("join_room", {"course_id": seat.course_id}, on_join)
        reply = await asyncio.wait_for(joined, JOIN_TIMEOUT)
        if not reply.get("ok"):
            raise RuntimeError(f"join_room refused: {str(reply)[:200]}")
        sock.room_id = reply["room"]["id"]
        return sock

    async def call(
        self, event: str, payload: dict[str, Any], on_ack: Callable[[Any, float], None]
    ) -> bool:
        if self.dead or self.ws.closed:
            self.dead = True
            return False
        ack_id = next(self.next_ack)
        self.acks[ack_id] = (time.perf_counter(), on_ack)
        try:
            await self.ws.send_str(f"42{ack_id}" + json.dumps([event, payload]))
        except (ConnectionError, RuntimeError):
            self.acks.pop(ack_id, None)
            self.dead = True
            return False
        return True

    async def read(self) -> None:
        perf_counter_ns = time.perf_counter_ns
        try:
            async for frame in self.ws:
                data = frame.data
                if not isinstance(data, str):
                    continue
                if data == "2":
                    await self.ws.send_str("3")
                elif data.startswith('42["message"'):
                    if self.recording:
                        self.seen.append(data)
                    at = data.find('"client_id"')
                    if at < 0:
                        continue
                    opening = data.index('"', at + 11)
                    client_id = data[opening + 1 : data.index('"', opening + 1)]
                    step, _, rest = client_id.partition("-")
                    tally = self.tallies.get(step)
                    if tally is not None:
                        sent_ns = int(rest.rsplit("-", 1)[1])
                        tally.latencies_ms.append((perf_counter_ns() - sent_ns) / 1e6)
                        tally.last_delivery = time.perf_counter()
                elif data.startswith("43"):
                    bracket = data.index("[")
                    entry = self.acks.pop(int(data[2:bracket]), None)
                    if entry is not None:
                        started, on_ack = entry
                        on_ack(json.loads(data[bracket:])[0], time.perf_counter() - started)
                elif data.startswith("41"):
                    self.ended = "server sent a Socket.IO disconnect (41)"
                    break
            else:
                self.ended = f"websocket closed ({self.ws.close_code}, {self.ws.exception()!r})"
        except Exception as error:
            self.ended = f"reader failed: {type(error).__name__}: {error}"[:300]
            raise
        finally:
            self.dead = True


async def _open_many(
    session: Any,
    seats: list[Seat],
    tallies: dict[str, StepTally],
    concurrency: int,
    errors: list[str],
) -> list[LeanSocket]:
    gate = asyncio.Semaphore(concurrency)

    async def one(seat: Seat) -> LeanSocket | None:
        async with gate:
            try:
                return await LeanSocket.open(session, seat, tallies)
            except Exception as error:  # reported, counted as not connected
                if len(errors) < 20:
                    errors.append(f"seat {seat.index}: {type(error).__name__}: {error}"[:300])
                return None

    opened = await asyncio.gather(*(one(seat) for seat in seats))
    return [sock for sock in opened if sock is not None]


async def _step(
    sockets: list[LeanSocket], step: int, rate: float, seconds: float, sizes: dict[str, int]
) -> StepTally:
    tally = StepTally(step)
    key = str(step)
    active = [sock for sock in sockets if sock.seat.active]

    def on_ack(answer: Any, elapsed: float) -> None:
        if isinstance(answer, dict) and answer.get("ok"):
            tally.acked += 1
            tally.ack_ms.append(elapsed * 1000)
        else:
            tally.refused += 1
            if len(tally.refusals) < 5:
                tally.refusals.append(str(answer)[:200])

    sockets[0].tallies[key] = tally
    cpu_started = time.process_time()
    started = time.perf_counter()
    turn = itertools.cycle(active)
    sent = 0
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(int(elapsed * rate) - sent):
            sock = next(turn)
            client_id = f"{step}-{sock.seat.index}.{sent}-{time.perf_counter_ns()}"
            payload = {
                "room_id": sock.room_id,
                "client_id": client_id,
                "text": f"message {sent} {TEXT_PADDING}",
            }
            if await sock.call("message", payload, on_ack):
                tally.expected += sizes[sock.seat.course_id]
            else:
                tally.send_failures += 1
            sent += 1
        await asyncio.sleep(0.002)
    tally.send_seconds = time.perf_counter() - started
    tally.sent = sent
    deadline = time.perf_counter() + DRAIN_SECONDS
    while time.perf_counter() < deadline:
        answered = tally.acked + tally.refused + tally.send_failures >= sent
        quiet = time.perf_counter() - max(tally.last_delivery, started + seconds) > QUIET_SECONDS
        if answered and quiet:
            break
        await asyncio.sleep(0.05)
    tally.cpu = (time.process_time() - cpu_started) / (time.perf_counter() - started)
    del sockets[0].tallies[key]
    return tally


async def _wait_command(control: Connection) -> tuple[str, Any]:
    """The next command from the parent, keeping the event loop (and the pongs) running."""
    kind, payload = await asyncio.to_thread(control.recv)
    return str(kind), payload


async def _load(spec: LoaderSpec, control: Connection) -> None:
    import aiohttp

    me = psutil.Process()
    tallies: dict[str, StepTally] = {}
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        rss_ready = me.memory_info().rss
        control.send(("ready", None))
        sockets: list[LeanSocket] = []
        seats = list(spec.seats)
        errors: list[str] = []
        while True:
            kind, payload = await _wait_command(control)
            if kind == "warm":
                if spec.warm:
                    warm_seats = []
                    for port in spec.warm_ports:
                        seat = next(s for s in seats if s.port == port and not s.active)
                        warm_seats.append(seat)
                        seats.remove(seat)
                    sockets += await _open_many(session, warm_seats, tallies, 1, errors)
                control.send(("warm", None))
            elif kind == "connect":
                opened = await _open_many(session, seats, tallies, spec.connect_concurrency, errors)
                sockets += opened
                per_port: dict[int, int] = {}
                for sock in opened:
                    per_port[sock.seat.port] = per_port.get(sock.seat.port, 0) + 1
                control.send(
                    ("connected", {"sockets": len(sockets), "per_port": per_port, "errors": errors})
                )
            elif kind == "rest":
                control.send(
                    (
                        "cpu",
                        {
                            "cpu": time.process_time(),
                            "dead": sum(sock.dead for sock in sockets),
                            "ended": sorted({sock.ended for sock in sockets if sock.dead})[:3],
                            "rss_delta_kib": (me.memory_info().rss - rss_ready) / 1024,
                        },
                    )
                )
            elif kind == "step":
                rate, step = payload
                tally = await _step(
                    sockets,
                    int(step),
                    float(rate) * spec.rate_share,
                    spec.step_seconds,
                    spec.room_sizes,
                )
                control.send(("stepped", tally))
            elif kind == "count":
                control.send(("counted", sum(sock.dead for sock in sockets)))
            elif kind == "quit":
                break
        for sock in sockets:
            with contextlib.suppress(Exception):
                await sock.ws.close()


def _run(main: Any) -> None:
    try:
        import uvloop

        uvloop.run(main)
    except ImportError:
        asyncio.run(main)


def loader_main(spec: LoaderSpec, control: Connection) -> None:
    """Entry point of a loader process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        _run(_load(spec, control))
    except Exception as error:
        with contextlib.suppress(OSError):
            control.send(("error", f"{type(error).__name__}: {error}"))
        raise
    finally:
        control.close()


# The official client ------------------------------------------------------------------


@dataclass(frozen=True)
class OfficialSpec:
    ports: list[int]  # A, B
    pair: tuple[tuple[str, str], tuple[str, str]]  # two seats of one room: (token, course)
    idle: list[tuple[str, str]]  # seats for the memory comparison


async def _official(spec: OfficialSpec) -> dict[str, Any]:
    import aiohttp
    import socketio

    me = psutil.Process()
    port_a, port_b = spec.ports
    (token_a, course), (token_b, _) = spec.pair
    received: list[dict[str, Any]] = []
    got = asyncio.Event()

    official = socketio.AsyncClient(reconnection=False)

    @official.on("message")
    async def on_message(data: dict[str, Any]) -> None:
        received.append(data)
        got.set()

    await official.connect(
        f"http://{LOOPBACK}:{port_a}",
        auth={"token": token_a},
        transports=["websocket"],
        wait_timeout=30,
    )
    joined = await official.call("join_room", {"course_id": course}, timeout=30)
    if not joined.get("ok"):
        raise RuntimeError(f"official join refused: {joined}")
    room_id = joined["room"]["id"]
    tallies: dict[str, StepTally] = {}
    async with aiohttp.ClientSession() as session:
        lean = await LeanSocket.open(session, Seat(-1, port_b, token_b, course, False), tallies)
        if lean.room_id != room_id:
            raise RuntimeError(f"lean joined {lean.room_id}, official {room_id}")
        lean.recording = True
        # Lean (B) -> official (A).
        acked: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        text = "from the lean client"
        await lean.call(
            "message",
            {"room_id": room_id, "client_id": f"check-lean-{time.time_ns()}", "text": text},
            lambda answer, _: acked.set_result(answer),
        )
        answer = await asyncio.wait_for(acked, 30)
        await asyncio.wait_for(got.wait(), 30)
        if not answer.get("ok") or received[-1]["text"] != text:
            raise RuntimeError(f"lean -> official: ack {answer}, official got {received[-1:]}")
        # Official (A) -> lean (B).
        text_back = "from the official client"
        reply = await official.call(
            "message",
            {
                "room_id": room_id,
                "client_id": f"check-official-{time.time_ns()}",
                "text": text_back,
            },
            timeout=30,
        )
        for _ in range(300):
            if any(text_back in frame for frame in lean.seen):
                break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"official -> lean: not delivered (ack {reply})")
        await official.disconnect()
        await lean.ws.close()
        check = "passed (lean on B <-> official on A, one message each way, acks ok)"

        # Memory and CPU per connection: official clients, then lean sockets, same seats.
        rss, cpu = me.memory_info().rss, time.process_time()
        clients = []
        for index, (token, course_id) in enumerate(spec.idle):
            client = socketio.AsyncClient(reconnection=False)
            await client.connect(
                f"http://{LOOPBACK}:{spec.ports[index % 2]}",
                auth={"token": token},
                transports=["websocket"],
                wait_timeout=30,
            )
            answer = await client.call("join_room", {"course_id": course_id}, timeout=30)
            if not answer.get("ok"):
                raise RuntimeError(f"official join refused: {answer}")
            clients.append(client)
        await asyncio.sleep(1.0)
        official_kib = (me.memory_info().rss - rss) / 1024 / max(len(clients), 1)
        official_cpu = (time.process_time() - cpu) * 1000 / max(len(clients), 1)
        for client in clients:
            await client.disconnect()
        await asyncio.sleep(1.0)
        rss, cpu = me.memory_info().rss, time.process_time()
        seats = [
            Seat(-2 - i, spec.ports[i % 2], token, course_id, False)
            for i, (token, course_id) in enumerate(spec.idle)
        ]
        errors: list[str] = []
        leans = await _open_many(session, seats, tallies, 1, errors)
        await asyncio.sleep(1.0)
        lean_kib = (me.memory_info().rss - rss) / 1024 / max(len(leans), 1)
        lean_cpu = (time.process_time() - cpu) * 1000 / max(len(leans), 1)
        for sock in leans:
            await sock.ws.close()
        if errors:
            raise RuntimeError(f"lean sockets failed: {errors[:3]}")
    return {
        "check": check,
        "clients": len(clients),
        "kib_per_client": official_kib,
        "connect_cpu_ms": official_cpu,
        "lean_kib_per_socket": lean_kib,
        "lean_connect_cpu_ms": lean_cpu,
    }


def official_main(spec: OfficialSpec, control: Connection) -> None:
    """Entry point of the official-client check's process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        result: dict[str, Any] = {}

        async def main() -> None:
            result.update(await _official(spec))

        _run(main())
        control.send(("ok", result))
    except Exception as error:
        with contextlib.suppress(OSError):
            control.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        control.close()
