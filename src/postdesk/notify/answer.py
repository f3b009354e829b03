"""A staff member's answer by email to a notification.

A notification's Reply-To is a reply address (reply_address.py) naming one staff
member and one request.  Processing (process/apply.py) asks `take_answer()` about
every message before threading it; a message sent to a reply address is never
customer mail and never opens a request.  It becomes:

- a staff reply to the customer, through outbound.reply.send_reply (so the outbox,
  the threading headers and the history are those of a reply from the web page),
  when the token is good, names an active staff member whose email is the From
  (case-insensitive), and the request the token names is the one the message
  answers; the quoted notification is cut off (mail.split_reply), the signature kept;
- else an internal note "not sent: unverified sender (<why>)" on the request the
  token names (or, when the token is unreadable, on the request the message threads
  to), never a mail to the customer, and no answer to the sender (who may be a forger
  fishing for a reaction).

What this cannot check: that the From is not forged.  A From that matches is all we
see; SPF/DKIM/DMARC alignment would be the mail server's verdict
(Authentication-Results), which we do not read yet.  The token is the real
credential: only someone who received that notification has it, and only for 30 days.

Idempotent: each answer leaves an EmailAnswer row keyed by the mail's fingerprint,
in the same transaction, so the same mail taken twice is a duplicate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from django.contrib.auth import get_user_model
from django.utils import timezone

from postdesk.mail import DELIVERY_HEAD_BYTES, ParsedMessage, split_reply
from postdesk.mail import delivered_to as mail_delivered_to
from postdesk.models import EmailAnswer, Intake, Message, Request, RequestEvent
from postdesk.notify.reply_address import ANSWER_ABOVE, ReplyAddressCheck, TokenStatus, read_reply_address
from postdesk.outbound import compose
from postdesk.outbound.reply import ReplyDraft, ReplyError, add_note, send_reply
from postdesk.process.thread import find_request
from postdesk.store import blobs

log = logging.getLogger("postdesk.notify")


@dataclass(frozen=True)
class Answer:
    """What take_answer() did with a message sent to a reply address.

    outcome: "answered" (a staff reply is queued), "answer-refused" (an internal note),
    "duplicate" (taken before), "skipped" (no request to put it on: quarantined)."""

    outcome: str
    request_id: int | None = None
    message_id: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class Verdict:
    """Whom the answer is from and about, and why it may not be sent ('' = it may)."""

    request: Request | None
    staff: object | None
    why: str
    verified: bool = False  # the sender passed every check, but send_reply refused (why says why)


@dataclass(frozen=True)
class Sent:
    """_send()'s result: the reply queued, or send_reply's reason for refusing it."""

    message: Message | None
    refusal: str = ""


def take_answer(intake: Intake, parsed: ParsedMessage, fp: str, staged: list[Message]) -> Answer | None:
    """None when `parsed` is not sent to a reply address (the caller goes on as for
    customer mail).  Else the answer is handled and `intake` marked, inside the
    caller's transaction."""
    check = read_reply_address([a.address for a in [*parsed.to, *parsed.cc]])
    if not check.found:  # a Bcc, an alias, a forward: the token is only where the server delivered it
        check = read_reply_address(delivered_to(intake))
    if not check.found:
        return None
    earlier = EmailAnswer.objects.filter(fingerprint=fp).first()
    if earlier is not None:
        _finish(intake, Intake.Status.DUPLICATE, earlier.message_id)
        return Answer("duplicate", earlier.request_id, earlier.message_id)
    verdict = judge(check, parsed, staged)
    if verdict.request is None:
        return _quarantine(intake, verdict)
    if not verdict.why:
        sent = _send(verdict, parsed)
        if sent.message is not None:
            return _record(intake, fp, verdict, parsed, sent.message)
        verdict = replace(verdict, why=sent.refusal, verified=True)
    return _record(intake, fp, verdict, parsed, _refuse(verdict, parsed))


def delivered_to(intake: Intake) -> list[str]:
    """Where the delivering server says it put the raw message, every hop (mail.delivered_to)."""
    head = blobs.read_heads([intake.raw_id], DELIVERY_HEAD_BYTES).get(intake.raw_id, b"")
    return mail_delivered_to(head)


def judge(check: ReplyAddressCheck, parsed: ParsedMessage, staged: list[Message]) -> Verdict:
    """The checks, in the order a reader of the note would ask them."""
    threaded = _threaded_request(parsed, staged)
    if check.token is None:  # a bad token names nothing we believe
        return Verdict(threaded, None, "the reply address is not one we made")
    request = Request.objects.select_related("mailbox").filter(pk=check.token.request_id).first() or threaded
    staff = get_user_model().objects.filter(pk=check.token.staff_id).first()
    return Verdict(request, staff, _why_not(check, parsed, staff, threaded))


def _why_not(check: ReplyAddressCheck, parsed: ParsedMessage, staff, threaded: Request | None) -> str:
    sender = parsed.from_.address.lower() if parsed.from_ else ""
    if check.status is TokenStatus.EXPIRED:
        return f"the reply address expired on {check.token.expires.isoformat()}"
    if staff is None or not staff.is_active:  # staff = an active account, as everywhere in Postdesk (web.views._staff)
        return "the reply address is for a staff member who is no longer active"
    if not staff.email or sender != staff.email.strip().lower():
        return f"From {sender or '(none)'} is not the address of {staff.get_username()}"
    if threaded is not None and threaded.pk != check.token.request_id:
        return f"the reply address is for request #{check.token.request_id}, the message answers #{threaded.pk}"
    if not Request.objects.filter(pk=check.token.request_id).exists():
        return f"request #{check.token.request_id} no longer exists"
    if parsed.auto_submitted is not None:
        return f"an automatic message ({parsed.auto_submitted.kind})"
    return ""


