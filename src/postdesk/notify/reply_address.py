"""The reply address of a notification: `<local>+<token>@<domain>` of the mailbox
the request belongs to, where the token is signed and names one staff member
and one request.  To be built (issue 14, answering by email)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReplyToken:
    """What a reply address says, once checked."""

    staff_id: int
    request_id: int


def reply_address(staff, request, base_address: str) -> str:
    """The address a notification to `staff` about `request` asks to be answered at."""
    raise NotImplementedError


def read_reply_address(addresses: list[str]) -> ReplyToken | None:
    """The first valid reply token among `addresses` (a message's To, Cc, Delivered-To), or None."""
    raise NotImplementedError
