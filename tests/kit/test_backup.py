"""`kit.backup` without PostgreSQL: the archive and the restore's staging are private
(0600 files, 0700 dirs) whatever the umask, and an archive whose members cannot all be
files is refused as corrupt. The database steps are replaced by fakes here; the whole
round trip with the embedded server is tests/system/test_backup.py."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lyceum.config import DEV_SECRET_FILE, Settings, StorageBackend
from lyceum.kit import backup

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    """The loosest umask: every mode checked below is set by the code, not the umask."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def settings_for(data_dir: Path) -> Settings:
    return Settings(
        lyceum_data_dir=data_dir,
        database_url=None,
        secret_key=None,
        storage_backend=StorageBackend.local,
        storage_local_path=None,
    )


class FakeServer:
    def ensure_database(self) -> str:
        return "postgresql:///lyceum"

    def stop(self) -> None:
        pass


def test_the_archive_and_the_dump_are_readable_by_their_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "files" / "avatars").mkdir(parents=True)
    (data_dir / "files" / "avatars" / "a.png").write_bytes(b"png")
    (data_dir / DEV_SECRET_FILE).write_text("signing key")
    dump_dirs: list[tuple[Path, int]] = []

    def fake_pg_dump(arguments: list[str]) -> None:
        dump = Path(next(a for a in arguments if a.startswith("--file=")).split("=", 1)[1])
        dump_dirs.append((dump.parent, mode(dump.parent)))
        dump.write_bytes(b"the whole database")

    monkeypatch.setattr(backup, "start_embedded", lambda _data_dir: FakeServer())
    monkeypatch.setattr(backup, "_database_facts", lambda _url: (["head"], "16.4"))
    monkeypatch.setattr(backup, "_run", fake_pg_dump)
    output = tmp_path / "out" / "site.tar"
    output.parent.mkdir(mode=0o755)

    result = backup.create_backup(settings_for(data_dir), output, now=NOW)

    assert result.path == output
    assert mode(output) == 0o600
    # pg_dump wrote into a private directory of its own, removed afterwards.
    [(dump_dir, dump_dir_mode)] = dump_dirs
    assert dump_dir != output.parent
    assert dump_dir_mode == 0o700
    assert not dump_dir.exists()
    assert sorted(p.name for p in output.parent.iterdir()) == ["site.tar"]
    with tarfile.open(output) as tar:
        names = tar.getnames()
        keys = tar.extractfile("keys/secret_key")
        assert keys is not None and keys.read() == b"signing key"
    assert names == ["database.dump", "files/avatars/a.png", "keys/secret_key", "manifest.json"]


def archive_of(path: Path, members: dict[str, bytes], *, storage: str = "local") -> Path:
    """A Lyceum archive holding `members` (plus a matching manifest)."""
    listed = [
        {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for name, data in members.items()
    ]
    manifest = {
        "format": backup.FORMAT,
        "alembic_revision": ["head"],
        "created_at": NOW.isoformat(),
        "storage": storage,
        "file_count": sum(name.startswith(backup.FILES) for name in members),
        "secret_key": "archive",
        "members": listed,
    }
    with tarfile.open(path, "w") as tar:
        for name, data in [*members.items(), ("manifest.json", json.dumps(manifest).encode())]:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


def test_restore_stages_privately_and_installs_the_key_0600(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = archive_of(
        tmp_path / "site.tar",
        {"database.dump": b"dump", "files/avatars/a.png": b"png", "keys/secret_key": b"key"},
    )
    data_dir = tmp_path / "data"
    seen: dict[str, int] = {}

    def fake_rebuild(pgdata: Path, dump: Path) -> tuple[list[str], bool]:
        staging = pgdata.parent
        seen["staging"] = mode(staging)
        for path in (
            dump,
            staging / "files" / "avatars" / "a.png",
            staging / "keys" / "secret_key",
        ):
            seen[path.relative_to(staging).as_posix()] = mode(path)
        pgdata.mkdir()
        return ["head"], False

    monkeypatch.setattr(backup, "_rebuild_database", fake_rebuild)

    result = backup.restore_backup(settings_for(data_dir), archive, force=False)

    assert seen == {
        "staging": 0o700,
        "database.dump": 0o600,
        "files/avatars/a.png": 0o600,
        "keys/secret_key": 0o600,
    }
    assert result.secret_key_restored
    assert (data_dir / DEV_SECRET_FILE).read_bytes() == b"key"
    assert mode(data_dir / DEV_SECRET_FILE) == 0o600
    assert (data_dir / "files" / "avatars" / "a.png").read_bytes() == b"png"
    assert not [p for p in data_dir.iterdir() if p.name.startswith(".restore-")]


@pytest.mark.parametrize(
    "order",
    [["files/a", "files/a/b"], ["files/a/b", "files/a"]],
    ids=["file-then-child", "child-then-file"],
)
def test_members_that_cannot_all_be_files_are_a_corrupt_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, order: list[str]
) -> None:
    members = {"database.dump": b"dump", **{name: name.encode() for name in order}}
    archive = archive_of(tmp_path / "clash.tar", members)
    data_dir = tmp_path / "data"

    def never(_pgdata: Path, _dump: Path) -> tuple[list[str], bool]:
        raise AssertionError("the database must not be rebuilt from a corrupt archive")

    monkeypatch.setattr(backup, "_rebuild_database", never)

    with pytest.raises(backup.BackupRefused, match=r"^corrupt archive: "):
        backup.restore_backup(settings_for(data_dir), archive, force=False)
    assert list(data_dir.iterdir()) == []  # the staging dir is gone, nothing else written
