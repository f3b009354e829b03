"""The Django admin stays available to superusers, and shows no mailbox secret."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from postdesk.models import Mailbox

pytestmark = pytest.mark.django_db

PAGES = ["/admin/", "/admin/postdesk/mailbox/", "/admin/postdesk/request/", "/admin/postdesk/intake/",
         "/admin/postdesk/auditevent/", "/admin/postdesk/requestevent/", "/admin/postdesk/customer/"]


def test_superuser_sees_every_admin_page(client):
    client.force_login(User.objects.create_superuser("ada", "ada@example.com", "pw"))
    for page in PAGES:
        assert client.get(page).status_code == 200, page


def test_mailbox_secret_is_not_on_the_admin_form(client):
    client.force_login(User.objects.create_superuser("ada", "ada@example.com", "pw"))
    mailbox = Mailbox.objects.create(name="support", protocol="imap", host="mail.example.com", secret="gAAAA-ciphertext")
    page = client.get(f"/admin/postdesk/mailbox/{mailbox.pk}/change/").content.decode()
    assert "gAAAA-ciphertext" not in page and 'name="secret"' not in page


def test_intake_rows_cannot_be_edited_by_hand(client):
    client.force_login(User.objects.create_superuser("ada", "ada@example.com", "pw"))
    assert client.get("/admin/postdesk/intake/add/").status_code == 403


def test_non_admin_staff_get_no_admin(client):
    client.force_login(User.objects.create_user("phil", "phil@example.com", "pw", is_staff=True))
    assert client.get("/admin/postdesk/mailbox/").status_code == 403
