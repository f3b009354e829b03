"""Which addresses are ours: the one home of that rule.  Mail from them is never
acknowledged (outbound/policy.py), and "Reply all" never offers them in Cc
(outbound/reply.py): that would mail ourselves, a loop risk and a Cc the customer
finds odd.

Ours are:
- every mailbox's own, per its settings (OWN_SETTINGS): its address, its From address,
  and a sign-in name for fetching or sending that is an address;
- for one request, where its incoming mail was delivered (the newest Delivered-To,
  X-Original-To and Envelope-To of each raw message, mail.delivered_to): a Maildir
  mailbox, or one whose login is not an address, knows its own address only from there;
- a sub-address of any of these (`support+billing@` is `support@`'s: the server
  delivers it there), with the delimiter of the reply addresses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from postdesk.mail import DELIVERY_HEAD_BYTES, delivered_to
from postdesk.models import Intake, Mailbox, Message
from postdesk.notify.reply_address import delimiter
from postdesk.store import blobs

OWN_SETTINGS = ("address", "from_address", "username", "smtp_username")


@dataclass(frozen=True)
class Ours:
    """A set of our addresses (lower case); `in` also knows their sub-addresses."""

    addresses: frozenset[str] = frozenset()

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str):
            return False
        address = address.strip().lower()
        return address in self.addresses or _without_subaddress(address) in self.addresses

    def __or__(self, more: Iterable[str]) -> Ours:
        return Ours(self.addresses | frozenset(_clean(more)))


def our_addresses() -> Ours:
    """Every mailbox's own addresses (settings only): true wherever the mail came from."""
    rows = Mailbox.objects.values_list(*OWN_SETTINGS)
    return Ours(frozenset(_clean(value for row in rows for value in row)))


def ours_for_request(request_id: int) -> Ours:
    """Ours as a reply on this request sees it: every mailbox's, and where the
    request's incoming mail was delivered (each copy: one mail taken by two
    mailboxes is one message with two intakes)."""
    return our_addresses() | delivered_to_request(request_id)


def ours_for_intake(intake: Intake, everywhere: Ours) -> Ours:
    """Ours as one message taken sees it: `everywhere` (our_addresses(), read once per
    batch) and where this message was delivered."""
    return everywhere | delivered_to_raw([intake.raw_id])


def delivered_to_request(request_id: int) -> set[str]:
    incoming = Message.objects.filter(request_id=request_id, direction="in")
    raw_ids = {*incoming.values_list("raw_id", flat=True),
               *Intake.objects.filter(message__in=incoming).values_list("raw_id", flat=True)}
    return delivered_to_raw(sorted(raw_ids))


def delivered_to_raw(raw_ids: list[str]) -> set[str]:
    """Where our server put these raw messages (the last hop only: older delivery
    fields of a forwarded message are someone else's)."""
    heads = blobs.read_heads(raw_ids, DELIVERY_HEAD_BYTES)
    return {address for head in heads.values() for address in delivered_to(head, last_hop=True)}


def _clean(values: Iterable[str | None]) -> Iterable[str]:
    return (value.strip().lower() for value in values if value and "@" in value)


def _without_subaddress(address: str) -> str:
    local, at, domain = address.rpartition("@")
    base, found, _ = local.partition(delimiter())
    return f"{base}@{domain}" if at and found and base else address
