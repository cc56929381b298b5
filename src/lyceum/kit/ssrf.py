"""Outgoing requests to URLs that users chose (webhook endpoints), guarded against
server-side request forgery.

The host is resolved once, every address it resolves to is checked, and the request
connects to the checked address (the URL's host goes in `Host` and in TLS SNI, and the
certificate is verified against it), so a DNS answer that changes between the check
and the connection (DNS rebinding) cannot point it elsewhere. Loopback, private,
link-local, shared, multicast, reserved and unspecified addresses are refused unless
private networks are allowed (a test receiver, an intranet); the cloud metadata
addresses are refused always. No redirects are followed, timeouts are short and the
response is read up to a cap.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Instance metadata services (AWS, GCP, Azure, OpenStack, Alibaba): never a webhook.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "169.254.170.2")
)


# A name that takes longer to resolve is treated as not resolving.
RESOLVE_TIMEOUT_SECONDS = 3.0


class RefusedAddress(Exception):
    """The URL is not one Lyceum will call (its message says why)."""


def refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why a connection to `address` is refused; None if it is allowed."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return refusal(address.ipv4_mapped, allow_private=allow_private)
    if address in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata address"
    if address.is_unspecified or address.is_multicast:
        return f"{address} is not a unicast address"
    if allow_private:
        return None
    if address.is_loopback:
        return f"{address} is a loopback address"
    if address.is_link_local:
        return f"{address} is a link-local address"
    if address.is_private or address.is_reserved or not address.is_global:
        return f"{address} is a private or reserved address"
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve(host: str, port: int, *, allow_private: bool) -> IPAddress:
    """The address to connect to for `host`: every address it resolves to must be
    allowed (a name with one private address among public ones is refused)."""
    literal = _literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError as exc:
            raise RefusedAddress(f"{host} does not resolve (timed out)") from exc
        except (socket.gaierror, UnicodeError) as exc:
            raise RefusedAddress(f"{host} does not resolve ({exc})") from exc
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
        if not addresses:
            raise RefusedAddress(f"{host} does not resolve")
    for address in addresses:
        reason = refusal(address, allow_private=allow_private)
        if reason is not None:
            raise RefusedAddress(f"{host} resolves to {reason}")
    return addresses[0]


async def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse a URL whose host is (or resolves to) a forbidden address. A name that
    does not resolve yet passes: it is checked again at every call."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or 443
    except ValueError as exc:
        raise RefusedAddress(f"{url} is malformed") from exc
    try:
        await resolve(host, port, allow_private=allow_private)
    except RefusedAddress as exc:
        if "does not resolve" not in str(exc):
            raise


@dataclass(frozen=True)
class GuardedResponse:
    status_code: int
    body: bytes  # at most the cap
    duration_ms: int


async def post(
    client: httpx.AsyncClient,
    url: str,
    *,
    content: bytes,
    headers: dict[str, str],
    allow_private: bool,
    timeout_seconds: float,
    max_body_bytes: int,
) -> GuardedResponse:
    """POST `content` to `url`, connecting to the address checked for its host.
    Raises `RefusedAddress`, or httpx's errors for timeouts and connection failures."""
    try:
        parts = urlsplit(url)
        explicit_port = parts.port
    except ValueError as exc:
        raise RefusedAddress(f"{url} is malformed") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RefusedAddress(f"{url} is not an http(s) URL")
    host = parts.hostname
    port = explicit_port or (443 if parts.scheme == "https" else 80)
    address = await resolve(host, port, allow_private=allow_private)
    netloc = f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"
    target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = host if explicit_port is None else f"{host}:{explicit_port}"
    request = client.build_request(
        "POST",
        target,
        content=content,
        headers={**headers, "Host": host_header},
        timeout=httpx.Timeout(timeout_seconds),
        extensions={"sni_hostname": host} if parts.scheme == "https" else {},
    )
    started = time.perf_counter()
    response = await client.send(request, stream=True, follow_redirects=False)
    try:
        body = bytearray()
        async for chunk in response.aiter_raw():
            body.extend(chunk)
            if len(body) >= max_body_bytes:
                break
    finally:
        await response.aclose()
    duration_ms = round((time.perf_counter() - started) * 1000)
    return GuardedResponse(response.status_code, bytes(body[:max_body_bytes]), duration_ms)
