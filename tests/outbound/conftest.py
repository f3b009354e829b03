"""What the outbound tests share: a help desk in this process, sending to the test SMTP server.

    desk.mailbox("support", address=...)   a Maildir mailbox that sends through `smtp` and
                                            acknowledges; fetched once while empty, so that
                                            what arrives later is not backlog
    desk.receive("support", raw)           deliver into its Maildir and fetch (parse, apply, plan acks)
    desk.send()                            `postdesk send --json` in-process: [{outgoing_id, status, detail}]
    smtp.received                          what the server took (tests/servers/smtp.py)
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from postdesk import mailboxes, secrets
from postdesk.models import Mailbox, Message, Outgoing, Request, RequestEvent
from tests.servers.smtp import SmtpServer
from tests.support import commands
from tests.support.mail import maildir_deliver

ALICE = "Alice Customer <alice@customer.example>"
SUPPORT = "support@desk.example"


class Desk:
    def __init__(self, root: Path, smtp: SmtpServer):
        self.root = root
        self.smtp = smtp

    def smtp_settings(self) -> dict:
        """A submission account at the test server: STARTTLS verified with its CA, then AUTH."""
        return {"smtp_host": self.smtp.host, "smtp_port": self.smtp.port, "smtp_security": "starttls",
                "smtp_ca_file": str(self.smtp.ca_file), "smtp_username": self.smtp.username,
                "smtp_password": self.smtp.password}

    def mailbox(self, name: str = "support", *, address: str = SUPPORT, connect: bool = True, **settings) -> Mailbox:
        path = self.root / "maildirs" / name
        for sub in ("cur", "new", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        changes = {"name": name, "protocol": "maildir", "path": str(path), "after": "keep", "address": address,
                   "ack_enabled": True, **self.smtp_settings(), **settings}
        mailbox = mailboxes.add(changes)
        if connect:
            self.fetch(name)  # the first complete pass: from now on mail is new, not backlog
        return mailbox

    def maildir(self, name: str) -> Path:
        return self.root / "maildirs" / name

    def fetch(self, *names: str) -> list[dict]:
        return commands.fetch(*names)

    def receive(self, name: str, *raws: bytes) -> dict:
        for raw in raws:
            maildir_deliver(self.maildir(name), raw)
        (report,) = self.fetch(name)
        return report

    def send(self) -> list[dict]:
        out = io.StringIO()
        call_command("send", "--json", stdout=out)
        return json.loads(out.getvalue())


@pytest.fixture
def desk(transactional_db, settings, tmp_path, smtp) -> Desk:
    # Committed transactions (the sender claims rows in its own), the blob store
    # and the mailbox key in this test's tmp dir.
    settings.DATA_DIR = tmp_path / "data"
    secrets._fernet.cache_clear()
    yield Desk(tmp_path, smtp)
    secrets._fernet.cache_clear()


# --- reading the results ------------------------------------------------------------------


def request_of(message_id: str) -> Request:
    return Message.objects.get(message_id=message_id.strip("<>"), direction="in").request


def acks() -> list[Outgoing]:
    return list(Outgoing.objects.filter(message__kind="ack").select_related("message").order_by("id"))


def history(request: Request, kind: str | None = None) -> list[str]:
    events = RequestEvent.objects.filter(request=request).order_by("id")
    if kind:
        events = events.filter(kind=kind)
    return [f"{e.kind}: {e.detail}" for e in events]
