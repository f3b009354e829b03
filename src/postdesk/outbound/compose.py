"""The bytes of a mail we send: headers that thread, identify us and stop loops."""

from __future__ import annotations

import html as html_module
import re
import uuid
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from django.utils import timezone

from postdesk.models import Mailbox, Request

MAX_REFERENCES = 20  # the thread's first message and the most recent ones, as RFC 5322 suggests


@dataclass(frozen=True)
class Recipient:
    address: str
    name: str = ""

    def as_address(self) -> Address:
        # An Address, not formataddr()'s text: the email package re-folds a text header
        # and, on Python 3.11, drops the quotes around a non-ASCII name with a comma
        # ("Équipe Support, Inc." came out as two addresses).
        return Address(display_name=self.name, addr_spec=self.address)


@dataclass(frozen=True)
class FileToSend:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Composed:
    raw: bytes
    message_id: str  # without angle brackets, as the parser stores Message-IDs
    subject: str
    from_address: str
    from_name: str
    to: list[Recipient]
    cc: list[Recipient]
    in_reply_to: str
    references: list[str]
    text: str
    attachments: list[FileToSend] = field(default_factory=list)


def sender_of(mailbox: Mailbox) -> tuple[str, str]:
    """(address, display name) of mail from this mailbox."""
    return (mailbox.from_address or mailbox.address or mailbox.username or "").strip(), mailbox.from_name.strip()


def new_message_id(from_address: str) -> str:
    domain = from_address.rsplit("@", 1)[-1] if "@" in from_address else "postdesk.invalid"
    return f"pd.{uuid.uuid4().hex}@{domain}"


def _bracketed(message_id: str) -> str:
    return f"<{message_id.strip().strip('<>')}>"


def thread_headers(parent_message_id: str, parent_references: list[str]) -> tuple[str, list[str]]:
    """In-Reply-To and References for an answer to `parent` (RFC 5322 3.6.4)."""
    if not parent_message_id:
        return "", [r for r in parent_references][-MAX_REFERENCES:]
    chain = [r for r in parent_references if r != parent_message_id] + [parent_message_id]
    if len(chain) > MAX_REFERENCES:
        chain = chain[:1] + chain[-(MAX_REFERENCES - 1):]
    return parent_message_id, chain


def text_to_html(text: str) -> str:
    """A clean HTML version of a plain-text reply: paragraphs, line breaks, quotes kept."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    parts = []
    for paragraph in paragraphs:
        lines = [html_module.escape(line) for line in paragraph.splitlines()]
        parts.append("<p>" + "<br>\n".join(lines) + "</p>")
    return (
        '<!doctype html><html><head><meta charset="utf-8"></head>'
        '<body style="font-family: sans-serif; font-size: 14px; line-height: 1.5;">'
        + "\n".join(parts)
        + "</body></html>"
    )


def compose(
    mailbox: Mailbox,
    request: Request,
    *,
    to: list[Recipient],
    cc: list[Recipient] | None = None,
    subject: str,
    text: str,
    in_reply_to: str = "",
    references: list[str] | None = None,
    automatic: bool = False,
    attachments: list[FileToSend] | None = None,
) -> Composed:
    from_address, from_name = sender_of(mailbox)
    message_id = new_message_id(from_address)
    msg = EmailMessage(policy=SMTP)
    msg["From"] = Recipient(from_address, from_name).as_address()
    msg["To"] = [r.as_address() for r in to]
    if cc:
        msg["Cc"] = [r.as_address() for r in cc]
    msg["Subject"] = subject
    msg["Date"] = format_datetime(timezone.now())
    msg["Message-ID"] = _bracketed(message_id)
    if in_reply_to:
        msg["In-Reply-To"] = _bracketed(in_reply_to)
    if references:
        msg["References"] = " ".join(_bracketed(r) for r in references)
    if automatic:
        # RFC 3834: a machine answered; other machines must not answer back.
        msg["Auto-Submitted"] = "auto-replied"
        # Exchange/Outlook: no out-of-office or delivery receipts in reply to this.
        msg["X-Auto-Response-Suppress"] = "All"
    msg["X-Postdesk-Request"] = str(request.pk)
    msg.set_content(text)
    msg.add_alternative(text_to_html(text), subtype="html")
    for item in attachments or []:
        maintype, _, subtype = item.content_type.partition("/")
        msg.add_attachment(item.data, maintype=maintype or "application", subtype=subtype or "octet-stream", filename=item.filename)
    return Composed(
        raw=msg.as_bytes(),
        message_id=message_id,
        subject=subject,
        from_address=from_address,
        from_name=from_name,
        to=list(to),
        cc=list(cc or []),
        in_reply_to=in_reply_to,
        references=list(references or []),
        text=text,
        attachments=list(attachments or []),
    )
