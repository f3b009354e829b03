"""The register of open sessions (postdesk.signin.sessions) and the member's own
sessions page (/account/): a row per sign-in, "last active" written at most once a
minute, gone on sign-out; ending one session, or all but this one, signs those
browsers out at their next request."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from postdesk.models import SignInEvent, StaffSession
from postdesk.signin import sessions

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # many sign-ins, kept fast

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")


def signed_in(username: str = "phil", agent: str = FIREFOX, address: str = "203.0.113.7") -> Client:
    client = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=address)
    assert client.post("/login/", {"username": username, "password": "pw"}).status_code == 302
    return client


def is_signed_in(client: Client) -> bool:
    return client.get("/queue/all/").status_code == 200


def key(client: Client) -> str:
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


def row(client: Client) -> StaffSession:
    return StaffSession.objects.get(session_key=key(client))


def minute_passes(client: Client) -> None:
    """As if a minute had passed since this session's "last active" was written."""
    session = client.session
    session["postdesk_seen"] -= sessions.SEEN_EVERY_SECONDS + 1
    session.save()


# --- the register ------------------------------------------------------------------------------


def test_signing_in_adds_a_row_with_the_new_session_key(staff):
    client = signed_in()
    found = row(client)
    assert (found.user, found.method, found.address, found.user_agent) == (staff, "password", "203.0.113.7", FIREFOX)
    assert StaffSession.objects.count() == 1


def test_last_active_is_written_at_most_once_a_minute(staff):
    client = signed_in()
    first = row(client).last_seen_at
    with CaptureQueriesContext(connection) as queries:
        assert is_signed_in(client)
    assert not [q for q in queries if "staffsession" in q["sql"].lower()], "a write of ours on an ordinary request"
    assert row(client).last_seen_at == first
    minute_passes(client)
    assert is_signed_in(client)
    assert row(client).last_seen_at > first


def test_a_session_from_before_the_register_joins_at_its_first_request(staff):
    client = signed_in()
    StaffSession.objects.all().delete()
    session = client.session
    del session["postdesk_registered"], session["postdesk_seen"]  # as a session from before
    session.save()
    client.get("/queue/all/")
    assert row(client).user == staff and row(client).method == "password"


def test_a_row_lost_while_its_session_still_signs_in_comes_back_within_a_minute(staff):
    client = signed_in()
    StaffSession.objects.all().delete()
    minute_passes(client)
    client.get("/queue/all/")
    assert row(client).user == staff


def test_a_password_changed_in_this_session_keeps_its_row_under_the_new_key(admin):
    here = signed_in("ada")
    before = row(here)
    response = here.post(f"/admin/auth/user/{admin.pk}/password/",
                         {"password1": "a much better one 81", "password2": "a much better one 81", "usable_password": "true"})
    assert response.status_code == 302 and key(here) != before.session_key  # Django gave it a new key
    assert is_signed_in(here)
    after = row(here)
    assert (after.pk, after.started_at) == (before.pk, before.started_at)
    assert [s.current for s in sessions.open_sessions(admin, current_key=key(here))] == [True]


