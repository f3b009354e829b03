"""Mail for a merged request goes to the request that holds its messages (desk.merge):
References find the moved messages; a subject tag [PD-A] follows merged_into, across
chains; the tag's participant check is made on the target."""

from __future__ import annotations

from postdesk.desk import merge
from postdesk.models import Request
from tests.pipeline.test_processing import ALICE, MALLORY, desk, opened  # noqa: F401  (desk: the fixture)
from tests.support.mail import make_message


def test_reply_by_references_to_a_merged_request_joins_the_target(desk):
    desk.mailbox("support")
    a, mid = opened(desk, subject="Printer")
    b, _ = opened(desk, subject="Printer again")
    merge.merge(a.pk, b.pk)
    report = desk.receive("support", make_message(subject="Re: Printer", in_reply_to=mid, sender=ALICE))
    assert report["threaded"] == 1 and report["created"] == 0
    assert b.messages.count() == 3 and not a.messages.exists()


def test_subject_tag_of_a_merged_request_follows_the_chain(desk):
    desk.mailbox("support")
    a, _ = opened(desk, subject="one")
    b, _ = opened(desk, subject="two")
    c, _ = opened(desk, subject="three")
    merge.merge(a.pk, b.pk)
    merge.merge(b.pk, c.pk)
    report = desk.receive("support", make_message(subject=f"Re: [PD-{a.pk}] one", sender=ALICE))
    assert report["threaded"] == 1
    assert c.messages.count() == 4
    c.refresh_from_db()
    assert c.status == Request.Status.NEW  # a customer's message on a new request leaves it new
    assert not Request.objects.get(pk=a.pk).messages.exists()


def test_a_stranger_naming_a_merged_tag_is_refused_at_the_target(desk):
    desk.mailbox("support")
    a, _ = opened(desk, subject="one")
    b, _ = opened(desk, subject="two")
    merge.merge(a.pk, b.pk)
    report = desk.receive("support", make_message(subject=f"Re: [PD-{a.pk}] one", sender=MALLORY))
    assert report["created"] == 1
    assert list(Request.objects.get(pk=b.pk).mentioned_by.values_list("customer__address", flat=True)) == ["mallory@elsewhere.example"]
