"""A small file system of its own (tmpfs) for disk-full tests: real ENOSPC without
filling the machine's disk.

    with small_disk(data_dir / "blobs", "1m") as disk:
        ...                  # writes there fail with ENOSPC once 1 MB is used
        disk.grow("64m")     # space freed: the same mount, bigger (remount)

Mounting needs root (CAP_SYS_ADMIN); elsewhere the test is skipped with the reason.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


class SmallDisk:
    def __init__(self, path: Path):
        self.path = path

    def grow(self, size: str) -> None:
        _mount_cmd("-o", f"remount,size={size}", str(self.path))


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[SmallDisk]:
    if os.geteuid() != 0:
        pytest.skip("a disk-full test mounts a small tmpfs, which needs root")
    path.mkdir(parents=True, exist_ok=True)
    try:
        _mount_cmd("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path))
    except RuntimeError as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    try:
        yield SmallDisk(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def _mount_cmd(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip() or f"mount exited {done.returncode}")


def temp_files(path: Path) -> list[Path]:
    """Blob temp files (".tmp-*") left anywhere under `path`."""
    return sorted(p for p in path.rglob(".tmp-*"))
