"""The bytes of a notification: who wrote, the subject, the first lines of the new
text, the attachments' names and a link to the request.

Threading: every notification to one staff member about one request references
the same root Message-ID, `<pd-notify-REQ-STAFF@host>` (never sent itself), so a
mail client shows them as one thread.  `Auto-Submitted: auto-generated` and
`X-Auto-Response-Suppress: All` keep them from looping back as requests or
drawing out-of-office replies.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from postdesk import tags
from postdesk.models import Message, Request
from postdesk.notify.reply_address import ANSWER_ABOVE

FIRST_LINES = 12
LINE_WIDTH = 200

HEADLINES = {
    "assigned": "{actor} assigned you request {tag}",
    "assigned_by_routing": "Request {tag} was assigned to you by the mailbox's routing",
    "customer_wrote": "{who} wrote again on your request {tag}",
    "mentioned": "{actor} named you in a note on request {tag}",
    "new_unassigned": "New unassigned request {tag}",
    "woke": "Your request {tag} is back: its snooze ended",
}


@dataclass(frozen=True)
class Notification:
    raw: bytes
    message_id: str
    to: str
    from_address: str


def thread_root(request_id: int, staff_id: int, from_address: str) -> str:
    return f"pd-notify-{request_id}-{staff_id}@{_host(from_address)}"


def headline(kind: str, request: Request, actor, message: Message | None) -> str:
    key = "assigned_by_routing" if kind == "assigned" and actor is None else kind
    return HEADLINES[key].format(actor=_name(actor), who=_writer(message, request), tag=tags.tag(request.pk))


def body(kind: str, request: Request, actor, message: Message | None) -> str:
    """The text: headline, who wrote, subject, first lines, attachments, link."""
    lines = [headline(kind, request, actor, message) + ".", ""]
    lines += [f"From:    {_writer(message, request)}", f"Subject: {request.subject or '(no subject)'}", ""]
    lines += [f"> {line}" if line else ">" for line in first_lines(message)]
    names = attachment_names(message)
    if names:
        lines += ["", "Attachments: " + ", ".join(names)]
    lines += ["", f"Open the request: {request_url(request)}", ""]
    return "\n".join(lines)


def compose(kind: str, request: Request, actor, message: Message | None, *, staff, from_address: str,
            from_name: str, reply_to: str) -> Notification:
    root = thread_root(request.pk, staff.pk, from_address)
    text = body(kind, request, actor, message)
    if reply_to:
        # What the member writes above this line goes to the customer (notify.answer
        # cuts here); the notification below it, which may quote a note, never does.
        text = f"{ANSWER_ABOVE}\n\n{text}"
    message_id = f"pd-notify-{request.pk}-{staff.pk}.{uuid.uuid4().hex}@{_host(from_address)}"
    return Notification(_bytes(text, subject=_subject(request), staff=staff, from_address=from_address, from_name=from_name,
                               reply_to=reply_to, message_id=message_id, root=root, request=request),
                        message_id, staff.email, from_address)


def compose_digest(entries: list[tuple[Request, str]], *, staff, from_address: str, from_name: str) -> Notification:
    """One mail listing pending events (entries: the request and its summary)."""
    lines = [f"{len(entries)} thing{'s' if len(entries) != 1 else ''} happened on your requests:", ""]
    for request, summary in entries:
        lines += [summary, ""]
    message_id = f"pd-notify-digest-{staff.pk}.{uuid.uuid4().hex}@{_host(from_address)}"
    raw = _bytes("\n".join(lines), subject=f"Postdesk: {len(entries)} notification{'s' if len(entries) != 1 else ''}",
                 staff=staff, from_address=from_address, from_name=from_name, reply_to="", message_id=message_id,
                 root="", request=None)
    return Notification(raw, message_id, staff.email, from_address)


def digest_line(kind: str, request: Request, actor, message: Message | None) -> str:
    text = " ".join(first_lines(message, 2))
    return f"- {headline(kind, request, actor, message)}: {request.subject or '(no subject)'}" + (
        f"\n  {text[:LINE_WIDTH]}" if text else "") + f"\n  {request_url(request)}"


def first_lines(message: Message | None, limit: int = FIRST_LINES) -> list[str]:
    """The beginning of what is new: the reply split's new part when there is one."""
    if message is None:
        return []
    parts = message.text_parts or {}
    text = parts.get("new_text") or message.text or ""
    lines = [line.rstrip()[:LINE_WIDTH] for line in text.strip("\n").splitlines()]
    return lines[:limit] + (["[...]"] if len(lines) > limit else [])


def attachment_names(message: Message | None) -> list[str]:
    if message is None or message.pk is None:
        return []
    return [a.filename for a in message.attachments.all() if not a.inline]


def request_url(request: Request) -> str:
    path = reverse("postdesk_web:request", kwargs={"number": request.pk})
    return (settings.POSTDESK_PUBLIC_URL or "") + path


def _bytes(text: str, *, subject: str, staff, from_address: str, from_name: str, reply_to: str, message_id: str,
           root: str, request: Request | None) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = Address(display_name=from_name, addr_spec=from_address)
    msg["To"] = Address(display_name=staff.get_full_name() or staff.get_username(), addr_spec=staff.email)
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(timezone.now())
    msg["Message-ID"] = f"<{message_id}>"
    if root:
        msg["In-Reply-To"] = f"<{root}>"
        msg["References"] = f"<{root}>"
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    if request is not None:
        msg["X-Postdesk-Request"] = str(request.pk)
    msg.set_content(text)
    return msg.as_bytes()


def _subject(request: Request) -> str:
    return tags.tagged_subject(request.subject, request.pk, reply=False)


def _writer(message: Message | None, request: Request) -> str:
    if message is not None and message.direction == "note":
        return _name(message.author)
    if message is not None and message.sender_address:
        return f"{message.sender_name} <{message.sender_address}>" if message.sender_name else message.sender_address
    customer = request.customer
    return str(customer) if customer is not None else "(unknown sender)"


def _name(user) -> str:
    if user is None:
        return "Postdesk"
    return user.get_full_name() or user.get_username()


def _host(address: str) -> str:
    return address.rsplit("@", 1)[-1] if "@" in address else "postdesk.invalid"
