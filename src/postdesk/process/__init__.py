"""Process: turn pending intake rows into requests and follow-ups.

claim -> parse -> apply, per message:
  claim   take a lease on pending rows and bump their attempts counter, in a
          committed transaction of its own (SKIP LOCKED on PostgreSQL), so a
          message that kills the worker is known as such the next time
  parse   in the parser pool (process/parallel.py), under a time limit, in a
          process that is killed when it overruns: postdesk.mail.parse plus
          what the request page will show (postdesk/parsejob.py)
  apply   one transaction (process/apply.py), fenced by the attempts counter
A message whose parse overruns its limit (or whose parser dies) is read once
more, alone, then quarantined ("took longer than 30 s to read"); one that
fails MAX_TRIES times in a row, or has crashed workers MAX_ATTEMPTS times, is
quarantined with its reason; the others go on meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from postdesk import crashpoints
from postdesk.leases import dead_local_owners as _dead_local_owners
from postdesk.leases import lease_owner
from postdesk.mail import ParsedMessage
from postdesk.models import Intake
from postdesk.parsejob import Display
from postdesk.process import parallel
from postdesk.process.apply import Applied, apply_batch, apply_message
from postdesk.store import blobs

log = logging.getLogger("postdesk.process")

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 3  # claims without an outcome (the worker died each time)
MAX_TRIES = 3  # failures in one claim before the message is quarantined
RETRY_DELAYS = (0.0, 0.2, 1.0)
CLAIM_BATCH = 50
GRACE = 0.5  # seconds a step waits for the parses it started before
# Messages are applied in the order they were stored (a reply after the message it
# answers, so it threads), except behind a parse running longer than this: the
# rest go ahead of it.  Far above a large message's parse, far below the limit.
STRAGGLER = 5.0


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
    _give_back_leftovers()
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
    intake_id: int, lease: int, parsed: ParsedMessage | None = None, display: Display | None = None,
    skip_crashpoint: bool = False,
) -> Outcome:
    """Apply one parsed message alone (after its batch failed), with retries; quarantined
    when it keeps failing.  A row past MAX_ATTEMPTS is quarantined without more work."""
    if lease > MAX_ATTEMPTS:
        return quarantine(intake_id, f"the worker stopped while processing this message {lease - 1} times")
    if not skip_crashpoint:
        crashpoints.reached("before-process")
    last_exc: Exception | None = None
    for delay in RETRY_DELAYS[:MAX_TRIES]:
        time.sleep(delay)
        try:
            return apply_message(intake_id, lease, parsed, display)
        except crashpoints.CrashInjected:
            raise
        except Exception as exc:  # a bug or a passing database problem: try again, then quarantine
            if _ours(exc):
                raise  # the database or the disk, not this message: everything in hand is given back
            last_exc = exc
            log.warning("processing intake %s failed: %s", intake_id, exc)
    return _failed(intake_id, last_exc)


def _ours(exc: BaseException) -> bool:
    """The database failing (locked, gone) or the disk full: nobody's message, so
    no message is quarantined for it; the loop backs off and tries again."""
    return isinstance(exc, OperationalError) or blobs.disk_full(exc) is not None


def _failed(intake_id: int, exc: BaseException | str | None) -> Outcome:
    if isinstance(exc, str):
        detail = exc
    else:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip() if exc else "unknown error"
    return quarantine(intake_id, f"processing failed: {detail}"[:2000])


def quarantine(intake_id: int, reason: str) -> Quarantined:
    with transaction.atomic():
        Intake.objects.filter(pk=intake_id, status=Intake.Status.PENDING).update(
            status=Intake.Status.QUARANTINED, quarantine_reason=reason, lease_until=None, last_error=reason
        )
    log.error("intake %s quarantined: %s", intake_id, reason)
    return Quarantined(intake_id, reason)


# --- the processor ---------------------------------------------------------------------


@dataclass
class _Held:
    """A claimed row this processor has not settled yet."""

    lease: int  # attempts after our claim: the fencing token
    limit: float | None  # seconds its parse may take (None: no limit)
    lease_until: datetime
    ticket: int | None = None  # its job in the parser pool; None once the outcome is in
    since: float = 0.0  # time.monotonic() when its job was submitted
    parsed: parallel.Parsed | None = None  # its parse, waiting for those stored before it
    tries: int = 1  # parses started in this claim: an overrun or a death is retried once, alone


class Processor:
    """claim -> parse (in the parser pool) -> apply, without waiting on any one message.

    Each step claims more rows while the pool is not full, waits a moment for
    the parses started before, and applies those that finished, together.  A
    message still being read stays in the pool and is applied (or counted as
    timed out) by a later step, while the rest of its batch and mail from other
    mailboxes go on.  Claims are renewed while held, so a lease always outlasts
    the parse it covers."""

    def __init__(self, mailbox_id: int | None = None, ids: list[int] | None = None,
                 pool: parallel.ParserPool | None = None):
        self.mailbox_id, self.ids = mailbox_id, ids
        self._pool = pool
        self._held: dict[int, _Held] = {}

    @property
    def pool(self) -> parallel.ParserPool:
        if self._pool is None:
            self._pool = parallel.shared()
        return self._pool

    def held(self) -> list[int]:
        """The intake ids in hand, claimed and not settled (tests)."""
        return sorted(self._held)

    def tickets(self) -> dict[int, int]:
        """intake id -> its job in the parser pool, for those being read now (tests)."""
        return {intake_id: h.ticket for intake_id, h in self._held.items() if h.ticket is not None}

    def step(self) -> list[Outcome]:
        """Claim and start parsing what is pending; apply what finished parsing.

        A suspect (a row that was in hand when a worker died) is only claimed
        when nothing else is in hand, and settled before anything else is
        claimed: a death while it is in hand is then its own, so a message is
        quarantined for killing the worker, never for sharing a moment with one
        that did (or with a kill -9 from outside).

        Whatever goes wrong here (the database locked mid-batch, a crash point)
        gives back every row in hand at once: no waiting out the lease."""
        try:
            return self._step()
        except BaseException:
            self.abandon()
            raise

    def _step(self) -> list[Outcome]:
        started = [h.ticket for h in self._held.values() if h.ticket is not None]
        outcomes = [] if self._holds_suspect() else self._claim_more()
        if not started:
            return outcomes
        finished = self.pool.wait(started, timeout=GRACE, every=True)
        self._renew_leases()
        return outcomes + self._settle(finished)

    def drain(self) -> Iterator[Outcome]:
        while True:
            outcomes = self.step()
            yield from outcomes
            if not self._held and not outcomes:
                return

    def abandon(self) -> None:
        """Give back every row in hand (the pass is ending early, or failed): free at once, not in LEASE."""
        if not self._held:
            return
        held, self._held = self._held, {}
        if self._pool is not None:
            self._pool.cancel([h.ticket for h in held.values() if h.ticket is not None])
        _give_back({intake_id: h.lease for intake_id, h in held.items()})

    # --- the parts of a step ---

    def _holds_suspect(self) -> bool:
        return any(h.lease > 1 for h in self._held.values())

    def _claim_more(self) -> list[Outcome]:
        in_pool = sum(1 for h in self._held.values() if h.ticket is not None)
        if in_pool >= 2 * CLAIM_BATCH:  # one batch being read, one being claimed
            return []
        self.pool.wait_ready()  # a kill -9 meanwhile must not count against rows we would hold
        claimed = claim(self.mailbox_id, ids=self.ids, suspects=not self._held)
        if not claimed:
            return []
        rows = {pk: (raw_id, limit) for pk, raw_id, limit in
                Intake.objects.filter(pk__in=[i for i, _ in claimed]).values_list("pk", "raw_id", "parse_timeout")}
        outcomes: list[Outcome] = []
        raws = _read_raws([raw_id for raw_id, _ in rows.values()])
        until = timezone.now() + LEASE
        for intake_id, lease in claimed:
            raw_id, limit = rows[intake_id]
            if lease > MAX_ATTEMPTS:
                outcomes.append(process_one(intake_id, lease))
                continue
            raw = raws.get(raw_id)
            if isinstance(raw, BaseException) or raw is None:
                outcomes.append(_failed(intake_id, raw if raw is not None else "the raw message is missing"))
                continue
            held = _Held(lease, limit or parallel.default_timeout(), until, since=time.monotonic())
            held.ticket = self.pool.submit("parse", raw, held.limit)
            self._held[intake_id] = held
        return outcomes

    def _settle(self, finished: dict) -> list[Outcome]:
        """Apply the parsed messages together; retry or quarantine the ones whose parse
        overran or whose parser died."""
        by_ticket = {h.ticket: intake_id for intake_id, h in self._held.items() if h.ticket is not None}
        outcomes: list[Outcome] = []
        for ticket, result in sorted(finished.items()):
            intake_id = by_ticket[ticket]
            held = self._held[intake_id]
            held.ticket = None
            if isinstance(result, parallel.Parsed):
                held.parsed = result
                continue
            if isinstance(result, parallel.TimedOut):
                Intake.objects.filter(pk=intake_id).update(parse_timeouts=F("parse_timeouts") + 1)
            if isinstance(result, (parallel.TimedOut, parallel.Died)) and held.tries < 2:
                retried = self._retry_alone(intake_id, held, result)
                if retried is None:
                    continue
                outcomes.append(retried)
            else:
                outcomes.append(quarantine(intake_id, _unreadable(result)))
            del self._held[intake_id]
        ready = self._in_order()
        # Still held while applied: if the batch fails (the database locked), abandon()
        # gives them back with the rest.
        applied = list(_process_batch(ready))
        for intake_id, *_ in ready:
            del self._held[intake_id]
        return outcomes + applied

    def _in_order(self) -> list[tuple[int, int, ParsedMessage, Display]]:
        """The parsed messages that may be applied now: in the order they were stored, up
        to one still being read (a reply waits for the message it answers), past it once
        it has been read for longer than STRAGGLER or is read again after an overrun
        (then it is slow, and holds no one)."""
        ready = []
        now = time.monotonic()
        for intake_id in sorted(self._held):
            held = self._held[intake_id]
            if held.parsed is not None:
                ready.append((intake_id, held.lease, held.parsed.message, held.parsed.display))
            elif held.tries == 1 and now - held.since < STRAGGLER:
                break
        return ready

    def _retry_alone(self, intake_id: int, held: _Held, why) -> Outcome | None:
        """Once more, in a parser of its own and ahead of the queue: nothing else waits on it,
        and a machine busy for a moment does not cost the message its import."""
        log.warning("intake %s: %s; reading it once more, alone", intake_id, _unreadable(why))
        held.tries += 1
        raw = _read_raws([Intake.objects.only("raw_id").get(pk=intake_id).raw_id]).popitem()[1]
        if isinstance(raw, BaseException):
            return _failed(intake_id, raw)
        held.ticket = self.pool.submit("parse", raw, held.limit, first=True)
        return None

    def _renew_leases(self) -> None:
        """Keep each claim longer than the parse it covers (a re-run may allow 600 s)."""
        now = timezone.now()
        due = [i for i, h in self._held.items() if h.lease_until < now + LEASE / 2 + timedelta(seconds=h.limit or 0)]
        if not due:
            return
        longest = max(self._held[i].limit or 0 for i in due)
        until = now + LEASE + timedelta(seconds=longest)
        Intake.objects.filter(pk__in=due, status=Intake.Status.PENDING, lease_owner=lease_owner()).update(lease_until=until)
        for i in due:
            self._held[i].lease_until = until


def _unreadable(result) -> str:
    """The quarantine reason of a message whose parse gave no message."""
    if isinstance(result, parallel.TimedOut):
        return f"took longer than {parallel.describe_limit(result.limit)} to read"
    if isinstance(result, parallel.Died):
        return f"the parser's process died reading it ({result.detail})"
    return f"processing failed: {result.detail}"[:2000]


def _read_raws(raw_ids: list[str]) -> dict[str, bytes | BaseException]:
    """The raw bytes of a claim; a blob that cannot be read costs its message only."""
    try:
        return dict(blobs.read_many(raw_ids))
    except OperationalError:
        raise
    except Exception:  # read them one by one, so only the missing one fails
        found: dict[str, bytes | BaseException] = {}
        for raw_id in raw_ids:
            try:
                found[raw_id] = blobs.read(raw_id)
            except OperationalError:
                raise
            except Exception as exc:
                found[raw_id] = exc
        return found


# Rows a failed give-back could not free (the database was still locked): freed
# by the next claim in this process, before it claims anything.
_leftovers: dict[int, int] = {}
_leftovers_lock = threading.Lock()


def _give_back(rows: dict[int, int]) -> None:
    """intake id -> the attempts we claimed it with: undo those claims (fenced: a row
    someone else claimed since is theirs)."""
    by_lease: dict[int, list[int]] = {}
    for intake_id, lease in rows.items():
        by_lease.setdefault(lease, []).append(intake_id)
    try:
        for lease, ids in by_lease.items():
            Intake.objects.filter(pk__in=ids, status=Intake.Status.PENDING, lease_owner=lease_owner(), attempts=lease).update(
                attempts=F("attempts") - 1, lease_until=None, lease_owner=""
            )
    except Exception as exc:  # the database is still unavailable: the next claim tries again
        log.warning("could not give back %d claimed messages yet (%s)", len(rows), exc)
        with _leftovers_lock:
            _leftovers.update(rows)


def _give_back_leftovers() -> None:
    with _leftovers_lock:
        rows = dict(_leftovers)
        _leftovers.clear()
    if rows:
        _give_back(rows)


def iter_process(mailbox_id: int | None = None, ids: list[int] | None = None) -> Iterator[Outcome]:
    processor = Processor(mailbox_id, ids)
    try:
        yield from processor.drain()
    finally:
        processor.abandon()


def _process_batch(ready: list[tuple[int, int, ParsedMessage, Display]]) -> Iterator[Outcome]:
    """A batch in one transaction; a message that fails there is retried on its own by
    process_one().  The database failing (locked, gone) is nobody's message: raised."""
    for _ in ready:
        crashpoints.reached("before-process")
    items = [(intake_id, lease, parsed) for intake_id, lease, parsed, _ in ready]
    displays = {intake_id: display for intake_id, _, _, display in ready}
    for (intake_id, lease, parsed, display), result in zip(ready, apply_batch(items, displays=displays), strict=True):
        if isinstance(result, BaseException) and _ours(result):
            raise result
        if isinstance(result, BaseException):
            log.warning("processing intake %s failed in its batch (%s); retrying alone", intake_id, result)
            result = process_one(intake_id, lease, parsed, display, skip_crashpoint=True)
        yield result


def requeue(intake_ids: list[int], parse_timeout: int | None = None) -> int:
    """Quarantined (or stuck) rows back to pending, with a fresh attempts count: `postdesk reprocess`.

    `parse_timeout` (seconds) replaces POSTDESK_PARSE_TIMEOUT for these messages
    (a message that took too long to read, re-run with a longer limit); None: the default."""
    # Never a row left at the source as too large: it holds only the header, and
    # parsing that would make a request of half a message (quarantine.release_left).
    rows = Intake.objects.filter(pk__in=intake_ids, left_at_source=False)
    return rows.exclude(status__in=[Intake.Status.PROCESSED, Intake.Status.DUPLICATE]).update(
        status=Intake.Status.PENDING, attempts=0, lease_until=None, lease_owner="", quarantine_reason="",
        parse_timeout=parse_timeout,
    )
