"""Apply: one transaction writes the request or follow-up, its attachments, and
marks the intake row processed.  Either all of it is there, or none of it."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from postdesk import crashpoints
from postdesk.desk import search
from postdesk.desk import status as request_status
from postdesk.mail import ParsedMessage, fingerprint
from postdesk.notify import answer
from postdesk.models import (
    Attachment,
    Customer,
    Intake,
    Mailbox,
    Message,
    Request,
    RequestEvent,
)
from postdesk.notify import hooks as notify_hooks
from postdesk.outbound import acknowledge
from postdesk.parsejob import Display
from postdesk.process.thread import TagRefused, ThreadMatch, find_request, reply_to_trusted
from postdesk.store import blobs


@dataclass(frozen=True)
class Applied:
    intake_id: int
    outcome: str  # "created", "threaded", "duplicate", "skipped" (already done elsewhere), or for an
    # answer by email to a notification (notify.answer): "answered", "answer-refused"
    request_number: int | None = None
    rule: str = ""


def apply_message(intake_id: int, lease: int, parsed: ParsedMessage, display: Display | None = None) -> Applied:
    """Write what `parsed` means.  `lease` is the attempts count this worker claimed
    the row with: if another worker has claimed it since, we must not commit."""
    try:
        result = apply_batch([(intake_id, lease, parsed)], raise_errors=True,
                             displays={intake_id: display} if display is not None else None)[0]
        assert isinstance(result, Applied)
        return result
    except IntegrityError:
        # Another worker stored the same message (same fingerprint) a moment ago.
        raw_id = Intake.objects.filter(pk=intake_id).values_list("raw_id", flat=True).first() or ""
        existing = Message.objects.filter(fingerprint=fingerprint(parsed, raw_id)).first()
        if existing is None:
            raise
        with transaction.atomic():
            intake = Intake.objects.select_for_update().get(pk=intake_id)
            if intake.status == Intake.Status.PENDING:
                _finish(intake, Intake.Status.DUPLICATE, existing)
        return Applied(intake_id, "duplicate", existing.request_id)


def apply_batch(items: list[tuple[int, int, ParsedMessage]], raise_errors: bool = False,
                displays: dict[int, Display] | None = None) -> list[Applied | Exception]:
    """apply_message() for a batch in one transaction: one commit for the batch
    instead of one per message, and the lookups every message needs done once
    for all.  Failures are rare, so no savepoint per message: if any message
    fails, the whole batch rolls back and every result is that exception; the
    caller then applies each message alone (process.process_one).  `displays`: what
    the page shows of each message (by intake id), computed by the parser pool."""
    if not items:
        return []
    try:
        with transaction.atomic():
            batch = _Batch(items, displays or {})
            for (intake_id, lease, parsed), fp in zip(items, batch.fingerprints, strict=True):
                batch.plan(intake_id, lease, parsed, fp)
            results: list[Applied | Exception] = batch.write()
        return results
    except crashpoints.CrashInjected:
        raise
    except Exception as exc:  # retried message by message by the caller
        if raise_errors:
            raise
        return [exc] * len(items)


class _Batch:
    """What every message of a batch needs, read once inside the batch's transaction."""

    def __init__(self, items: list[tuple[int, int, ParsedMessage]], displays: dict[int, Display]):
        self.displays = displays
        ids = [intake_id for intake_id, _, _ in items]
        self.intakes = {
            i.pk: i
            for i in Intake.objects.select_for_update(of=("self",)).select_related("mailbox", "mailbox__assign_to").filter(pk__in=ids)
        }
        # A row gone from intakes is skipped by plan(); its fingerprint is never used.
        self.fingerprints = [fingerprint(parsed, getattr(self.intakes.get(i), "raw_id", "")) for i, _, parsed in items]
        self.known = {
            fp: (pk, request_id)
            for fp, pk, request_id in Message.objects.filter(fingerprint__in=self.fingerprints).values_list(
                "fingerprint", "pk", "request_id"
            )
        }
        self.customers = _customers([parsed for _, _, parsed in items])
        all_attachments = [a for _, _, parsed in items for a in parsed.attachments]
        # Before the commit, as every blob: files for the large ones, rows for all.
        # Not synced: attachments are derived from the raw message, which is; a file a
        # crash left torn is re-made from it on first read (store/attachments.py).
        blobs.put_many([a.data for a in all_attachments], [a.sha256 for a in all_attachments], durable=False)
        self._marks: dict[int, Intake] = {}
        self._events: dict[int, RequestEvent] = {}
        self._results: list = []  # one thunk per message, evaluated once the rows have keys
        self._staged: list[tuple[Intake, ParsedMessage, Message, str]] = []
        self._staged_by_fp: dict[str, Message] = {}
        self._messages: list[Message] = []  # staged so far: their senders and recipients take part already
        self._duplicates: list[tuple[Intake, Message]] = []
        self._new_requests: list[Request] = []
        self._in_batch: dict[str, Request] = {}  # Message-ID -> request, for replies in the same batch
        self._mentions: list[tuple[Request, TagRefused]] = []  # (new request, the tagged one it may not join)

    def plan(self, intake_id: int, lease: int, parsed: ParsedMessage, fp: str) -> None:
        """Decide what this message is (skipped, duplicate, follow-up, new request) and
        stage its rows; write() inserts the staged rows of the batch together."""
        intake = self.intakes.get(intake_id)
        if intake is None or intake.status != Intake.Status.PENDING or intake.attempts != lease:
            self._results.append(lambda: Applied(intake_id, "skipped"))
            return
        if fp in self.known:
            message_pk, request_id = self.known[fp]
            if message_pk is None:  # the same message twice in this batch
                staged = self._staged_by_fp[fp]
                self._duplicates.append((intake, staged))
                self._results.append(lambda: Applied(intake_id, "duplicate", staged.request.pk))
                return
            self._mark(intake, Intake.Status.DUPLICATE, message_pk)
            self._results.append(lambda: Applied(intake_id, "duplicate", request_id))
            return
        # An answer by email to a notification is staff mail, never a customer message:
        # notify.answer sends it as a staff reply or notes it, and marks the intake.
        if (answered := answer.take_answer(intake, parsed, fp, self._messages)) is not None:
            self._results.append(lambda: Applied(intake_id, answered.outcome, answered.request_id))
            return
        message, outcome, rule, refused = _stage(
            intake, parsed, fp, self.customers, self._in_batch, self._messages, self.displays.get(intake_id)
        )
        crashpoints.reached("inside-process")
        self.known[fp] = (None, None)
        self._staged_by_fp[fp] = message
        if message.message_id:
            self._in_batch[message.message_id] = message.request
        if outcome == "created":
            self._new_requests.append(message.request)
            if refused is not None:
                self._mentions.append((message.request, refused))
        self._staged.append((intake, parsed, message, outcome))
        self._messages.append(message)
        self._results.append(lambda: Applied(intake_id, outcome, message.request.pk, rule))

    def write(self) -> list[Applied]:
        """The batch's rows, one INSERT per table: requests, messages, attachments,
        history; then the intake marks."""
        Request.objects.bulk_create(self._new_requests)
        self._write_mentions()  # the new requests have their keys now
        messages = [message for _, _, message, _ in self._staged]
        for message in messages:
            message.request = message.request  # now saved: sets request_id
        Message.objects.bulk_create(messages)
        Attachment.objects.bulk_create(
            [
                Attachment(
                    message=message,
                    blob_id=a.sha256,
                    position=i,
                    filename=_clean(a.filename, 255),
                    content_type=_clean(a.content_type, 255),
                    size=a.size,
                    content_id=_clean(a.content_id or "", 998),
                    inline=a.inline,
                )
                for _, parsed, message, _ in self._staged
                for i, a in enumerate(parsed.attachments)
            ]
        )
        for intake, _, message, outcome in self._staged:
            self._mark(intake, Intake.Status.PROCESSED, message.pk)
            if outcome == "created":
                self._events[intake.pk] = _created_event(message.request.pk, intake.mailbox)
        for intake, message in self._duplicates:
            self._mark(intake, Intake.Status.DUPLICATE, message.pk)
        if self._marks:
            _mark_intakes(list(self._marks.values()))
        events = [*self._events.values(), *self._mention_events()]  # "created" first, then why
        if events:
            RequestEvent.objects.bulk_create(events)
        # In this transaction: a new request and its acknowledgement commit together.
        acknowledge.plan([(intake, parsed, message) for intake, parsed, message, outcome in self._staged if outcome == "created"])
        notify_hooks.arrivals(self._staged)  # and the staff who hear of it, in the same transaction
        search.index_requests({message.request_id for message in messages})  # found by search once committed
        return [result() for result in self._results]

    def _write_mentions(self) -> None:
        """A refused subject tag: the new request mentions the tagged one (the page
        links them both ways).  In the batch's transaction, as the requests are."""
        if self._mentions:
            Request.mentions.through.objects.bulk_create(
                [Request.mentions.through(from_request_id=new.pk, to_request_id=tagged.request.pk) for new, tagged in self._mentions],
                ignore_conflicts=True,
            )

    def _mention_events(self) -> list[RequestEvent]:
        """Both histories say why the message did not join: "subject tag [PD-12] ignored: ..."."""
        return [
            event
            for new, tagged in self._mentions
            for event in (
                RequestEvent(request_id=new.pk, kind="mentions", detail=f"#{tagged.request.pk} ({tagged.detail})"[:500]),
                RequestEvent(request_id=tagged.request.pk, kind="mentioned",
                             detail=f"by #{new.pk}, a request of its own ({tagged.detail})"[:500]),
            )
        ]

    def _mark(self, intake: Intake, status: str, message_pk: int) -> None:
        intake.status, intake.message_id, intake.processed_at, intake.last_error = status, message_pk, timezone.now(), ""
        self._marks[intake.pk] = intake


