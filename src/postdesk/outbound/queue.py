"""Putting a composed mail in the outbox: call inside the transaction of its cause."""

from __future__ import annotations

from django.utils import timezone

from postdesk.mail import fingerprint, parse
from postdesk.models import Attachment, Mailbox, Message, Outgoing, Request
from postdesk.outbound.compose import Composed
from postdesk.store import blobs


def enqueue(composed: Composed, mailbox: Mailbox, request: Request, *, kind: str, author=None) -> Message:
    """The conversation's record of the mail (a Message with direction "out",
    whose Message-ID a customer's answer will reference) and its outbox row.

    The fingerprint is computed as for received mail (our mail always has a
    Message-ID), so if it comes back to us (a Cc to one of our mailboxes) it is
    recognised, not imported."""
    parsed = parse(composed.raw)
    raw = blobs.put(composed.raw)
    message = Message.objects.create(
        request=request,
        mailbox=mailbox,
        fingerprint=fingerprint(parsed, raw.sha256),
        message_id=composed.message_id,
        in_reply_to=composed.in_reply_to,
        references=composed.references,
        subject=composed.subject[:998],
        sender_address=composed.from_address.lower()[:254],
        sender_name=composed.from_name[:255],
        to=[{"name": r.name, "address": r.address} for r in composed.to],
        cc=[{"name": r.name, "address": r.address} for r in composed.cc],
        date=timezone.now(),
        text=composed.text,
        html=parsed.html,
        raw=raw,
        direction="out",
        kind=kind,
        author=author,
    )
    for position, item in enumerate(composed.attachments):
        Attachment.objects.create(
            message=message, blob=blobs.put(item.data), position=position, filename=item.filename[:255],
            content_type=item.content_type[:255], size=len(item.data),
        )
    Outgoing.objects.create(
        message=message,
        mailbox=mailbox,
        envelope_from=composed.from_address,
        recipients=sorted({r.address.lower() for r in [*composed.to, *composed.cc]}),
        next_attempt_at=timezone.now(),
    )
    return message
