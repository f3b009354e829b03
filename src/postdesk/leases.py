"""Leases: one holder at a time for a piece of work, in the database (SQLite too).

A lease is three columns on the row it guards: the holder ("host:pid"), until
when it holds, and a fencing token (a counter bumped by every claim).  The
same rules everywhere:

  claim      one conditional UPDATE: only a free lease is taken, and taking it
             bumps the token, so two claimants can never both win
  free       the lease ran out, or its holder ran on this host and its process
             is gone (a crash, a kill -9): a restart takes over at once instead
             of waiting out the lease; another host's holder only by time
  renew      (heartbeat) fenced by the token: it fails once someone else took
             the lease over, and the late holder learns it must stop
  release    fenced by the token too: a late holder never frees a newer lease

Used by process.claim (intake rows: the token is `attempts`), outbound/sender
(outbox rows: `attempts`), pipeline.fetch_mailbox (one fetcher per mailbox:
Mailbox.fetch_lease_*) and oauth/tokens (one refresher per grant:
OAuthGrant.refresh_lease_*, where the others wait for the holder's result).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import F, Q
from django.utils import timezone


def lease_owner() -> str:
    """This process, as a lease holder: "host:pid"."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}"


def split_owner(owner: str) -> tuple[str, int | None]:
    host, _, pid = owner.rpartition(":")
    return host, int(pid) if pid.isdigit() else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, someone else's
    return True


def dead_local_owners(leased, field: str = "lease_owner") -> list[str]:
    """Holders of these (unexpired) leases that ran on this host and are gone."""
    prefix = socket.gethostname()[:80] + ":"
    dead = []
    for owner in leased.filter(**{f"{field}__startswith": prefix}).values_list(field, flat=True).distinct():
        _, pid = split_owner(owner)
        if pid is not None and pid != os.getpid() and not alive(pid):
            dead.append(owner)
    return dead


def free(leased, now: datetime, owner_field: str = "lease_owner", until_field: str = "lease_until") -> Q:
    """A filter for the rows of `leased` whose lease may be taken now."""
    q = Q(**{f"{until_field}__isnull": True}) | Q(**{f"{until_field}__lt": now})
    dead = dead_local_owners(leased.filter(**{f"{until_field}__gte": now}), owner_field)
    if dead:
        q |= Q(**{f"{owner_field}__in": dead})
    return q


# --- a lease on one row ------------------------------------------------------------------


@dataclass(frozen=True)
class Held:
    """We hold it: `token` fences every later write."""

    token: int
    until: datetime


@dataclass(frozen=True)
class Busy:
    """Someone else holds it, alive (or not yet timed out)."""

    owner: str
    until: datetime | None

    @property
    def host(self) -> str:
        return split_owner(self.owner)[0]

    @property
    def pid(self) -> int | None:
        return split_owner(self.owner)[1]


class LeaseLost(Exception):
    """Our lease was taken over (we stalled past it): stop before changing anything more."""


class RowLease:
    """The lease columns of one row (e.g. Mailbox.fetch_lease_owner/_until/_token)."""

    def __init__(self, model, pk, prefix: str, duration: timedelta):
        self.model, self.pk, self.duration = model, pk, duration
        self.owner_field, self.until_field, self.token_field = f"{prefix}owner", f"{prefix}until", f"{prefix}token"
        self.held: Held | None = None
        self.owner = lease_owner()

    def _row(self):
        return self.model.objects.filter(pk=self.pk)

    def claim(self) -> Held | Busy:
        """Take the lease if it is free: one conditional UPDATE, so two claimants cannot both win."""
        now = timezone.now()
        until = now + self.duration
        taken = self._row().filter(free(self._row(), now, self.owner_field, self.until_field)).update(
            **{self.owner_field: self.owner, self.until_field: until, self.token_field: F(self.token_field) + 1}
        )
        if taken:
            # Read back in the same connection: our UPDATE set it, no one can have changed it
            # since except by taking over, which needs our lease to run out first.
            token = self._row().values_list(self.token_field, flat=True).get()
            self.held = Held(token, until)
            return self.held
        owner, held_until = self._row().values_list(self.owner_field, self.until_field).get()
        return Busy(owner, held_until)

    def renew(self) -> bool:
        """Extend the lease (heartbeat); False if it is no longer ours."""
        if self.held is None:
            return False
        until = timezone.now() + self.duration
        renewed = self._row().filter(**{self.token_field: self.held.token, self.owner_field: self.owner}).update(
            **{self.until_field: until}
        )
        if renewed:
            self.held = Held(self.held.token, until)
        return bool(renewed)

    def check(self) -> None:
        """Renew, or raise LeaseLost: called before every step that changes the source."""
        if not self.renew():
            raise LeaseLost(f"the lease on {self.model.__name__.lower()} {self.pk} was taken over")

    def fence(self) -> dict:
        """Filter arguments for a write that must happen only while we hold the lease:
        `row.filter(**lease.fence()).update(...)` changes nothing once it was taken over."""
        if self.held is None:
            raise LeaseLost(f"no lease held on {self.model.__name__.lower()} {self.pk}")
        return {self.token_field: self.held.token, self.owner_field: self.owner}

    def wait(self, timeout: float, every: float = 0.2, done: Callable[[], bool] | None = None) -> bool:
        """Wait until the lease is free (released, run out, or its local holder died) or
        `done()` says what we waited for has happened; False when `timeout` ran out first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (done is not None and done()) or self._is_free():
                return True
            time.sleep(every)
        return False

    def _is_free(self) -> bool:
        return self._row().filter(free(self._row(), timezone.now(), self.owner_field, self.until_field)).exists()

    def release(self) -> None:
        if self.held is None:
            return
        self._row().filter(**{self.token_field: self.held.token, self.owner_field: self.owner}).update(
            **{self.owner_field: "", self.until_field: None}
        )
        self.held = None


class Heartbeat(threading.Thread):
    """Renews a lease every `every` seconds while a long step runs (a big batch, a
    slow server), from its own thread and its own database connection.  It only
    keeps the lease alive: whether it is still ours is checked by the holder
    itself (RowLease.check) before each step that counts."""

    def __init__(self, lease: RowLease, every: float):
        super().__init__(name=f"lease:{lease.model.__name__.lower()}:{lease.pk}", daemon=True)
        self.lease, self.every = lease, every
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            while not self._halt.wait(self.every):
                try:
                    if not self.lease.renew():
                        return
                except Exception:  # the database is busy or gone: the holder's own check decides
                    pass
        finally:
            connection.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)
