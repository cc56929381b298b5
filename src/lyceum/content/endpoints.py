"""Course file and course-material search routes: parse, authorize, call the service."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import Depends, File, Query, Response, UploadFile, status

from lyceum.content import schemas
from lyceum.content.permissions import (
    Content,
    FileUploadQuota,
    ManagedFile,
    MaterialAccess,
    MemberAccess,
    MemberFile,
    VisibleFile,
)
from lyceum.content.retrieval import MAX_K, search_course_material
from lyceum.content.service import file_out
from lyceum.courses.permissions import EditableCourse
from lyceum.identity.permissions import CurrentUser, RuntimeDep
from lyceum.kit.ai.embedding import Embedder, load_embedder
from lyceum.kit.db import Session
from lyceum.kit.errors import PayloadTooLarge
from lyceum.kit.pagination import Page
from lyceum.kit.routing import Router
from lyceum.kit.storage import attachment_disposition
from lyceum.kit.validation import SafeStr

content = Router(tags=["content"])


async def embedder() -> Embedder:
    # The first call loads the model (seconds): off the event loop.
    return await load_embedder()


FILES = "/courses/{course_id:uuid}/files"


@content.post(
    FILES,
    status_code=status.HTTP_201_CREATED,
    summary="Upload a course file (instructors and admins)",
    description="PDF, DOCX, PNG, JPEG, WebP, plain text or Markdown, up to MAX_UPLOAD_BYTES "
    "(10 MB by default; larger uploads are refused with 413 while they stream in). The "
    "extension and the file's content must agree. Images (at most IMAGE_MAX_PIXELS) are "
    "re-encoded without metadata and get a thumbnail. The file starts `pending`; its text "
    "is extracted and indexed by a job (`progress` shows how far it is), after which it is "
    "`ready` (or `failed`, with a reason). A file longer than the indexing budgets "
    "(EXTRACTION_MAX_PAGES pages, INGEST_MAX_CHUNKS passages) is indexed up to them: it "
    "ends `ready` with `truncated: true` and a `notice` saying how far. Uploading bytes "
    "the course already has returns the existing file with 200 and `duplicate: true`. "
    "Uploads and re-index requests are limited per user to FILE_UPLOAD_RATE_LIMIT (429 "
    "with Retry-After beyond).",
    responses={200: {"model": schemas.UploadResult, "description": "Already uploaded."}},
)
async def upload_file(
    quota: FileUploadQuota,
    caller: CurrentUser,
    course: EditableCourse,
    file: Annotated[UploadFile, File(description="The file.")],
    service: Content,
    runtime: RuntimeDep,
    response: Response,
) -> schemas.UploadResult:
    limit = runtime.settings.max_upload_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"The file exceeds the limit of {limit} bytes.", field="body.file")
    stored, duplicate = await service.upload(course, caller, data, file.filename or "")
    response.status_code = status.HTTP_200_OK if duplicate else status.HTTP_201_CREATED
    response.headers["Location"] = f"/api/v1/courses/{course.id}/files/{stored.id}"
    return schemas.UploadResult(**file_out(stored).model_dump(), duplicate=duplicate)


@content.get(
    FILES,
    summary="The course's files: all of them for instructors and admins, ready ones for "
    "enrolled learners",
)
async def list_files(access: MaterialAccess, service: Content) -> Page[schemas.CourseFileOut]:
    return Page.of_all([file_out(file) for file in await service.files(access)])


@content.get(FILES + "/{file_id:uuid}", summary="One file's metadata and indexing status")
async def get_file(file: VisibleFile) -> schemas.CourseFileOut:
    return file_out(file)


@content.delete(
    FILES + "/{file_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a file, its stored object and its index entries",
)
async def delete_file(file: ManagedFile, service: Content) -> None:
    await service.delete(file)


@content.post(
    FILES + "/{file_id:uuid}/reindex",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Extract and index the file again (instructors and admins)",
    description="Counts against FILE_UPLOAD_RATE_LIMIT like an upload: indexing costs the same.",
)
async def reindex_file(
    quota: FileUploadQuota, file: ManagedFile, service: Content
) -> schemas.CourseFileOut:
    return file_out(await service.reindex(file))


@content.get(
    FILES + "/{file_id:uuid}/download",
    summary="A short-lived signed download link (enrolled learners, instructors, admins)",
)
async def download_link(
    file: MemberFile, service: Content, variant: Literal["original", "thumbnail"] = "original"
) -> schemas.DownloadLink:
    return await service.download_link(file, variant)


@content.get(
    "/files/{file_id:uuid}/content",
    summary="A file's bytes, through a signed link from the download endpoint",
    description="Local storage only (S3 links point at the bucket). The link is the "
    "credential: no Authorization header is needed, and it expires.",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def file_content(
    file_id: uuid.UUID,
    service: Content,
    expires: Annotated[int, Query(ge=0, le=2**40)],
    signature: Annotated[str, Query(max_length=100, pattern=r"^[A-Za-z0-9_-]+$")],
    variant: Literal["original", "thumbnail"] = "original",
) -> Response:
    data, media_type, name = await service.signed_content(file_id, variant, expires, signature)
    return Response(
        data,
        media_type=media_type,
        headers={
            "Content-Disposition": attachment_disposition(name),
            "Cache-Control": "private, max-age=60",
        },
    )


@content.get(
    "/courses/{course_id:uuid}/indexing",
    summary="How far the course's material (lessons and files) is indexed",
    description="For the course's enrolled learners, instructors and admins. Each lesson "
    "and file is `pending` (waiting for the indexing job), `processing`, `ready` "
    "(searchable, and known to the tutor) or `failed`. Learners get the counts; "
    "instructors and admins also every item, with failure reasons. While `complete` is "
    "false, search and the tutor do not see all of the material yet (the tutor says so).",
)
async def course_indexing(access: MemberAccess, service: Content) -> schemas.CourseIndexing:
    return await service.indexing(access)


@content.get(
    "/courses/{course_id:uuid}/search",
    summary="Search the course's material (lessons and files), with sources for citation",
    description="Hybrid retrieval: vector similarity (all-MiniLM-L6-v2, HNSW) and full-text "
    "search fused by reciprocal rank. For enrolled learners, instructors and admins.",
)
async def search_material(
    access: MemberAccess,
    session: Session,
    encoder: Annotated[Embedder, Depends(embedder)],
    q: Annotated[SafeStr, Query(min_length=1, max_length=500, description="The question.")],
    k: Annotated[int, Query(ge=1, le=MAX_K, description="How many passages.")] = 5,
) -> schemas.SearchResults:
    hits = await search_course_material(session, encoder, access.course.id, q, k)
    return schemas.SearchResults(
        query=q,
        items=[
            schemas.SearchHit(
                text=hit.text,
                score=hit.score,
                source=schemas.SourceOut(
                    kind=hit.source.kind,
                    id=hit.source.id,
                    title=hit.source.title,
                    page=hit.source.page,
                    heading=hit.source.heading,
                ),
            )
            for hit in hits
        ],
    )
