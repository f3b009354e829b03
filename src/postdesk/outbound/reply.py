"""A staff member's reply to a request, and internal notes (never sent)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from email.utils import formataddr, getaddresses

from django.db import transaction
from django.utils import timezone

from postdesk import tags
from postdesk.desk import drafts, signature
from postdesk.desk import search
from postdesk.desk import status as request_status
from postdesk.models import Message, Request, RequestEvent
from postdesk.notify import hooks as notify_hooks
from postdesk.outbound import compose, ours, queue
from postdesk.sources.smtp import SmtpConfigError, account_for
from postdesk.store import blobs

MAX_TEXT = 200_000  # characters in a reply or note


class ReplyError(ValueError):
    """Why this reply cannot be sent: shown to the staff member, the text kept."""


@dataclass(frozen=True)
class ReplyDraft:
    text: str
    cc: str = ""
    attachments: tuple[compose.FileToSend, ...] = ()
    reply_all: bool = False  # also Cc the others the customer wrote to (reply_all())


def parse_cc(value: str) -> list[compose.Recipient]:
    recipients = []
    for name, address in getaddresses([value or ""]):
        address = address.strip()
        if not address:
            continue
        if "@" not in address or any(c in address for c in " <>,;\r\n"):
            raise ReplyError(f"{address!r} is not an email address (Cc)")
        recipients.append(compose.Recipient(address.lower(), name.strip()))
    return recipients


def parent_of(conversation: list[Message]) -> Message | None:
    """The message a reply answers: the customer's latest, mail sent by a
    machine only if there is nothing else.  `conversation` in order."""
    incoming = [m for m in conversation if m.direction == "in"]
    people = [m for m in incoming if not m.auto_submitted]
    return (people or incoming or [None])[-1]


@dataclass(frozen=True)
class ReplyChoice:
    """Whom a reply to `parent` goes to, and a Reply-To that was not used (shown, never
    silently followed: it came with a message that joined by its subject tag alone and
    names someone who does not take part in the request)."""

    recipient: compose.Recipient | None
    unverified_reply_to: tuple[str, ...] = ()


def reply_choice(parent: Message) -> ReplyChoice:
    """Its Reply-To if it has one and it is trusted (Message.reply_to_trusted), else its sender."""
    reply_to = [entry for entry in (parent.reply_to or []) if "@" in _address(entry)]
    sender = {"address": parent.sender_address, "name": parent.sender_name}
    candidates = [*reply_to, sender] if parent.reply_to_trusted else [sender]
    unverified = () if parent.reply_to_trusted else tuple(_address(entry) for entry in reply_to)
    for entry in candidates:
        address = _address(entry)
        if "@" in address:
            return ReplyChoice(compose.Recipient(address, entry.get("name") or ""), unverified)
    return ReplyChoice(None, unverified)


def recipient_of(parent: Message) -> compose.Recipient | None:
    return reply_choice(parent).recipient


def reply_all(parent: Message, recipient: compose.Recipient | None) -> list[compose.Recipient]:
    """Whom "Reply all" adds in Cc: the others the customer wrote to (their To and Cc),
    never one of our addresses (outbound.ours: that would mail ourselves) nor the recipient."""
    skip = ours.ours_for_request(parent.request_id) | ([recipient.address] if recipient else [])
    offered: dict[str, compose.Recipient] = {}
    for entry in [*(parent.to or []), *(parent.cc or [])]:
        address = _address(entry)
        if "@" in address and address not in skip and address not in offered:
            offered[address] = compose.Recipient(address, (entry.get("name") or "").strip())
    return list(offered.values())


def _merged(first: list[compose.Recipient], then: list[compose.Recipient]) -> list[compose.Recipient]:
    """Both lists, each address once (the first spelling of its name wins)."""
    by_address: dict[str, compose.Recipient] = {}
    for recipient in [*first, *then]:
        by_address.setdefault(recipient.address, recipient)
    return list(by_address.values())


def cc_line(recipients: list[compose.Recipient]) -> str:
    """Recipients as a Cc field reads them (what parse_cc reads back)."""
    return ", ".join(formataddr((r.name, r.address)) if r.name else r.address for r in recipients)


def _address(entry: dict) -> str:
    return (entry.get("address") or "").strip().lower()


def send_reply(request_id: int, draft: ReplyDraft, author, guard=None, then: str = "open",
               discard_draft: bool = False) -> Message:
    """Queue the reply: its record in the conversation, its outbox row and the
    history entry commit together; the worker's sender delivers it.  `guard(request)`,
    when given, runs under the request's row lock first and may raise to refuse
    (the web's stale-page check, postdesk.web.staleness).  `then`: the status after the
    reply, one of desk.status.Then ("Send", "Send and wait", "Send and close").
    `discard_draft`: the author's saved reply draft goes in the same transaction.
    The author's and the mailbox's signatures are added here (desk.signature), so a
    reply from the page and one answered by email are signed by the same rule."""
    text = draft.text.strip("\n")
    if not text.strip():
        raise ReplyError("the reply is empty")
    if len(text) > MAX_TEXT:
        raise ReplyError(f"the reply is longer than {MAX_TEXT} characters")
    if then not in request_status.Then.ALL:
        raise ReplyError(f"unknown status after the reply: {then!r}")
    cc = parse_cc(draft.cc)
    with transaction.atomic():
        request = Request.objects.select_for_update(of=("self",)).select_related("mailbox", "customer").get(pk=request_id)
        if guard is not None:
            guard(request)
        if discard_draft:  # in this transaction: gone if the reply commits, kept if it rolls back
            drafts.discard(author, request.pk, "reply")
        parent = parent_of(list(request.messages.order_by("created_at", "id")))
        if parent is None:
            raise ReplyError("this request has no incoming mail to answer")
        mailbox = request.mailbox or parent.mailbox
        if mailbox is None:
            raise ReplyError("this request belongs to no mailbox, so there is no address to reply from")
        try:
            account_for(mailbox)
        except SmtpConfigError as exc:
            raise ReplyError(f"{exc}: an admin can set it on the Mailboxes page") from None
        if not compose.sender_of(mailbox)[0]:
            raise ReplyError(f"mailbox {mailbox.name} has no From address")
        to = recipient_of(parent)
        if to is None:
            raise ReplyError("the customer's message has no address to answer")
        in_reply_to, references = compose.thread_headers(parent.message_id, parent.references)
        text = signature.signed(text, signature.signature_for(author, mailbox, request))
        if draft.reply_all:  # read under the lock, from the message answered: no one else
            cc = _merged(reply_all(parent, to), cc)
        composed = compose.compose(
            mailbox, request, to=[to], cc=[c for c in cc if c.address != to.address],
            subject=tags.tagged_subject(request.subject, request.pk), text=text,
            in_reply_to=in_reply_to, references=references, attachments=list(draft.attachments),
        )
        message = queue.enqueue(composed, mailbox, request, kind="reply", author=author)
        RequestEvent.objects.create(request=request, actor=author, kind="replied", detail=f"reply queued to {to.address}"[:500])
        request_status.record(request, request_status.after_reply(request, then), author)
        request.save(update_fields=["status", "snooze_until", "updated_at"])
        search.index_request(request.pk)
    return message


def add_note(request_id: int, text: str, author, guard=None, discard_draft: bool = False) -> Message:
    """An internal note: part of the conversation for staff, never sent.  `guard` and
    `discard_draft` (the author's note draft) as in send_reply."""
    text = text.strip("\n")
    if not text.strip():
        raise ReplyError("the note is empty")
    if len(text) > MAX_TEXT:
        raise ReplyError(f"the note is longer than {MAX_TEXT} characters")
    with transaction.atomic():
        request = Request.objects.select_for_update().get(pk=request_id)
        if guard is not None:
            guard(request)
        if discard_draft:  # as in send_reply
            drafts.discard(author, request.pk, "note")
        body = text.encode("utf-8")
        # A note has no mail behind it; its text is its record (raw), and a
        # random fingerprint keeps two identical notes apart.
        message = Message.objects.create(
            request=request, mailbox=request.mailbox, fingerprint=hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
            subject="", sender_address="", sender_name=author.get_username() if author else "",
            date=timezone.now(), text=text, raw=blobs.put(body), direction="note", author=author,
        )
        request.save(update_fields=["updated_at"])
        RequestEvent.objects.create(request=request, actor=author, kind="note", detail=text[:200])
        notify_hooks.noted(message, author)  # @name: that member hears, in this transaction
        search.index_request(request.pk)
    return message

