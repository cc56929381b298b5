"""`lyceum backup` and `lyceum restore`: the embedded database and the local files in
one tar archive, restored into a data dir as a whole or not at all.

The archive holds `database.dump` (`pg_dump --format=custom` by the embedded server's
own binaries), `files/<key>` for every object of the local storage, `keys/<name>` for
the keys generated in the data dir (the signing key when SECRET_KEY is unset, the Web
Push key) and, last, `manifest.json`: Lyceum's version, the alembic revision, the
PostgreSQL version, when, and the size and sha256 of every other member.

Consistency: the database is dumped first (one snapshot), the files are copied after.
Stored objects are written before the row that names them commits and deleted only
after the row's deletion commits, so every object a row of the snapshot names exists
when the snapshot is taken; it is missing from the archive only if a later change
deleted it during the copy (an avatar replaced in that minute). An upload that commits
during the backup is not in the dumped rows; its file may be copied anyway, and the
orphan sweep removes it after a restore. Copying the files first would lose the file
of every upload that commits between the copy and the dump, which is more common than
a deletion.

With DATABASE_URL there is nothing here to do: a server is backed up with its own
tools (docs/operations.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

import psycopg
from alembic import command

import lyceum
from lyceum.config import DEV_SECRET_FILE, Settings, StorageBackend
from lyceum.kit.db import MIGRATIONS_DIR, alembic_config, head_revisions
from lyceum.kit.embedded_pg import EmbeddedPostgres, pg_binary, server_running, start_embedded

FORMAT = 1
MANIFEST = "manifest.json"
DUMP = "database.dump"
FILES = "files/"
KEYS = "keys/"
# Keys generated in the data dir (not settings): without them a restored site cannot
# read what it encrypted (SecretBox) nor reach the browsers subscribed to Web Push.
KEY_FILES = (DEV_SECRET_FILE, "vapid_private_key")
CHUNK = 1024 * 1024


class BackupRefused(Exception):
    """The backup or restore cannot be done; the message tells the operator why."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    file_count: int
    alembic_revision: list[str]


@dataclass(frozen=True)
class RestoreResult:
    file_count: int
    alembic_revision: list[str]
    migrated: bool
    previous: Path | None
    created_at: str
    secret_key_restored: bool


def storage_root(settings: Settings) -> Path:
    """The local storage's directory (as `kit.storage.create_storage` chooses it)."""
    return Path(settings.storage_local_path or settings.data_dir / "files").resolve()


def default_archive_name(now: dt.datetime) -> str:
    return f"lyceum-backup-{now.strftime('%Y%m%d-%H%M%S')}.tar"


# Backup ------------------------------------------------------------------------------


