"""postdesk inspect FILE: what Postdesk reads in one message, without touching any database."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from django.core.management.base import CommandError

from postdesk.mail import ParsedMessage, parse
from postdesk.management.base import PlainCommand


class Command(PlainCommand):
    help = "Parse one message (a .eml file, or - for standard input) and show what Postdesk reads in it."
    requires_system_checks: list = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("file", help="the raw message (RFC 5322), or - for standard input")
        parser.add_argument("--json", action="store_true", help="print the parsed message as JSON")
        parser.add_argument("--extract", metavar="DIR", help="write the attachments into DIR under their safe names")

    def handle(self, *args, **options):
        raw = _read(options["file"])
        message = parse(raw)
        if options["extract"]:
            extracted = extract_attachments(message, Path(options["extract"]))
            for path in extracted.written:
                self.stderr.write(f"wrote {path}")
            for name in extracted.links_passed:
                self.stderr.write(f"passed over {name}: a symbolic link is there (not followed)")
            for name, reason in extracted.failed:
                self.stderr.write(f"could not write {name}: {reason}")
        if options["json"]:
            self.stdout.write(json.dumps(message.to_dict(), ensure_ascii=False, indent=2))
        else:
            self.stdout.write(describe(message))
        if options["extract"] and extracted.failed:
            raise CommandError(f"{len(extracted.failed)} attachments could not be written", returncode=1)


def _read(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except IsADirectoryError:
        raise CommandError(f"cannot read {name}: it is a directory", returncode=2)
    except OSError as exc:
        raise CommandError(f"cannot read {name}: {exc.strerror or exc}", returncode=2)


@dataclass
class Extracted:
    """What `--extract` did: the files written, the names passed over because a
    symbolic link stood there, and the attachments that could not be written."""

    written: list[Path] = field(default_factory=list)
    links_passed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


# O_EXCL: never overwrite, even a name another process took meanwhile, and fail
# on any symbolic link, dangling or not (open() does not follow it with O_EXCL);
# O_NOFOLLOW says the same for systems that would.
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def extract_attachments(message: ParsedMessage, target: Path) -> Extracted:
    """Write each attachment under its safe name; a name already taken (by a file,
    a directory or a symbolic link) gets " (2)", " (3)"..."""
    try:
        target.mkdir(parents=True, exist_ok=True)
        dir_fd = os.open(target, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        raise CommandError(f"cannot create {target}: {exc.strerror or exc}", returncode=2)
    result = Extracted()
    next_number: dict[str, int] = {}  # per name, the first number not yet tried: linear in the count
    try:
        for attachment in message.attachments:
            _write_one(dir_fd, target, attachment.filename, attachment.data, next_number, result)
    finally:
        os.close(dir_fd)
    return result


def _write_one(dir_fd: int, target: Path, filename: str, data: bytes, next_number: dict[str, int], result: Extracted) -> None:
    number = next_number.get(filename, 1)
    while True:
        name = _numbered(filename, number)
        number += 1
        try:
            fd = os.open(name, _CREATE, 0o644, dir_fd=dir_fd)
        except FileExistsError:
            if os.path.islink(target / name):
                result.links_passed.append(name)
            continue
        except OSError as exc:  # e.g. disk full: report it, write the others
            next_number[filename] = number
            result.failed.append((name, exc.strerror or str(exc)))
            return
        break
    next_number[filename] = number
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        result.failed.append((name, exc.strerror or str(exc)))
        return
    result.written.append(target / name)


def _numbered(filename: str, number: int) -> str:
    """"a.txt", then "a (2).txt", "a (3).txt"..."""
    if number == 1:
        return filename
    stem, dot, ext = filename.rpartition(".")
    if not dot or not stem:
        return f"{filename} ({number})"
    return f"{stem} ({number}).{ext}"


def describe(message: ParsedMessage) -> str:
    """The message for a person: headers, body, attachments, defects."""

    def fmt(addresses) -> str:
        return ", ".join(f"{a.name} <{a.address}>" if a.name else a.address for a in addresses)

    lines = [
        f"Subject:     {message.subject}",
        f"From:        {fmt([message.from_]) if message.from_ else ''}",
        f"To:          {fmt(message.to)}",
    ]
    if message.cc:
        lines.append(f"Cc:          {fmt(message.cc)}")
    if message.reply_to:
        lines.append(f"Reply-To:    {fmt(message.reply_to)}")
    lines += [
        f"Date:        {message.date.isoformat() if message.date else '(none)'}",
        f"Message-ID:  {message.message_id or '(none)'}",
    ]
    if message.in_reply_to:
        lines.append(f"In-Reply-To: {message.in_reply_to}")
    if message.auto_submitted:
        lines.append(f"Automatic:   {message.auto_submitted.kind} ({message.auto_submitted.reason})")
    lines += ["", message.text or "(no text)", ""]
    if message.html is not None:
        lines.append(f"(HTML body: {len(message.html)} characters, sanitized)")
    if message.attachments:
        lines.append(f"{'Attachment':<40} {'Type':<28} {'Size':>10}  Inline")
        for a in message.attachments:
            lines.append(f"{a.filename[:40]:<40} {a.content_type[:28]:<28} {a.size:>10}  {'yes' if a.inline else ''}")
    if message.defects:
        lines += ["", "Repaired or not readable:"] + [f"  - {d}" for d in message.defects]
    return "\n".join(lines)
