"""Content-addressed blobs: raw messages and attachments, each stored once by sha256.

Where the bytes live:
  - small blobs (up to INLINE_MAX, most raw messages: the median is ~20 KB) in
    the Blob row's `data` column, always: a database is faster than a file
    system for small blobs, and they commit with the transaction that uses them
  - larger ones in files under DATA_DIR/blobs/ab/<sha256> (one level of 256
    directories, as git does), or with POSTDESK_BLOB_STORE=db (the default on
    PostgreSQL, so hosts sharing a database need no shared disk) in the row too

Durability of files: written under a temporary name, synced, renamed into
place, synced again, all before the transaction that points at them commits.
A crash leaves at worst an unreferenced file, never a row that points at
missing bytes.  Attachment files may skip the sync (they can be re-made from
the raw message; see store/attachments.py).
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from django.conf import settings

from postdesk.models import Blob

INLINE_MAX = 64 * 1024


def backend() -> str:
    configured = os.environ.get("POSTDESK_BLOB_STORE")
    if configured in ("fs", "db"):
        return configured
    return "db" if settings.DATABASES["default"]["ENGINE"].endswith("postgresql") else "fs"


def blob_dir() -> Path:
    return settings.DATA_DIR / "blobs"


def path_for(sha256: str) -> Path:
    return blob_dir() / sha256[:2] / sha256


def write_file(data: bytes, sha256: str | None = None) -> str:
    """Make the bytes durable on disk (fs backend); returns the sha256. Idempotent."""
    sha256 = sha256 or hashlib.sha256(data).hexdigest()
    write_files([(sha256, data)])
    return sha256


def write_files(items: list[tuple[str, bytes]], durable: bool = True) -> None:
    """Make many blobs durable at once: every file written under a temporary name,
    one file-system sync, then the renames, then one more sync for the names.

    A file gets its final name only after its bytes are on disk, so a crash can
    leave stray temporary files but never a torn blob under a real name (which
    would be trusted later: an existing blob of the right size is not rewritten)."""
    pending: list[tuple[str, Path]] = []
    seen: set[str] = set()
    try:
        for sha256, data in items:
            target = path_for(sha256)
            if sha256 in seen or (target.exists() and target.stat().st_size == len(data)):
                continue
            seen.add(sha256)
            _ensure_dir(target.parent)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            # Listed before the first byte is written: a failure while writing
            # (ENOSPC on the 3rd file) must remove this one too, or a full disk
            # stays full with our leftovers.
            pending.append((tmp, target))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        if not pending:
            return
        if durable:
            _sync(pending[0][1].parent, [tmp for tmp, _ in pending])
        for tmp, target in pending:
            os.replace(tmp, target)
    except BaseException:
        for tmp, _ in pending:
            _unlink_quietly(tmp)
        raise
    if durable:
        _sync(pending[0][1].parent, [], directories={target.parent for _, target in pending})


# errno values meaning "no room": the disk (ENOSPC), the user's quota (EDQUOT), and a
# file-size limit (EFBIG: RLIMIT_FSIZE with SIGXFSZ ignored), which leaves the same state.
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def disk_full(exc: BaseException) -> str | None:
    """"disk full: N bytes free in the data dir" if `exc` (or what caused it) says
    there is no room to write, else None.  SQLite in the data dir says it in words."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in NO_ROOM:
            return f"disk full: {free_bytes()} bytes free in the data dir"
        if "database or disk is full" in str(exc):
            return f"disk full: {free_bytes()} bytes free in the data dir"
        exc = exc.__cause__ or exc.__context__
    return None


def free_bytes() -> int:
    """Free bytes where we write: the data dir, or its blob dir when that is a mount of its own."""
    free = []
    for path in (settings.DATA_DIR, blob_dir()):
        try:
            free.append(shutil.disk_usage(path).free)
        except OSError:
            pass
    return min(free, default=0)


_MADE_DIRS: set[Path] = set()


def _ensure_dir(path: Path) -> None:
    if path not in _MADE_DIRS:
        path.mkdir(parents=True, exist_ok=True)
        _MADE_DIRS.add(path)


