"""Uploaded images cost bounded memory: the pixel budget is checked from the header,
before anything is decoded, for avatars, covers and course-file images alike; image
uploads are limited per user."""

from __future__ import annotations

import io
import struct
import zlib

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.config import Settings
from lyceum.kit import images
from lyceum.kit.documents.filetypes import FileKind, prepare_image
from lyceum.kit.errors import Invalid
from lyceum.kit.runtime import Runtime
from lyceum.models.identity import Role
from tests.identity.helpers import account
from tests.support.runtimes import settings_changed


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares `width` x `height` pixels and holds almost none of them: only
    a check on the header can tell its size; decoding it would fail."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def huge_png() -> bytes:
    """A real 6300x6300 image (40 megapixels; a few hundred kilobytes as a PNG), which
    decodes to 119 MB of RGB: eight at once added 1.8 GB to the server."""
    output = io.BytesIO()
    Image.new("L", (6300, 6300), 200).save(output, format="PNG")
    return output.getvalue()


def test_the_pixel_budget_is_checked_before_decoding() -> None:
    with pytest.raises(Invalid) as caught:
        images.fit_image(png_header(6300, 6300), (256, 256), "PNG", max_pixels=25_000_000)
    assert caught.value.slug == "image-too-large"
    assert caught.value.field == "body.file"
    assert "6300x6300 pixels (39.7 megapixels); at most 25 megapixels" in caught.value.detail
    with pytest.raises(Invalid) as caught:
        prepare_image(png_header(6000, 5000), FileKind.png, max_pixels=25_000_000)
    assert caught.value.slug == "image-too-large"


def test_images_within_the_budget_are_still_decoded() -> None:
    output = io.BytesIO()
    Image.new("RGB", (3000, 2000), (10, 120, 200)).save(output, format="JPEG")
    fitted = images.fit_image(output.getvalue(), (256, 256), "PNG", max_pixels=6_000_000)
    with Image.open(io.BytesIO(fitted)) as avatar:
        assert avatar.size == (256, 256)
        assert avatar.getpixel((128, 128))[:3] == pytest.approx((10, 120, 200), abs=3)
    with pytest.raises(Invalid):
        images.fit_image(output.getvalue(), (256, 256), "PNG", max_pixels=5_999_999)


def test_pillows_bomb_guard_sits_at_the_ceiling_of_any_budget() -> None:
    assert Image.MAX_IMAGE_PIXELS == images.PIXEL_CEILING
    assert Settings.model_fields["image_max_pixels"].metadata[-1].le == images.PIXEL_CEILING
    with pytest.raises(Invalid) as caught:
        images.fit_image(png_header(30_000, 30_000), (256, 256), "PNG", max_pixels=10**8)
    assert caught.value.slug == "image-too-large"


async def test_a_6300_pixel_square_avatar_is_refused_and_nothing_stored(
    client: httpx.AsyncClient, connection: AsyncConnection, huge_png: bytes
) -> None:
    me = await account(client, connection)
    response = await client.put(
        "/api/v1/users/me/avatar",
        files={"file": ("me.png", huge_png, "image/png")},
        headers=me.headers,
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["type"].endswith("/image-too-large")
    assert body["errors"][0]["field"] == "body.file"
    assert (await client.get("/api/v1/users/me", headers=me.headers)).json()["avatar_url"] is None


async def test_a_6300_pixel_square_cover_is_refused(
    client: httpx.AsyncClient, connection: AsyncConnection, huge_png: bytes
) -> None:
    teacher = await account(client, connection, role=Role.instructor, prefix="teacher")
    course = await client.post(
        "/api/v1/courses", json={"title": "Big covers"}, headers=teacher.headers
    )
    assert course.status_code == 201, course.text
    response = await client.put(
        f"/api/v1/courses/{course.json()['id']}/cover",
        files={"file": ("cover.png", huge_png, "image/png")},
        headers=teacher.headers,
    )
    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith("/image-too-large")
    assert response.json()["errors"][0]["field"] == "body.file"
    assert (await client.get(f"/api/v1/courses/{course.json()['id']}/cover")).status_code == 404


async def test_image_uploads_are_rate_limited_per_user(
    app: FastAPI, client: httpx.AsyncClient, connection: AsyncConnection, runtime: Runtime
) -> None:
    me = await account(client, connection, role=Role.instructor, prefix="teacher")
    course = await client.post("/api/v1/courses", json={"title": "Covers"}, headers=me.headers)
    small = io.BytesIO()
    Image.new("RGB", (400, 300), (200, 40, 40)).save(small, format="PNG")
    with settings_changed(app, runtime, image_upload_rate_limit="2/hour"):
        avatar = await client.put(
            "/api/v1/users/me/avatar",
            files={"file": ("me.png", small.getvalue(), "image/png")},
            headers=me.headers,
        )
        assert avatar.status_code == 200, avatar.text
        cover = await client.put(
            f"/api/v1/courses/{course.json()['id']}/cover",
            files={"file": ("c.png", small.getvalue(), "image/png")},
            headers=me.headers,
        )
        assert cover.status_code == 200, cover.text
        # Avatars and covers share the limit.
        limited = await client.put(
            "/api/v1/users/me/avatar",
            files={"file": ("me.png", small.getvalue(), "image/png")},
            headers=me.headers,
        )
        assert limited.status_code == 429, limited.text
        assert limited.json()["type"].endswith("/rate-limited")
        assert int(limited.headers["retry-after"]) > 0
        other = await account(client, connection)
        theirs = await client.put(
            "/api/v1/users/me/avatar",
            files={"file": ("me.png", small.getvalue(), "image/png")},
            headers=other.headers,
        )
        assert theirs.status_code == 200, theirs.text
