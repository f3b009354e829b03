"""The account page (/account/): name, email, time zone and signature saved through
desk.profile; a new password (Django's PasswordChangeForm) keeps this browser signed
in and ends every other session; each save is idempotent; sign-in and CSRF required."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from postdesk.desk import profile

pytestmark = pytest.mark.django_db

DETAILS = {"first_name": "Phil", "last_name": "Jürgensen", "email": "phil@desk.example",
           "time_zone": "Europe/Berlin", "signature": "Phil\nSupport <team>"}


def signed_in(username: str, password: str = "pw") -> Client:
    client = Client()
    response = client.post("/login/", {"username": username, "password": password, "next": "/queue/all/"})
    assert response.status_code == 302
    return client


def test_the_page_shows_each_part(logged_in):
    html = logged_in.get("/account/").content.decode()
    for part in ('name="first_name"', 'name="last_name"', 'name="email"', 'name="time_zone"', 'name="signature"',
                 'name="old_password"', 'name="new_password1"', "/account/notifications/", "Your sessions",
                 "Two-factor sign-in", '<option value="Europe/Berlin">Europe/Berlin</option>'):
        assert part in html, part
    assert "style=" not in html and "<script>" not in html


def test_details_are_saved_and_saving_twice_changes_nothing_more(logged_in, staff):
    for _ in range(2):
        response = logged_in.post("/account/details/", DETAILS)
        assert response.status_code == 302 and response["Location"] == "/account/"
    staff.refresh_from_db()
    assert (staff.first_name, staff.last_name, staff.email) == ("Phil", "Jürgensen", "phil@desk.example")
    assert profile.time_zone_of(staff).key == "Europe/Berlin"
    assert profile.signature_of(staff) == "Phil\nSupport <team>"
    html = logged_in.get("/account/").content.decode()
    assert "Support &lt;team&gt;" in html and "Support <team>" not in html  # escaped
    assert '<option value="Europe/Berlin" selected>' in html


def test_an_unknown_time_zone_is_refused_and_nothing_is_saved(logged_in, staff):
    response = logged_in.post("/account/details/", {**DETAILS, "time_zone": "Mars/Olympus"})
    assert response.status_code == 400 and "Mars/Olympus" in response.content.decode()
    staff.refresh_from_db()
    assert staff.first_name == "" and profile.time_zone_of(staff) is None


def test_a_new_password_keeps_this_browser_and_ends_the_others(staff):
    here, there = signed_in("phil"), signed_in("phil")
    form = {"old_password": "pw", "new_password1": "a much longer pass phrase", "new_password2": "a much longer pass phrase"}
    response = here.post("/account/password/", form)
    assert response.status_code == 302 and response["Location"] == "/account/"
    assert here.get("/queue/all/").status_code == 200
    assert there.get("/queue/all/").status_code == 302  # signed out: sent to the login page
    assert User.objects.get(pk=staff.pk).check_password("a much longer pass phrase")
    # Again, with the old password: refused, nothing changes.
    again = here.post("/account/password/", form)
    assert again.status_code == 400 and "old password was entered incorrectly" in again.content.decode()
    assert User.objects.get(pk=staff.pk).check_password("a much longer pass phrase")


def test_a_wrong_old_password_changes_nothing(logged_in, staff):
    response = logged_in.post("/account/password/", {"old_password": "nope", "new_password1": "x" * 20, "new_password2": "x" * 20})
    assert response.status_code == 400
    assert User.objects.get(pk=staff.pk).check_password("pw")


def test_sign_in_post_and_csrf_are_required(client, staff):
    assert client.get("/account/").status_code == 302
    assert client.post("/account/details/", DETAILS).status_code == 302
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff)
    assert strict.post("/account/details/", DETAILS).status_code == 403
    strict_get = strict.get("/account/details/")
    assert strict_get.status_code == 405


def test_the_first_start_hint_points_to_the_account_page():
    from pathlib import Path

    import postdesk.management.commands.run as run

    source = Path(run.__file__).read_text()
    assert "account/" in source and "Admin → Change password" not in source
