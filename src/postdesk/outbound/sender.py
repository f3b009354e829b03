"""Delivering the outbox: claim due rows with a lease, send over SMTP, record.

Failures and what they become:
- 4xx replies, refused or dropped connections, timeouts: retried with backoff
  (the row goes back to "queued" with next_attempt_at), up to MAX_ATTEMPTS;
- 5xx replies (the server will never take it): "failed", with the server's reply;
  except where the reply is about the session, not the mail (a refused login,
  a 5xx greeting): those are retried, so that fixing the account sends the mail;
- a crash between the server's "250 OK" and our record: the lease runs out (at
  once if the crashed worker was on this host) and the mail is sent again:
  the same bytes with the same Message-ID, so mail clients and our own intake
  recognise the copy.  SMTP has no way to ask whether a message was taken, so
  at-least-once with a stable identity is the strongest promise possible.

After the "sent" record, a copy may go to the mailbox's Sent folder over IMAP
(`sent_folder`); that copy is best effort and never makes a sent mail fail.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from postdesk import crashpoints, metrics
from postdesk.models import Outgoing
from postdesk.sources import SourceError, save_sent_copy
from postdesk.sources.smtp import SmtpConfigError, account_for, connect
from postdesk import leases
from postdesk.store import blobs
from postdesk.worker import backoff

log = logging.getLogger("postdesk.outbound")

MAX_ATTEMPTS = 12  # with the backoff below: about a day of retrying
LEASE = timedelta(minutes=5)
RETRY_BASE, RETRY_CAP = 30.0, 4 * 3600.0
CLAIM_BATCH = 20


@dataclass(frozen=True)
class SendResult:
    outgoing_id: int
    status: str  # "sent", "retry", "failed"
    detail: str = ""


def send_due(limit: int = CLAIM_BATCH) -> list[SendResult]:
    return [send_one(outgoing_id, attempts) for outgoing_id, attempts in claim(limit)]


def claim(limit: int = CLAIM_BATCH) -> list[tuple[int, int]]:
    """Lease due rows: queued ones whose time has come, and "sending" ones whose
    sender died (lease run out, or its process on this host is gone)."""
    now = timezone.now()
    with transaction.atomic():
        free = leases.free(Outgoing.objects.filter(status=Outgoing.Status.SENDING), now)
        rows = Outgoing.objects.filter(
            Q(status=Outgoing.Status.QUEUED, next_attempt_at__lte=now) | (Q(status=Outgoing.Status.SENDING) & free)
        )
        if connection.features.has_select_for_update_skip_locked:
            rows = rows.select_for_update(skip_locked=True)
        picked = list(rows.order_by("id").values_list("id", flat=True)[:limit])
        if not picked:
            return []
        Outgoing.objects.filter(pk__in=picked).update(
            status=Outgoing.Status.SENDING, attempts=F("attempts") + 1, lease_until=now + LEASE, lease_owner=leases.lease_owner()
        )
        return list(Outgoing.objects.filter(pk__in=picked).order_by("id").values_list("id", "attempts"))


def send_one(outgoing_id: int, attempts: int) -> SendResult:
    out = Outgoing.objects.select_related("mailbox", "message").get(pk=outgoing_id)
    try:
        raw = blobs.read(_raw_id(out))
        crashpoints.reached("before-send")
        client = connect(_account(out))
        try:
            refused = client.sendmail(out.envelope_from, out.recipients, raw)
        finally:
            _quit_quietly(client)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(f"{addr}: {code} {_text(msg)}" for addr, (code, msg) in exc.recipients.items())
        if all(code >= 500 for code in codes):
            return _failed(out, attempts, f"every recipient refused: {detail}", detail)
        return _retry(out, attempts, f"recipients refused for now: {detail}")
    except (smtplib.SMTPAuthenticationError, smtplib.SMTPConnectError, smtplib.SMTPHeloError) as exc:
        # About the account or the server, not this mail: a 535 for a wrong password
        # must not fail every queued mail for good; retrying picks up the fix.
        return _retry(out, attempts, f"the server refused the session: {exc.smtp_code} {_text(exc.smtp_error)}")
    except smtplib.SMTPResponseException as exc:
        reply = f"{exc.smtp_code} {_text(exc.smtp_error)}"
        if exc.smtp_code >= 500:
            return _failed(out, attempts, f"the server refused the mail: {reply}", reply)
        return _retry(out, attempts, f"the server said try later: {reply}")
    except (SmtpConfigError, SourceError, smtplib.SMTPNotSupportedError) as exc:
        # A person must act (settings, a changed key, an expired OAuth grant), or the
        # OAuth provider is down: retrying picks up the fix.
        return _retry(out, attempts, str(exc))
    except (smtplib.SMTPException, OSError) as exc:
        return _retry(out, attempts, f"{type(exc).__name__}: {exc}")
    crashpoints.reached("after-send")
    return _sent(out, attempts, refused, raw)


def _notification(out: Outgoing) -> bool:
    return out.kind == Outgoing.Kind.NOTIFICATION


def _raw_id(out: Outgoing) -> str:
    """A conversation mail's bytes are its Message's; a notification's are its own."""
    return out.raw_id if _notification(out) else out.message.raw_id


