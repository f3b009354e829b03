"""Process: turn pending intake rows into requests and follow-ups.

claim -> parse -> apply, per message:
  claim   take a lease on pending rows and bump their attempts counter, in a
          committed transaction of its own (SKIP LOCKED on PostgreSQL), so a
          message that kills the worker is known as such the next time
  parse   postdesk.mail.parse on the raw bytes (never raises)
  apply   one transaction (process/apply.py), fenced by the attempts counter
A message that fails MAX_TRIES times in a row, or has crashed workers
MAX_ATTEMPTS times, is quarantined with its reason; the others go on.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from postdesk import crashpoints
from postdesk.leases import dead_local_owners as _dead_local_owners
from postdesk.leases import lease_owner
from postdesk.mail import ParsedMessage, parse
from postdesk.models import Intake
from postdesk.process import parallel
from postdesk.process.apply import Applied, apply_batch, apply_message
from postdesk.store import blobs

log = logging.getLogger("postdesk.process")

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 3  # claims without an outcome (the worker died each time)
MAX_TRIES = 3  # failures in one claim before the message is quarantined
RETRY_DELAYS = (0.0, 0.2, 1.0)
CLAIM_BATCH = 50


@dataclass(frozen=True)
class Quarantined:
    intake_id: int
    reason: str


Outcome = Applied | Quarantined


def claim(mailbox_id: int | None = None, limit: int = CLAIM_BATCH, ids: list[int] | None = None,
          suspects: bool = True) -> list[tuple[int, int]]:
    """Lease up to `limit` pending rows: [(intake id, attempts after the claim)].

    A lease is free when it has run out, or when the worker that holds it ran on
    this host and is gone (a crash, a kill -9): a restart takes over at once
    instead of waiting out the lease.  Other hosts' leases run out by time."""
    now = timezone.now()
    with transaction.atomic():
        pending = Intake.objects.filter(status=Intake.Status.PENDING)
        if mailbox_id is not None:
            pending = pending.filter(mailbox_id=mailbox_id)
        if ids is not None:
            pending = pending.filter(pk__in=ids)
        free = Q(lease_until=None) | Q(lease_until__lt=now)
        dead = _dead_local_owners(pending.filter(lease_until__gte=now))
        if dead:
            free |= Q(lease_owner__in=dead)
        rows = pending.filter(free)
        if connection.features.has_select_for_update_skip_locked:
            rows = rows.select_for_update(skip_locked=True)
        # A row claimed before without an outcome was in hand when a worker died.
        # Such rows go one at a time, so a message that kills the worker counts
        # its own deaths and is quarantined alone, not with its batch.
        picked = list(rows.filter(attempts__gt=0).order_by("id").values_list("id", flat=True)[:1]) if suspects else []
        if not picked and not suspects:
            rows = rows.filter(attempts=0)
        if not picked:
            picked = list(rows.order_by("id").values_list("id", flat=True)[:limit])
        if not picked:
            return []
        Intake.objects.filter(pk__in=picked).update(
            attempts=F("attempts") + 1, lease_until=now + LEASE, lease_owner=lease_owner()
        )
        return list(Intake.objects.filter(pk__in=picked).order_by("id").values_list("id", "attempts"))


def process_one(
    intake_id: int, lease: int, parsed: ParsedMessage | BaseException | None = None, skip_crashpoint: bool = False
) -> Outcome:
    if lease > MAX_ATTEMPTS:
        return quarantine(intake_id, f"the worker stopped while processing this message {lease - 1} times")
    if not skip_crashpoint:
        crashpoints.reached("before-process")
    if parsed is None:
        parsed = _parse_intake(intake_id)
    if isinstance(parsed, BaseException):  # the blob store failed, or the parser's process died
        return _failed(intake_id, parsed)
    last_exc: Exception | None = None
    for delay in RETRY_DELAYS[:MAX_TRIES]:
        time.sleep(delay)
        try:
            return apply_message(intake_id, lease, parsed)
        except crashpoints.CrashInjected:
            raise
        except Exception as exc:  # a bug or a passing database problem: try again, then quarantine
            last_exc = exc
            log.warning("processing intake %s failed: %s", intake_id, exc)
    return _failed(intake_id, last_exc)


def _parse_intake(intake_id: int) -> ParsedMessage | BaseException:
    try:
        return parse(blobs.read(Intake.objects.only("raw_id").get(pk=intake_id).raw_id))
    except Exception as exc:  # parse() itself never raises; reading the blob can
        return exc


