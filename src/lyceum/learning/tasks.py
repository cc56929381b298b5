"""Learning jobs: the certificate of a completed course (made and stored once; the
notifications domain tells the learner, reacting to `certificate.issued`)."""

from __future__ import annotations

import uuid

from lyceum.kit.events import on
from lyceum.kit.jobs import JobContext, Queue, resources, task, transaction
from lyceum.learning.certificates import issue_for


@task(name="lyceum.learning.issue_certificate", queue=Queue.certificates, pass_context=True)
async def issue_certificate(
    context: JobContext, enrollment_id: str, user_id: str = "", course_id: str = ""
) -> None:
    """Make and store the certificate of a completed course (safe to run twice: the
    certificate is made once). Making it emits `certificate.issued`, to which the
    notifications react: the learner hears of it in the app and by mail, once."""
    runtime = resources(context)
    async with transaction(runtime) as session:
        await issue_for(
            session, uuid.UUID(enrollment_id), settings=runtime.settings, storage=runtime.storage
        )


on("course.completed", issue_certificate)