def put(data: bytes, sha256: str | None = None) -> Blob:
    """The Blob row for these bytes, creating it (and its file) if new.

    Call inside the transaction that references the blob: with the db backend
    the bytes commit with it; with fs they are durable before it commits."""
    return put_many([data], [sha256] if sha256 else None)[0]


def put_many(datas: list[bytes], sha256s: list[str] | None = None, durable: bool = True) -> list[Blob]:
    """put() for a batch: one file-system sync for all of them.

    durable=False is for derived bytes (attachments): they can always be made
    again from the raw message, so they skip the sync and read_verified()
    checks them instead."""
    sha256s = sha256s or [hashlib.sha256(d).hexdigest() for d in datas]
    all_in_db = backend() == "db"
    files = [(sha, d) for sha, d in zip(sha256s, datas, strict=True) if not all_in_db and len(d) > INLINE_MAX]
    if files:
        write_files(files, durable=durable)
    existing = set(Blob.objects.filter(pk__in=set(sha256s)).values_list("pk", flat=True))
    new = {}
    for sha256, data in zip(sha256s, datas, strict=True):
        if sha256 not in existing and sha256 not in new:
            inline = all_in_db or len(data) <= INLINE_MAX
            new[sha256] = Blob(sha256=sha256, size=len(data), data=data if inline else None)
    if new:
        # Another worker may insert the same blob at the same moment: that is fine.
        Blob.objects.bulk_create(new.values(), ignore_conflicts=True)
    return [Blob(sha256=sha256, size=len(data)) for sha256, data in zip(sha256s, datas, strict=True)]


def read(blob: Blob | str) -> bytes:
    sha256 = blob if isinstance(blob, str) else blob.sha256
    row = Blob.objects.filter(pk=sha256).values_list("data", flat=True).first()
    if row is not None:
        return bytes(row)
    try:
        return path_for(sha256).read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"blob {sha256} is missing from the store") from None


def read_many(sha256s: list[str]) -> dict[str, bytes]:
    """read() for a batch: one query for the inline blobs, files for the rest."""
    found = {sha: bytes(data) for sha, data in Blob.objects.filter(pk__in=set(sha256s), data__isnull=False).values_list("pk", "data")}
    for sha in set(sha256s) - found.keys():
        found[sha] = read(sha)
    return found


def read_heads(sha256s: list[str], limit: int) -> dict[str, bytes]:
    """The first `limit` bytes of each blob (a message's header block, say): a file is
    read only that far; a blob in the database comes whole (as stored)."""
    found = {sha: bytes(data[:limit]) for sha, data in
             Blob.objects.filter(pk__in=set(sha256s), data__isnull=False).values_list("pk", "data")}
    for sha in set(sha256s) - found.keys():
        try:
            with open(path_for(sha), "rb") as fh:
                found[sha] = fh.read(limit)
        except FileNotFoundError:
            continue  # missing: nothing to recognise it by
    return found


def read_verified(sha256: str) -> bytes | None:
    """The bytes if they hash to their name; None if missing or torn (a crash before
    the operating system wrote an unsynced file)."""
    try:
        data = read(sha256)
    except FileNotFoundError:
        return None
    return data if hashlib.sha256(data).hexdigest() == sha256 else None


def _sync(anchor: Path, files: list[str], directories: set[Path] | None = None) -> None:
    """Flush file data (or directory entries) to disk: syncfs() once where Linux has
    it, else fsync() each file and directory."""
    if _syncfs(anchor):
        return
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    for directory in directories or ():
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _syncfs(anchor: Path) -> bool:
    libc = _libc()
    if libc is None:
        return False
    fd = os.open(anchor, os.O_RDONLY)
    try:
        return libc.syncfs(fd) == 0
    finally:
        os.close(fd)


_LIBC: list = []


def _libc():
    if not _LIBC:
        try:
            import ctypes
            import ctypes.util

            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            _LIBC.append(libc if hasattr(libc, "syncfs") else None)
        except OSError:
            _LIBC.append(None)
    return _LIBC[0]


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
