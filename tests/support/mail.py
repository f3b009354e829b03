"""Build RFC 5322 messages and deliver them into Maildirs, for pipeline tests.

    raw = make_message(subject="Printer on fire", sender="Alice <alice@customer.example>")
    maildir_deliver(tmp_path / "support", raw)
"""

from __future__ import annotations

import itertools
import os
import socket
import time
import uuid
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

DEFAULT_DATE = "Mon, 02 Jun 2025 10:00:00 +0000"
_deliveries = itertools.count(1)


def new_message_id(domain: str = "customer.example") -> str:
    return f"<{uuid.uuid4().hex}@{domain}>"


def make_message(
    subject: str = "Hello",
    sender: str = "Alice Customer <alice@customer.example>",
    to: str = "Support <support@desk.example>",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | list[str] | None = None,
    body: str = "Hello, this is a test message.\n",
    headers: dict[str, str] | None = None,
    attachments: list[tuple[str, str, bytes]] | None = None,
    date: str | None = DEFAULT_DATE,
    cc: str | None = None,
) -> bytes:
    """An RFC 5322 message as bytes (CRLF line ends).

    message_id: None makes a fresh unique one, "" leaves the header out.
    headers: extra header fields, added after the standard ones.
    attachments: (filename, "type/subtype", bytes), base64 encoded."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    if date:
        msg["Date"] = date
    if message_id is None:
        message_id = new_message_id(sender.rpartition("@")[2].strip("> ") or "customer.example")
    if message_id:
        msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references if isinstance(references, str) else " ".join(references)
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    for filename, content_type, data in attachments or []:
        maintype, _, subtype = content_type.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def make_bounce(
    original: bytes,
    sender: str = "Mail Delivery System <MAILER-DAEMON@mx.customer.example>",
    to: str = "support@desk.example",
    recipient: str = "alice@customer.example",
    message_id: str | None = None,
) -> bytes:
    """A delivery-status report (RFC 3464) that quotes the original's headers."""
    original_headers = original.split(b"\r\n\r\n", 1)[0].replace(b"\r\n", b"\n").decode("utf-8", "replace")
    boundary = f"bounce-{uuid.uuid4().hex}"
    message_id = message_id or new_message_id("mx.customer.example")
    text = (
        f"From: {sender}\n"
        f"To: {to}\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        f"Date: {DEFAULT_DATE}\n"
        f"Message-ID: {message_id}\n"
        "Auto-Submitted: auto-replied\n"
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\n'
        "\n"
        f"--{boundary}\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\n"
        f"Your message could not be delivered to {recipient}: mailbox unavailable.\n"
        "\n"
        f"--{boundary}\n"
        "Content-Type: message/delivery-status\n"
        "\n"
        "Reporting-MTA: dns; mx.customer.example\n"
        "\n"
        f"Final-Recipient: rfc822; {recipient}\n"
        "Action: failed\n"
        "Status: 5.1.1\n"
        "\n"
        f"--{boundary}\n"
        "Content-Type: text/rfc822-headers\n"
        "\n"
        f"{original_headers}\n"
        "\n"
        f"--{boundary}--\n"
    )
    return text.replace("\n", "\r\n").encode()


def maildir_deliver(path: str | os.PathLike, raw: bytes, subdir: str = "new") -> str:
    """Deliver `raw` into the Maildir at `path` (cur/, new/, tmp/ made as needed) the way
    an MTA does: written in tmp/, then renamed into new/ (or cur/).  Returns the file name."""
    root = Path(path)
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns()}.P{os.getpid()}Q{next(_deliveries)}.{socket.gethostname().replace('/', '_')}"
    tmp = root / "tmp" / name
    with open(tmp, "wb") as fh:
        fh.write(raw)
        fh.flush()
        os.fsync(fh.fileno())
    final = name + (":2," if subdir == "cur" else "")
    os.replace(tmp, root / subdir / final)
    return final


def maildir_files(path: str | os.PathLike) -> dict[str, list[str]]:
    """{"new": [...], "cur": [...], "tmp": [...]}: the file names in each part of a Maildir."""
    root = Path(path)
    return {sub: sorted(p.name for p in (root / sub).iterdir()) if (root / sub).is_dir() else [] for sub in ("new", "cur", "tmp")}
