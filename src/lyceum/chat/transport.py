"""A typed face on python-socketio, which ships no type information: the rest of the
chat package talks to `SocketServer`, never to the untyped library.

With REDIS_URL set, an AsyncRedisManager relays every emit, room change and
disconnect through Redis pub/sub, so a room spans every replica; without it the
in-process manager serves a single process. Either way, a broadcast reaches this
process's sockets through `DirectEmit` below.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import orjson
import socketio  # type: ignore[import-untyped]
import structlog
from engineio import packet as eio_packet  # type: ignore[import-untyped]
from engineio.exceptions import EngineIOError  # type: ignore[import-untyped]
from socketio import packet as sio_packet

from lyceum.config import Settings
from lyceum.kit import live

logger = structlog.get_logger("lyceum.chat")

ConnectHandler = Callable[[str, dict[str, Any], Any], Awaitable[None]]
DisconnectHandler = Callable[[str, str], Awaitable[None]]
EventHandler = Callable[..., Awaitable[Any]]
CatchAllHandler = Callable[..., Awaitable[Any]]

# Frames above this close the connection; below it, an oversized message gets an
# error ack naming the limit and the connection stays usable.
MIN_FRAME_BYTES = 64 * 1024


class ConnectionRefused(socketio.exceptions.ConnectionRefusedError):  # type: ignore[misc]
    """Raised by the connect handler: the client gets `{"message": ..., "data": ...}`."""

    def __init__(self, message: str, data: dict[str, Any]) -> None:
        super().__init__(message, data)


def _safe_int(digits: str) -> int:
    """python-engineio's guard: a 100-digit integer is no legitimate value."""
    if len(digits) > 100:
        raise ValueError("Integer is too large")
    return int(digits)


class WireJson:
    """The JSON module python-socketio and python-engineio use for every frame (they
    take any object with `dumps` and `loads`).

    Their default calls `json.dumps` on the way out, and on the way in `json.loads` with
    a `parse_int` that refuses integers of over 100 digits, which builds a new decoder
    for every frame. Here frames are written by orjson (the same JSON, compact; what it
    cannot write, such as integers beyond 64 bits or lone surrogates, falls back to
    `json`), and read by one decoder built once, with the same `parse_int`: incoming
    frames are read exactly as before (orjson would read a 30-digit integer as a float).
    """

    _decoder = json.JSONDecoder(parse_int=_safe_int)

    @staticmethod
    def dumps(value: Any, **_: Any) -> str:
        try:
            return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:
            return json.dumps(value, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str | bytes, **_: Any) -> Any:
        if not isinstance(text, str):
            text = text.decode()
        return cls._decoder.decode(text)


class DirectEmit(socketio.AsyncManager):  # type: ignore[misc]
    """Delivers an emit to this process's sockets without a task per recipient.

    python-socketio wraps each recipient's send in a task of its own and waits for them
    all: 20 tasks (and their coroutines, for the collector to track) per chat message in
    a room of 20, about 40 us of the event loop's time per message in all. Each send
    only puts the frame on that socket's queue, which its writer task drains, so sending
    them one after the other keeps the same order for far less work. Emits that expect
    acks from their recipients take the library's path."""

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None or namespace not in self.rooms:
            await super().emit(
                event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, to=to
            )
            return
        # As the library reads `data`: a tuple is several arguments, None is none.
        arguments = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        skipped = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        server = self.server
        encoded = server.packet_class(
            sio_packet.EVENT, namespace=namespace, data=[event, *arguments]
        ).encode()
        frames = [
            eio_packet.Packet(eio_packet.MESSAGE, part)
            for part in (encoded if isinstance(encoded, list) else [encoded])
        ]
        for sid, eio_sid in self.get_participants(namespace, to or room):
            if sid in skipped:
                continue
            for frame in frames:
                try:
                    await server.eio.send_packet(eio_sid, frame)
                except EngineIOError:
                    break  # it closed meanwhile: nothing to deliver to
                except Exception:
                    logger.exception("chat_send_failed", sid=sid)
                    break


class RedisDirectEmit(socketio.AsyncRedisManager, DirectEmit):  # type: ignore[misc]
    """The Redis manager, delivering what it relays (its own emits included) through
    `DirectEmit`, which follows it in the method resolution order."""


