"""Course files: who may upload, see and download them; storing them safely; signed
download links. Indexing happens in jobs (content.tasks)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.content import schemas
from lyceum.content.repository import (
    WAITING,
    FileRepository,
    IndexingRepository,
)
from lyceum.content.repository import (
    IndexingProgress as IndexingProgress,
)

# Course-material search is part of this domain's public interface: other domains (the
# tutor) import it from here, never from content's internals.
from lyceum.content.retrieval import Hit as Hit
from lyceum.content.retrieval import retrieve as retrieve
from lyceum.content.retrieval import search_course_material as search_course_material
from lyceum.kit.documents.filetypes import FileKind, Inspected, inspect_upload, prepare_image
from lyceum.kit.errors import Forbidden, NotFound
from lyceum.kit.events import emit
from lyceum.kit.images import in_sandbox
from lyceum.kit.sandbox import Sandbox
from lyceum.kit.security import constant_time_equal
from lyceum.kit.storage import Storage, delete_after_commit, put_for_transaction
from lyceum.models.content import CourseFile, FileStatus
from lyceum.models.courses import Course
from lyceum.models.identity import User

Variant = Literal["original", "thumbnail"]


@dataclass(frozen=True, slots=True)
class Access:
    course: Course
    can_edit: bool


def file_out(file: CourseFile) -> schemas.CourseFileOut:
    return schemas.CourseFileOut(
        id=file.id,
        course_id=file.course_id,
        name=file.display_name,
        kind=FileKind(file.kind).value,
        content_type=file.content_type,
        size_bytes=file.size_bytes,
        sha256=file.sha256,
        status=file.status,
        failure_reason=file.failure_reason,
        progress=_progress(file),
        truncated=file.truncated,
        notice=file.notice,
        page_count=file.page_count,
        chunk_count=file.chunk_count,
        has_thumbnail=file.thumbnail_key is not None,
        created_at=file.created_at,
        indexed_at=file.indexed_at,
    )


def _progress(file: CourseFile) -> schemas.IndexingProgress | None:
    if file.status is not FileStatus.processing or file.indexing_phase is None:
        return None
    total = file.indexing_total
    return schemas.IndexingProgress(
        phase=file.indexing_phase,
        chunks_done=file.indexing_done,
        chunks_total=total,
        percent=min(100, file.indexing_done * 100 // total) if total else None,
    )


async def indexing_progress(session: AsyncSession, course_id: uuid.UUID) -> IndexingProgress:
    """How much of the course's material is not searchable (yet), in one round trip: for
    other domains (the tutor, when a search finds nothing relevant)."""
    return await IndexingRepository(session).progress(course_id)


class DownloadSigner:
    """HMAC-signed links for files the app serves itself (local storage)."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"lyceum-download:" + secret.encode()).digest()

    def signature(self, file_id: uuid.UUID, variant: Variant, expires: int) -> str:
        message = f"{file_id}:{variant}:{expires}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def verify(
        self, file_id: uuid.UUID, variant: Variant, expires: int, signature: str, now: dt.datetime
    ) -> None:
        expected = self.signature(file_id, variant, expires)
        if not constant_time_equal(expected, signature):
            raise Forbidden("The download link is not valid.", slug="invalid-link")
        if expires < now.timestamp():
            raise Forbidden(
                "The download link has expired; ask for a new one.", slug="link-expired"
            )


