"""Acknowledgements for the new requests of a processing batch (called by
process/apply.py inside the batch's transaction, so a request and its
acknowledgement commit together or not at all)."""

from __future__ import annotations

import logging

from django.db import transaction
from django.template import Context, Engine

from postdesk import tags
from postdesk.mail import ParsedMessage
from postdesk.models import Intake, Message, RequestEvent
from postdesk.outbound import compose, ours, policy, queue

log = logging.getLogger("postdesk.outbound")

DEFAULT_SUBJECT = "{{ subject }} {{ tag }}"
DEFAULT_BODY = """Hello{% if customer_name %} {{ customer_name }}{% endif %},

thank you for your message. We have received it as request {{ tag }} and will
answer as soon as we can. If you write again about it, please keep {{ tag }}
in the subject.

{{ mailbox_name }}
"""

_ENGINE = Engine(autoescape=False)  # plain text; admins write these templates


def render(template: str, context: dict) -> str:
    return _ENGINE.from_string(template).render(Context(context, autoescape=False))


def template_context(request, parsed: ParsedMessage | None, mailbox) -> dict:
    name = (parsed.from_.name if parsed and parsed.from_ else "") or (request.customer.name if request.customer else "")
    return {
        "number": request.pk,
        "tag": tags.tag(request.pk),
        "subject": request.subject or "(no subject)",
        "customer_name": name,
        "customer_address": request.customer.address if request.customer else "",
        "mailbox_name": mailbox.from_name or mailbox.name,
    }


def sample_context(mailbox) -> dict:
    """What a template is tried with when it is saved (postdesk.mailboxes)."""
    return {
        "number": 123,
        "tag": tags.tag(123),
        "subject": "Printer on fire",
        "customer_name": "Alice Customer",
        "customer_address": "alice@customer.example",
        "mailbox_name": mailbox.from_name or mailbox.name,
    }


def plan(created: list[tuple[Intake, ParsedMessage, Message]]) -> int:
    """Queue an acknowledgement for each new request that should get one; the
    history of the others says why not (only where acknowledgements are on)."""
    candidates = [(i, p, m) for i, p, m in created if i.mailbox.ack_enabled]
    if not candidates:
        return 0
    everywhere = ours.our_addresses()
    recipients = [_recipient(p) for _, p, _ in candidates]
    sent_today = policy.acks_in_last_day([r.address for r in recipients if r])
    queued = 0
    for (intake, parsed, message), recipient in zip(candidates, recipients, strict=True):
        decision = policy.decide(intake.mailbox, intake, parsed, recipient.address if recipient else "",
                                 ours.ours_for_intake(intake, everywhere), sent_today)
        if not decision.send:
            RequestEvent.objects.create(request=message.request, kind="not-acknowledged", detail=decision.reason[:500])
            continue
        try:
            # A savepoint: an acknowledgement that cannot be made (a template that
            # fails as it renders, a From the mail library refuses) must cost only
            # the acknowledgement, never the customer's request or its batch.
            with transaction.atomic():
                _queue_ack(intake.mailbox, message, parsed, recipient)
        except Exception as exc:
            log.exception("acknowledgement for request %s not made", message.request.pk,
                          extra={"mailbox": intake.mailbox.name, "request": message.request.pk})
            RequestEvent.objects.create(request=message.request, kind="not-acknowledged",
                                        detail=f"not acknowledged: it could not be made: {exc}"[:500])
            continue
        sent_today[recipient.address] = sent_today.get(recipient.address, 0) + 1
        queued += 1
    return queued


def _recipient(parsed: ParsedMessage) -> compose.Recipient | None:
    """Reply-To if the sender set one, else From."""
    address = parsed.reply_to[0] if parsed.reply_to else parsed.from_
    if address is None or not address.address:
        return None
    return compose.Recipient(address.address.strip().lower(), address.name or "")


def _queue_ack(mailbox, message: Message, parsed: ParsedMessage, recipient: compose.Recipient) -> None:
    request = message.request
    context = template_context(request, parsed, mailbox)
    subject = render(mailbox.ack_subject or DEFAULT_SUBJECT, context)
    subject = tags.tagged_subject(subject, request.pk, reply=True)
    in_reply_to, references = compose.thread_headers(message.message_id, message.references)
    composed = compose.compose(
        mailbox, request, to=[recipient], subject=subject, text=render(mailbox.ack_body or DEFAULT_BODY, context),
        in_reply_to=in_reply_to, references=references, automatic=True,
    )
    queue.enqueue(composed, mailbox, request, kind="ack")
    RequestEvent.objects.create(request=request, kind="acknowledged", detail=f"acknowledgement queued to {recipient.address}")