def create_backup(settings: Settings, output: Path, *, now: dt.datetime) -> BackupResult:
    """Dump the embedded database and copy the local files into the archive `output`,
    written under a temporary name and renamed when complete."""
    if not settings.embedded_database:
        raise BackupRefused(SERVER_ADVICE)
    output = output.expanduser().resolve()
    if output.exists():
        raise BackupRefused(f"{output} exists already: choose another --output")
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.{os.getpid()}.partial")
    server = start_embedded(settings.data_dir)
    try:
        url = server.ensure_database()
        revision, pg_version = _database_facts(url)
        if not revision:
            raise BackupRefused("the database is empty (never migrated): nothing to back up")
        members: list[dict[str, Any]] = []
        # The archive holds the whole database and the signing key: readable by its
        # owner only (0600), whatever the umask, and never an existing file (O_EXCL).
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with (
            os.fdopen(descriptor, "wb") as sink,
            tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT) as archive,
        ):
            # pg_dump's file sits in a private directory (mkdtemp: 0700), not beside
            # the archive where the umask would leave it readable by all.
            dump_dir = Path(tempfile.mkdtemp(prefix="lyceum-backup-"))
            try:
                dump = dump_dir / DUMP
                _run([str(pg_binary("pg_dump")), "--format=custom", f"--file={dump}", url])
                with dump.open("rb") as source:
                    members.append(_add(archive, DUMP, source, now))
            finally:
                shutil.rmtree(dump_dir, ignore_errors=True)
            file_count = 0
            if settings.storage_backend is StorageBackend.local:
                for key, path in _stored_files(storage_root(settings)):
                    try:
                        source = path.open("rb")
                    except FileNotFoundError:  # deleted since the listing
                        continue
                    with source:
                        members.append(_add(archive, FILES + key, source, now))
                    file_count += 1
            for name in KEY_FILES:
                key_path = settings.data_dir / name
                if name == DEV_SECRET_FILE and settings.secret_key is not None:
                    continue  # the key in use comes from the environment, not this file
                if key_path.is_file():
                    with key_path.open("rb") as source:
                        members.append(_add(archive, KEYS + name, source, now))
            manifest = {
                "format": FORMAT,
                "lyceum_version": lyceum.__version__,
                "alembic_revision": revision,
                "created_at": now.isoformat(),
                "pg_version": pg_version,
                "storage": settings.storage_backend.value,
                "file_count": file_count,
                "secret_key": "environment" if settings.secret_key is not None else "archive",
                "members": members,
            }
            data = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(data), int(now.timestamp()), 0o600
            archive.addfile(info, _BytesReader(data))
        partial.replace(output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        server.stop()
    return BackupResult(output, output.stat().st_size, file_count, revision)


SERVER_ADVICE = (
    "DATABASE_URL is set: Lyceum backs up only its embedded database. Back up the "
    "server with its own tools (pg_dump --format=custom / pg_restore, or the provider's "
    "snapshots and point-in-time recovery) and the files with the bucket's versioning "
    "(STORAGE_BACKEND=s3); see docs/operations.md, 'Backups and restore'."
)


def _database_facts(url: str) -> tuple[list[str], str]:
    with psycopg.connect(url) as conn:
        version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]  # SHOW always returns one row
        return _revisions(conn), version


def _revisions(conn: psycopg.Connection[Any]) -> list[str]:
    exists = conn.execute("SELECT to_regclass('public.alembic_version')").fetchone()
    if exists is None or exists[0] is None:
        return []
    return sorted(str(row[0]) for row in conn.execute("SELECT version_num FROM alembic_version"))


def _stored_files(root: Path) -> Iterator[tuple[str, Path]]:
    """Every stored object under `root` as (key, path), without the temporaries of
    writes in progress (`kit.storage._atomic_write`: `.<name>.<pid>.tmp`)."""
    if not root.is_dir():
        return
    for directory, dirnames, names in os.walk(root):
        dirnames.sort()
        for name in sorted(names):
            if name.startswith(".") and name.endswith(".tmp"):
                continue
            path = Path(directory, name)
            if path.is_file() and not path.is_symlink():
                yield path.relative_to(root).as_posix(), path


def _add(
    archive: tarfile.TarFile, name: str, source: IO[bytes], now: dt.datetime
) -> dict[str, Any]:
    info = tarfile.TarInfo(name)
    info.size = os.fstat(source.fileno()).st_size
    info.mtime, info.mode = int(now.timestamp()), 0o600
    reader = _HashingReader(source)
    archive.addfile(info, reader)
    return {"name": name, "size": info.size, "sha256": reader.digest.hexdigest()}


class _HashingReader:
    def __init__(self, source: IO[bytes]) -> None:
        self.source = source
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.digest.update(data)
        return data


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.offset + size
        chunk, self.offset = self.data[self.offset : end], min(end, len(self.data))
        return chunk


def _run(arguments: list[str]) -> None:
    done = subprocess.run(arguments, capture_output=True, text=True, check=False)  # noqa: S603 (our own binaries, no shell)
    if done.returncode != 0:
        program = Path(arguments[0]).name
        raise BackupRefused(f"{program} failed ({done.returncode}): {done.stderr.strip()}")


# Restore -----------------------------------------------------------------------------


