"""The preferences page (every member) and the notification account page (admins only)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from postdesk import secrets
from postdesk.models import NotifyAccount
from postdesk.notify import preferences


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    secrets._fernet.cache_clear()
    yield
    secrets._fernet.cache_clear()


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def phil(db):
    return User.objects.create_user("phil", "phil@staff.example", "pw")


@pytest.fixture
def ada(db):
    return User.objects.create_user("ada", "ada@staff.example", "pw", is_superuser=True, is_staff=True)


def test_the_account_page_links_to_the_preferences(phil):
    assert "/account/notifications/" in signed_in(phil).get("/account/").content.decode()


def test_preferences_are_saved(phil):
    client = signed_in(phil)
    assert client.get("/account/notifications/").status_code == 200

    client.post("/account/notifications/", {"events": ["assigned", "mentioned"], "watch_general": "on",
                                            "mode": "digest", "digest_minutes": "15"})

    assert preferences.of(phil) == preferences.Preferences(frozenset({"assigned", "mentioned"}), True, 15)
    client.post("/account/notifications/", {"events": ["assigned"], "mode": "now", "digest_minutes": "15"})
    assert preferences.of(phil) == preferences.Preferences(frozenset({"assigned"}), False, 0)


def test_a_bad_interval_is_refused(phil):
    client = signed_in(phil)
    response = client.post("/account/notifications/", {"mode": "digest", "digest_minutes": "x"}, follow=True)
    assert "number of minutes" in response.content.decode()
    assert preferences.of(phil) == preferences.DEFAULT


def test_the_account_page_is_for_admins_only(phil, ada):
    assert signed_in(phil).get("/staff/notification-account/").status_code == 403
    assert signed_in(phil).post("/staff/notification-account/", {"smtp_url": "smtp://x@y"}).status_code == 403
    assert signed_in(ada).get("/staff/notification-account/").status_code == 200


def test_an_admin_sets_the_account_with_the_password_encrypted_and_never_shown(ada):
    client = signed_in(ada)
    client.post("/staff/notification-account/", {"smtp_url": "smtp://desk@mail.example:587", "password": "s3cret-pw",
                                                 "from_address": "desk@mail.example"})
    row = NotifyAccount.objects.get()
    assert row.smtp_url == "smtp://desk@mail.example:587" and secrets.decrypt(row.secret) == "s3cret-pw"
    assert "s3cret-pw" not in row.secret
    page = client.get("/staff/notification-account/").content.decode()
    assert "s3cret-pw" not in page and "leave blank to keep" in page

    client.post("/staff/notification-account/", {"smtp_url": "smtp://desk@mail.example:587", "password": "",
                                                 "from_address": "desk@mail.example"})
    assert secrets.decrypt(NotifyAccount.objects.get().secret) == "s3cret-pw"  # blank keeps it


def test_a_bad_url_is_not_saved(ada):
    response = signed_in(ada).post("/staff/notification-account/", {"smtp_url": "http://x"}, follow=True)
    assert "must be smtp://" in response.content.decode()
    assert not NotifyAccount.objects.exists()
