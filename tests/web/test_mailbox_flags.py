"""The Mailboxes pages and the admins' banner: a mailbox whose server changes
UIDVALIDITY all the time is flagged, who is fetching a mailbox now is shown, and
the error advice follows the error's kind (Mailbox.last_error_kind)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from postdesk.identity import UNSTABLE_ADVICE
from postdesk.models import Mailbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def unstable():
    now = timezone.now()
    return Mailbox.objects.create(
        name="shaky", protocol="imap", host="imap.desk.example", port=993, username="desk", after_import="keep",
        uidvalidity=1003, uidvalidity_changes=[(now - timedelta(hours=h)).isoformat() for h in (3, 2, 1)],
        identity_unstable_at=now, last_attempt_at=now, last_success_at=now,
        fetch_lease_owner="worker2.desk.example:4242", fetch_lease_until=now + timedelta(minutes=2))


def test_the_list_flags_an_unstable_identity_and_shows_who_is_fetching(as_admin, unstable):
    html = as_admin.get("/mailboxes/").content.decode()
    assert "unstable identity" in html
    assert f"shaky: {UNSTABLE_ADVICE}" in html
    assert "being fetched by pid 4242 on host worker2.desk.example" in html


def test_the_detail_page_shows_the_changes_of_the_day(as_admin, unstable):
    html = as_admin.get(f"/mailboxes/{unstable.pk}/").content.decode()
    assert "UIDVALIDITY changes (24 h)</dt><dd>3" in html and "unstable identity" in html
    assert "by pid 4242 on host worker2.desk.example" in html


def test_the_banner_tells_admins_only(as_admin, unstable, client, staff):
    html = as_admin.get("/queue/general/").content.decode()
    assert "Unstable identity:" in html and UNSTABLE_ADVICE in html
    client.force_login(staff)
    page = client.get("/queue/general/")
    assert page.status_code == 200 and "Unstable identity:" not in page.content.decode()


def test_an_expired_lease_is_not_shown_as_fetching(as_admin, unstable):
    Mailbox.objects.filter(pk=unstable.pk).update(fetch_lease_until=timezone.now() - timedelta(seconds=1))
    assert "being fetched" not in as_admin.get("/mailboxes/").content.decode()


@pytest.mark.parametrize(("kind", "advice"), [
    ("login", "will not fix itself: check the mailbox settings"),
    ("secret", "will not fix itself: check the mailbox settings"),
    ("disk", "temporary: retrying with backoff"),
    ("slow", "temporary: retrying with backoff"),
])
def test_the_advice_follows_the_error_kind_column(kind, advice):
    mailbox = Mailbox(name="x", protocol="imap", last_error="something went wrong", last_error_kind=kind)
    assert mailbox.error_advice == advice
