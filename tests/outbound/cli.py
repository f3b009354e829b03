"""For the outbound tests that run `postdesk` as a subprocess (an `Installation`)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.servers.smtp import SmtpServer
from tests.support.installation import Installation

SMTP_PASSWORD_VAR = "POSTDESK_TEST_SMTP_PASSWORD"

# Printed by `postdesk shell`: the outbox and the history, which no command shows as JSON.
_STATE = """
import json
from postdesk.models import Outgoing, Request, RequestEvent
print("STATE" + json.dumps({
    "outgoing": [dict(id=o.id, status=o.status, attempts=o.attempts, last_error=o.last_error, smtp_reply=o.smtp_reply,
                      lease_owner=o.lease_owner, message_id=o.message.message_id if o.message else "",
                      request=o.message.request_id if o.message else o.request_id,
                      kind=o.message.kind if o.message else o.kind, recipients=o.recipients)
                 for o in Outgoing.objects.select_related("message").order_by("id")],
    "events": [dict(request=e.request_id, kind=e.kind, detail=e.detail) for e in RequestEvent.objects.order_by("id")],
    "requests": Request.objects.count(),
}))
"""


class Desk(Installation):
    """An installation with its own request tag prefix (POSTDESK_TAG_PREFIX), as two
    separate help desks have: with the same prefix, one desk's "[PD-1]" would name a
    request of the other."""

    def __init__(self, root: Path, tag_prefix: str):
        super().__init__(root)
        self.tag_prefix = tag_prefix

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return super().env({"POSTDESK_TAG_PREFIX": self.tag_prefix, **(extra or {})})


def add_sending_maildir(inst: Installation, smtp: SmtpServer, name: str, address: str, *options) -> Path:
    """`postdesk mailbox add` of a Maildir mailbox that acknowledges through `smtp`, as an
    admin types it (the SMTP password from the environment), then a first pass of the
    empty mailbox, so that what arrives later is new mail, not backlog."""
    path = inst.root / "maildirs" / name
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    inst.run("mailbox", "add", name, "--protocol", "maildir", "--path", path, "--after", "keep", "--address", address,
             "--smtp-host", smtp.host, "--smtp-port", smtp.port, "--smtp-security", "starttls",
             "--smtp-ca-file", smtp.ca_file, "--smtp-username", smtp.username, "--smtp-password-env", SMTP_PASSWORD_VAR,
             "--ack", *options, env={SMTP_PASSWORD_VAR: smtp.password})
    fetch(inst)
    return path


def fetch(inst: Installation) -> list[dict]:
    reports = inst.json("fetch")
    for report in reports:
        assert report["error"] is None, report
    return reports


def send(inst: Installation, env: dict | None = None, check: bool = True):
    return inst.run("send", env=env, check=check)


def state(inst: Installation) -> dict:
    proc = inst.run("shell", "--no-imports", "-c", _STATE)
    (line,) = [line for line in proc.stdout.splitlines() if line.startswith("STATE")]
    return json.loads(line[len("STATE"):])
