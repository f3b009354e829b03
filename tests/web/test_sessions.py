"""How long a sign-in lasts (hours of inactivity, browser exit unless "keep me
signed in"), and what ends a member's other sessions: a new password, lost
admin rights."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db


def signed_in(username: str, password: str = "pw", remember: bool = False) -> Client:
    client = Client()
    form = {"username": username, "password": password, "next": "/queue/all/"}
    if remember:
        form["remember"] = "on"
    response = client.post("/login/", form)
    assert response.status_code == 302 and response["Location"] == "/queue/all/"
    return client


def is_signed_in(client: Client) -> bool:
    return client.get("/queue/all/").status_code == 200


def session_cookie(client: Client):
    return client.cookies[django_settings.SESSION_COOKIE_NAME]


def test_default_lifetime_is_twelve_hours_of_inactivity():
    assert django_settings.SESSION_COOKIE_AGE == 12 * 3600
    assert django_settings.SESSION_SAVE_EVERY_REQUEST is True


def test_lifetime_comes_from_postdesk_session_hours(tmp_path):
    env = {**os.environ, "POSTDESK_SESSION_HOURS": "2", "POSTDESK_DATA_DIR": str(tmp_path),
           "DJANGO_SETTINGS_MODULE": "postdesk.settings"}
    code = "import django; django.setup(); from django.conf import settings; print(settings.SESSION_COOKIE_AGE)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == str(2 * 3600)


def test_without_keep_me_signed_in_the_cookie_ends_with_the_browser(staff):
    client = signed_in("phil")
    cookie = session_cookie(client)
    assert cookie["expires"] == "" and cookie["max-age"] == ""
    assert client.session.get_expire_at_browser_close()
    # The server side still ends it after the inactivity limit.
    assert client.session.get_expiry_age() == django_settings.SESSION_COOKIE_AGE


def test_keep_me_signed_in_keeps_the_cookie_for_the_lifetime(staff):
    client = signed_in("phil", remember=True)
    assert not client.session.get_expire_at_browser_close()
    assert int(session_cookie(client)["max-age"]) == django_settings.SESSION_COOKIE_AGE


def test_pages_move_the_end_forward_at_most_once_a_minute(staff):
    from postdesk.web.live import PollSessionMiddleware

    client = signed_in("phil", remember=True)
    first = client.session.get_expiry_date()
    assert "sessionid" in client.get("/queue/all/").cookies  # moved forward: saved, and the cookie sent again
    assert client.session.get_expiry_date() >= first
    assert "sessionid" not in client.get("/queue/all/").cookies  # within the minute: no write
    session = client.session
    session[PollSessionMiddleware.REFRESH_KEY] -= PollSessionMiddleware.REFRESH_EVERY + 1
    session.save()
    assert "sessionid" in client.get("/queue/all/").cookies  # a minute later: moved again


def test_the_sign_in_page_offers_keep_me_signed_in(client):
    page = client.get("/login/").content.decode()
    assert 'type="checkbox" name="remember"' in page and "Keep me signed in" in page


def test_a_new_password_ends_the_other_sessions(staff):
    laptop, phone = signed_in("phil"), signed_in("phil")
    staff.set_password("new password")  # what `postdesk changepassword` and the admin do
    staff.save()
    assert not is_signed_in(laptop) and not is_signed_in(phone)
    assert is_signed_in(signed_in("phil", "new password"))


def test_a_password_changed_in_the_admin_keeps_that_session_only(admin):
    here, elsewhere = signed_in("ada"), signed_in("ada")
    response = here.post(f"/admin/auth/user/{admin.pk}/password/",
                         {"password1": "a much better one 81", "password2": "a much better one 81", "usable_password": "true"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert is_signed_in(here)
    assert not is_signed_in(elsewhere)


def test_lost_admin_rights_end_every_session(admin):
    laptop, phone = signed_in("ada"), signed_in("ada")
    assert laptop.get("/mailboxes/").status_code == 200
    User.objects.filter(pk=admin.pk).update(is_superuser=False)
    for client in (laptop, phone):
        response = client.get("/mailboxes/")
        assert response.status_code == 302 and response["Location"].startswith("/login/"), response
        assert not is_signed_in(client)
    assert is_signed_in(signed_in("ada"))  # signing in again works, without admin rights
    assert signed_in("ada").get("/mailboxes/").status_code == 403


def test_rights_taken_in_the_django_admin_end_the_sessions(admin):
    other = User.objects.create_user("bea", "bea@example.com", "pw", is_staff=True, is_superuser=True)
    bea = signed_in("bea")
    ada = signed_in("ada")
    form = {"username": "bea", "email": "bea@example.com", "is_active": "on", "is_staff": "on",
            "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00", "initial-date_joined_0": "2026-01-01",
            "initial-date_joined_1": "00:00:00"}
    assert ada.post(f"/admin/auth/user/{other.pk}/change/", form).status_code == 302
    other.refresh_from_db()
    assert not other.is_superuser
    assert not is_signed_in(bea)


def test_a_member_made_admin_keeps_the_session_and_loses_it_with_the_right(staff):
    client = signed_in("phil")
    User.objects.filter(pk=staff.pk).update(is_superuser=True)
    assert client.get("/mailboxes/").status_code == 200
    User.objects.filter(pk=staff.pk).update(is_superuser=False)
    assert not is_signed_in(client)
