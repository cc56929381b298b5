"""Profiles, avatars, account deletion, administration, create-admin, and who may call
which endpoint."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid

import httpx
import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from lyceum.models.identity import Role, User
from tests.identity.helpers import PASSWORD, account, enable_mfa, unique_email
from tests.support.clock import FrozenClock
from tests.support.servers import REPO_ROOT


def image_bytes(kind: str = "PNG", size: tuple[int, int] = (640, 480), exif: bool = False) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    output = io.BytesIO()
    if exif:
        metadata = Image.Exif()
        metadata[0x010F] = "SecretCam"  # Make
        metadata[0x8825] = {2: (48.0, 51.0, 24.0)}  # GPS
        image.save(output, format=kind, exif=metadata)
    else:
        image.save(output, format=kind)
    return output.getvalue()


async def test_get_and_patch_profile(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    me = await account(client, connection)
    profile = (await client.get("/api/v1/users/me", headers=me.headers)).json()
    assert profile["email"] == me.email and profile["locale"] == "en"
    patched = await client.patch(
        "/api/v1/users/me",
        json={
            "full_name": "Nguyễn Văn An",
            "bio": "Học lập trình",
            "locale": "vi-VN",
            "timezone": "Asia/Ho_Chi_Minh",
            "preferences": {"theme": "dark", "notifications": {"email": False}},
        },
        headers=me.headers,
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["full_name"] == "Nguyễn Văn An"
    assert body["timezone"] == "Asia/Ho_Chi_Minh"
    assert body["preferences"]["notifications"] == {"email": False}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "body.timezone"),
        ({"locale": "not a locale!"}, "body.locale"),
        ({"preferences": {"blob": "x" * 20_000}}, "body.preferences"),
        ({"preferences": ["not", "an", "object"]}, "body.preferences"),
        ({"email": "new@example.com"}, "body.email"),
        ({"bio": "nul\u0000byte"}, "body"),
    ],
)
async def test_bad_profile_changes_are_422_naming_the_field(
    client: httpx.AsyncClient, connection: AsyncConnection, change: dict[str, object], field: str
) -> None:
    me = await account(client, connection)
    response = await client.patch("/api/v1/users/me", json=change, headers=me.headers)
    assert response.status_code == 422, response.text
    assert any(error["field"].startswith(field) for error in response.json()["errors"])
    unchanged = (await client.get("/api/v1/users/me", headers=me.headers)).json()
    assert unchanged["timezone"] == "UTC" and unchanged["preferences"] == {}


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        (b'{"preferences": {"x": 1e400}}', "body.preferences", "x: numbers must be finite"),
        (b'{"preferences": {"x": NaN}}', "body.preferences", "finite"),
        (b'{"preferences": {"x": [Infinity]}}', "body.preferences", "x[0]: numbers"),
        (b'{"preferences": {"x": -Infinity}}', "body.preferences", "finite"),
        (b'{"preferences": {"x": "\\ud800"}}', "body.preferences", "x: must be valid Unicode"),
        (b'{"preferences": {"\\udfff": 1}}', "body.preferences", "valid Unicode"),
        (b'{"preferences": ' + b'{"a": ' * 40 + b"1" + b"}" * 41, "body.preferences", "deeper"),
        (b'{"bio": "lone \\ud83c surrogate"}', "body.bio", "nicode"),
        (b'{"full_name": "Tr\\udcc3n"}', "body.full_name", "nicode"),
    ],
)
async def test_json_postgres_cannot_store_is_422_naming_the_field(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    raw: bytes,
    field: str,
    message: str,
) -> None:
    me = await account(client, connection)
    response = await client.patch(
        "/api/v1/users/me",
        content=raw,
        headers={**me.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [error["field"] for error in errors] == [field], errors
    assert message in errors[0]["message"], errors
    unchanged = (await client.get("/api/v1/users/me", headers=me.headers)).json()
    assert unchanged["preferences"] == {} and unchanged["bio"] is None


@pytest.mark.parametrize("kind", ["PNG", "JPEG", "WEBP"])
async def test_avatar_is_reencoded_to_a_clean_256_square(
    client: httpx.AsyncClient, connection: AsyncConnection, kind: str
) -> None:
    me = await account(client, connection)
    response = await client.put(
        "/api/v1/users/me/avatar",
        files={
            "file": (f"me.{kind.lower()}", image_bytes(kind, exif=True), f"image/{kind.lower()}")
        },
        headers=me.headers,
    )
    assert response.status_code == 200, response.text
    url = response.json()["avatar_url"]
    assert url.startswith(f"http://lyceum.test/api/v1/users/{me.id}/avatar")
    served = await client.get(f"/api/v1/users/{me.id}/avatar", headers=me.headers)
    assert served.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(served.content)) as avatar:
        assert avatar.format == "PNG"
        assert avatar.size == (256, 256)
        assert not avatar.getexif()
        assert "exif" not in avatar.info
    assert b"SecretCam" not in served.content


@pytest.mark.parametrize(
    ("payload", "name"),
    [
        (b"%PDF-1.7 not an image at all", "cv.png"),
        (b"GIF89a" + b"\x00" * 100, "anim.gif"),
        (b"\x89PNG\r\n\x1a\n" + b"truncated garbage", "broken.png"),
    ],
)
async def test_non_images_are_refused_and_nothing_stored(
    client: httpx.AsyncClient, connection: AsyncConnection, payload: bytes, name: str
) -> None:
    me = await account(client, connection)
    response = await client.put(
        "/api/v1/users/me/avatar", files={"file": (name, payload, "image/png")}, headers=me.headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.file"
    assert (await client.get("/api/v1/users/me", headers=me.headers)).json()["avatar_url"] is None


async def test_oversized_avatar_is_refused(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    me = await account(client, connection)
    huge = image_bytes("PNG") + b"\x00" * (6 * 1024 * 1024)
    response = await client.put(
        "/api/v1/users/me/avatar",
        files={"file": ("big.png", huge, "image/png")},
        headers=me.headers,
    )
    assert response.status_code in {413, 422}
    assert (await client.get("/api/v1/users/me", headers=me.headers)).json()["avatar_url"] is None


async def test_delete_me_anonymises_and_signs_out(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    me = await account(client, connection)
    deleted = await client.request(
        "DELETE", "/api/v1/users/me", json={"password": PASSWORD}, headers=me.headers
    )
    assert deleted.status_code == 204
    assert (await client.get("/api/v1/users/me", headers=me.headers)).status_code == 401
    assert (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": me.refresh_token})
    ).status_code == 401
    login = await client.post("/api/v1/auth/login", json={"email": me.email, "password": PASSWORD})
    assert login.status_code == 401
    row = (
        await connection.execute(
            select(
                User.email, User.full_name, User.password_hash, User.is_active, User.deleted_at
            ).where(User.id == me.id)
        )
    ).one()
    assert row.email.endswith("@deleted.invalid") and row.full_name == "Deleted user"
    assert row.password_hash is None and not row.is_active and row.deleted_at is not None


async def test_deleting_the_account_asks_for_the_password_again(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    """An access token alone (a borrowed laptop, a leaked token) does not end the
    account: the password is asked again, as for changing it."""
    me = await account(client, connection)
    for body, field in (
        ({"password": "not the password"}, "body.password"),
        ({}, "body.password"),
    ):
        refused = await client.request("DELETE", "/api/v1/users/me", json=body, headers=me.headers)
        assert refused.status_code in (403, 422), refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["errors"][0]["field"] == field
    # Nothing was changed: the account answers and signs in as before.
    assert (await client.get("/api/v1/users/me", headers=me.headers)).json()["email"] == me.email
    login = await client.post("/api/v1/auth/login", json={"email": me.email, "password": PASSWORD})
    assert login.status_code == 200


async def test_deleting_an_account_with_mfa_asks_for_a_code_too(
    client: httpx.AsyncClient, connection: AsyncConnection, clock: FrozenClock
) -> None:
    me = await account(client, connection)
    totp = await enable_mfa(client, me, clock)
    clock.advance(seconds=30)  # each TOTP step is usable once
    for body in ({"password": PASSWORD}, {"password": PASSWORD, "code": "000000"}):
        refused = await client.request("DELETE", "/api/v1/users/me", json=body, headers=me.headers)
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"].endswith("/invalid-mfa-code")
        assert refused.json()["errors"][0]["field"] == "body.code"
    assert (await client.get("/api/v1/users/me", headers=me.headers)).status_code == 200
    deleted = await client.request(
        "DELETE",
        "/api/v1/users/me",
        json={"password": PASSWORD, "code": totp.at(clock.now())},
        headers=me.headers,
    )
    assert deleted.status_code == 204, deleted.text
    assert (await client.get("/api/v1/users/me", headers=me.headers)).status_code == 401


# Administration -----------------------------------------------------------------------


async def test_admin_lists_searches_and_filters_users(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await account(client, connection, role=Role.admin, prefix="admin")
    marker = uuid.uuid4().hex[:8]
    for index in range(3):
        response = await client.post(
            "/api/v1/auth/register",
            json={
                "email": f"findme-{marker}-{index}@example.com",
                "password": PASSWORD,
                "full_name": f"Find {index}",
            },
        )
        assert response.status_code == 201
    page = await client.get(
        "/api/v1/users", params={"q": f"findme-{marker}", "size": 2}, headers=admin.headers
    )
    assert page.status_code == 200
    body = page.json()
    assert body["total"] == 3 and body["pages"] == 2 and len(body["items"]) == 2
    assert "password_hash" not in page.text
    second = await client.get(
        "/api/v1/users",
        params={"q": f"findme-{marker}", "size": 2, "page": 2},
        headers=admin.headers,
    )
    assert len(second.json()["items"]) == 1
    admins = await client.get(
        "/api/v1/users", params={"role": "admin", "size": 100}, headers=admin.headers
    )
    assert all(item["role"] == "admin" for item in admins.json()["items"])


async def test_admin_changes_role_and_deactivation_signs_out(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    admin = await account(client, connection, role=Role.admin, prefix="admin")
    student = await account(client, connection)
    promoted = await client.patch(
        f"/api/v1/users/{student.id}", json={"role": "instructor"}, headers=admin.headers
    )
    assert promoted.status_code == 200 and promoted.json()["role"] == "instructor"
    deactivated = await client.patch(
        f"/api/v1/users/{student.id}", json={"is_active": False}, headers=admin.headers
    )
    assert deactivated.json()["is_active"] is False
    assert (await client.get("/api/v1/users/me", headers=student.headers)).status_code == 401
    self_demote = await client.patch(
        f"/api/v1/users/{admin.id}", json={"role": "student"}, headers=admin.headers
    )
    assert self_demote.status_code == 409
    missing = await client.patch(
        f"/api/v1/users/{uuid.uuid4()}", json={"role": "student"}, headers=admin.headers
    )
    assert missing.status_code == 404
    bad_role = await client.patch(
        f"/api/v1/users/{student.id}", json={"role": "superuser"}, headers=admin.headers
    )
    assert bad_role.status_code == 422


# Who may call what ---------------------------------------------------------------------


ME_ENDPOINTS = [
    ("GET", "/api/v1/users/me", None),
    ("PATCH", "/api/v1/users/me", {"bio": "x"}),
    ("GET", "/api/v1/auth/sessions", None),
    ("POST", "/api/v1/auth/verify-email/resend", None),
    ("POST", "/api/v1/auth/mfa/setup", None),
    ("POST", "/api/v1/auth/mfa/enable", {"code": "123456", "password": PASSWORD}),
    ("POST", "/api/v1/auth/mfa/disable", {"password": PASSWORD, "code": "123456"}),
    (
        "POST",
        "/api/v1/auth/password/change",
        {"current_password": PASSWORD, "new_password": "another passphrase"},
    ),
    ("POST", "/api/v1/auth/logout", None),
    ("DELETE", "/api/v1/users/me", {"password": PASSWORD}),
]


@pytest.mark.parametrize(("method", "path", "body"), ME_ENDPOINTS)
async def test_anonymous_callers_get_401_everywhere(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, object] | None
) -> None:
    response = await client.request(method, path, json=body)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


ADMIN_ENDPOINTS = [
    ("GET", "/api/v1/users", None),
    ("GET", "/api/v1/users/{other}", None),
    ("PATCH", "/api/v1/users/{other}", {"role": "admin"}),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ENDPOINTS)
@pytest.mark.parametrize("role", [None, Role.student, Role.instructor, Role.admin])
async def test_admin_endpoints_only_answer_admins(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    method: str,
    path: str,
    body: dict[str, object] | None,
    role: Role | None,
) -> None:
    other = await account(client, connection, prefix="other")
    headers = {}
    if role is not None:
        caller = await account(client, connection, role=role)
        headers = caller.headers
    response = await client.request(method, path.format(other=other.id), json=body, headers=headers)
    expected = {None: 401, Role.student: 403, Role.instructor: 403, Role.admin: 200}[role]
    assert response.status_code == expected, response.text
    after = (await connection.execute(select(User.role).where(User.id == other.id))).scalar_one()
    assert after == (Role.admin if role is Role.admin and method == "PATCH" else Role.student)


async def test_students_only_ever_see_and_change_themselves(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    alice = await account(client, connection, prefix="alice")
    bob = await account(client, connection, prefix="bob")
    await client.put(
        "/api/v1/users/me/avatar",
        files={"file": ("b.png", image_bytes(), "image/png")},
        headers=bob.headers,
    )
    # Every "me" endpoint is keyed by the token, never by an id the caller picks.
    mine = (await client.get("/api/v1/users/me", headers=alice.headers)).json()
    assert mine["id"] == str(alice.id)
    await client.patch("/api/v1/users/me", json={"bio": "alice was here"}, headers=alice.headers)
    assert (await client.get("/api/v1/users/me", headers=bob.headers)).json()["bio"] is None
    sessions = (await client.get("/api/v1/auth/sessions", headers=alice.headers)).json()["items"]
    assert {s["id"] for s in sessions}.isdisjoint(
        {
            s["id"]
            for s in (await client.get("/api/v1/auth/sessions", headers=bob.headers)).json()[
                "items"
            ]
        }
    )
    # Reading another user's account by id is for admins only.
    assert (await client.get(f"/api/v1/users/{bob.id}", headers=alice.headers)).status_code == 403
    assert (
        await client.patch(
            f"/api/v1/users/{bob.id}", json={"is_active": False}, headers=alice.headers
        )
    ).status_code == 403
    # Avatars are visible to signed-in users (chat, rosters), but only with a token.
    assert (
        await client.get(f"/api/v1/users/{bob.id}/avatar", headers=alice.headers)
    ).status_code == 200
    assert (await client.get(f"/api/v1/users/{bob.id}/avatar")).status_code == 401


def _cli(
    args: list[str], database_url: str, tmp: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lyceum", *args],
        env={**os.environ, "DATABASE_URL": database_url, "LYCEUM_DATA_DIR": tmp},
        cwd=REPO_ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_create_admin_is_idempotent(database_url: str, tmp_path: object) -> None:
    address = unique_email("root")
    first = _cli(
        ["create-admin", "--email", address, "--password", "an admin passphrase"],
        database_url,
        str(tmp_path),
    )
    assert first.returncode == 0, first.stderr
    assert "created" in first.stderr
    second = _cli(
        ["create-admin", "--email", address.upper(), "--password", "whatever else"],
        database_url,
        str(tmp_path),
    )
    assert second.returncode == 0, second.stderr
    assert "already existed" in second.stderr
    prompted = _cli(
        ["create-admin", "--email", unique_email("prompted")],
        database_url,
        str(tmp_path),
        stdin="prompted passphrase\nprompted passphrase\n",
    )
    assert prompted.returncode == 0, prompted.stderr
    weak = _cli(
        ["create-admin", "--email", unique_email("weak"), "--password", "password"],
        database_url,
        str(tmp_path),
    )
    assert weak.returncode == 2
    assert "common" in weak.stderr


async def test_null_leaves_required_fields_alone_and_clears_the_bio(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    me = await account(client, connection)
    await client.patch("/api/v1/users/me", json={"bio": "hello"}, headers=me.headers)
    response = await client.patch(
        "/api/v1/users/me", json={"full_name": None, "bio": None}, headers=me.headers
    )
    assert response.status_code == 200
    assert response.json()["full_name"] == "Ada Lovelace"
    assert response.json()["bio"] is None


async def test_preferences_take_any_json_numbers(
    client: httpx.AsyncClient, connection: AsyncConnection
) -> None:
    me = await account(client, connection)
    prefs = {"big": -10755008812876001280, "tiny": -1.66e-180, "nested": [[True, None], {}]}
    response = await client.patch(
        "/api/v1/users/me", json={"preferences": prefs}, headers=me.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["preferences"]["big"] == -10755008812876001280
