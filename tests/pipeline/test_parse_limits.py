"""Parsing under a time limit, in processes that can be killed (process/parallel.py).

Hostile input is stood in for by a test-only header the parser honours when
POSTDESK_TEST_PARSE_HOOKS=1 (postdesk/parsejob.py): `X-Postdesk-Test-Parse:
sleep N` (a parse that takes N seconds, like the sanitizer's native code on
deep nesting) and `die` (a parser that crashes).  Outcomes are asserted,
never durations.
"""

from __future__ import annotations

import io
import os
import signal
import sqlite3
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection
from django.utils import timezone

from postdesk import pipeline, process
from postdesk.models import Intake, Mailbox, Message, Request
from postdesk.process import parallel
from postdesk.store import blobs
from tests.support.mail import make_message, maildir_deliver

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 1  # seconds: POSTDESK_PARSE_TIMEOUT in these tests


@pytest.fixture(autouse=True)
def limits(settings, tmp_path, monkeypatch):
    settings.DATA_DIR = tmp_path / "data"
    monkeypatch.setenv("POSTDESK_TEST_PARSE_HOOKS", "1")
    monkeypatch.setenv("POSTDESK_PARSE_TIMEOUT", str(LIMIT))
    monkeypatch.setenv("POSTDESK_PARSE_WORKERS", "2")
    parallel.shutdown()  # parsers started before this test do not know the hooks
    yield
    parallel.shutdown()


