"""What makes a message itself, whichever mailbox, UID or path it came by.

`Message.fingerprint` is unique, so two messages with one fingerprint are
stored once and the second is marked duplicate, never shown.  A fingerprint
may therefore only merge what is provably one message:

- the same Message-ID and the same content (sender, date, subject, text, HTML,
  attachments): the same mail reaching two of our mailboxes (each copy has its
  own Received and Delivered-To lines, so the bytes differ), and our own sent
  mail coming back in on a Cc (postdesk always writes a Message-ID);
- without a Message-ID, the same raw bytes: the same copy fetched again (a
  UIDVALIDITY change, a re-listed POP3 mailbox).  A note sent at 8:00 and again
  at 17:30 with no Message-ID and no Date has the same content but not the same
  bytes (its Received lines differ): two messages, both kept.

Pure: no database; `raw_sha256` is the sha256 of the raw message (its Blob key).
"""

from __future__ import annotations

import hashlib

from postdesk.mail._types import ParsedMessage


def fingerprint(parsed: ParsedMessage, raw_sha256: str) -> str:
    """The message's identity, as a 64-character hex string."""
    if parsed.message_id:
        return _content_fingerprint(parsed)
    # Namespaced, so it can never equal a content fingerprint of some other message.
    return hashlib.sha256(b"raw-bytes\0" + raw_sha256.encode("ascii")).hexdigest()


def _content_fingerprint(parsed: ParsedMessage) -> str:
    # The same fields, in the same order, as every fingerprint stored so far: a
    # message already in the database keeps matching when it comes again.
    h = hashlib.sha256()
    parts = [
        parsed.message_id or "",
        parsed.from_.address.lower() if parsed.from_ else "",
        parsed.date.isoformat() if parsed.date else "",
        parsed.subject,
        parsed.text,
        parsed.html or "",
        *sorted(a.sha256 for a in parsed.attachments),
    ]
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()
