"""The moves between statuses: the only code that changes Request.status.

    new ──take/assign/reply──▶ open ──send and wait / snooze──▶ pending (waiting on customer)
     │                          ▲  ▲                                │
     │                          │  └──── the customer answers ──────┤
     │                          │  └──── the snooze time is reached ┘
     └──────── close ───────────┴──────▶ closed ──the customer writes again──▶ open (recorded
                                                                               as "reopened by
                                                                               the customer")

Each function changes the (locked) Request in memory and returns the history entry it
calls for as a `Move`, or None when nothing changes; the caller saves the row and writes
the RequestEvent in its own transaction, so a move and its record commit together.
"""

from __future__ import annotations

from dataclasses import dataclass
import threading
import time
from datetime import datetime, tzinfo

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from postdesk.desk import snooze
from postdesk.models import Request, RequestEvent

Status = Request.Status

# Statuses an agent still has to act on, and the ones shown in the working queues.
ACTIVE = (Status.NEW, Status.OPEN)
NOT_CLOSED = (Status.NEW, Status.OPEN, Status.PENDING)


@dataclass(frozen=True)
class Move:
    """A change of status, as the request's history records it."""

    kind: str  # the RequestEvent kind
    detail: str


class Then:
    """What a reply does to the status: the three send buttons."""

    OPEN = "open"  # "Send": the agent still works on it
    PENDING = "pending"  # "Send and wait": waiting on the customer
    CLOSED = "closed"  # "Send and close"

    ALL = (OPEN, PENDING, CLOSED)


def _set(req: Request, status: str) -> str:
    before = req.status
    req.status = status
    if status != Status.PENDING:
        req.snooze_until = None
    return before


def after_assignment(req: Request) -> Move | None:
    """Taken or assigned by a person: a new request is being worked on."""
    if req.status == Status.NEW:
        _set(req, Status.OPEN)
        return Move("status", "open (assigned)")
    return None


def after_reply(req: Request, then: str = Then.OPEN) -> Move | None:
    """A staff reply went out (queued): open, waiting on the customer, or closed."""
    if then not in Then.ALL:
        raise ValueError(f"unknown status after a reply: {then!r}")
    if then == Then.CLOSED:
        return close(req, detail="closed with the reply")
    if then == Then.PENDING:
        return wait(req, until=None, detail="waiting on the customer after the reply")
    if req.status == Status.OPEN:
        return None
    before = _set(req, Status.OPEN)
    return Move("reopened" if before == Status.CLOSED else "status", "open (replied)")


def customer_wrote(req: Request, *, automatic: bool) -> Move | None:
    """The customer wrote again. An automatic message (out of office, bounce) moves nothing:
    an auto-reply to our "waiting on you" must not pretend the customer answered."""
    if automatic:
        return None
    if req.status == Status.CLOSED:
        _set(req, Status.OPEN)
        return Move("reopened", "reopened by the customer")
    if req.status == Status.PENDING:
        _set(req, Status.OPEN)
        return Move("status", "open: the customer answered")
    return None


def close(req: Request, detail: str = "closed") -> Move | None:
    if req.status == Status.CLOSED:
        return None
    _set(req, Status.CLOSED)
    return Move("closed", detail)


def reopen(req: Request) -> Move | None:
    if req.status != Status.CLOSED:
        return None
    _set(req, Status.OPEN)
    return Move("reopened", "reopened")


def wait(req: Request, until: datetime | None, detail: str = "", zone: tzinfo | None = None) -> Move | None:
    """Waiting on the customer; with `until`, snoozed: it comes back by itself then.
    `zone`: the agent's time zone, in which the history says "until 3 Dec 09:00 CET"."""
    if req.status == Status.PENDING and req.snooze_until == until:
        return None
    _set(req, Status.PENDING)
    req.snooze_until = until
    when = f" until {snooze.in_words(until, zone)}" if until else ""
    return Move("pending", detail or f"waiting on the customer{when}")


def wake_due(now: datetime | None = None) -> int:
    """Snoozed requests whose time has come are open again (the worker calls this every
    minute; the queue pages do too, so a desk without a worker wakes them as well).
    Returns how many woke. Each request is moved under its row lock, so two hosts
    waking at once record one history entry."""
    from postdesk.notify import hooks as notify_hooks  # notify reads requests; imported late to keep desk a leaf

    now = now or timezone.now()
    due = Q(status=Status.PENDING, snooze_until__isnull=False, snooze_until__lte=now)
    woken = 0
    for pk in Request.objects.filter(due).values_list("pk", flat=True)[:500]:
        with transaction.atomic():
            req = Request.objects.select_for_update(of=("self",)).filter(due, pk=pk).first()
            if req is None:
                continue  # another host woke it first
            until = snooze.in_words(req.snooze_until)
            _set(req, Status.OPEN)
            req.save(update_fields=["status", "snooze_until", "updated_at"])
            RequestEvent.objects.create(request=req, kind="woke", detail=f"open again: the snooze until {until} ended")
            notify_hooks.woke(req)  # in this transaction: told once, with the move
            woken += 1
    return woken


WAKE_EVERY = 60.0  # seconds: a snooze ends on the minute the agent picked, give or take one


class AtMostEvery:
    """True at most once per `seconds` in this process (threads share it)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last: float | None = None
        self._lock = threading.Lock()

    def due(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if self._last is not None and now - self._last < self.seconds:
                return False
            self._last = now
            return True

    def reset(self) -> None:
        """The next due() is True, as in a fresh process."""
        with self._lock:
            self._last = None


wake_throttle = AtMostEvery(WAKE_EVERY)


def wake_due_now_and_then() -> int | None:
    """wake_due(), at most once a minute in this process: cheap enough for the worker's
    loop and for each queue page (a desk without a worker wakes them too).
    None when it was not time yet."""
    return wake_due() if wake_throttle.due() else None


def record(req: Request, move: Move | None, actor=None) -> None:
    """Write the history entry of a move (inside the caller's transaction)."""
    if move is not None:
        RequestEvent.objects.create(request=req, actor=actor, kind=move.kind, detail=move.detail[:500])
