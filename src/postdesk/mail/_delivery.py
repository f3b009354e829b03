"""Where the delivering server says it put a message: Delivered-To (Postfix, Dovecot,
Gmail), X-Original-To (Postfix: the address before aliases) and Envelope-To (Exim).
The parser does not keep these; they are read from the raw header block when asked."""

from __future__ import annotations

from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import getaddresses

DELIVERY_HEADERS = ("delivered-to", "x-original-to", "envelope-to")
DELIVERY_HEAD_BYTES = 64 * 1024  # of the raw message: enough for any header block we keep whole


def delivered_to(head: bytes, *, last_hop: bool = False) -> list[str]:
    """The addresses in the delivery headers of `head` (a raw message or its start),
    lower case.  `last_hop`: only the topmost field of each kind, the one the last
    server (ours) added; older ones may be a customer's own (a forward keeps them)."""
    try:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(head)
        values = [str(v) for name in DELIVERY_HEADERS for v in _fields(headers, name, last_hop)]
        return [address.strip().lower() for _, address in getaddresses(values) if "@" in address]
    except Exception:  # hostile header bytes are the parser's business; here they only mean "none"
        return []


def _fields(headers, name: str, last_hop: bool) -> list:
    found = headers.get_all(name) or []
    return found[:1] if last_hop else found