def restore_backup(settings: Settings, archive: Path, *, force: bool) -> RestoreResult:
    """Restore `archive` into the data dir: verified and rebuilt beside it first
    (`.restore-<token>`), then moved into place; a failure leaves the data dir as it
    was. A data dir that holds data is refused unless `force`, then moved aside to
    `.pre-restore-<time>`."""
    if not settings.embedded_database:
        raise BackupRefused(SERVER_ADVICE)
    archive = archive.expanduser().resolve()
    if not archive.is_file():
        raise BackupRefused(f"no archive at {archive}")
    data_dir = settings.data_dir
    pgdata = data_dir / "postgres"
    files_root = storage_root(settings)
    local_files = settings.storage_backend is StorageBackend.local
    occupied = _occupied(pgdata, files_root if local_files else None)
    if occupied and not force:
        raise BackupRefused(
            f"{data_dir} already holds {occupied}: restore into an empty data dir "
            "(LYCEUM_DATA_DIR), or add --force to replace it (it is moved aside, not deleted)"
        )
    if server_running(pgdata):
        raise BackupRefused(
            f"PostgreSQL is running on {pgdata}: stop every Lyceum process on this data "
            "dir (serve, worker) before restoring over it"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    staging = data_dir / f".restore-{secrets.token_hex(4)}"
    # Private (0700, files 0600): it holds the database and the signing key until the
    # swap, and stays behind if the process is killed.
    # (As root, the embedded server's start opens the dir's group/other traversal bits
    # for its system user; the members stay 0600.)
    staging.mkdir(mode=0o700)
    try:
        manifest = _extract_verified(archive, staging)
        if manifest.get("storage") == StorageBackend.local.value and not local_files:
            raise BackupRefused(
                "the archive holds local files but STORAGE_BACKEND is s3: restore with "
                "the local backend, then copy the files to the bucket"
            )
        revision, migrated = _rebuild_database(staging / "postgres", staging / DUMP)
        previous = _swap_in(staging, data_dir, files_root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return RestoreResult(
        file_count=int(manifest.get("file_count", 0)),
        alembic_revision=revision,
        migrated=migrated,
        previous=previous,
        created_at=str(manifest.get("created_at")),
        secret_key_restored=(data_dir / DEV_SECRET_FILE).is_file()
        and manifest.get("secret_key") == "archive",
    )


def _occupied(pgdata: Path, files_root: Path | None) -> str | None:
    """What the target already holds that a restore would replace, or None."""
    if (pgdata / "PG_VERSION").exists() and _has_tables(pgdata):
        return "a database"
    if files_root is not None and any(True for _ in _stored_files(files_root)):
        return f"stored files ({files_root})"
    return None


def _has_tables(pgdata: Path) -> bool:
    server = EmbeddedPostgres(pgdata)
    server.start()  # attaches to a running server, or starts (and then stops) one
    try:
        with psycopg.connect(server.url("postgres")) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = 'lyceum'").fetchone()
        if found is None:
            return False
        with psycopg.connect(server.url()) as conn:
            tables = conn.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            ).fetchone()
    finally:
        server.stop()
    return tables is not None and bool(tables[0])


def _safe_member_path(staging: Path, name: str) -> Path:
    pure = PurePosixPath(name)
    if (
        pure.is_absolute()
        or any(part in ("", ".", "..") for part in pure.parts)
        or not (name == DUMP or name.startswith((FILES, KEYS)))
    ):
        raise BackupRefused(f"corrupt archive: unexpected member {name!r}")
    if name.startswith(KEYS) and pure.name not in KEY_FILES:
        raise BackupRefused(f"corrupt archive: unexpected member {name!r}")
    return staging.joinpath(*pure.parts)


def _extract_verified(archive: Path, staging: Path) -> dict[str, Any]:
    """Extract every member into `staging`, checking each against the manifest."""
    try:
        with tarfile.open(archive, "r:") as tar:
            try:
                manifest_file = tar.extractfile(MANIFEST)
            except KeyError:
                raise BackupRefused(
                    f"corrupt archive: {archive.name} has no {MANIFEST} (truncated?)"
                ) from None
            if manifest_file is None:
                raise BackupRefused(f"corrupt archive: {MANIFEST} is not a file")
            manifest = json.loads(manifest_file.read())
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise BackupRefused("not a Lyceum backup (unknown manifest format)")
            expected = {m["name"]: m for m in manifest["members"]}
            if DUMP not in expected:
                raise BackupRefused(f"corrupt archive: the manifest lists no {DUMP}")
            seen = set()
            for member in tar:
                if member.name == MANIFEST:
                    continue
                wanted = expected.get(member.name)
                if wanted is None or not member.isfile() or member.name in seen:
                    raise BackupRefused(f"corrupt archive: unexpected member {member.name!r}")
                target = _safe_member_path(staging, member.name)
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None  # a regular file, checked above
                digest, size = hashlib.sha256(), 0
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
                with os.fdopen(os.open(target, flags, 0o600), "wb") as sink:
                    while chunk := source.read(CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        sink.write(chunk)
                if size != wanted["size"] or digest.hexdigest() != wanted["sha256"]:
                    raise BackupRefused(
                        f"corrupt archive: {member.name} does not match its checksum"
                    )
                seen.add(member.name)
            missing = set(expected) - seen
            if missing:
                raise BackupRefused(
                    f"corrupt archive: {len(missing)} member(s) missing, e.g. {min(missing)}"
                )
    except (tarfile.TarError, EOFError, ValueError, KeyError, TypeError) as error:
        raise BackupRefused(f"corrupt archive: {error}") from None
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as error:
        # Members that cannot all be files (`files/a` and `files/a/b`): the staging dir
        # is fresh and private, so a clash comes from the archive, not the disk.
        raise BackupRefused(f"corrupt archive: {error.strerror}: {error.filename}") from None
    except OSError as error:  # a full disk, a read error: refused as cleanly
        raise BackupRefused(f"cannot extract the archive: {error}") from None
    return manifest


def _rebuild_database(pgdata: Path, dump: Path) -> tuple[list[str], bool]:
    """A new cluster at `pgdata` holding the dump, migrated to this version's head."""
    server = EmbeddedPostgres(pgdata)
    server.start()
    try:
        url = server.ensure_database(fresh=True)
        _run(
            [
                str(pg_binary("pg_restore")),
                "--no-owner",
                "--exit-on-error",
                "--single-transaction",
                f"--dbname={url}",
                str(dump),
            ]
        )
        with psycopg.connect(url) as conn:
            revision = _revisions(conn)
        heads = head_revisions()
        if set(revision) == heads:
            return revision, False
        known = _known_revisions()
        if not revision or not set(revision) <= known:
            raise BackupRefused(
                f"the backup is at revision {revision or 'none'}, which this version of "
                f"Lyceum ({lyceum.__version__}) does not know: restore it with the "
                "version that made it (or a newer one)"
            )
        command.upgrade(alembic_config(url), "head")
        return sorted(heads), True
    finally:
        server.stop()


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS_DIR))
    return {revision.revision for revision in script.walk_revisions()}


def _swap_in(staging: Path, data_dir: Path, files_root: Path) -> Path | None:
    """Move the rebuilt database, files and keys into place; what was there before goes
    to `.pre-restore-<time>` in the data dir (returned), never deleted."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    previous = data_dir / f".pre-restore-{stamp}-{secrets.token_hex(2)}"
    moved = False
    pgdata = data_dir / "postgres"
    restored_files = staging / FILES.rstrip("/")
    for current, name in ((pgdata, "postgres"), (files_root, "files")):
        if current.exists():
            previous.mkdir(exist_ok=True)
            shutil.move(current, previous / name)
            moved = True
    for name in KEY_FILES:
        source = staging / KEYS / name
        current = data_dir / name
        if source.is_file():
            if current.exists():
                previous.mkdir(exist_ok=True)
                shutil.move(current, previous / name)
                moved = True
            shutil.move(source, current)
            current.chmod(0o600)
    (staging / "postgres").rename(pgdata)
    if restored_files.is_dir():
        files_root.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(restored_files, files_root)
    else:
        files_root.mkdir(parents=True, exist_ok=True)
    return previous if moved else None
