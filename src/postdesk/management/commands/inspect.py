"""postdesk inspect FILE: what Postdesk reads in one message, without touching any database."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from postdesk.mail import ParsedMessage, parse


class Command(BaseCommand):
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
            written = extract_attachments(message, Path(options["extract"]))
            for path in written:
                self.stderr.write(f"wrote {path}")
        if options["json"]:
            self.stdout.write(json.dumps(message.to_dict(), ensure_ascii=False, indent=2))
        else:
            self.stdout.write(describe(message))


def _read(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except IsADirectoryError:
        raise CommandError(f"cannot read {name}: it is a directory", returncode=2)
    except OSError as exc:
        raise CommandError(f"cannot read {name}: {exc.strerror or exc}", returncode=2)


def extract_attachments(message: ParsedMessage, target: Path) -> list[Path]:
    """Write each attachment under its safe name; a name already taken gets " (2)", " (3)"..."""
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"cannot create {target}: {exc.strerror or exc}", returncode=2)
    written = []
    for attachment in message.attachments:
        path = _free_path(target, attachment.filename)
        # "x" mode: never overwrite, even if another process wrote the name meanwhile.
        with open(path, "xb") as fh:
            fh.write(attachment.data)
        written.append(path)
    return written


def _free_path(target: Path, filename: str) -> Path:
    path = target / filename
    stem, dot, ext = filename.rpartition(".")
    if not dot or not stem:
        stem, ext = filename, ""
    n = 2
    while path.exists():
        path = target / (f"{stem} ({n}).{ext}" if ext else f"{stem} ({n})")
        n += 1
    return path


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
