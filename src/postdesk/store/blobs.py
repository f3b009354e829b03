"""Content-addressed blobs: raw messages and attachments, each stored once by sha256.

Two places the bytes can live (POSTDESK_BLOB_STORE):
  fs  files under DATA_DIR/blobs/ab/cd/<sha256> (default with SQLite)
  db  the Blob row's `data` column (default with PostgreSQL, so that workers and
      web servers on several hosts need no shared file system)

Durability (fs): the bytes go to a temporary file in the target directory,
fsync, rename into place, fsync the directory; only then does the caller
commit the row that points at them.  A crash leaves at worst an unreferenced
file (harmless; same name, same bytes, if it comes again), never a row that
points at missing bytes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction

from postdesk.models import Blob


def backend() -> str:
    configured = os.environ.get("POSTDESK_BLOB_STORE")
    if configured in ("fs", "db"):
        return configured
    return "db" if settings.DATABASES["default"]["ENGINE"].endswith("postgresql") else "fs"


def blob_dir() -> Path:
    return settings.DATA_DIR / "blobs"


def path_for(sha256: str) -> Path:
    return blob_dir() / sha256[:2] / sha256[2:4] / sha256


def write_file(data: bytes, sha256: str | None = None) -> str:
    """Make the bytes durable on disk (fs backend); returns the sha256. Idempotent."""
    sha256 = sha256 or hashlib.sha256(data).hexdigest()
    target = path_for(sha256)
    if target.exists() and target.stat().st_size == len(data):
        return sha256
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())  # the bytes are on disk before the name is
        os.replace(tmp, target)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_dir(target.parent)  # and the name is on disk before we go on
    return sha256


def put(data: bytes, sha256: str | None = None) -> Blob:
    """The Blob row for these bytes, creating it (and its file) if new.

    Call inside the transaction that references the blob: with the db backend
    the bytes commit with it; with fs they are durable before it commits."""
    sha256 = sha256 or hashlib.sha256(data).hexdigest()
    store_in_db = backend() == "db"
    if not store_in_db:
        write_file(data, sha256)
    existing = Blob.objects.filter(pk=sha256).only("sha256", "size").first()
    if existing is not None:
        return existing
    try:
        # A savepoint: another worker may insert the same blob at the same moment.
        with transaction.atomic():
            return Blob.objects.create(sha256=sha256, size=len(data), data=data if store_in_db else None)
    except IntegrityError:
        return Blob.objects.only("sha256", "size").get(pk=sha256)


def read(blob: Blob | str) -> bytes:
    sha256 = blob if isinstance(blob, str) else blob.sha256
    try:
        return path_for(sha256).read_bytes()
    except FileNotFoundError:
        row = Blob.objects.filter(pk=sha256).values_list("data", flat=True).first()
        if row is None:
            raise FileNotFoundError(f"blob {sha256} is missing from the store") from None
        return bytes(row)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
