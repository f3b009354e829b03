"""Canned replies: texts admins keep for everyone, and the placeholders filled in when
one is inserted into a reply (the same placeholders serve the signatures, desk.signature).

    {customer_name} {customer_email} {request_number} {agent_name} {mailbox}

An unknown placeholder ("{custmer_name}") is left as it is, visible in the editor, so
the agent sees the typo before the customer does; an empty value ("{customer_name}"
of a customer without a name) becomes "" (the agent reads the text before sending)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from django.db.models import Q

from postdesk.models import CannedReply, Mailbox, Request

PLACEHOLDERS = ("customer_name", "customer_email", "request_number", "agent_name", "mailbox")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class Canned:
    """A canned reply as the editor offers it: its text with the placeholders filled."""

    pk: int
    title: str
    text: str


def fill(text: str, values: Mapping[str, str]) -> str:
    """`text` with each known {placeholder} replaced; unknown ones stay visible."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)] if m.group(1) in values else m.group(0), text)


def agent_name(user) -> str:
    if user is None:
        return ""
    return (user.get_full_name() or user.get_username()).strip()


def values_for(req: Request | None, agent, mailbox: Mailbox | None = None) -> dict[str, str]:
    """The placeholders' values for a reply by `agent` on `req` (`mailbox`: the one it
    is sent from, by default the request's)."""
    customer = req.customer if req is not None else None
    mailbox = mailbox or (req.mailbox if req is not None else None)
    return {
        "customer_name": (customer.name if customer else "") or "",
        "customer_email": (customer.address if customer else "") or "",
        "request_number": str(req.pk) if req is not None and req.pk else "",
        "agent_name": agent_name(agent),
        "mailbox": (mailbox.from_name or mailbox.name) if mailbox else "",
    }


def offered(req: Request):
    """The canned replies for this request's mailbox: its own and those for every mailbox."""
    return CannedReply.objects.filter(Q(mailbox__isnull=True) | Q(mailbox=req.mailbox_id)).order_by("title")


def filled(req: Request, agent) -> list[Canned]:
    values = values_for(req, agent)
    return [Canned(c.pk, c.title, fill(c.body, values)) for c in offered(req)]


def one_filled(req: Request, agent, pk) -> Canned | None:
    canned = offered(req).filter(pk=pk).first() if str(pk).isdigit() else None
    return Canned(canned.pk, canned.title, fill(canned.body, values_for(req, agent))) if canned else None
