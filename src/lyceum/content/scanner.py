"""Virus scanning through clamd's INSTREAM command (CLAMD_URL), before a file becomes
visible. The protocol: `zINSTREAM\\0`, then chunks each prefixed by their length as a
4-byte big-endian integer, then a zero length; clamd answers `stream: OK` or
`stream: <signature> FOUND`."""

from __future__ import annotations

import asyncio
import struct
from urllib.parse import urlsplit

CHUNK = 64 * 1024
TIMEOUT_SECONDS = 60.0


class ScannerError(Exception):
    """clamd could not be reached or answered something unexpected (retry later)."""


async def _open(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return await asyncio.open_unix_connection(parts.path)
    if parts.scheme == "tcp" and parts.hostname and parts.port:
        return await asyncio.open_connection(parts.hostname, parts.port)
    raise ScannerError(f"CLAMD_URL must be tcp://host:port or unix:///path, not {url!r}")


async def scan(url: str, data: bytes) -> str | None:
    """The signature clamd found in `data`, or None when it is clean."""
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            reader, writer = await _open(url)
            try:
                writer.write(b"zINSTREAM\0")
                for start in range(0, len(data), CHUNK):
                    piece = data[start : start + CHUNK]
                    writer.write(struct.pack("!L", len(piece)) + piece)
                    await writer.drain()
                writer.write(struct.pack("!L", 0))
                await writer.drain()
                answer = (await reader.read(4096)).rstrip(b"\0\n").decode(errors="replace")
            finally:
                writer.close()
    except (OSError, TimeoutError) as error:
        raise ScannerError(f"clamd at {url} failed: {error}") from error
    verdict = answer.removeprefix("stream:").strip()
    if verdict == "OK":
        return None
    if verdict.endswith(" FOUND"):
        return verdict.removesuffix(" FOUND").strip()
    raise ScannerError(f"clamd answered {answer!r}")
