"""The quarantine: messages stored but not imported, with why; re-run or discard them.

What `postdesk quarantine`, `postdesk reprocess` and the admin pages share.
A quarantined message is an Intake row with status "quarantined"; its raw bytes
stay in the blob store whatever happens to it (discarding only changes the
status, and writes an audit row), so a discarded message can still be read.
"""

from __future__ import annotations

import email.header
import email.parser
import email.utils
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import QuerySet

from postdesk import process
from postdesk.models import AuditEvent, Intake
from postdesk.pipeline import MailboxReport
from postdesk.process.apply import Applied
from postdesk.sizes import describe_size
from postdesk.store import blobs


def held() -> QuerySet:
    """The quarantined messages, oldest first."""
    return Intake.objects.filter(status=Intake.Status.QUARANTINED).select_related("mailbox").order_by("id")


# What staff do about a message too large to download (Intake.left_at_source).
LEFT_AT_SOURCE_HINT = "left on the server: raise the mailbox's size limit, then re-run"


def hint(intake: Intake) -> str:
    """What to do about it, when the reason alone does not say."""
    return LEFT_AT_SOURCE_HINT if intake.left_at_source else ""


@dataclass(frozen=True)
class Envelope:
    """Who sent a held message, about what, when: read from its header block, so the list
    says which message it is without opening it ("" when a header is missing or unreadable)."""

    sender: str
    subject: str
    date: datetime | None


HEAD_BYTES = 32 * 1024  # enough for any ordinary header block; only the list's rows read this far


def envelopes(intakes: list[Intake]) -> dict[int, Envelope]:
    """Each intake's Envelope, by intake id (the raw heads read in one batch)."""
    try:
        heads = blobs.read_heads([i.raw_id for i in intakes], HEAD_BYTES)
    except FileNotFoundError:  # a missing blob costs its own row only
        heads = {}
    return {i.pk: envelope(heads.get(i.raw_id, b"")) for i in intakes}


@dataclass(frozen=True)
class Held:
    """One row of the quarantine list (page and CLI): the intake and its envelope."""

    intake: Intake
    envelope: Envelope


def with_envelopes(intakes) -> list[Held]:
    intakes = list(intakes)
    found = envelopes(intakes)
    return [Held(i, found[i.pk]) for i in intakes]


def envelope(head: bytes) -> Envelope:
    """Never raises: a quarantined message is often the one with the broken headers."""
    try:
        fields = email.parser.BytesHeaderParser().parsebytes(head, headersonly=True)
    except Exception:
        return Envelope("", "", None)
    return Envelope(_decoded(fields.get("From")), _decoded(fields.get("Subject")), _date(fields.get("Date")))


def _decoded(value) -> str:
    if value is None:
        return ""
    try:
        text = str(email.header.make_header(email.header.decode_header(str(value))))
    except Exception:  # a broken encoded word: the raw text reads better than nothing
        text = str(value)
    return " ".join(text.split())[:300]


def _date(value) -> datetime | None:
    try:
        return email.utils.parsedate_to_datetime(str(value)) if value else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def as_dict(intake: Intake, envelope: Envelope | None = None) -> dict:
    return {
        "id": intake.pk,
        "mailbox": intake.mailbox.name,
        "source_key": intake.source_key,
        "from": envelope.sender if envelope else None,
        "subject": envelope.subject if envelope else None,
        "size": intake.size,
        "size_text": describe_size(intake.size),
        "fetched": intake.fetched_at.isoformat(),
        "reason": intake.quarantine_reason,
        "left_at_source": intake.left_at_source,
        "hint": hint(intake),
    }


def target(intake_id: int) -> str:
    """How audit rows name a quarantined message."""
    return f"intake {intake_id}"


def missing(ids: list[int]) -> list[int]:
    """The ids that name no intake row at all."""
    return sorted(set(ids) - set(Intake.objects.filter(pk__in=ids).values_list("pk", flat=True)))


# --- re-run ------------------------------------------------------------------------


@dataclass
class Rerun:
    """What re-running gave: one outcome per intake that was processed (Applied or Quarantined)."""

    ids: list[int]
    outcomes: dict[int, process.Outcome] = field(default_factory=dict)
    report: MailboxReport = field(default_factory=lambda: MailboxReport("reprocess"))


@dataclass(frozen=True)
class Released:
    """A re-run of a message left at the source: its placeholder row is gone, so
    the mailbox's next pass downloads it again under the limit in force then."""

    intake_id: int
    mailbox: str
    source_key: str
    limit: int  # bytes, the limit the next pass applies (as of now)