def _mark_intakes(intakes: list[Intake]) -> None:
    """UPDATE ... SET message_id = CASE id WHEN .. THEN .. END: one statement for the
    batch (Django's bulk_update builds the same with far more overhead)."""
    table = connection.ops.quote_name(Intake._meta.db_table)
    cases = " ".join("WHEN %s THEN %s" for _ in intakes)
    statuses = " ".join("WHEN %s THEN %s" for _ in intakes)
    sql = (
        f"UPDATE {table} SET message_id = CASE id {cases} END, status = CASE id {statuses} END, "
        f"processed_at = %s, last_error = '' WHERE id IN ({', '.join('%s' for _ in intakes)})"
    )
    params: list = []
    for intake in intakes:
        params += [intake.pk, intake.message_id]
    for intake in intakes:
        params += [intake.pk, intake.status]
    params.append(timezone.now())
    params += [intake.pk for intake in intakes]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _created_event(request_id: int, mailbox: Mailbox) -> RequestEvent:
    detail = f"from mailbox {mailbox.name}"
    if mailbox.assign_to_id:
        detail += f", assigned to {mailbox.assign_to.get_username()} by the mailbox's routing"
    return RequestEvent(request_id=request_id, kind="created", detail=detail[:500])


def _stage(
    intake: Intake, parsed: ParsedMessage, fp: str, customers: dict, in_batch: dict[str, Request], staged: list[Message],
    display: Display | None = None,
) -> tuple[Message, str, str, TagRefused | None]:
    """The unsaved Message (with its request, new or found), how it was threaded, and a
    subject tag it named but may not join by (the new request then mentions that one).
    `staged`: the batch's messages before this one, which count as taking part."""
    mailbox = intake.mailbox
    sender = (parsed.from_.address.lower() if parsed.from_ else "")[:254]
    customer = customers.get(sender)
    if customer is not None and parsed.from_ and parsed.from_.name and customer.name != _clean(parsed.from_.name, 255):
        customer.name = _clean(parsed.from_.name, 255)  # people fix their display names; keep the newest
        customer.save(update_fields=["name", "updated_at"])
        search.index_customer(customer.pk)  # their requests are found by the new name
    auto_kind = parsed.auto_submitted.kind if parsed.auto_submitted else ""
    request, rule = _in_batch_thread(parsed, in_batch)
    match = ThreadMatch(request, rule) if request is not None else None
    refused = None
    if request is None:
        threading = find_request(parsed, sender, staged)
        match, refused = threading.match, threading.refused
        if match is not None:
            request, rule = match.request, match.rule
            _follow_up(request, auto_kind)
    if request is None:
        request = _new_request(mailbox, parsed, customer, auto_kind)
        outcome = "created"
    else:
        outcome = "threaded"
    message = Message(
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
        thread_rule=rule or "created",
        reply_to_trusted=reply_to_trusted(parsed, sender, match, staged),
        **_display_fields(display),
    )
    return message, outcome, rule, refused


