"""Named queues: work a person waits for never queues behind bulk work."""

from __future__ import annotations

import uuid

from lyceum.kit.jobs import (
    BULK_QUEUES,
    PRIORITIES,
    USER_FACING_QUEUES,
    Queue,
    job_app,
    load_task_modules,
    task,
)
from lyceum.kit.runtime import Runtime
from tests.support.jobs import run_jobs

ran: list[tuple[str, str]] = []


@task(name="tests.queues.index_probe", queue=Queue.indexing)
async def index_probe(token: str, n: int) -> None:
    ran.append((token, f"index-{n}"))


@task(name="tests.queues.certificate_probe", queue=Queue.certificates)
async def certificate_probe(token: str) -> None:
    ran.append((token, "certificate"))


async def test_a_certificate_deferred_after_200_indexing_jobs_runs_before_them(
    runtime: Runtime,
) -> None:
    token = uuid.uuid4().hex
    for n in range(200):
        await index_probe.defer_async(token=token, n=n)
    await certificate_probe.defer_async(token=token)

    # One worker over every queue, one job at a time: it takes the certificate first.
    await run_jobs([queue.value for queue in Queue])

    order = [name for seen, name in ran if seen == token]
    assert len(order) == 201
    assert order[0] == "certificate"
    assert order[1:] == [f"index-{n}" for n in range(200)]


async def test_the_user_facing_worker_does_not_serve_bulk_queues(runtime: Runtime) -> None:
    """The layout `lyceum serve` runs in embedded mode (and production copies with
    `lyceum worker --queues`): the user-facing worker never picks up indexing, so a
    certificate waits for no textbook."""
    token = uuid.uuid4().hex
    for n in range(20):
        await index_probe.defer_async(token=token, n=n)
    await certificate_probe.defer_async(token=token)

    await run_jobs(USER_FACING_QUEUES)
    assert [name for seen, name in ran if seen == token] == ["certificate"]

    await run_jobs(BULK_QUEUES)
    assert len([name for seen, name in ran if seen == token]) == 21


def test_every_queue_is_served_by_exactly_one_embedded_worker() -> None:
    assert set(USER_FACING_QUEUES) | set(BULK_QUEUES) == set(Queue)
    assert not set(USER_FACING_QUEUES) & set(BULK_QUEUES)
    assert min(PRIORITIES[queue] for queue in USER_FACING_QUEUES) > max(
        PRIORITIES[queue] for queue in BULK_QUEUES
    )


def test_every_lyceum_task_runs_on_a_named_queue_at_its_priority() -> None:
    load_task_modules()
    lyceum_tasks = {
        name: found for name, found in job_app.tasks.items() if name.startswith("lyceum.")
    }
    assert lyceum_tasks
    for name, found in lyceum_tasks.items():
        queue = Queue(found.queue)  # raises for an unnamed queue such as "default"
        assert found.priority == PRIORITIES[queue], name
    mail_tasks = [name for name in lyceum_tasks if name.endswith("_mail")]
    assert mail_tasks and all(lyceum_tasks[name].queue == Queue.mail for name in mail_tasks)
