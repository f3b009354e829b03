"""The Django admin stays available to superusers, and shows no mailbox secret."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from postdesk import domains
from postdesk.models import AuditEvent, Mailbox, PublicDomain

pytestmark = pytest.mark.django_db

PAGES = ["/admin/", "/admin/postdesk/mailbox/", "/admin/postdesk/request/", "/admin/postdesk/intake/",
         "/admin/postdesk/auditevent/", "/admin/postdesk/requestevent/", "/admin/postdesk/customer/",
         "/admin/postdesk/publicdomain/", "/admin/postdesk/publicdomain/add/"]


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
    for page in PAGES + ["/admin/auth/user/", "/admin/auth/user/add/", "/admin/postdesk/mailbox/add/"]:
        response = client.get(page)
        assert response.status_code in (302, 403), page
        if response.status_code == 302:
            assert response["Location"].startswith("/admin/login/"), page
    assert client.post("/admin/postdesk/publicdomain/add/", {"domain": "x.example"}).status_code in (302, 403)
    assert not PublicDomain.objects.exists()


def test_non_admin_staff_cannot_sign_in_to_the_admin(client):
    User.objects.create_user("phil", "phil@example.com", "pw", is_staff=True)
    client.post("/admin/login/", {"username": "phil", "password": "pw", "next": "/admin/"})
    assert client.get("/admin/").status_code == 302
    assert client.get("/admin/postdesk/mailbox/").status_code == 302


def test_inactive_superuser_gets_no_admin(client):
    ada = User.objects.create_superuser("ada", "ada@example.com", "pw")
    client.force_login(ada)
    User.objects.filter(pk=ada.pk).update(is_active=False)
    assert client.get("/admin/").status_code == 302


def test_admin_adds_and_removes_public_domains_with_an_audit_row(client):
    ada = User.objects.create_superuser("ada", "ada@example.com", "pw")
    client.force_login(ada)
    assert client.post("/admin/postdesk/publicdomain/add/", {"domain": " BigISP.Example. "}).status_code == 302
    row = PublicDomain.objects.get()
    assert row.domain == "bigisp.example" and domains.check("mail.bigisp.example").source == domains.ADMIN

    refused = client.post("/admin/postdesk/publicdomain/add/", {"domain": "gmail.com"}).content.decode()
    assert "listed already: gmail.com is a public mail domain, on the shipped free-mail list" in refused
    assert "is not a domain name" in client.post("/admin/postdesk/publicdomain/add/", {"domain": "no spaces"}).content.decode()
    assert PublicDomain.objects.count() == 1

    client.post(f"/admin/postdesk/publicdomain/{row.pk}/delete/", {"post": "yes"})
    assert not PublicDomain.objects.exists() and not domains.is_public("bigisp.example")
    assert list(AuditEvent.objects.order_by("id").values_list("kind", "target", "actor")) == [
        ("public-domain.added", "domain bigisp.example", ada.pk), ("public-domain.removed", "domain bigisp.example", ada.pk)]