class Mailboxes:
    def __init__(self, root):
        self.root = root

    def store(self, name: str, *raws: bytes) -> list[Intake]:
        """Deliver into Maildir `name` and take them in (intake only, like a worker's runner)."""
        path = self.root / name
        for sub in ("new", "cur", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        mailbox, _ = Mailbox.objects.get_or_create(name=name, defaults=dict(protocol="maildir", path=str(path), after_import="keep"))
        before = set(Intake.objects.values_list("pk", flat=True))
        for raw in raws:
            maildir_deliver(path, raw)
        pipeline.fetch_mailbox(mailbox, process_now=False)
        return list(Intake.objects.exclude(pk__in=before).order_by("id"))


@pytest.fixture
def mailboxes(tmp_path) -> Mailboxes:
    return Mailboxes(tmp_path / "maildirs")


def slow(subject: str, seconds: float) -> bytes:
    return make_message(subject=subject, headers={"X-Postdesk-Test-Parse": f"sleep {seconds}"})


def step_until(processor, done, outcomes: list, limit: int = 400):
    for _ in range(limit):
        if done():
            return
        outcomes += processor.step()
    raise AssertionError(f"not done after {limit} steps: {outcomes}")


def test_a_slow_message_is_retried_once_alone_then_quarantined_while_other_mail_flows(mailboxes):
    [held] = mailboxes.store("slow", slow("Deep nesting", 5))
    processor = process.Processor()
    outcomes: list = []
    step_until(processor, lambda: held.pk in processor.tickets(), outcomes)
    # Mail from another mailbox, stored after the slow one, while that one is being read.
    [other] = mailboxes.store("other", make_message(subject="Printer on fire"))
    step_until(processor, lambda: any(o.intake_id == other.pk for o in outcomes), outcomes)
    assert held.pk in processor.held()  # it became a request while the slow one was pending
    assert Request.objects.filter(subject="Printer on fire").exists()
    step_until(processor, lambda: any(o.intake_id == held.pk for o in outcomes), outcomes)
    [quarantined] = [o for o in outcomes if o.intake_id == held.pk]
    assert quarantined.reason == f"took longer than {LIMIT} s to read"
    row = Intake.objects.get(pk=held.pk)
    assert (row.status, row.parse_timeouts, row.quarantine_reason) == ("quarantined", 2, quarantined.reason)  # one retry
    assert blobs.read(row.raw_id).startswith(b"From: ")  # the raw bytes are kept
    assert list(process.iter_process()) == []  # run it twice: nothing more happens

    # Re-run with a longer limit: imported.
    out = io.StringIO()
    call_command("reprocess", str(held.pk), "--parse-timeout", "60", stdout=out)
    assert "created 1" in out.getvalue()
    row.refresh_from_db()
    assert (row.status, row.parse_timeout) == ("processed", 60)
    assert Request.objects.filter(subject="Deep nesting").count() == 1
    assert list(process.iter_process()) == []


def test_a_parser_killed_mid_parse_costs_only_its_message_a_second_reading(mailboxes):
    target, *rest = mailboxes.store("support", slow("Big one", 3), make_message(subject="one"), make_message(subject="two"))
    processor = process.Processor(pool=parallel.ParserPool(2))
    os.environ["POSTDESK_PARSE_TIMEOUT"] = "60"
    outcomes: list = []
    step_until(processor, lambda: processor.tickets().get(target.pk) in processor.pool.busy(), outcomes)
    os.kill(processor.pool.busy()[processor.tickets()[target.pk]], signal.SIGKILL)  # the OOM killer, or an admin
    step_until(processor, lambda: not processor.held(), outcomes)
    assert sorted(o.intake_id for o in outcomes) == [target.pk] + [r.pk for r in rest]
    assert set(Intake.objects.values_list("status", "attempts")) == {("processed", 1)}  # read again, not claimed again
    assert Request.objects.count() == 3
    processor.pool.shutdown()


def test_a_message_that_kills_its_parser_twice_is_quarantined_alone(mailboxes):
    crasher, *rest = mailboxes.store("support", make_message(subject="crash", headers={"X-Postdesk-Test-Parse": "die"}),
                                     make_message(subject="fine"))
    outcomes = list(process.iter_process())
    by_id = {o.intake_id: o for o in outcomes}
    assert by_id[crasher.pk].reason == "the parser's process died reading it (killed by signal 9)"
    assert Intake.objects.get(pk=rest[0].pk).status == "processed"


def test_a_batch_of_one_is_parsed_out_of_process(mailboxes):
    """Were it parsed in this process, the hook would kill the test run itself."""
    [crasher] = mailboxes.store("support", make_message(subject="crash", headers={"X-Postdesk-Test-Parse": "die"}))
    processor = process.Processor()
    processor.step()
    assert crasher.pk in processor.tickets()  # in the parser pool
    [outcome] = list(processor.drain())
    assert isinstance(outcome, process.Quarantined)


def test_display_parts_are_computed_with_the_parse_and_stored(mailboxes):
    html = ("<p>Thanks, fixed.</p><img src='https://tracker.example/p.gif'>"
            "<div>On Mon, 3 Jun 2024, Bob wrote:</div><blockquote>Is it fixed?</blockquote>")
    raw = make_message(subject="fixed", body="Thanks, fixed.\n\nOn Mon, 3 Jun 2024, Bob wrote:\n> Is it fixed?\n")
    from email import message_from_bytes, policy

    msg = message_from_bytes(raw, policy=policy.default)
    msg.add_alternative(html, subtype="html")
    mailboxes.store("support", msg.as_bytes(), raw.replace(b"Subject: fixed", b"Subject: text only"))
    list(process.iter_process())
    message = Message.objects.get(subject="fixed")
    assert "Thanks, fixed." in message.html_new and "Is it fixed?" not in message.html_new
    assert message.remote_images == 1
    assert message.text_parts == {}  # shown in the frame: its text is not split
    text_only = Message.objects.get(subject="text only")
    assert text_only.text_parts == {"new_text": "Thanks, fixed.", "quoted_text": "On Mon, 3 Jun 2024, Bob wrote:\n> Is it fixed?",
                                    "signature": ""}
    assert (text_only.html_new, text_only.remote_images) == (None, 0)


def _lock_intake_table():
    """A second connection takes the write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL:
    LOCK TABLE ... ACCESS EXCLUSIVE, with a short lock_timeout on our side)."""
    if connection.vendor == "sqlite":
        other = sqlite3.connect(connection.settings_dict["NAME"], uri=True, timeout=0)
        other.isolation_level = None
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE postdesk_mailbox SET name = name")
        return other
    import psycopg

    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '300ms'")
    params = connection.get_connection_params()
    other = psycopg.connect(**{k: v for k, v in params.items() if k in ("dbname", "user", "host", "port", "password")})
    other.execute("LOCK TABLE postdesk_intake IN ACCESS EXCLUSIVE MODE")
    return other


def test_a_batch_failing_on_a_locked_database_gives_its_claims_back_at_once(mailboxes, monkeypatch):
    stored = mailboxes.store("support", *[make_message(subject=f"m{n}") for n in range(3)])
    lock = {}
    real_apply = process.apply_batch

    def apply_while_locked(items, **kw):
        lock["other"] = _lock_intake_table()  # held from here until the test lets go
        return real_apply(items, **kw)

    monkeypatch.setattr(process, "apply_batch", apply_while_locked)
    monkeypatch.setattr(process, "GRACE", 60)  # the step waits for all three parses
    processor = process.Processor()
    assert processor.step() == []  # claimed, parsing
    with pytest.raises(OperationalError):
        processor.step()  # the batch's write fails on the lock
    assert processor.held() == []
    lock["other"].rollback()  # the lock is gone
    lock["other"].close()
    monkeypatch.setattr(process, "apply_batch", real_apply)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
    rows = Intake.objects.filter(pk__in=[i.pk for i in stored])
    given_back = set(rows.filter(lease_until=None).values_list("pk", flat=True)) | set(process._leftovers)
    assert given_back == {i.pk for i in stored}
    # Given back: no lease to wait out (if the give-back itself hit the lock, the next
    # claim in this process gives them back first).
    outcomes = list(process.iter_process())
    assert sorted(o.intake_id for o in outcomes) == [i.pk for i in stored]
    assert set(rows.values_list("status", "attempts")) == {("processed", 1)}


def test_the_claim_outlasts_a_long_re_run_limit(mailboxes):
    """A re-run may allow 600 s: the lease is renewed to cover it (the default is 5 minutes)."""
    [row] = mailboxes.store("support", slow("Long one", 2))
    Intake.objects.filter(pk=row.pk).update(parse_timeout=600)
    processor = process.Processor()
    outcomes: list = []
    step_until(processor, lambda: row.pk in processor.tickets() and len(processor.pool.busy()) == 1, outcomes)
    processor.step()  # a step while it is being read renews what it holds
    lease_until = Intake.objects.get(pk=row.pk).lease_until
    assert lease_until > timezone.now() + timedelta(seconds=600)
    step_until(processor, lambda: not processor.held(), outcomes)
    assert Intake.objects.get(pk=row.pk).status == "processed"
