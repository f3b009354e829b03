"""The typed result of `parse()`: what every later stage of the pipeline reads.

Everything here is plain data.  `to_dict()` gives the JSON shape that
`postdesk inspect --json` prints (and later stages store).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

AutoKind = Literal["auto-replied", "auto-generated", "bounce", "list"]


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox from an address header.  `address` may be empty for a bare name."""

    name: str
    address: str

    def to_dict(self) -> dict:
        return {"name": self.name, "address": self.address}


@dataclass(frozen=True, slots=True)
class AutoSubmitted:
    """Why we believe no person wrote this message (RFC 3834 and its folklore)."""

    kind: AutoKind
    reason: str
    # For a bounce: the Message-ID of the message it reports, when the report says.
    original_message_id: str | None = None

    def to_dict(self) -> dict:
        return {"kind": self.kind, "reason": self.reason, "original_message_id": self.original_message_id}


@dataclass(frozen=True, slots=True)
class ForwardedMessage:
    """The headline of a message/rfc822 part, so staff see what was forwarded."""

    subject: str
    from_: Address | None
    date: datetime | None
    message_id: str | None


@dataclass(slots=True)
class Attachment:
    filename: str  # safe: no path separators, control characters or leading dots
    content_type: str  # lower case, e.g. "image/png"
    size: int  # of the decoded bytes
    sha256: str  # hex digest of the decoded bytes
    content_id: str | None  # without angle brackets
    inline: bool  # the HTML body shows it (cid: or Content-Location reference)
    data: bytes = field(repr=False, default=b"")
    content_location: str | None = None
    # For message/rfc822 parts: who sent the forwarded message and what about.
    forwarded: ForwardedMessage | None = None

    def to_dict(self) -> dict:
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
            "content_id": self.content_id,
            "inline": self.inline,
        }


@dataclass(slots=True)
class ParsedMessage:
    message_id: str | None = None  # without angle brackets
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    subject: str = ""
    date: datetime | None = None  # always timezone-aware when set
    from_: Address | None = None
    reply_to: list[Address] = field(default_factory=list)
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    text: str = ""
    html: str | None = None  # sanitized; cid: references kept
    attachments: list[Attachment] = field(default_factory=list)
    auto_submitted: AutoSubmitted | None = None
    # What the parser had to repair or could not read, one short sentence each.
    defects: list[str] = field(default_factory=list)
    forwarded: list[ForwardedMessage] = field(default_factory=list)
    # The header `from_` was read from: "from", or when From held no usable address,
    # "reply-to", "sender" or "return-path" (a defect quotes the From as written).
    from_source: str = "from"

    def to_dict(self) -> dict:
        return {
            "message_id": self.message_id,
            "in_reply_to": self.in_reply_to,
            "references": list(self.references),
            "subject": self.subject,
            "date": self.date.isoformat() if self.date else None,
            "from": self.from_.to_dict() if self.from_ else None,
            "from_source": self.from_source,
            "reply_to": [a.to_dict() for a in self.reply_to],
            "to": [a.to_dict() for a in self.to],
            "cc": [a.to_dict() for a in self.cc],
            "text": self.text,
            "html": self.html,
            "attachments": [a.to_dict() for a in self.attachments],
            "auto_submitted": self.auto_submitted.to_dict() if self.auto_submitted else None,
            "defects": list(self.defects),
        }