def _display_fields(display: Display | None) -> dict:
    """What the request page shows, computed with the parse in the parser pool (under
    its time limit), stored so that no view runs it again.  None (not computed):
    left empty, and the page computes it once (web/views.py)."""
    if display is None:
        return {}
    return {
        "text_parts": {k: _clean(v) for k, v in display.text_parts.items()},
        "html_new": _clean(display.html_new) if display.html_new is not None else None,
        "remote_images": display.remote_images,
    }


def _in_batch_thread(parsed: ParsedMessage, in_batch: dict[str, Request]) -> tuple[Request | None, str]:
    """A reply to a message staged earlier in this batch (not yet in the database)."""
    if not in_batch:
        return None, ""
    if parsed.in_reply_to and parsed.in_reply_to in in_batch:
        return in_batch[parsed.in_reply_to], "in-reply-to"
    for reference in reversed(parsed.references):
        if reference in in_batch:
            return in_batch[reference], "references"
    auto = parsed.auto_submitted
    if auto and auto.kind == "bounce" and auto.original_message_id in in_batch:
        return in_batch[auto.original_message_id], "bounce"
    return None, ""


def _customers(messages: list[ParsedMessage]) -> dict[str, Customer]:
    """The customers (by lower-case address) of a batch's senders, created where new."""
    names = {}
    for parsed in messages:
        if parsed.from_ and parsed.from_.address:
            names.setdefault(parsed.from_.address.lower()[:254], _clean(parsed.from_.name, 255))
    if not names:
        return {}
    found = {c.address: c for c in Customer.objects.filter(address__in=names)}
    missing = [Customer(address=a, name=n) for a, n in names.items() if a not in found]
    if missing:
        # ignore_conflicts: another worker may add the same customer meanwhile.
        Customer.objects.bulk_create(missing, ignore_conflicts=True)
        found.update({c.address: c for c in Customer.objects.filter(address__in=[c.address for c in missing])})
    return found


def _new_request(mailbox: Mailbox, parsed: ParsedMessage, customer: Customer | None, auto_kind: str) -> Request:
    """Unsaved: the batch inserts its new requests together."""
    now = timezone.now()
    return Request(
        subject=_clean(parsed.subject, 998),
        mailbox=mailbox,
        customer=customer,
        assignee=mailbox.assign_to,
        auto_submitted=auto_kind,
        created_at=now,
        updated_at=now,
    )


def _follow_up(request: Request, auto_kind: str) -> None:
    # A customer writing again reopens a closed request and ends a wait; an
    # out-of-office reply does neither (desk.status.customer_wrote).  The status is
    # read again under the row lock: threading read the request unlocked, and saving
    # that copy would undo an agent's Close or Waiting made in the meantime.
    locked = Request.objects.select_for_update(of=("self",)).get(pk=request.pk)
    request_status.record(locked, request_status.customer_wrote(locked, automatic=bool(auto_kind)))
    locked.save(update_fields=["status", "snooze_until", "updated_at"])  # updated_at: the queues' "last activity"
    request.status, request.snooze_until, request.updated_at = locked.status, locked.snooze_until, locked.updated_at


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