def test_signing_out_deletes_the_session_and_the_row_and_the_old_cookie_is_useless(staff):
    client = signed_in()
    old_key = key(client)
    client.post("/logout/")
    assert not StaffSession.objects.exists()
    assert not Session.objects.filter(session_key=old_key).exists()
    replay = Client()
    replay.cookies[django_settings.SESSION_COOKIE_NAME] = old_key
    response = replay.get("/queue/all/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize("how", ["deleted", "expired", "new password", "deactivated", "admin rights lost"])
def test_sessions_that_no_longer_sign_in_are_not_shown_and_are_pruned(admin, how):
    kept, gone = signed_in("ada"), signed_in("ada", agent=IPHONE)
    if how == "deleted":
        Session.objects.filter(session_key=key(gone)).delete()
    elif how == "expired":
        Session.objects.filter(session_key=key(gone)).update(expire_date=timezone.now())
    else:
        change = {"new password": lambda u: u.set_password("other"), "deactivated": lambda u: setattr(u, "is_active", False),
                  "admin rights lost": lambda u: setattr(u, "is_superuser", False)}[how]
        change(admin)
        admin.save()
        kept = None  # every session of the member has ended
    shown = sessions.open_sessions(admin)
    assert [s.browser for s in shown] == (["Firefox 128 on Linux"] if kept else [])
    assert StaffSession.objects.count() == len(shown)


# --- /account/ -----------------------------------------------------------------------------------


def test_the_account_page_lists_my_sessions_and_marks_this_browser(staff, admin):
    laptop, phone = signed_in(), signed_in(agent=IPHONE, address="198.51.100.20")
    signed_in("ada")  # someone else's: not on my page
    page = laptop.get("/account/").content.decode()
    assert page.count("<tr") == 3  # the header and my two
    assert "Firefox 128 on Linux <strong class=\"badge\">this browser</strong>" in page
    assert "Safari 17 on iOS" in page and "198.51.100.20" in page and "203.0.113.7" in page
    assert "UTC" in page  # times say their time zone
    assert "Sign out everywhere else" in page
    assert 'href="/account/"' in page  # the top bar links here


def test_ending_another_of_my_sessions_signs_that_browser_out(staff):
    laptop, phone = signed_in(), signed_in(agent=IPHONE)
    phone_row = row(phone)
    response = laptop.post(f"/account/sessions/{phone_row.pk}/end/", follow=True)
    assert "Ended the session of Safari 17 on iOS" in response.content.decode()
    assert not is_signed_in(phone) and is_signed_in(laptop)
    assert not StaffSession.objects.filter(pk=phone_row.pk).exists()
    assert not Session.objects.filter(session_key=phone_row.session_key).exists()
    ended = SignInEvent.objects.get(kind="session_ended")
    assert ended.user == staff and ended.detail == "ended by phil: Safari 17 on iOS from 203.0.113.7"


def test_ending_this_browser_is_signing_out(staff):
    laptop = signed_in()
    response = laptop.post(f"/account/sessions/{row(laptop).pk}/end/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert not is_signed_in(laptop) and not StaffSession.objects.exists()


def test_i_cannot_end_someone_elses_session(staff, admin):
    mine, theirs = signed_in(), signed_in("ada")
    response = mine.post(f"/account/sessions/{row(theirs).pk}/end/", follow=True)
    assert "That session had already ended." in response.content.decode()
    assert is_signed_in(theirs)


def test_sign_out_everywhere_else(staff):
    here, phone, tablet = signed_in(), signed_in(agent=IPHONE), signed_in()
    response = here.post("/account/sessions/end-others/", follow=True)
    assert "2 sessions ended" in response.content.decode()
    assert is_signed_in(here) and not is_signed_in(phone) and not is_signed_in(tablet)
    assert list(StaffSession.objects.values_list("session_key", flat=True)) == [key(here)]
    assert SignInEvent.objects.filter(kind="session_ended").count() == 2


def test_a_session_that_already_ended_is_not_ended_again(staff):
    here, phone, old = signed_in(), signed_in(agent=IPHONE), signed_in()
    old_row = row(old)
    Session.objects.filter(session_key=key(old)).delete()  # ran out on its own
    response = here.post(f"/account/sessions/{old_row.pk}/end/", follow=True)
    assert "That session had already ended." in response.content.decode()
    assert "1 session ended" in here.post("/account/sessions/end-others/", follow=True).content.decode()  # the phone
    assert SignInEvent.objects.filter(kind="session_ended").count() == 1
    assert not is_signed_in(phone)


def test_ending_needs_a_post_with_the_csrf_token(staff):
    here, phone = signed_in(), signed_in(agent=IPHONE)
    target = f"/account/sessions/{row(phone).pk}/end/"
    assert here.get(target).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = here.cookies
    assert strict.post(target).status_code == 403
    assert strict.post("/account/sessions/end-others/").status_code == 403
    assert is_signed_in(phone)


def test_the_account_page_needs_a_sign_in(client):
    assert client.get("/account/")["Location"].startswith("/login/")
    assert client.post("/account/sessions/end-others/")["Location"].startswith("/login/")
