"""The quarantine: messages stored but not imported, with why; re-run or discard them.

What `postdesk quarantine`, `postdesk reprocess` and the admin pages share.
A quarantined message is an Intake row with status "quarantined"; its raw bytes
stay in the blob store whatever happens to it (discarding only changes the
status, and writes an audit row), so a discarded message can still be read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import QuerySet

from postdesk import process
from postdesk.models import AuditEvent, Intake
from postdesk.pipeline import MailboxReport
from postdesk.process.apply import Applied


def held() -> QuerySet:
    """The quarantined messages, oldest first."""
    return Intake.objects.filter(status=Intake.Status.QUARANTINED).select_related("mailbox").order_by("id")


def as_dict(intake: Intake) -> dict:
    return {
        "id": intake.pk,
        "mailbox": intake.mailbox.name,
        "source_key": intake.source_key,
        "size": intake.size,
        "fetched": intake.fetched_at.isoformat(),
        "reason": intake.quarantine_reason,
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


def describe_outcome(outcome: process.Outcome | None) -> str:
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
    `parse_timeout`: seconds each may take to read, instead of POSTDESK_PARSE_TIMEOUT
    (a message quarantined because it "took longer than 30 s to read")."""
    result = Rerun(list(ids))
    process.requeue(result.ids, parse_timeout)
    for outcome in process.iter_process(ids=result.ids):
        result.outcomes[outcome.intake_id] = outcome
        result.report.count(outcome)
    with transaction.atomic():
        for intake_id in result.ids:
            AuditEvent.record(actor, "quarantine.rerun", target(intake_id), describe_outcome(result.outcomes.get(intake_id)))
    return result


def queue_rerun(intake_id: int, parse_timeout: int, actor=None) -> bool:
    """Back to pending with a longer parse time limit, for the worker to read (the
    admin page: a long limit must not hold a web request).  False when it was not
    in the quarantine (any more)."""
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