def describe_outcome(outcome: process.Outcome | Released | None) -> str:
    if isinstance(outcome, Released):
        return (f"the next pass of {outcome.mailbox} downloads it again (size limit now "
                f"{describe_size(outcome.limit)}; a message still over it is left on the server again)")
    if outcome is None:
        return "nothing to do (it was not waiting any more: processed meanwhile, or being processed)"
    if isinstance(outcome, process.Quarantined):
        return f"quarantined again: {outcome.reason}"
    if isinstance(outcome, Applied) and outcome.request_number is not None:
        return f"{outcome.outcome}: request #{outcome.request_number}"
    return f"{outcome.outcome}"


def rerun(ids: list[int], actor=None, parse_timeout: int | None = None) -> Rerun:
    """Back to pending with a fresh attempts count, then processed right away, here.

    The size limit does not apply to a re-run (it is checked at intake only).
    A message left at the source (too large to download) has nothing here to
    process: its placeholder row is removed instead (release_left).
    `parse_timeout`: seconds each may take to read, instead of POSTDESK_PARSE_TIMEOUT
    (a message quarantined because it "took longer than 30 s to read")."""
    result = Rerun(list(ids))
    result.outcomes.update(release_left(result.ids, actor))
    rest = [intake_id for intake_id in result.ids if intake_id not in result.outcomes]
    if rest:
        process.requeue(rest, parse_timeout)
        for outcome in process.iter_process(ids=rest):
            result.outcomes[outcome.intake_id] = outcome
            result.report.count(outcome)
    with transaction.atomic():
        for intake_id in rest:
            AuditEvent.record(actor, "quarantine.rerun", target(intake_id), describe_outcome(result.outcomes.get(intake_id)))
    return result


def release_left(ids: list[int], actor=None) -> dict[int, Released]:
    """Remove the placeholder rows of messages left at the source, so the next
    pass lists them as new and downloads them.  The audit row keeps what it was
    (its header blob stays in the store too)."""
    from postdesk.sources._budget import size_limit

    released: dict[int, Released] = {}
    with transaction.atomic():
        rows = Intake.objects.select_for_update(of=("self",)).select_related("mailbox").filter(
            pk__in=ids, left_at_source=True, status=Intake.Status.QUARANTINED)
        for row in rows:
            outcome = Released(row.pk, row.mailbox.name, row.source_key, size_limit(row.mailbox))
            AuditEvent.record(actor, "quarantine.rerun", target(row.pk),
                              f"from {row.mailbox.name} ({row.source_key}), announced {row.size} bytes, headers in blob "
                              f"{row.raw_id}; it was held for: {row.quarantine_reason}; {describe_outcome(outcome)}")
            row.delete()
            released[outcome.intake_id] = outcome
    return released


def queue_rerun(intake_id: int, parse_timeout: int, actor=None) -> bool:
    """Back to pending with a longer parse time limit, for the worker to read (the
    admin page: a long limit must not hold a web request).  False when it was not
    in the quarantine (any more)."""
    if release_left([intake_id], actor):
        return True  # left at the source: the next pass downloads it; there is nothing here to read
    with transaction.atomic():
        if not Intake.objects.filter(pk=intake_id, status=Intake.Status.QUARANTINED).exists():
            return False
        process.requeue([intake_id], parse_timeout)
        AuditEvent.record(actor, "quarantine.rerun", target(intake_id),
                          f"queued for the worker with a {parse_timeout} s time limit to read it")
    return True


# --- discard -----------------------------------------------------------------------


def discard(intake_id: int, actor=None) -> bool:
    """Mark a quarantined message discarded (its raw bytes are kept) and record who did it.

    False when it was not in the quarantine (any more): nothing changes then."""
    with transaction.atomic():
        intake = Intake.objects.select_for_update(of=("self",)).select_related("mailbox").filter(
            pk=intake_id, status=Intake.Status.QUARANTINED).first()
        if intake is None:
            return False
        intake.status = Intake.Status.DISCARDED
        intake.lease_until = None
        intake.save(update_fields=["status", "lease_until"])
        AuditEvent.record(actor, "quarantine.discarded", target(intake_id),
                          f"from {intake.mailbox.name} ({intake.source_key}), {intake.size} bytes, "
                          f"blob {intake.raw_id}; it was held for: {intake.quarantine_reason}")
    return True
