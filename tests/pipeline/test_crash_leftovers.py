"""What a killed worker leaves behind, and how later passes deal with it.

- A message in hand when a worker died is retried alone: nothing else is in
  hand while it is, so the deaths it is counted for (and quarantined after)
  are its own, not those of a batch it shared a moment with.
- An acknowledgement the server made but we never recorded is settled by a
  later pass that no longer sees the message."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from postdesk import intake, pipeline, process
from postdesk.models import Intake, Mailbox
from tests.support.mail import make_message, maildir_deliver

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"


@pytest.fixture
def stored(tmp_path):
    maildir = tmp_path / "md"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for n in range(3):
        maildir_deliver(maildir, make_message(subject=f"message {n}"))
    mailbox = Mailbox.objects.create(name="support", protocol="maildir", path=str(maildir), after_import="keep")
    pipeline.fetch_mailbox(mailbox, process_now=False)
    return list(Intake.objects.order_by("id"))


def test_a_suspect_is_alone_in_hand(stored):
    suspect, *fresh = stored
    Intake.objects.filter(pk=suspect.pk).update(attempts=2)  # in hand at two earlier deaths
    processor = process.Processor()
    assert processor.step() == []  # claims the suspect, alone
    outcomes = []
    while not outcomes:  # until its parse is in: nothing else is claimed meanwhile
        assert processor.held() == [suspect.pk]
        outcomes = processor.step()
    [outcome] = outcomes  # applied before anything else is claimed
    assert outcome.intake_id == suspect.pk
    assert processor.held() == []
    assert all(Intake.objects.get(pk=i.pk).attempts == 0 for i in fresh)  # never in hand with it
    rest = list(processor.drain())
    assert sorted(o.intake_id for o in rest) == [i.pk for i in fresh]
    assert set(Intake.objects.values_list("status", flat=True)) == {"processed"}


def test_no_suspect_is_claimed_while_a_batch_is_in_hand(stored):
    """The processor claims the next batch while applying the last one: that
    claim leaves suspects alone (suspects=False)."""
    first, second, third = stored
    Intake.objects.filter(pk=third.pk).update(attempts=1)
    assert sorted(i for i, _ in process.claim(suspects=False)) == [first.pk, second.pk]
    assert Intake.objects.get(pk=third.pk).attempts == 1  # untouched
    assert process.claim(suspects=False) == []  # the rest are leased now; the suspect waits
    assert [i for i, _ in process.claim()] == [third.pk]


def test_rows_whose_message_left_the_source_are_settled(stored, tmp_path):
    """A kill after the server let go (MOVE, DELETE, QUIT) and before we recorded
    it leaves acknowledged_at empty; a later pass that no longer sees the message
    records it, but only for rows taken well before its listing."""
    old, recent, listed = stored
    Intake.objects.update(acknowledged_at=None)
    Intake.objects.filter(pk__in=[old.pk, listed.pk]).update(fetched_at=timezone.now() - timedelta(minutes=5))
    mailbox = old.mailbox
    assert intake.settle_gone(mailbox, {listed.source_key}, timezone.now()) == 1
    assert Intake.objects.get(pk=old.pk).acknowledged_at is not None  # gone from the source: settled
    assert Intake.objects.get(pk=recent.pk).acknowledged_at is None  # may have been taken after the listing
    assert Intake.objects.get(pk=listed.pk).acknowledged_at is None  # still there: the pass acknowledges it
    assert intake.settle_gone(mailbox, {listed.source_key}, timezone.now()) == 0  # run it twice: nothing more
