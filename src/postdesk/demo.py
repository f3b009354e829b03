"""First start of `postdesk run`: an admin to log in with, and a demo mailbox.

The admin's password is random, printed once and stored only as Django's
password hash.  The demo mailbox is a Maildir in the data dir holding the
bundled sample messages (plain, HTML with an inline image, attachments, a
reply that threads, ISO-8859-1), so a new user sees a working queue at once.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from postdesk.models import Mailbox

DEMO_MAILBOX = "demo"
ADMIN_USERNAME = "admin"


@dataclass(frozen=True)
class FirstStart:
    admin_password: str | None  # set only when the admin was made now
    demo_mailbox: Path | None  # set only when the demo mailbox was made now


def first_start(with_demo: bool) -> FirstStart:
    """Idempotent: does nothing on an installation that has staff already."""
    with transaction.atomic():
        if User.objects.exists():
            return FirstStart(None, None)
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(ADMIN_USERNAME, email="", password=password)
        maildir = _demo_mailbox() if with_demo and not Mailbox.objects.exists() else None
    return FirstStart(password, maildir)


def _demo_mailbox() -> Path:
    maildir = Path(settings.DATA_DIR) / "demo-maildir"
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    samples = resources.files("postdesk") / "samples" / "demo"
    for sample in sorted(samples.iterdir(), key=lambda p: p.name):
        if sample.name.endswith(".eml"):
            _deliver(maildir, sample.read_bytes())
    Mailbox.objects.create(
        name=DEMO_MAILBOX,
        address="support@example.com",
        protocol=Mailbox.Protocol.MAILDIR,
        path=str(maildir),
        after_import=Mailbox.After.KEEP,
        poll_interval=60,
    )
    return maildir


def _deliver(maildir: Path, raw: bytes) -> None:
    """The Maildir way: write in tmp/, then rename into new/ (atomic for readers)."""
    name = f"{time.time_ns()}.P{secrets.token_hex(4)}.{socket.gethostname()}"
    tmp = maildir / "tmp" / name
    tmp.write_bytes(raw)
    shutil.move(tmp, maildir / "new" / name)
