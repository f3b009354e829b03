"""Who sent the message: a real address whenever the message holds one.

`From: [??????]` before a second, valid From; `From: "Name" <>` with a
Reply-To; `From: "A" <>, "B" <b@example.com>`; `From: "bob@example.com" <>`.
A request whose customer has no address cannot be answered, so the sender is
the first valid From address (a display name that is itself an address
counts), else Reply-To, else Sender, else Return-Path.  Which header it came
from is recorded, and a defect quotes the From as written, so the message page
shows what the sender's mailer really wrote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from postdesk.mail._headers import HeaderReader
from postdesk.mail._types import Address

# Deliberately plain: one "@", something either side, no blanks or brackets, a dot
# or a bracketed literal in the domain would be RFC 5321; "localhost" mail exists
# in tests and on intranets, so a dot is not required.
_VALID = re.compile(r"[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\Z|[^@\s<>()\[\],;:\"]+@\[[0-9A-Fa-f:.]+\]\Z")
_FALLBACK_HEADERS = ("reply-to", "sender", "return-path")
_MAX_SHOWN = 120


@dataclass(frozen=True, slots=True)
class Sender:
    address: Address | None
    source: str  # the header it came from: "from", "reply-to", "sender", "return-path"


def is_valid_address(address: str) -> bool:
    return bool(address) and _VALID.match(address) is not None


def choose_sender(headers: HeaderReader, defects: list[str]) -> Sender:
    """The message's sender (see the module docstring); `defects` says why when it is
    not simply the first From."""
    from_list = headers.addresses("from")
    first = from_list[0] if from_list else None
    if first is not None and is_valid_address(first.address):
        return Sender(first, "from")
    for candidate in from_list:
        if is_valid_address(candidate.address):
            return _repaired(candidate, "from", "a later From address", headers, defects)
        if is_valid_address(candidate.name):  # From: "bob@example.com" <>
            return _repaired(Address(name="", address=candidate.name), "from", "the From display name", headers, defects)
    name = next((a.name for a in from_list if a.name and not is_valid_address(a.name)), "")
    for header in _FALLBACK_HEADERS:
        for candidate in headers.addresses(header):
            if is_valid_address(candidate.address):
                address = Address(name=candidate.name or name, address=candidate.address)
                return _repaired(address, header, header.title(), headers, defects)
    if first is not None and headers.has("from"):
        defects.append(f"from: no usable address in {_written(headers)}")
    return Sender(first, "from")


def _repaired(address: Address, source: str, origin: str, headers: HeaderReader, defects: list[str]) -> Sender:
    defects.append(f"from: no usable address in {_written(headers)}; sender taken from {origin}")
    return Sender(address, source)


def _written(headers: HeaderReader) -> str:
    """The From field(s) as the sender wrote them (unfolded), for the message page."""
    values = headers.all_text("from") or [""]
    shown = "; ".join(f"From: {value}" for value in values)
    return repr(shown[:_MAX_SHOWN] + ("..." if len(shown) > _MAX_SHOWN else ""))
