"""The password-hashing admission gate: at most K hashes run and Q wait; beyond that a
sign-in is answered 503 with Retry-After before anything is written, and a waiter that
waited too long or whose request went away is dropped before it hashes."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from lyceum.config import Settings
from lyceum.kit import security
from lyceum.kit.metrics import REGISTRY
from lyceum.kit.runtime import Runtime
from lyceum.kit.security import HashingGate, HashingOverloaded
from lyceum.models.identity import LoginSession, User
from tests.conftest import client_for, make_app
from tests.identity.helpers import PASSWORD, register, unique_email


class BlockingHasher:
    """The real hasher, except that each verification first waits for `release`."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.release = threading.Event()
        self.calls = 0
        self._lock = threading.Lock()

    def _block(self) -> None:
        with self._lock:
            self.calls += 1
        assert self.release.wait(30), "the test never released the hashes"

    def verify_and_update(self, password: str, stored: str) -> tuple[bool, str | None]:
        self._block()
        result: tuple[bool, str | None] = self.real.verify_and_update(password, stored)
        return result

    def verify(self, password: str, stored: str) -> bool:
        self._block()
        return bool(self.real.verify(password, stored))

    def hash(self, password: str) -> str:
        self._block()
        return str(self.real.hash(password))


def rejected(reason: str) -> float:
    value = REGISTRY.get_sample_value("lyceum_password_hash_rejected_total", {"reason": reason})
    return value or 0.0


async def until(condition: Any, seconds: float = 10.0) -> None:
    """Poll: the gate's state changes in threads and callbacks, with no event to await."""
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - nothing to await but the state itself
            await asyncio.sleep(0.01)


async def test_a_full_gate_answers_503_with_retry_after_and_starts_no_session(
    settings: Settings, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    slots, queue = security.HASHING_THREADS, 3
    # Concurrent requests need their own connections: this app commits for real.
    async with client_for(make_app(settings, runtime, None)) as http:
        emails = [unique_email("gate") for _ in range(slots + queue + 1)]
        for email in emails:
            await register(http, email)
        gate = HashingGate(slots, queue_limit=queue, max_wait=30)
        hasher = BlockingHasher(security._password_hash)
        monkeypatch.setattr(security, "hashing_gate", gate)
        monkeypatch.setattr(security, "_password_hash", hasher)
        before = rejected("queue")

        def sign_in(email: str) -> Any:
            return http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})

        admitted = [asyncio.create_task(sign_in(email)) for email in emails[:-1]]
        await until(lambda: gate.running == slots and gate.waiting == queue)
        await until(lambda: hasher.calls == slots)

        refused = await sign_in(emails[-1])
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) >= 1
        problem = refused.json()
        assert problem["title"] == "Password hashing overloaded"
        assert "hashing" in problem["detail"]
        assert problem["type"].endswith("/overloaded")
        assert rejected("queue") == before + 1
        assert hasher.calls == slots  # the refused sign-in never reached a thread

        hasher.release.set()
        answers = await asyncio.gather(*admitted)
        assert [answer.status_code for answer in answers] == [200] * (slots + queue)
        assert all("access_token" in answer.json() for answer in answers)
        assert gate.running == 0 and gate.waiting == 0

    async with runtime.database.sessionmaker() as db:
        refused_user = await db.scalar(select(User.id).where(User.email == emails[-1]))
        admitted_user = await db.scalar(select(User.id).where(User.email == emails[0]))
        sessions_of = select(func.count()).select_from(LoginSession)
        assert await db.scalar(sessions_of.where(LoginSession.user_id == refused_user)) == 0
        assert await db.scalar(sessions_of.where(LoginSession.user_id == admitted_user)) == 1


async def test_a_full_gate_refuses_a_registration_without_creating_the_account(
    settings: Settings, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = HashingGate(1, queue_limit=0, max_wait=30)
    hasher = BlockingHasher(security._password_hash)
    monkeypatch.setattr(security, "hashing_gate", gate)
    monkeypatch.setattr(security, "_password_hash", hasher)
    async with client_for(make_app(settings, runtime, None)) as http:
        blocked = asyncio.create_task(
            http.post("/api/v1/auth/login", json={"email": unique_email(), "password": PASSWORD})
        )
        await until(lambda: hasher.calls == 1)
        email = unique_email("refused")
        response = await http.post(
            "/api/v1/auth/register",
            json={"email": email, "password": PASSWORD, "full_name": "Ada Lovelace"},
        )
        assert response.status_code == 503
        assert "retry-after" in response.headers
        hasher.release.set()
        # The unknown email is verified against the dummy hash, through the same gate.
        assert (await blocked).status_code == 401
    async with runtime.database.sessionmaker() as db:
        assert await db.scalar(select(User.id).where(User.email == email)) is None


async def test_a_waiter_past_its_bound_is_dropped_before_hashing() -> None:
    gate = HashingGate(1, queue_limit=5, max_wait=0.2)
    release = threading.Event()
    calls: list[str] = []

    def work(name: str) -> str:
        calls.append(name)
        release.wait(10)
        return name

    before = rejected("wait")
    first = asyncio.create_task(gate.run(work, "first"))
    await until(lambda: calls == ["first"])
    with pytest.raises(HashingOverloaded):
        await gate.run(work, "late")
    assert rejected("wait") == before + 1
    release.set()
    assert await first == "first"
    assert calls == ["first"]
    assert gate.running == 0 and gate.waiting == 0


async def test_a_cancelled_waiter_never_hashes_and_frees_its_place() -> None:
    gate = HashingGate(1, queue_limit=1, max_wait=10)
    release = threading.Event()
    calls: list[str] = []

    def work(name: str) -> str:
        calls.append(name)
        release.wait(10)
        return name

    first = asyncio.create_task(gate.run(work, "first"))
    await until(lambda: calls == ["first"])
    gone = asyncio.create_task(gate.run(work, "gone"))
    await until(lambda: gate.waiting == 1)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert gate.waiting == 0
    # Its place in the queue is free again.
    third = asyncio.create_task(gate.run(work, "third"))
    await until(lambda: gate.waiting == 1)
    release.set()
    assert await first == "first"
    assert await third == "third"
    assert calls == ["first", "third"]
    assert gate.running == 0


async def test_a_cancelled_hash_keeps_its_slot_until_the_thread_ends() -> None:
    gate = HashingGate(1, queue_limit=1, max_wait=10)
    release = threading.Event()
    calls: list[str] = []

    def work(name: str) -> str:
        calls.append(name)
        release.wait(10)
        return name

    running = asyncio.create_task(gate.run(work, "running"))
    await until(lambda: calls == ["running"])
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert gate.running == 1  # the thread is still hashing: no second hash may start
    follower = asyncio.create_task(gate.run(work, "follower"))
    await asyncio.sleep(0.05)
    assert calls == ["running"]
    release.set()
    assert await follower == "follower"
    assert gate.running == 0


def test_the_runtime_configures_the_process_gate_from_the_settings(
    settings: Settings, runtime: Runtime
) -> None:
    assert security.hashing_gate.slots == security.HASHING_THREADS
    assert security.hashing_gate.queue_limit == settings.password_hash_queue == 64
    assert security.hashing_gate.max_wait == settings.password_hash_max_wait_seconds == 10.0
