"""Functions the sandbox tests run in its child processes (importable there)."""

from __future__ import annotations

import os
import time

from lyceum.kit.errors import Invalid


def pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def niceness() -> int:
    return os.nice(0)


def sleep_forever() -> None:
    while True:
        time.sleep(1)


def allocate(megabytes: int) -> int:
    block = bytearray(megabytes * 1024 * 1024)
    return len(block)


def refuse(detail: str) -> None:
    raise Invalid(detail, field="body.file", slug="image-too-large")
