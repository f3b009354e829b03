"""The sign-in log (postdesk.signin.audit): a row for every sign-in, failure, lockout
and sign-out, with who, from where and with what browser; old rows pruned on a
write, at most once an hour."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from postdesk.models import SignInEvent
from postdesk.signin import audit

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # many sign-ins, kept fast

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
ADDRESS = "203.0.113.7"


def sign_in(client, username, password="pw", **extra):
    return client.post("/login/", {"username": username, "password": password},
                       REMOTE_ADDR=ADDRESS, HTTP_USER_AGENT=FIREFOX, **extra)


def kinds() -> list[str]:
    return list(SignInEvent.objects.order_by("id").values_list("kind", flat=True))


def test_a_sign_in_is_recorded_with_how_where_and_which_browser(client, staff):
    assert sign_in(client, "phil").status_code == 302
    event = SignInEvent.objects.get()
    assert (event.kind, event.user, event.username, event.method) == ("signed_in", staff, "phil", "password")
    assert (event.address, event.user_agent) == (ADDRESS, FIREFOX)
    assert event.at <= timezone.now()


def test_a_failure_names_the_account_typed(client, staff):
    sign_in(client, "phil", "wrong")
    sign_in(client, "nobody", "wrong")
    phil, nobody = SignInEvent.objects.order_by("id")
    assert (phil.kind, phil.user, phil.username, phil.address) == ("failed", staff, "phil", ADDRESS)
    assert phil.detail == "1 in a row"
    assert (nobody.kind, nobody.user, nobody.username) == ("failed", None, "nobody")
    assert "wrong" not in str(list(SignInEvent.objects.values()))  # never the password


def test_the_failure_that_locks_and_each_refusal_are_recorded(client, staff):
    for _ in range(6):
        sign_in(client, "phil", "wrong")
    assert kinds() == ["failed"] * 5 + ["locked", "locked"]
    locking, refused = SignInEvent.objects.filter(kind="locked").order_by("id")
    assert locking.detail == "locked for 1 minute" and refused.detail == "refused, 1 minute left"
    assert refused.user == staff and refused.address == ADDRESS


def test_sign_out_is_recorded(client, staff):
    sign_in(client, "phil")
    client.post("/logout/", REMOTE_ADDR=ADDRESS)
    out = SignInEvent.objects.get(kind="signed_out")
    assert (out.user, out.method, out.address) == (staff, "password", ADDRESS)


def test_lost_admin_rights_sign_out_with_the_reason(admin):
    client = Client()
    sign_in(client, "ada")
    User.objects.filter(pk=admin.pk).update(is_superuser=False)
    client.get("/queue/all/")
    assert SignInEvent.objects.get(kind="signed_out").detail == "admin rights taken away"


def test_record_is_what_other_steps_call(rf, staff):
    """two_factor and sso write their refusals through record(kind, request, user=..., ...)."""
    request = rf.get("/", REMOTE_ADDR="198.51.100.4", HTTP_USER_AGENT=FIREFOX)
    event = audit.record(audit.CODE_FAILED, request, user=staff, method="password+totp", detail="wrong code")
    assert (event.kind, event.username, event.address, event.detail) == ("code_failed", "phil", "198.51.100.4", "wrong code")
    sso = audit.record(audit.SSO_FAILED, request, username="x@example.com", detail="email not verified")
    assert sso.user is None and sso.username == "x@example.com"
    assert audit.record(audit.SIGNED_OUT).address == ""  # no request: no address


# --- retention -------------------------------------------------------------------------------


def make_old(event: SignInEvent, days: int) -> None:
    SignInEvent.objects.filter(pk=event.pk).update(at=timezone.now() - timedelta(days=days))


def test_prune_keeps_postdesk_signin_log_days(settings, staff):
    settings.POSTDESK_SIGNIN_LOG_DAYS = 30
    old, recent = audit.record(audit.FAILED, username="a"), audit.record(audit.FAILED, username="b")
    make_old(old, 31)
    make_old(recent, 29)
    pruned = audit.prune()
    assert pruned.deleted == 1 and list(SignInEvent.objects.values_list("username", flat=True)) == ["b"]


def test_the_default_is_ninety_days(settings):
    from django.conf import settings as live

    assert live.POSTDESK_SIGNIN_LOG_DAYS == 90


def test_a_write_prunes_at_most_once_an_hour(monkeypatch):
    first = audit.record(audit.FAILED, username="old-1")
    make_old(first, 91)
    monkeypatch.setitem(audit._last_prune, "at", float("-inf"))  # as in a process that has not pruned yet
    audit.record(audit.FAILED, username="new-1")  # this write prunes...
    assert not SignInEvent.objects.filter(username="old-1").exists()
    second = audit.record(audit.FAILED, username="old-2")
    make_old(second, 91)
    audit.record(audit.FAILED, username="new-2")  # ...the next, within the hour, does not
    assert SignInEvent.objects.filter(username="old-2").exists()
    monkeypatch.setitem(audit._last_prune, "at", audit._last_prune["at"] - audit.PRUNE_EVERY_SECONDS)
    audit.record(audit.FAILED, username="new-3")  # an hour later it does again
    assert not SignInEvent.objects.filter(username="old-2").exists()
