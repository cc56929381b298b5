"""Domain events: a name and a payload of ids, turned into jobs in the caller's
transaction. Each event lists the tasks that react to it; later, webhooks subscribe
here too."""

from __future__ import annotations

from typing import Any

from procrastinate.tasks import Task
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.kit.jobs import defer, load_task_modules

_subscribers: dict[str, list[Task[Any, Any, Any]]] = {}


def on(event: str, task: Task[Any, Any, Any]) -> None:
    subscribers = _subscribers.setdefault(event, [])
    if task not in subscribers:
        subscribers.append(task)


def subscribers(event: str) -> list[Task[Any, Any, Any]]:
    return list(_subscribers.get(event, ()))


async def emit(session: AsyncSession, event: str, **payload: Any) -> None:
    """Enqueue every task subscribed to `event`, inside the session's transaction.
    Subscriptions are made when the task modules load; they are loaded here too, so a
    process that never started a worker (`lyceum demo`, a script) still emits to them."""
    load_task_modules()
    for task in subscribers(event):
        await defer(session, task, **payload)