def _failed(intake_id: int, exc: BaseException | None) -> Outcome:
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip() if exc else "unknown error"
    return quarantine(intake_id, f"processing failed: {detail}"[:2000])


def quarantine(intake_id: int, reason: str) -> Quarantined:
    with transaction.atomic():
        Intake.objects.filter(pk=intake_id, status=Intake.Status.PENDING).update(
            status=Intake.Status.QUARANTINED, quarantine_reason=reason, lease_until=None, last_error=reason
        )
    log.error("intake %s quarantined: %s", intake_id, reason)
    return Quarantined(intake_id, reason)


class Processor:
    """claim -> parse -> apply, one batch ahead: while the parser pool works on the
    batch just claimed, this process applies the one before (and the pipeline
    fetches the next), so both cores stay busy."""

    def __init__(self, mailbox_id: int | None = None, ids: list[int] | None = None):
        self.mailbox_id, self.ids = mailbox_id, ids
        self._inflight: tuple[list[tuple[int, int]], list] | None = None

    def step(self) -> list[Outcome]:
        """Claim and start parsing what is pending now; apply the batch started before.

        A suspect (a row that was in hand when a worker died) is only claimed
        when nothing else is in hand, and applied before anything else is
        claimed: a death while it is in hand is then its own, so a message is
        quarantined for killing the worker, never for sharing a moment with one
        that did (or with a kill -9 from outside)."""
        previous = self._inflight
        if previous is not None and any(lease > 1 for _, lease in previous[0]):
            self._inflight = None
            return self._apply(previous)
        claimed = claim(self.mailbox_id, ids=self.ids, suspects=previous is None)
        self._inflight = (claimed, parallel.start(claimed)) if claimed else None
        if previous is None:
            return []
        return self._apply(previous)

    def _apply(self, previous) -> list[Outcome]:
        try:
            return list(_process_batch(previous[0], parallel.results(previous[1])))
        except BaseException:
            self.abandon()
            raise

    def drain(self) -> Iterator[Outcome]:
        while True:
            outcomes = self.step()
            yield from outcomes
            if self._inflight is None and not outcomes:
                return

    def abandon(self) -> None:
        """Give back the claim in flight (the pass is ending early): free at once, not in LEASE."""
        if self._inflight is not None:
            ids = [intake_id for intake_id, _ in self._inflight[0]]
            Intake.objects.filter(pk__in=ids, status=Intake.Status.PENDING, lease_owner=lease_owner()).update(
                attempts=F("attempts") - 1, lease_until=None, lease_owner=""
            )
            self._inflight = None


def iter_process(mailbox_id: int | None = None, ids: list[int] | None = None) -> Iterator[Outcome]:
    processor = Processor(mailbox_id, ids)
    try:
        yield from processor.drain()
    finally:
        processor.abandon()


def _process_batch(claimed: list[tuple[int, int]], parsed_results: Iterator) -> Iterator[Outcome]:
    """A batch in one transaction (a savepoint per message); a message that fails
    there is rolled back alone and retried on its own by process_one()."""
    outcomes: dict[int, Outcome] = {}
    ready: list[tuple[int, int, ParsedMessage]] = []
    for (intake_id, lease), parsed in zip(claimed, parsed_results, strict=True):
        if lease > MAX_ATTEMPTS:
            outcomes[intake_id] = process_one(intake_id, lease)
            continue
        crashpoints.reached("before-process")
        if parsed is None:
            parsed = _parse_intake(intake_id)
        if isinstance(parsed, BaseException):
            outcomes[intake_id] = _failed(intake_id, parsed)
            continue
        ready.append((intake_id, lease, parsed))
    for (intake_id, lease, parsed), result in zip(ready, apply_batch(ready), strict=True):
        if isinstance(result, BaseException):
            log.warning("processing intake %s failed in its batch (%s); retrying alone", intake_id, result)
            result = process_one(intake_id, lease, parsed, skip_crashpoint=True)
        outcomes[intake_id] = result
    for intake_id, _ in claimed:
        yield outcomes[intake_id]


def requeue(intake_ids: list[int]) -> int:
    """Quarantined (or stuck) rows back to pending, with a fresh attempts count: `postdesk reprocess`."""
    return Intake.objects.filter(pk__in=intake_ids).exclude(status__in=[Intake.Status.PROCESSED, Intake.Status.DUPLICATE]).update(
        status=Intake.Status.PENDING, attempts=0, lease_until=None, lease_owner="", quarantine_reason=""
    )