def _threaded_request(parsed: ParsedMessage, staged: list[Message]) -> Request | None:
    """The request the message answers by its headers or subject tag, if any (a tag
    refused to this sender still says which request the message is about)."""
    sender = parsed.from_.address.lower() if parsed.from_ else ""
    threading = find_request(parsed, sender, staged)
    if threading.match is not None:
        return threading.match.request
    return threading.refused.request if threading.refused is not None else None


def _send(verdict: Verdict, parsed: ParsedMessage) -> Sent:
    """The staff reply, or why send_reply refused it (no sending account, nothing new
    written...): then the caller notes it, as for a web reply refused."""
    text = new_text(parsed)
    if quotes_left(text):
        return Sent(None, "the answer quotes the notification inside its text: write above the quote, "
                          "or answer from the request page")
    draft = ReplyDraft(text=text, attachments=tuple(_files(parsed)))
    try:
        message = send_reply(verdict.request.pk, draft, verdict.staff)
    except ReplyError as exc:
        return Sent(None, str(exc))
    RequestEvent.objects.create(request=verdict.request, actor=verdict.staff, kind="answered-by-email",
                                detail=f"sent by email from {parsed.from_.address.lower()}"[:500])
    return Sent(message)


def new_text(parsed: ParsedMessage) -> str:
    """What the staff member wrote: the quoted notification cut off, the signature kept.

    Two cuts, because the notification may hold what the customer must not read (an
    internal note that @mentions someone): the ANSWER_ABOVE line ends the text, whatever
    the client did to it; the reply splitter then folds the client's attribution line
    and quote (it sees the marker line, so "On ... wrote: > ##..." is a quote to it),
    and keeps the signature.  When the splitter folds nothing above a quoted marker,
    nothing but the attribution was written: "".
    Runs only for a verified answer (staff mail), so not in the parser pool."""
    lines = parsed.text.splitlines(keepends=True)
    cut = next((i for i, line in enumerate(lines) if _is_marker(line)), len(lines))
    parts = split_reply("".join(lines[:cut + 1]))
    if cut < len(lines) and not parts.has_folded and lines[cut].lstrip().startswith(">"):
        return ""
    return "".join(line for line in parts.reply_text.splitlines(keepends=True) if not _is_marker(line)).strip("\n")


def _is_marker(line: str) -> bool:
    return ANSWER_ABOVE.strip("# ").lower() in line.lower()


def quotes_left(text: str) -> bool:
    """A '>' line left after both cuts: an inline answer between quoted lines, or a client
    whose quoting the splitter did not see.  Sending it could send the notification."""
    return any(line.lstrip().startswith(">") for line in text.splitlines())


def _files(parsed: ParsedMessage) -> list[compose.FileToSend]:
    """Attachments go to the customer as they would from the web form; inline images of
    the staff member's HTML (their signature logo) do not: the reply is sent as text."""
    return [compose.FileToSend(a.filename, a.content_type, a.data) for a in parsed.attachments if not a.inline]


def _refuse(verdict: Verdict, parsed: ParsedMessage) -> Message:
    """The internal note: who wrote, why it was not sent, and the whole text (the
    evidence; nothing cut)."""
    sender = parsed.from_.address if parsed.from_ else "(no From)"
    heading = f"not sent: {verdict.why}" if verdict.verified else f"not sent: unverified sender ({verdict.why})"
    text = f"{heading}\nFrom: {sender}\nSubject: {parsed.subject}\n\n{parsed.text}"
    log.warning("answer by email not sent", extra={"request": verdict.request.pk, "why": verdict.why, "sender": sender})
    return add_note(verdict.request.pk, text, None)


def _record(intake: Intake, fp: str, verdict: Verdict, parsed: ParsedMessage, message: Message) -> Answer:
    outcome = EmailAnswer.Outcome.REFUSED if verdict.why else EmailAnswer.Outcome.SENT
    EmailAnswer.objects.create(
        fingerprint=fp, request=verdict.request, staff=verdict.staff,
        sender_address=(parsed.from_.address.lower() if parsed.from_ else "")[:254],
        outcome=outcome, reason=verdict.why[:500], message=message,
    )
    _finish(intake, Intake.Status.PROCESSED, message.pk)
    return Answer("answered" if not verdict.why else "answer-refused", verdict.request.pk, message.pk, verdict.why)


def _quarantine(intake: Intake, verdict: Verdict) -> Answer:
    """A bad reply address on a message that answers no request: there is nowhere to
    put a note, and it must not open a request.  Quarantined, so an admin sees it."""
    intake.status, intake.processed_at = Intake.Status.QUARANTINED, timezone.now()
    intake.quarantine_reason = f"sent to a reply address, not sent: unverified sender ({verdict.why}); no request to note it on"
    intake.save(update_fields=["status", "processed_at", "quarantine_reason"])
    return Answer("skipped", None, None, verdict.why)


def _finish(intake: Intake, status: str, message_pk: int | None) -> None:
    intake.status, intake.message_id, intake.processed_at, intake.last_error = status, message_pk, timezone.now(), ""
    intake.save(update_fields=["status", "message", "processed_at", "last_error"])
