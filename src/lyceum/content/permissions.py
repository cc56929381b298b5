"""Who may do what with a course's files and material: `Annotated` dependencies that
routes put in their signature, resolved from the path before the endpoint body runs.

- `MaterialAccess` / `MemberAccess`: the course's material as its member sees it
  (instructors and admins: everything; enrolled learners: what is ready), for routes
  that also answer anonymous callers, and for routes that need a signed-in caller.
- `VisibleFile` / `MemberFile`: one file of the path's course that the caller may see
  (404 for a file of another course, or one not ready yet for a learner).
- `ManagedFile`: a file of a course the caller may edit.
- `FileUploadQuota`: an upload or re-index counted against the caller's limit (429)
  before anything else about the request is looked at.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from lyceum.content.service import Access, ContentService, DownloadSigner
from lyceum.courses.permissions import EditableCourse, MaterialCourse, MemberCourse
from lyceum.identity.permissions import CurrentUser, RuntimeDep
from lyceum.kit.clock import ClockDep
from lyceum.kit.db import Session
from lyceum.models.content import CourseFile


async def content_service(session: Session, runtime: RuntimeDep, clock: ClockDep) -> ContentService:
    settings = runtime.settings
    return ContentService(
        session,
        storage=runtime.storage,
        sandbox=runtime.sandbox,
        image_max_pixels=settings.image_max_pixels,
        signer=DownloadSigner(settings.secret_key_value()),
        public_base_url=settings.base_url(),
        link_ttl_seconds=settings.download_url_ttl_seconds,
        now=clock.now(),
    )


Content = Annotated[ContentService, Depends(content_service)]


async def material_access(membership: MaterialCourse) -> Access:
    return Access(membership.course, can_edit=membership.can_edit)


MaterialAccess = Annotated[Access, Depends(material_access)]


async def member_access(membership: MemberCourse) -> Access:
    return Access(membership.course, can_edit=membership.can_edit)


MemberAccess = Annotated[Access, Depends(member_access)]


async def visible_file(file_id: uuid.UUID, access: MaterialAccess, service: Content) -> CourseFile:
    return await service.file(access, file_id)


VisibleFile = Annotated[CourseFile, Depends(visible_file)]


async def member_file(file_id: uuid.UUID, access: MemberAccess, service: Content) -> CourseFile:
    return await service.file(access, file_id)


MemberFile = Annotated[CourseFile, Depends(member_file)]


async def managed_file(file_id: uuid.UUID, course: EditableCourse, service: Content) -> CourseFile:
    return await service.file(Access(course, can_edit=True), file_id)


ManagedFile = Annotated[CourseFile, Depends(managed_file)]


async def file_upload_quota(caller: CurrentUser, runtime: RuntimeDep) -> None:
    await runtime.rate_limiter.check(
        runtime.settings.file_upload_rate_limit, "upload-file", str(caller.id)
    )


FileUploadQuota = Annotated[None, Depends(file_upload_quota)]