def _account(out: Outgoing):
    """A notification without a mailbox goes through the system account (postdesk.notify.account)."""
    if _notification(out):
        from postdesk.notify import account

        return account.smtp_for(out.mailbox)
    return account_for(out.mailbox)


def _log_extra(out: Outgoing, **more) -> dict:
    request_id = out.request_id if _notification(out) else out.message.request_id
    outcome = "notification" if _notification(out) else out.message.kind
    return {"mailbox": out.mailbox.name if out.mailbox else "(notification account)", "request": request_id,
            "outcome": outcome, **more}


def _owned(out: Outgoing, attempts: int):
    """The row, only if no other sender claimed it since (attempts is the fencing token)."""
    return Outgoing.objects.filter(pk=out.pk, status=Outgoing.Status.SENDING, attempts=attempts)


def _sent(out: Outgoing, attempts: int, refused: dict, raw: bytes) -> SendResult:
    note = "; ".join(f"{addr}: {code} {_text(msg)}" for addr, (code, msg) in refused.items())
    recorded = _owned(out, attempts).update(
        status=Outgoing.Status.SENT, sent_at=timezone.now(), lease_until=None, lease_owner="",
        last_error=f"some recipients refused: {note}"[:1000] if note else "", smtp_reply="250 accepted",
    )
    log.info("mail sent", extra=_log_extra(out))
    if recorded and _notification(out):
        metrics.notification_sent(out)
    if recorded and not _notification(out):
        # After the record, never before: a crash here costs the copy, not a second mail.
        copy_to_sent(out, raw)
    return SendResult(out.pk, "sent", note)


def copy_to_sent(out: Outgoing, raw: bytes) -> bool:
    """APPEND what was sent to the mailbox's Sent folder (IMAP only), marked \\Seen,
    creating the folder if needed.  Best effort: a failure is logged and the mail
    stays sent."""
    mailbox = out.mailbox
    folder = mailbox.sent_folder
    if not folder or mailbox.protocol != "imap":
        return False
    try:
        save_sent_copy(mailbox, folder, raw)
    except Exception as exc:
        log.warning("sent mail not copied to folder %s: %s", folder, exc,
                    extra={"mailbox": mailbox.name, "request": out.message.request_id})
        return False
    Outgoing.objects.filter(pk=out.pk).update(copied_to_sent=True)
    return True


def _retry(out: Outgoing, attempts: int, reason: str) -> SendResult:
    if attempts >= MAX_ATTEMPTS:
        return _failed(out, attempts, f"gave up after {attempts} attempts: {reason}", "")
    wait = backoff.delay(attempts, RETRY_BASE, RETRY_CAP)
    _owned(out, attempts).update(
        status=Outgoing.Status.QUEUED, next_attempt_at=timezone.now() + timedelta(seconds=wait),
        lease_until=None, lease_owner="", last_error=reason[:1000],
    )
    log.warning("mail not sent, retrying in %.0f s: %s", wait, reason, extra=_log_extra(out, delay=round(wait)))
    return SendResult(out.pk, "retry", reason)


def _failed(out: Outgoing, attempts: int, reason: str, reply: str) -> SendResult:
    recorded = _owned(out, attempts).update(
        status=Outgoing.Status.FAILED, lease_until=None, lease_owner="", last_error=reason[:1000], smtp_reply=reply[:1000],
    )
    if recorded and _notification(out):
        metrics.NOTIFICATIONS_FAILED.inc()
    log.error("mail failed: %s", reason, extra=_log_extra(out))
    return SendResult(out.pk, "failed", reason)


def _quit_quietly(client) -> None:
    try:
        client.quit()
    except Exception:
        try:
            client.close()
        except Exception:
            pass


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