class ContentService:
    def __init__(
        self,
        session: AsyncSession,
        *,
        storage: Storage,
        sandbox: Sandbox,
        image_max_pixels: int,
        signer: DownloadSigner,
        public_base_url: str,
        link_ttl_seconds: int,
        now: dt.datetime,
    ) -> None:
        self.session = session
        self.repository = FileRepository(session)
        self.storage = storage
        self.sandbox = sandbox
        self.image_max_pixels = image_max_pixels
        self.signer = signer
        self.public_base_url = public_base_url.rstrip("/")
        self.link_ttl_seconds = link_ttl_seconds
        self.now = now

    # Access ---------------------------------------------------------------------------

    async def file(self, access: Access, file_id: uuid.UUID) -> CourseFile:
        file = await self.repository.get(file_id)
        if file is None or file.course_id != access.course.id:
            raise NotFound("No such file in this course.")
        if not access.can_edit and file.status is not FileStatus.ready:
            raise NotFound("No such file in this course.")
        return file

    async def files(self, access: Access) -> list[CourseFile]:
        return await self.repository.of_course(access.course.id, ready_only=not access.can_edit)

    # Uploads --------------------------------------------------------------------------

    async def upload(
        self, course: Course, caller: User, data: bytes, filename: str
    ) -> tuple[CourseFile, bool]:
        """Store an upload and queue its indexing. Returns (file, duplicate): the same
        bytes already in the course give back the existing file and store nothing."""
        inspected: Inspected = await asyncio.to_thread(inspect_upload, data, filename)
        # Hashing 10 MB takes tens of milliseconds: not on the event loop.
        digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
        existing = await self.repository.by_digest(course.id, digest)
        if existing is not None:
            return existing, True

        stored, thumbnail, content_type = data, None, inspected.content_type
        if inspected.kind.is_image:
            stored, thumbnail, content_type = await in_sandbox(
                self.sandbox, prepare_image, data, inspected.kind, self.image_max_pixels
            )
        base = f"courses/{course.id}/files/{uuid.uuid4().hex}"
        key = f"{base}{inspected.extension}"
        thumbnail_key = f"{base}-thumb.webp" if thumbnail is not None else None
        file = CourseFile(
            course_id=course.id,
            uploaded_by=caller.id,
            display_name=inspected.display_name,
            kind=inspected.kind.value,
            content_type=content_type,
            size_bytes=len(stored),
            sha256=digest,
            storage_key=key,
            thumbnail_key=thumbnail_key,
            status=FileStatus.pending,
            chunk_count=0,
        )
        await put_for_transaction(self.session, self.storage, key, stored, content_type)
        if thumbnail is not None and thumbnail_key is not None:
            await put_for_transaction(
                self.session, self.storage, thumbnail_key, thumbnail, "image/webp"
            )
        try:
            await self.repository.add(file)
        except IntegrityError:
            # The same bytes arrived concurrently and won the race: keep theirs.
            await self._delete_objects(key, thumbnail_key)
            existing = await self.repository.by_digest(course.id, digest)
            if existing is None:
                raise
            return existing, True
        await emit(self.session, "content.file_uploaded", file_id=str(file.id))
        return file, False

    async def delete(self, file: CourseFile) -> None:
        """The row (and with it every indexed chunk) now; the stored objects once that
        has committed."""
        keys = (file.storage_key, file.thumbnail_key)
        await self.repository.delete(file)
        delete_after_commit(self.session, self.storage, *keys)

    async def _delete_objects(self, *keys: str | None) -> None:
        for key in keys:
            if key is not None:
                await self.storage.delete(key)

    async def indexing(self, access: Access) -> schemas.CourseIndexing:
        """Where the course's material stands in the index: counts for every member,
        and each lesson and file (with failure reasons) for its instructors and
        admins."""
        sources = await IndexingRepository(self.session).sources(access.course.id)
        counts = {
            kind: schemas.IndexingCounts(
                **{
                    status.value: sum(
                        1 for item in sources if item.kind == kind and item.status is status
                    )
                    for status in FileStatus
                }
            )
            for kind in ("lesson", "file")
        }
        items = [
            schemas.IndexedSourceOut(
                kind=item.kind,
                id=item.id,
                title=item.title,
                status=item.status,
                failure_reason=item.failure_reason,
                indexed_at=item.indexed_at,
            )
            for item in sources
        ]
        return schemas.CourseIndexing(
            course_id=access.course.id,
            complete=not any(item.status in WAITING for item in sources),
            lessons=counts["lesson"],
            files=counts["file"],
            items=items if access.can_edit else [],
        )

    async def reindex(self, file: CourseFile) -> CourseFile:
        file.status = FileStatus.pending
        file.failure_reason = None
        await self.session.flush()
        await emit(self.session, "content.file_uploaded", file_id=str(file.id))
        return file

    # Downloads ------------------------------------------------------------------------

    async def download_link(self, file: CourseFile, variant: Variant) -> schemas.DownloadLink:
        key = file.storage_key if variant == "original" else file.thumbnail_key
        if key is None:
            raise NotFound("This file has no thumbnail.")
        expires_at = self.now + dt.timedelta(seconds=self.link_ttl_seconds)
        content_type = file.content_type if variant == "original" else "image/webp"
        filename = file.display_name
        if variant == "thumbnail":
            filename = f"{filename.rsplit('.', 1)[0]}-thumbnail.webp"
        url = await self.storage.presigned_url(
            key, expires_in=self.link_ttl_seconds, filename=filename, content_type=content_type
        )
        if url is None:
            expires = int(expires_at.timestamp())
            query = urlencode(
                {
                    "variant": variant,
                    "expires": expires,
                    "signature": self.signer.signature(file.id, variant, expires),
                }
            )
            url = f"{self.public_base_url}/api/v1/files/{file.id}/content?{query}"
        return schemas.DownloadLink(url=url, expires_at=expires_at)

    async def signed_content(
        self, file_id: uuid.UUID, variant: Variant, expires: int, signature: str
    ) -> tuple[bytes, str, str]:
        """The bytes behind a signed link: (data, media type, download name)."""
        self.signer.verify(file_id, variant, expires, signature, self.now)
        file = await self.repository.get(file_id)
        key = None
        if file is not None:
            key = file.storage_key if variant == "original" else file.thumbnail_key
        data = await self.storage.get(key) if key else None
        if file is None or data is None:
            raise NotFound("The file no longer exists.")
        if variant == "original":
            return data, file.content_type, file.display_name
        return data, "image/webp", f"{file.display_name.rsplit('.', 1)[0]}-thumbnail.webp"
