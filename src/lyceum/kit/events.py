"""Domain events: a name and a payload of ids. Each event lists the tasks that react to
it, turned into jobs in the caller's transaction (later, webhooks subscribe here too),
and the reactions that must happen in that same transaction, before the request
answers (a grade that completes a course shows the course completed)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from procrastinate.tasks import Task
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.kit.jobs import defer, load_task_modules

Reaction = Callable[..., Awaitable[None]]
"""`async def reaction(session, **payload)`: runs inside the emitting transaction."""

_subscribers: dict[str, list[Task[Any, Any, Any]]] = {}
_reactions: dict[str, list[Reaction]] = {}


def on(event: str, task: Task[Any, Any, Any]) -> None:
    subscribers = _subscribers.setdefault(event, [])
    if task not in subscribers:
        subscribers.append(task)


def react(event: str, reaction: Reaction) -> None:
    """Run `reaction(session, **payload)` whenever `event` is emitted, in the emitting
    session's transaction: the emitter's domain does not import the reacting one."""
    reactions = _reactions.setdefault(event, [])
    if reaction not in reactions:
        reactions.append(reaction)


def subscribers(event: str) -> list[Task[Any, Any, Any]]:
    return list(_subscribers.get(event, ()))


def reactions(event: str) -> list[Reaction]:
    return list(_reactions.get(event, ()))


async def emit(session: AsyncSession, event: str, **payload: Any) -> None:
    """Run every reaction to `event`, then enqueue every task subscribed to it, inside
    the session's transaction. Subscriptions and reactions are made when the task
    modules load; they are loaded here too, so a process that never started a worker
    (`lyceum demo`, a script, the API) still emits to them."""
    load_task_modules()
    for reaction in reactions(event):
        await reaction(session, **payload)
    for task in subscribers(event):
        await defer(session, task, **payload)
