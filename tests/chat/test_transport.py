"""`DirectEmit` delivers what python-socketio's own manager would, without a task per
recipient, and one recipient's failure does not stop the others."""

from __future__ import annotations

import json
from typing import Any

import pytest
import socketio  # type: ignore[import-untyped]
from engineio.exceptions import SocketIsClosedError  # type: ignore[import-untyped]

from lyceum.chat.transport import DirectEmit, WireJson


def _server(manager: Any, sent: list[tuple[str, str]], closed: set[str]) -> Any:
    server = socketio.AsyncServer(async_mode="asgi", client_manager=manager)

    async def send_packet(eio_sid: str, frame: Any) -> None:
        if eio_sid in closed:
            raise SocketIsClosedError()
        sent.append((eio_sid, frame.encode()))

    server.eio.send_packet = send_packet
    for n in range(5):
        manager.basic_enter_room(f"s{n}", "/", None, eio_sid=f"e{n}")
        manager.basic_enter_room(f"s{n}", "/", f"s{n}", eio_sid=f"e{n}")
        manager.basic_enter_room(f"s{n}", "/", "room" if n < 4 else "other", eio_sid=f"e{n}")
    return server


@pytest.mark.parametrize(
    "data", [{"text": 'hé "quoted"'}, ("one", {"two": 2}), None], ids=["dict", "tuple", "none"]
)
@pytest.mark.parametrize("target", ["room", "s2"])
async def test_the_same_frames_reach_the_same_sockets_as_with_the_library(
    data: Any, target: str
) -> None:
    direct: list[tuple[str, str]] = []
    library: list[tuple[str, str]] = []
    await _server(DirectEmit(), direct, set()).emit("message", data, to=target, skip_sid="s1")
    await _server(socketio.AsyncManager(), library, set()).emit(
        "message", data, to=target, skip_sid="s1"
    )
    assert direct == library
    assert direct


async def test_a_closed_socket_does_not_stop_the_others() -> None:
    sent: list[tuple[str, str]] = []
    server = _server(DirectEmit(), sent, closed={"e1"})
    await server.emit("message", {"n": 1}, to="room")
    assert [eio_sid for eio_sid, _ in sent] == ["e0", "e2", "e3"]


@pytest.mark.parametrize(
    "value",
    [
        {"text": 'hé "quoted" \\ 😀', "n": 3, "x": 1.5, "ok": True, "none": None},
        ["message", {"nested": [1, {"deep": "é"}]}],
        {"big": 10**30},  # beyond orjson: written by json
        {"lone": "\ud800"},  # likewise
        {1: "an int key"},
    ],
)
def test_frames_are_written_as_json_would_read_them(value: Any) -> None:
    assert json.loads(WireJson.dumps(value, separators=(",", ":"))) == json.loads(json.dumps(value))


def test_frames_are_read_as_python_engineio_reads_them() -> None:
    assert WireJson.loads('["a",{"n":123456789012345678901234567890}]') == [
        "a",
        {"n": 123456789012345678901234567890},
    ]
    assert WireJson.loads(b'{"t":"\\ud800"}') == {"t": "\ud800"}
    with pytest.raises(ValueError, match="too large"):
        WireJson.loads("1" * 101)
    with pytest.raises(json.JSONDecodeError):
        WireJson.loads("{not json")
