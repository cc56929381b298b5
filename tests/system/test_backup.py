"""`lyceum backup` and `lyceum restore` as processes: a backup taken while `lyceum serve`
runs, restored into a fresh data dir, serves the same courses, logins and files; a
corrupt or truncated archive and an occupied data dir are refused, leaving nothing
behind; with DATABASE_URL the command explains instead of dumping."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from lyceum.demo import loader
from tests.support.servers import REPO_ROOT, stop
from tests.test_processes import embedded_env, serve

pytestmark = pytest.mark.slow


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A folder outside pytest's own base folder: pytest resets that one to mode 0700
    whenever a pytest run starts on the machine, and PostgreSQL (run as another user
    when the tests run as root) then cannot reach its data dir."""
    with tempfile.TemporaryDirectory(prefix="lyceum-backup-test-") as folder:
        yield Path(folder)


def lyceum(data_dir: Path, *arguments: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lyceum", *arguments],
        # Wide enough that rich does not wrap the messages checked below.
        env={**os.environ, **embedded_env(data_dir), "COLUMNS": "500", **settings},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def login(base: str, email: str, password: str) -> dict[str, str]:
    answer = httpx.post(
        f"{base}/api/v1/auth/login", json={"email": email, "password": password}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def catalog(base: str) -> list[tuple[str, str]]:
    answer = httpx.get(f"{base}/api/v1/courses", params={"limit": 100}, timeout=30)
    assert answer.status_code == 200, answer.text
    return sorted((course["id"], course["title"]) for course in answer.json()["items"])


def avatar(base: str, headers: dict[str, str]) -> bytes:
    me = httpx.get(f"{base}/api/v1/users/me", headers=headers, timeout=30).json()
    assert me["avatar_url"], me
    path = me["avatar_url"].split("/api/v1/", 1)[1]
    answer = httpx.get(f"{base}/api/v1/{path}", headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.content


def test_backup_restores_into_a_fresh_data_dir_that_serves_the_same_data(
    tmp_path: Path,
) -> None:
    source, restored, broken = tmp_path / "source", tmp_path / "restored", tmp_path / "broken"
    for folder in (source, restored, broken):
        folder.mkdir()
    loaded = lyceum(source, "demo")
    assert loaded.returncode == 0, loaded.stderr

    server, port = serve(source)
    try:
        base = f"http://127.0.0.1:{port}"
        headers = login(base, loader.STUDENT_EMAIL, loader.STUDENT_PASSWORD)
        picture = io.BytesIO()
        Image.new("RGB", (300, 200), (200, 30, 90)).save(picture, "PNG")
        uploaded = httpx.put(
            f"{base}/api/v1/users/me/avatar",
            headers=headers,
            files={"file": ("me.png", picture.getvalue(), "image/png")},
            timeout=60,
        )
        assert uploaded.status_code == 200, uploaded.text
        courses = catalog(base)
        assert courses
        stored_avatar = avatar(base, headers)
        # Taken while serve runs: pg_dump attaches to serve's own server.
        archive = tmp_path / "nightly.tar"
        made = lyceum(source, "backup", "--output", str(archive))
        assert made.returncode == 0, made.stderr
        assert made.stdout.strip() == str(archive)
        assert f"{archive.stat().st_size:,} bytes" in made.stderr
    finally:
        stop(server)

    with tarfile.open(archive) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]  # a file member
    assert names[0] == "database.dump" and names[-1] == "manifest.json"
    assert manifest["file_count"] == sum(name.startswith("files/avatars/") for name in names)
    assert manifest["file_count"] >= 1 and manifest["pg_version"]
    assert manifest["alembic_revision"] and manifest["lyceum_version"]
    assert {member["name"] for member in manifest["members"]} == set(names) - {"manifest.json"}

    # A truncated archive and one with a changed byte are refused before anything is
    # built: the data dir stays empty.
    data = archive.read_bytes()
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(data[: len(data) // 2])
    refused = lyceum(broken, "restore", str(truncated))
    assert refused.returncode == 2, refused.stderr
    assert "corrupt archive" in refused.stderr
    dump_offset = data.index(b"PGDMP")  # the custom dump's magic: the first member's data
    flipped = bytearray(data)
    flipped[dump_offset + 1000] ^= 0xFF
    tampered = tmp_path / "tampered.tar"
    tampered.write_bytes(bytes(flipped))
    refused = lyceum(broken, "restore", str(tampered))
    assert refused.returncode == 2, refused.stderr
    assert "database.dump does not match its checksum" in refused.stderr
    assert sorted(path.name for path in broken.iterdir()) == []

    done = lyceum(restored, "restore", str(archive))
    assert done.returncode == 0, done.stderr
    assert not [path for path in restored.iterdir() if path.name.startswith(".restore-")]

    server, port = serve(restored)
    try:
        base = f"http://127.0.0.1:{port}"
        assert catalog(base) == courses
        headers = login(base, loader.STUDENT_EMAIL, loader.STUDENT_PASSWORD)
        assert avatar(base, headers) == stored_avatar
        # The data dir now holds data: refused without --force, and with it while a
        # server runs on it.
        again = lyceum(restored, "restore", str(archive))
        assert again.returncode == 2, again.stderr
        assert "already holds a database" in again.stderr and "--force" in again.stderr
        forced = lyceum(restored, "restore", "--force", str(archive))
        assert forced.returncode == 2, forced.stderr
        assert "stop every Lyceum process" in forced.stderr
        assert catalog(base) == courses
    finally:
        stop(server)

    # Stopped, --force replaces it, and what was there is moved aside, not deleted.
    replaced = lyceum(restored, "restore", "--force", str(archive))
    assert replaced.returncode == 0, replaced.stderr
    [previous] = [path for path in restored.iterdir() if path.name.startswith(".pre-restore-")]
    assert (previous / "postgres" / "PG_VERSION").is_file()
    assert sorted(path.name for path in (previous / "files").iterdir()) == ["avatars"]
    assert str(previous) in replaced.stderr
    assert (restored / "postgres" / "PG_VERSION").is_file()


def test_backup_with_a_database_server_points_to_its_own_tools(tmp_path: Path) -> None:
    answer = lyceum(
        tmp_path,
        "backup",
        DATABASE_URL="postgresql://lyceum@db.invalid/lyceum",
    )
    assert answer.returncode == 2
    message = answer.stderr
    assert "pg_dump" in message and "docs/operations.md" in message
    assert list(tmp_path.iterdir()) == []
