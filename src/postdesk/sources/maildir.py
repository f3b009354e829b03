"""Maildir: a directory of files, one message each (new/, cur/).

The source key is the file's unique name (the part before ":2,").  Acknowledging
renames, so nothing is copied: seen moves new/ -> cur/ with the S flag, move
renames into the Maildir++ subfolder ".<folder>/cur", delete unlinks.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from postdesk.sources._base import HEADER_SLICE, Fetched, Listed, SourceError, TooLarge, header_part
from postdesk.sources._budget import size_limit


class MaildirSource:
    def __init__(self, root: Path, mailbox):
        self.root = root
        self.mailbox = mailbox
        self._paths: dict[str, Path] = {}
        self.limit = size_limit(mailbox)  # read now: POSTDESK_MAX_MESSAGE_MB applies from the next pass

    @classmethod
    def open(cls, mailbox) -> MaildirSource:
        root = Path(mailbox.path)
        if mailbox.folder and mailbox.folder.upper() != "INBOX":
            root = root / f".{mailbox.folder}"
        if not (root / "cur").is_dir() or not (root / "new").is_dir():
            raise SourceError("folder", f"{root} is not a Maildir (no cur/ and new/ directories)")
        return cls(root, mailbox)

    def list(self) -> list[Listed]:
        listed = []
        self._paths.clear()
        for sub in ("new", "cur"):
            for entry in os.scandir(self.root / sub):
                if entry.name.startswith(".") or not entry.is_file():
                    continue
                key = entry.name.split(":", 1)[0]
                stat = entry.stat()
                self._paths[key] = Path(entry.path)
                listed.append(Listed(key, stat.st_size, datetime.fromtimestamp(stat.st_mtime, timezone.utc)))
        listed.sort(key=lambda item: (item.server_date, item.key))
        return listed

    def fetch(self, keys: list[str]) -> Iterator[Fetched | TooLarge]:
        """A file over the size limit is not read whole: its first HEADER_SLICE
        bytes (the header) come as TooLarge, and the file stays where it is."""
        for key in keys:
            path = self._paths.get(key)
            if path is None:
                continue
            try:
                with open(path, "rb") as fh:
                    stat = os.fstat(fh.fileno())
                    # Never more than limit + 1 bytes, even from a file growing meanwhile.
                    raw = fh.read(HEADER_SLICE if stat.st_size > self.limit else self.limit + 1)
            except FileNotFoundError:
                continue  # taken by another reader meanwhile
            date = datetime.fromtimestamp(stat.st_mtime, timezone.utc)
            if stat.st_size > self.limit or len(raw) > self.limit:
                yield TooLarge(key, max(stat.st_size, len(raw)), header_part(raw[:HEADER_SLICE]), date)
            else:
                yield Fetched(key, raw, date)

    def acknowledge(self, keys: list[str]) -> list[str]:
        policy = self.mailbox.after_import
        for key in keys:
            path = self._paths.get(key)
            if path is None or not path.exists():
                continue
            if policy == "seen":
                self._rename(path, self.root / "cur", _with_flag(path.name, key, "S"))
            elif policy == "move":
                target = self._maildir_root() / f".{self.mailbox.move_folder}"
                for sub in ("cur", "new", "tmp"):
                    (target / sub).mkdir(parents=True, exist_ok=True)
                self._rename(path, target / "cur", _with_flag(path.name, key, "S"))
            elif policy == "delete":
                path.unlink(missing_ok=True)
        return list(keys)

    def _maildir_root(self) -> Path:
        return Path(self.mailbox.path)

    def _rename(self, path: Path, directory: Path, name: str) -> None:
        os.replace(path, directory / name)
        self._paths.pop(path.name.split(":", 1)[0], None)

    def count(self) -> int:
        return len(self.list())

    def close(self) -> list[str]:
        return []


def _with_flag(name: str, key: str, flag: str) -> str:
    flags = name.split(":2,", 1)[1] if ":2," in name else ""
    return f"{key}:2,{''.join(sorted(set(flags + flag)))}"
