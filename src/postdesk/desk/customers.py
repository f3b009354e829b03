"""A customer as staff see them: who they are, their organisation, their requests, a note.

The organisation is the domain of their address, unless anyone can get an address
there (a public mail provider, postdesk.domains): two gmail.com customers are strangers,
two example.com customers are colleagues. The note is what staff should know about
them; each change leaves an audit line ("customer.note", target "customer <id>")."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet

from postdesk import domains
from postdesk.models import AuditEvent, Customer, Request

PANEL_REQUESTS = 5  # beside a request: their last few, the rest is on their page
COLLEAGUES_SHOWN = 20
NOTE_MAX = 5000
NOTE_KIND = "customer.note"


@dataclass(frozen=True)
class Organisation:
    domain: str  # "" when the address has none, or one at a public provider
    colleagues: list[Customer]

    @property
    def known(self) -> bool:
        return bool(self.domain)


@dataclass(frozen=True)
class Panel:
    """What the request page shows beside the request about its customer."""

    customer: Customer
    organisation: str  # the domain, "" when none (public provider)
    recent: list[Request]


@dataclass(frozen=True)
class NoteChange:
    customer: Customer
    changed: bool  # False when the note was already this text (saving twice changes nothing)


def organisation_domain(customer: Customer) -> str:
    """The organisation's domain, or "" for an address at a public mail provider."""
    domain = domains.domain_of(customer.address)
    if not domain or domains.is_public(domain):
        return ""
    return domain


def organisation_of(customer: Customer) -> Organisation:
    domain = organisation_domain(customer)
    if not domain:
        return Organisation("", [])
    # Addresses are stored in lower case, and the domain was normalized the same way.
    others = (Customer.objects.filter(address__endswith="@" + domain).exclude(pk=customer.pk)
              .order_by("name", "address")[:COLLEAGUES_SHOWN])
    return Organisation(domain, list(others))


def requests_of(customer: Customer) -> QuerySet:
    """Every request they sent, newest first."""
    return (Request.objects.filter(customer=customer).select_related("assignee", "mailbox")
            .order_by("-created_at", "-pk"))


def recent_requests(customer: Customer, *, besides: Request | None = None) -> list[Request]:
    """Their last requests for the panel beside a request (that request itself left out)."""
    rows = requests_of(customer)
    if besides is not None:
        rows = rows.exclude(pk=besides.pk)
    return list(rows[:PANEL_REQUESTS])


def panel(request: Request) -> Panel | None:
    customer = request.customer
    if customer is None:
        return None
    return Panel(customer, organisation_domain(customer), recent_requests(customer, besides=request))


def note_history(customer: Customer) -> QuerySet:
    return AuditEvent.objects.filter(kind=NOTE_KIND, target=_target(customer)).select_related("actor").order_by("-created_at", "-id")


def save_note(customer_id: int, text: str, actor) -> NoteChange:
    """Set the note (trimmed, at most NOTE_MAX characters) with one audit line per change."""
    text = text.replace("\r\n", "\n").strip()[:NOTE_MAX]
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer_id)
        if customer.note == text:
            return NoteChange(customer, False)
        customer.note = text
        customer.save(update_fields=["note", "updated_at"])
        AuditEvent.record(actor, NOTE_KIND, _target(customer), text[:1000] or "(note cleared)")
    return NoteChange(customer, True)


def _target(customer: Customer) -> str:
    return f"customer {customer.pk}"
