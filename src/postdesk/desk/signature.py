"""The signature under a staff reply: the staff member's own (desk.profile), then the
mailbox's (Mailbox.signature), below the usual "-- " line, placeholders filled
({agent_name}, {mailbox}, ...: desk.canned).

It is applied when the reply is sent (outbound.reply.send_reply), not typed into the
editor, so every way of replying gets the same rule: the request page and a reply by
email (notify.answer) alike; the page only shows it under the editor as a preview."""

from __future__ import annotations

from postdesk.desk import canned, profile
from postdesk.models import Mailbox, Request

SEPARATOR = "-- "  # the usual signature line (dash dash space): mail clients fold what follows


def signature_for(agent, mailbox: Mailbox | None, req: Request | None = None) -> str:
    """The signature block (without the separator), or "" when neither has one."""
    parts = [profile.signature_of(agent).strip("\n"), (mailbox.signature if mailbox else "").strip("\n")]
    values = canned.values_for(req, agent, mailbox)
    return "\n\n".join(canned.fill(part, values) for part in parts if part.strip())


def signed(text: str, signature: str) -> str:
    """`text` with the signature below it; unchanged when there is none, or when the text
    already ends with it (typed, or pasted from the preview: never twice)."""
    if not signature.strip() or text.rstrip().endswith(signature.rstrip()):
        return text
    return f"{text.rstrip()}\n\n{SEPARATOR}\n{signature}"