CHANNEL = "lyceum-chat"


def redis_relay(
    redis_url: str,
) -> Callable[[str, Sequence[tuple[uuid.UUID, dict[str, Any]]]], Awaitable[None]]:
    """A live publisher (`kit.live.register`) for a process without sockets (a
    standalone worker): it hands each push to the API processes through Redis, on the
    channel their Socket.IO servers listen to, and they emit it to the user's room."""
    manager = socketio.AsyncRedisManager(redis_url, channel=CHANNEL, write_only=True)

    async def publish(event: str, messages: Sequence[tuple[uuid.UUID, dict[str, Any]]]) -> None:
        for user_id, payload in messages:
            await manager.emit(event, payload, namespace="/", room=live.user_room(user_id))

    return publish


class SocketServer:
    def __init__(self, settings: Settings) -> None:
        manager = (
            RedisDirectEmit(settings.redis_url, channel=CHANNEL)
            if settings.redis_url
            else DirectEmit()
        )
        self._server: Any = socketio.AsyncServer(
            async_mode="asgi",
            client_manager=manager,
            json=WireJson,
            # CORS for polling requests is the app's own middleware; websockets
            # authenticate with a token in the auth payload, not with cookies, so an
            # origin check would grant nothing.
            cors_allowed_origins=[],
            max_http_buffer_size=max(MIN_FRAME_BYTES, settings.chat_message_max_chars * 8),
            logger=False,
            engineio_logger=False,
        )
        self.scaled_out = isinstance(manager, socketio.AsyncRedisManager)

    def asgi_app(self) -> Any:
        """The ASGI app to mount: every request under its mount point is Engine.IO's."""
        return socketio.ASGIApp(self._server, socketio_path=None)

    def on_connect(self, handler: ConnectHandler) -> None:
        self._server.on("connect", handler=handler)

    def on_disconnect(self, handler: DisconnectHandler) -> None:
        self._server.on("disconnect", handler=handler)

    def on(self, event: str, handler: EventHandler) -> None:
        self._server.on(event, handler=handler)

    def on_any(self, handler: CatchAllHandler) -> None:
        """Every event without a handler of its own: `handler(event, sid, *args)`."""
        self._server.on("*", handler=handler)

    async def emit(
        self, event: str, data: dict[str, Any], *, to: str, skip_sid: str | None = None
    ) -> None:
        await self._server.emit(event, data, to=to, skip_sid=skip_sid)

    async def enter_room(self, sid: str, room: str) -> None:
        await self._server.enter_room(sid, room)

    async def leave_room(self, sid: str, room: str) -> None:
        await self._server.leave_room(sid, room)

    async def disconnect(self, sid: str) -> None:
        await self._server.disconnect(sid)

    async def drop_all(self) -> int:
        """End every Engine.IO connection of this process as a network failure would:
        no CLOSE packet (python-socketio's client does not reconnect after one), the
        WebSocket closed or the pending long-poll answered, the session forgotten (a
        later poll gets 400). Clients reconnect; the disconnect handlers run as for any
        hang-up. Returns how many connections there were."""
        engine = self._server.eio
        sockets = list(engine.sockets.items())
        for eio_sid, eio_socket in sockets:
            try:
                await eio_socket.close(wait=False, abort=True, reason=engine.reason.TRANSPORT_CLOSE)
                # Wakes its writer: a WebSocket closes, a pending poll returns.
                eio_socket.queue.put_nowait(None)
            except Exception:
                logger.exception("chat_drop_failed", sid=eio_sid)
            engine.sockets.pop(eio_sid, None)
        return len(sockets)

    def start_background_task(self, target: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        return cast(asyncio.Task[None], self._server.start_background_task(target))

    async def shutdown(self) -> None:
        """Stop Engine.IO's ping monitor and, when scaled out, the Redis listener."""
        await self._server.shutdown()
        manager = self._server.manager
        listener = getattr(manager, "thread", None)
        if isinstance(listener, asyncio.Task):
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
        for name in ("pubsub", "redis"):
            client = getattr(manager, name, None)
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
