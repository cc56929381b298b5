"""The sockets `lyceum serve` listens on, and the URL they are reached at.

`serve` binds before anything else starts, so a port already in use stops it at once
with a clear message, `--port 0` picks a free port, and the links Lyceum builds (when
PUBLIC_BASE_URL is unset) name the port it really serves on.
"""

from __future__ import annotations

import ipaddress
import socket

# The address of a documentation network (RFC 5737): "connecting" a UDP socket to it
# sends nothing, but tells which local address the default route would use.
_PROBE_ADDRESS = "192.0.2.1"
_PROBE_ADDRESS_V6 = "2001:db8::1"
_WILDCARD_V4 = {"", "0.0.0.0"}  # noqa: S104 (names of the wildcard, not a bind)


def listen(host: str, port: int) -> list[socket.socket]:
    """Bound sockets for every address `host` resolves to (as asyncio would bind them),
    all on one port: `port`, or with 0 the one the system picked for the first."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                # One socket per family, as asyncio does: no dual-stack overlap.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _primary_address(family: socket.AddressFamily) -> str | None:
    probe = _PROBE_ADDRESS if family == socket.AF_INET else _PROBE_ADDRESS_V6
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((probe, 9))
            address: str = sock.getsockname()[0]
    except OSError:
        return None
    return address


def reachable_url(host: str, port: int) -> str:
    """The http:// URL a browser uses to reach a server bound to `host`:`port`. A
    wildcard bind (0.0.0.0, ::) answers on every interface; its URL names the address
    other machines reach this one at (the interface of the default route), or
    `localhost` on a machine with no network."""
    name = host
    if host in _WILDCARD_V4:
        name = _primary_address(socket.AF_INET) or "localhost"
    elif host == "::":  # IPv6 only (asyncio and uvicorn bind it so)
        name = _primary_address(socket.AF_INET6) or "::1"
    try:
        if ipaddress.ip_address(name).version == 6:
            name = f"[{name}]"
    except ValueError:
        pass  # a host name
    return f"http://{name}:{port}"
