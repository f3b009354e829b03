"""One fetcher per mailbox: the fetch lease (postdesk.leases on Mailbox.fetch_lease_*).

In-process, on Maildir mailboxes (the lease is the database's business, not
the server's): who wins a claim, who may take over (a dead local pid at once,
another host only when the lease ran out), a late holder that must stop, and
what `fetch` says about a mailbox someone else is fetching.  The same against
Dovecot with real concurrent processes is in tests/pipeline/test_fetchers.py.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from postdesk import leases, pipeline
from postdesk.models import Intake, Mailbox, Outgoing
from postdesk.sources import open_source as real_open_source
from tests.support.mail import make_message, maildir_deliver, maildir_files

pytestmark = pytest.mark.django_db(transaction=True)

HOST = socket.gethostname()[:80]


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"


def maildir_mailbox(tmp_path, name: str = "support", after: str = "keep", messages: int = 3) -> Mailbox:
    path = tmp_path / "maildirs" / name
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    for n in range(messages):
        maildir_deliver(path, make_message(subject=f"{name} message {n}"))
    return Mailbox.objects.create(name=name, protocol="maildir", path=str(path), after_import=after)


def fetch_lease(mailbox: Mailbox) -> leases.RowLease:
    return leases.RowLease(Mailbox, mailbox.pk, "fetch_lease_", pipeline.FETCH_LEASE)


def hold(mailbox: Mailbox, owner: str, minutes: float = 2) -> None:
    """The lease as another fetcher left it."""
    Mailbox.objects.filter(pk=mailbox.pk).update(fetch_lease_owner=owner, fetch_lease_token=41,
                                                 fetch_lease_until=timezone.now() + timedelta(minutes=minutes))


def dead_pid() -> int:
    """The pid of a process of ours that was killed with SIGKILL (and reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    proc.kill()
    proc.wait()
    return proc.pid


# =========================================================================== the lease itself


def test_a_claim_bumps_the_token_and_a_second_claimant_is_told_who_holds_it(tmp_path):
    mailbox = maildir_mailbox(tmp_path, messages=0)
    first, second = fetch_lease(mailbox), fetch_lease(mailbox)
    held = first.claim()
    assert isinstance(held, leases.Held) and held.token == 1
    busy = second.claim()  # the same pid, another fetcher: alive, so busy
    assert isinstance(busy, leases.Busy)
    assert (busy.host, busy.pid) == (HOST, os.getpid())
    first.release()
    again = second.claim()
    assert isinstance(again, leases.Held) and again.token == 2


def test_a_dead_local_holder_is_taken_over_at_once(tmp_path):
    mailbox = maildir_mailbox(tmp_path, messages=0)
    hold(mailbox, f"{HOST}:{dead_pid()}", minutes=60)
    held = fetch_lease(mailbox).claim()
    assert isinstance(held, leases.Held) and held.token == 42


def test_another_hosts_holder_is_waited_for_until_its_lease_runs_out(tmp_path):
    mailbox = maildir_mailbox(tmp_path, messages=0)
    hold(mailbox, "elsewhere.example:1234")
    busy = fetch_lease(mailbox).claim()
    assert isinstance(busy, leases.Busy) and (busy.host, busy.pid) == ("elsewhere.example", 1234)
    hold(mailbox, "elsewhere.example:1234", minutes=-1)  # ran out
    assert isinstance(fetch_lease(mailbox).claim(), leases.Held)


def test_a_late_holder_can_neither_renew_nor_release_the_new_lease(tmp_path):
    mailbox = maildir_mailbox(tmp_path, messages=0)
    late = fetch_lease(mailbox)
    late.claim()
    Mailbox.objects.filter(pk=mailbox.pk).update(fetch_lease_until=timezone.now() - timedelta(seconds=1))  # it stalled
    newer = fetch_lease(mailbox)
    assert isinstance(newer.claim(), leases.Held)
    with pytest.raises(leases.LeaseLost):
        late.check()
    late.release()
    row = Mailbox.objects.get(pk=mailbox.pk)
    assert row.fetch_lease_token == newer.held.token and row.fetch_lease_until is not None


def test_the_heartbeat_keeps_the_lease_alive_and_stops_once_it_is_lost(tmp_path):
    from tests.support.worker import wait_for

    mailbox = maildir_mailbox(tmp_path, messages=0)
    lease = leases.RowLease(Mailbox, mailbox.pk, "fetch_lease_", timedelta(seconds=30))
    first = lease.claim().until
    heartbeat = leases.Heartbeat(lease, every=0.05)
    heartbeat.start()
    try:
        wait_for(lambda: Mailbox.objects.get(pk=mailbox.pk).fetch_lease_until > first, 5)
        Mailbox.objects.filter(pk=mailbox.pk).update(fetch_lease_token=99)  # taken over
        heartbeat.join(5)
        assert not heartbeat.is_alive()  # nothing left to keep alive
    finally:
        heartbeat.stop()


def test_the_outbox_claim_takes_over_a_dead_senders_lease(tmp_path):
    """outbound/sender.claim runs on the same lease rules (postdesk.leases.free)."""
    from postdesk.models import Message, Request
    from postdesk.outbound import sender
    from postdesk.store import blobs

    mailbox = maildir_mailbox(tmp_path, messages=0)
    raw = blobs.put(b"From: a@b.example\r\n\r\nhi\r\n")
    request = Request.objects.create(subject="x", mailbox=mailbox)
    message = Message.objects.create(request=request, fingerprint="f" * 64, raw=raw, direction="out", kind="reply")
    out = Outgoing.objects.create(message=message, mailbox=mailbox, envelope_from="s@desk.example", recipients=["a@b.example"],
                                  status=Outgoing.Status.SENDING, attempts=1, lease_owner=f"{HOST}:{dead_pid()}",
                                  lease_until=timezone.now() + timedelta(minutes=5))
    assert sender.claim() == [(out.pk, 2)]


# =========================================================================== fetch_mailbox


def test_a_mailbox_being_fetched_is_skipped_and_that_is_not_a_failure(tmp_path):
    mailbox = maildir_mailbox(tmp_path)
    hold(mailbox, f"{HOST}:{os.getppid()}")  # alive: our parent

    report = pipeline.fetch_mailbox(mailbox)

    assert report.status == "busy" and report.error is None
    assert report.busy == f"mailbox support is being fetched by pid {os.getppid()} on host {HOST}"
    assert report.fetched == 0 and Intake.objects.count() == 0
    row = Mailbox.objects.get(pk=mailbox.pk)
    assert (row.consecutive_failures, row.last_attempt_at, row.last_error) == (0, None, "")  # health untouched
    assert row.fetch_lease_token == 41  # left alone


def test_fetch_prints_who_is_fetching_and_exits_0(tmp_path):
    mailbox = maildir_mailbox(tmp_path)
    hold(mailbox, "elsewhere.example:77")
    out = io.StringIO()
    call_command("fetch", stdout=out)
    assert out.getvalue().strip() == "support: skipped: mailbox support is being fetched by pid 77 on host elsewhere.example"
    out = io.StringIO()
    call_command("fetch", "--json", stdout=out)
    (report,) = json.loads(out.getvalue())
    assert report["status"] == "busy" and report["error"] is None


def test_the_lease_is_released_after_a_pass_and_after_a_failed_one_and_a_second_pass_takes_it(tmp_path):
    mailbox = maildir_mailbox(tmp_path)
    broken = Mailbox.objects.create(name="broken", protocol="maildir", path=str(tmp_path / "nowhere"))
    for _ in range(2):  # run it twice: the second pass claims what the first released
        assert pipeline.fetch_mailbox(mailbox).error is None
        assert pipeline.fetch_mailbox(broken).error_kind == "folder"
    for row in Mailbox.objects.all():
        assert (row.fetch_lease_owner, row.fetch_lease_until, row.fetch_lease_token) == ("", None, 2), row.name
    assert Intake.objects.count() == 3


def test_a_pass_whose_lease_was_taken_over_stops_before_acknowledging_more(tmp_path, monkeypatch):
    """The pass stalls past its lease after its first batch and another fetcher takes
    over: the first batch was moved, the second is stored (the other fetcher will
    find it known) but never moved by the late pass."""
    mailbox = maildir_mailbox(tmp_path, after="move", messages=4)
    monkeypatch.setattr(pipeline, "BATCH_MESSAGES", 2)
    batches = []

    class Stalling:
        def __init__(self, source):
            self.source = source

        def __getattr__(self, name):
            return getattr(self.source, name)

        def fetch(self, keys):
            batches.append(keys)
            if len(batches) == 2:  # stalled past the lease: another fetcher took it (a real claim)
                Mailbox.objects.filter(pk=mailbox.pk).update(fetch_lease_until=timezone.now() - timedelta(seconds=1),
                                                             fetch_lease_owner="elsewhere.example:9")
                assert isinstance(fetch_lease(mailbox).claim(), leases.Held)
            return self.source.fetch(keys)

    monkeypatch.setattr(pipeline, "open_source", lambda m: Stalling(real_open_source(m)))

    report = pipeline.fetch_mailbox(mailbox, process_now=False)

    assert report.error_kind == "lease", report
    path = tmp_path / "maildirs" / "support"
    assert len(maildir_files(path)["new"]) == 2  # the second batch stayed at the source
    assert len(maildir_files(path / ".Imported")["cur"]) == 2
    assert Intake.objects.filter(acknowledged_at=None).count() == 2


# =========================================================================== the connection slot


class RecordingSlot:
    """A connection slot (the worker's semaphore) that notes what the pass had done
    when it took and gave back the slot."""

    def __init__(self):
        self.events: list[tuple[str, int]] = []

    def __enter__(self):
        from postdesk.models import Request

        self.events.append(("enter", Request.objects.count()))
        return self

    def __exit__(self, *exc_info):
        from postdesk.models import Request

        self.events.append(("exit", Request.objects.count()))
        return False


def test_the_slot_is_held_from_connect_to_close_not_while_processing(tmp_path):
    mailbox = maildir_mailbox(tmp_path, messages=3)
    slot = RecordingSlot()

    report = pipeline.fetch_mailbox(mailbox, slot=slot)

    assert report.created == 3
    # Given back before what was stored became requests: processing holds no connection slot.
    assert slot.events == [("enter", 0), ("exit", 0)]


def test_the_slot_is_given_back_when_connecting_fails(tmp_path):
    import threading

    broken = Mailbox.objects.create(name="broken", protocol="maildir", path=str(tmp_path / "nowhere"))
    slot = threading.BoundedSemaphore(1)
    assert pipeline.fetch_mailbox(broken, slot=slot).error_kind == "folder"
    assert slot.acquire(blocking=False)
