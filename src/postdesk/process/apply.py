"""Apply: one transaction writes the request or follow-up, its attachments, and
marks the intake row processed.  Either all of it is there, or none of it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from postdesk import crashpoints
from postdesk.mail import ParsedMessage
from postdesk.models import Attachment, Customer, Intake, Mailbox, Message, Request, RequestEvent
from postdesk.process.thread import find_request
from postdesk.store import blobs


@dataclass(frozen=True)
class Applied:
    intake_id: int
    outcome: str  # "created", "threaded", "duplicate", "skipped" (already done elsewhere)
    request_number: int | None = None
    rule: str = ""


def fingerprint(parsed: ParsedMessage) -> str:
    """What makes a message itself, whichever mailbox or UID it came through."""
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


def apply(intake_id: int, lease: int, parsed: ParsedMessage) -> Applied:
    """Write what `parsed` means.  `lease` is the attempts count this worker claimed
    the row with: if another worker has claimed it since, we must not commit."""
    fp = fingerprint(parsed)
    _attachments_durable([parsed])
    try:
        with transaction.atomic():
            return _apply_locked(intake_id, lease, parsed, fp)
    except IntegrityError:
        # Another worker stored the same message (same fingerprint) a moment ago.
        existing = Message.objects.filter(fingerprint=fp).first()
        if existing is None:
            raise
        with transaction.atomic():
            intake = Intake.objects.select_for_update().get(pk=intake_id)
            if intake.status == Intake.Status.PENDING:
                _finish(intake, Intake.Status.DUPLICATE, existing)
        return Applied(intake_id, "duplicate", existing.request_id)


def apply_batch(items: list[tuple[int, int, ParsedMessage]]) -> list[Applied | Exception]:
    """apply() for a batch in one transaction, a savepoint per message: one commit
    (and one file-system sync) for the batch instead of one per message.  A
    message that fails is rolled back alone; its exception is its result."""
    if not items:
        return []
    _attachments_durable([parsed for _, _, parsed in items])
    results: list[Applied | Exception] = []
    with transaction.atomic():
        for intake_id, lease, parsed in items:
            try:
                with transaction.atomic():
                    results.append(_apply_locked(intake_id, lease, parsed, fingerprint(parsed)))
            except crashpoints.CrashInjected:
                raise
            except Exception as exc:  # the caller retries this one alone
                results.append(exc)
    return results


def _attachments_durable(messages: list[ParsedMessage]) -> None:
    """Attachment bytes reach the disk before the transaction that points at them."""
    if blobs.backend() == "fs":
        blobs.write_files([(a.sha256, a.data) for parsed in messages for a in parsed.attachments])


def _apply_locked(intake_id: int, lease: int, parsed: ParsedMessage, fp: str) -> Applied:
    intake = Intake.objects.select_for_update().select_related("mailbox", "mailbox__assign_to").get(pk=intake_id)
    if intake.status != Intake.Status.PENDING or intake.attempts != lease:
        return Applied(intake_id, "skipped")
    existing = Message.objects.filter(fingerprint=fp).first()
    if existing is not None:
        _finish(intake, Intake.Status.DUPLICATE, existing)
        return Applied(intake_id, "duplicate", existing.request_id)
    applied = _write(intake, parsed, fp)
    crashpoints.reached("inside-process")
    return applied


def _write(intake: Intake, parsed: ParsedMessage, fp: str) -> Applied:
    mailbox = intake.mailbox
    sender = (parsed.from_.address.lower() if parsed.from_ else "")[:254]
    customer = _customer(parsed)
    match = find_request(parsed, sender)
    auto_kind = parsed.auto_submitted.kind if parsed.auto_submitted else ""
    if match is None:
        request = _new_request(mailbox, parsed, customer, auto_kind)
        outcome, rule = "created", ""
    else:
        request, outcome, rule = match.request, "threaded", match.rule
        _follow_up(request, auto_kind)
    message = Message.objects.create(
        request=request,
        mailbox=mailbox,
        fingerprint=fp,
        message_id=_clean(parsed.message_id or "", 998),
        in_reply_to=_clean(parsed.in_reply_to or "", 998),
        references=[_clean(r, 998) for r in parsed.references[:200]],
        subject=_clean(parsed.subject, 998),
        sender_address=sender,
        sender_name=_clean(parsed.from_.name if parsed.from_ else "", 255),
        to=[_addr(a) for a in parsed.to],
        cc=[_addr(a) for a in parsed.cc],
        reply_to=[_addr(a) for a in parsed.reply_to],
        date=parsed.date,
        text=_clean(parsed.text),
        html=_clean(parsed.html) if parsed.html is not None else None,
        auto_submitted=auto_kind,
        auto_reason=_clean(parsed.auto_submitted.reason if parsed.auto_submitted else "", 255),
        original_message_id=_clean((parsed.auto_submitted.original_message_id or "") if parsed.auto_submitted else "", 998),
        defects=[_clean(d, 500) for d in parsed.defects[:100]],
        raw_id=intake.raw_id,
    )
    stored = blobs.put_many([a.data for a in parsed.attachments], [a.sha256 for a in parsed.attachments])
    Attachment.objects.bulk_create(
        [
            Attachment(
                message=message,
                blob=blob,
                position=i,
                filename=_clean(a.filename, 255),
                content_type=_clean(a.content_type, 255),
                size=a.size,
                content_id=_clean(a.content_id or "", 998),
                inline=a.inline,
            )
            for i, (a, blob) in enumerate(zip(parsed.attachments, stored, strict=True))
        ]
    )
    _finish(intake, Intake.Status.PROCESSED, message)
    return Applied(intake.pk, outcome, request.pk, rule)


def _customer(parsed: ParsedMessage) -> Customer | None:
    if not parsed.from_ or not parsed.from_.address:
        return None
    address = parsed.from_.address.lower()[:254]
    name = _clean(parsed.from_.name, 255)
    customer, created = Customer.objects.get_or_create(address=address, defaults={"name": name})
    if not created and name and customer.name != name:
        customer.name = name  # people fix their display names; keep the newest
        customer.save(update_fields=["name", "updated_at"])
    return customer


def _new_request(mailbox: Mailbox, parsed: ParsedMessage, customer: Customer | None, auto_kind: str) -> Request:
    request = Request.objects.create(
        subject=_clean(parsed.subject, 998),
        mailbox=mailbox,
        customer=customer,
        assignee=mailbox.assign_to,
        auto_submitted=auto_kind,
    )
    detail = f"from mailbox {mailbox.name}"
    if mailbox.assign_to_id:
        detail += f", assigned to {mailbox.assign_to.get_username()} by the mailbox's routing"
    RequestEvent.objects.create(request=request, kind="created", detail=detail[:500])
    return request


def _follow_up(request: Request, auto_kind: str) -> None:
    if request.status == Request.Status.CLOSED and not auto_kind:
        # A customer writing again reopens; an out-of-office reply does not.
        request.status = Request.Status.OPEN
        RequestEvent.objects.create(request=request, kind="reopened", detail="the customer wrote again")
    request.save(update_fields=["status", "updated_at"])


def _finish(intake: Intake, status: str, message: Message) -> None:
    intake.status = status
    intake.message = message
    intake.processed_at = timezone.now()
    intake.last_error = ""
    intake.save(update_fields=["status", "message", "processed_at", "last_error"])


def _addr(address) -> dict:
    return {"name": _clean(address.name, 255), "address": _clean(address.address, 254)}


def _clean(value: str, limit: int | None = None) -> str:
    # PostgreSQL refuses NUL in text; long header values must fit their columns.
    value = (value or "").replace("\x00", "")
    return value[:limit] if limit else value
