"""Admin pages for mailboxes: list with health, add, edit, test connection; admins only."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from postdesk import mailboxes, secrets
from postdesk.models import AuditEvent, Intake, Mailbox
from postdesk.store import blobs
from tests.support.mail import maildir_deliver, make_message

pytestmark = pytest.mark.django_db

SECRET = "hunter2-very-secret"




@pytest.fixture
def staff(db):
    return User.objects.create_user("phil", "phil@example.com", "pw", is_staff=True)



@pytest.fixture
def as_staff(client, staff):
    client.force_login(staff)
    return client


def make_maildir(root, name="inbox"):
    path = root / name
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def support(data_dir):
    return Mailbox.objects.create(name="support", protocol=Mailbox.Protocol.MAILDIR, path=str(make_maildir(data_dir)),
                                  after_import=Mailbox.After.KEEP)


def form_data(**overrides) -> dict:
    """What the add form posts for a Maildir mailbox (checkboxes: present means on)."""
    data = {"name": "sales", "address": "sales@desk.example", "protocol": "maildir", "enabled": "on", "host": "",
            "port": "", "security": "tls", "verify_tls": "on", "ca_file": "", "username": "", "password": "",
            "path": "/srv/mail/sales", "folder": "INBOX", "after": "keep", "move_folder": "Imported", "assign": "",
            "poll_interval": "60", "size_limit": "50",
            # Sending and acknowledgements, as the blank form posts them.
            "smtp_host": "", "smtp_port": "", "smtp_security": "starttls", "smtp_verify_tls": "on", "smtp_ca_file": "",
            "smtp_username": "", "smtp_password": "", "from_address": "", "from_name": "", "sent_folder": "",
            "ack_subject": "", "ack_body": "", "ack_daily_limit": "5"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def imap_data(**overrides) -> dict:
    imap = {"name": "office", "protocol": "imap", "host": "imap.desk.example", "username": "desk", "password": SECRET,
            "path": "", "after": "seen"}
    return form_data(**{**imap, **overrides})


def admin_urls(mailbox) -> list[tuple[str, str]]:
    return [("get", "/mailboxes/"), ("get", "/mailboxes/add/"), ("post", "/mailboxes/add/"),
            ("get", f"/mailboxes/{mailbox.pk}/"), ("get", f"/mailboxes/{mailbox.pk}/edit/"),
            ("post", f"/mailboxes/{mailbox.pk}/edit/"), ("get", f"/mailboxes/{mailbox.pk}/test/"),
            ("post", f"/mailboxes/{mailbox.pk}/test/")]


# --- who may --------------------------------------------------------------------------


def test_every_mailbox_page_and_action_requires_login(client, support):
    for method, url in admin_urls(support):
        response = getattr(client, method)(url, form_data(name="sneaky"))
        assert response.status_code == 302, (method, url)
        assert response["Location"].startswith("/login/?next="), (method, url)
    assert list(Mailbox.objects.values_list("name", flat=True)) == ["support"]
    assert not AuditEvent.objects.exists()


def test_staff_who_are_not_admins_get_403_on_every_page_and_action(as_staff, support):
    for method, url in admin_urls(support):
        response = getattr(as_staff, method)(url, form_data(name="sneaky"))
        assert response.status_code == 403, (method, url)
    assert list(Mailbox.objects.values_list("name", flat=True)) == ["support"]
    assert not AuditEvent.objects.exists()


def test_nav_links_are_shown_to_admins_only(as_staff, admin, support):
    page = as_staff.get("/queue/all/").content.decode()
    assert 'href="/mailboxes/"' not in page and 'href="/quarantine/"' not in page
    as_staff.force_login(admin)
    page = as_staff.get("/queue/all/").content.decode()
    assert 'href="/mailboxes/"' in page and 'href="/quarantine/"' in page


def test_test_connection_is_post_only(as_admin, support):
    assert as_admin.get(f"/mailboxes/{support.pk}/test/").status_code == 405
    assert not AuditEvent.objects.exists()


def test_unknown_mailbox_is_404(as_admin):
    for url in ["/mailboxes/999999/", "/mailboxes/999999/edit/"]:
        assert as_admin.get(url).status_code == 404
    assert as_admin.post("/mailboxes/999999/test/").status_code == 404


def test_forms_need_the_csrf_token(admin, support):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin)
    assert strict.post("/mailboxes/add/", form_data()).status_code == 403
    assert strict.post(f"/mailboxes/{support.pk}/edit/", form_data(name="renamed")).status_code == 403
    assert strict.post(f"/mailboxes/{support.pk}/test/").status_code == 403
    assert list(Mailbox.objects.values_list("name", flat=True)) == ["support"]
    assert not AuditEvent.objects.exists()
    # The pages themselves carry the token in every form.
    for url in ["/mailboxes/add/", f"/mailboxes/{support.pk}/", f"/mailboxes/{support.pk}/edit/"]:
        assert b"csrfmiddlewaretoken" in strict.get(url).content, url


# --- the list: health ------------------------------------------------------------------


def _intake(mailbox, key, status=Intake.Status.PROCESSED, fetched_at=None):
    raw = make_message(subject=key).replace(b"Hello", key.encode())
    intake = Intake.objects.create(mailbox=mailbox, source_key=key, raw=blobs.put(raw), size=len(raw), status=status)
    if fetched_at is not None:
        Intake.objects.filter(pk=intake.pk).update(fetched_at=fetched_at)
    return intake


def test_list_shows_each_mailboxs_health(as_admin, support):
    now = timezone.now()
    broken = Mailbox.objects.create(name="broken", protocol="imap", host="imap.desk.example", port=993, username="desk",
                                    verify_tls=False, last_attempt_at=now, last_success_at=now - timedelta(days=2),
                                    last_error="login: [AUTHENTICATIONFAILED] Authentication failed.",
                                    last_error_at=now, consecutive_failures=3)
    Mailbox.objects.filter(pk=support.pk).update(last_attempt_at=now, last_success_at=now)
    _intake(support, "today-1")
    _intake(support, "today-2", status=Intake.Status.QUARANTINED)
    _intake(support, "yesterday", fetched_at=timezone.localtime().replace(hour=0, minute=0) - timedelta(minutes=1),
            status=Intake.Status.PENDING)

    response = as_admin.get("/mailboxes/")

    assert response.status_code == 200
    rows = {m.name: m for m in response.context["rows"]}
    assert (rows["support"].imported_today, rows["support"].quarantined) == (2, 1)
    assert rows["support"].waiting == 1  # stored, not yet a request
    assert (rows["broken"].imported_today, rows["broken"].consecutive_failures) == (0, 3)
    html = response.content.decode()
    assert "[AUTHENTICATIONFAILED] Authentication failed." in html
    assert "badge-failing" in html and html.count("badge-failing") == 1
    assert "certificate verification is OFF" in html
    assert f'href="/mailboxes/{broken.pk}/"' in html and 'href="/mailboxes/add/"' in html
    assert "style=" not in html


def test_detail_shows_settings_health_and_warnings(as_admin):
    box = Mailbox.objects.create(name="office", protocol="imap", host="imap.desk.example", port=143, username="desk",
                                 security="none", verify_tls=False, secret=secrets.encrypt(SECRET),
                                 last_error="timeout: imap.desk.example:143 did not answer in time",
                                 last_error_at=timezone.now(), consecutive_failures=1)
    html = as_admin.get(f"/mailboxes/{box.pk}/").content.decode()
    assert 'class="warnings" role="alert"' in html
    assert "certificate verification is OFF" in html and "no TLS" in html
    assert "imap.desk.example" in html and "did not answer in time" in html
    assert "(set)" in html and SECRET not in html and box.secret not in html


def test_connect_answers_a_page_that_moves_on_to_the_consent_page(as_admin, oauth):
    # Not a redirect: the CSP's form-action 'self' also covers where the Connect form's
    # answer redirects, so a browser refuses a redirect to the provider.
    oauth.add_client("desk-web", redirect_uris=("http://testserver/mailboxes/oauth/callback/",))
    box = Mailbox.objects.create(name="office", protocol="imap", host="imap.desk.example", port=143, username="desk",
                                 auth="oauth", oauth_provider=oauth.issuer, oauth_client_id="desk-web",
                                 oauth_scope="mail offline_access")
    response = as_admin.post(f"/mailboxes/{box.pk}/connect/")
    assert response.status_code == 200 and "Location" not in response
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    consent = oauth.authorization_endpoint + "?"
    assert f'<meta http-equiv="refresh" content="0;url={consent}' in html
    assert f'id="continue" href="{consent}' in html and "code_challenge_method=S256" in html
    assert "form-action 'self'" in response["Content-Security-Policy"]


# --- add and edit ------------------------------------------------------------------------


def test_add_a_maildir_mailbox(as_admin, admin):
    response = as_admin.post("/mailboxes/add/", form_data())
    box = Mailbox.objects.get(name="sales")
    assert response.status_code == 302 and response["Location"] == f"/mailboxes/{box.pk}/"
    assert (box.protocol, box.path, box.after_import, box.address, box.enabled) == (
        "maildir", "/srv/mail/sales", "keep", "sales@desk.example", True)
    event = AuditEvent.objects.get()
    assert (event.actor, event.kind, event.target) == (admin, "mailbox.added", f"mailbox {box.pk}")
    assert "Added mailbox sales" in as_admin.get(response["Location"]).content.decode()


def test_add_an_imap_mailbox_encrypts_the_password_and_never_shows_it(as_admin):
    response = as_admin.post("/mailboxes/add/", imap_data(assign=""))
    assert response.status_code == 302
    box = Mailbox.objects.get(name="office")
    assert box.secret and SECRET not in box.secret
    assert secrets.decrypt(box.secret) == SECRET
    assert (box.port, box.security, box.verify_tls, box.assign_to) == (993, "tls", True, None)  # the default port
    for url in ["/mailboxes/", f"/mailboxes/{box.pk}/", f"/mailboxes/{box.pk}/edit/"]:
        html = as_admin.get(url).content.decode()
        assert SECRET not in html and box.secret not in html, url
    assert SECRET not in AuditEvent.objects.get().detail


def test_a_rejected_form_does_not_echo_the_password(as_admin):
    response = as_admin.post("/mailboxes/add/", imap_data(host=""))
    assert response.status_code == 200
    html = response.content.decode()
    assert "an imap mailbox needs a host" in html
    assert SECRET not in html
    assert not Mailbox.objects.exists()


@pytest.mark.parametrize(
    "overrides, field, says",
    [
        ({"protocol": "imap", "path": ""}, "host", "an imap mailbox needs a host"),
        ({"protocol": "imap", "path": ""}, "username", "an imap mailbox needs a username"),
        ({"path": ""}, "path", "a maildir mailbox needs a path"),
        ({"protocol": "pop3", "host": "pop.desk.example", "username": "desk", "after": "move"}, "after",
         "after import move is not possible with pop3 (use delete, keep)"),
        ({"name": "support"}, "name", "mailbox 'support' exists already"),
        ({"name": "a/b"}, "name", "no '/'"),
        ({"port": "70000", "protocol": "imap", "host": "h", "username": "u"}, "port", "less than or equal to 65535"),
        ({"size_limit": "0"}, "size_limit", "greater than or equal to 0.001"),
        ({"protocol": "smtp"}, "protocol", "Select a valid choice"),
    ],
    ids=["no-host", "no-username", "no-path", "pop3-move", "taken-name", "slash-in-name", "port", "size", "protocol"],
)
def test_form_errors_are_shown_on_their_field(as_admin, support, overrides, field, says):
    response = as_admin.post("/mailboxes/add/", form_data(**overrides))
    assert response.status_code == 200
    form = response.context["form"]
    assert any(says in error for error in form.errors[field]), form.errors
    assert says.replace("'", "&#x27;") in response.content.decode()
    assert list(Mailbox.objects.values_list("name", flat=True)) == ["support"]
    assert not AuditEvent.objects.exists()


def test_edit_changes_settings_and_a_blank_password_keeps_the_secret(as_admin, admin, staff):
    as_admin.post("/mailboxes/add/", imap_data())
    box = Mailbox.objects.get(name="office")
    kept = box.secret

    form = as_admin.get(f"/mailboxes/{box.pk}/edit/")
    assert form.context["form"].initial["host"] == "imap.desk.example"
    assert 'type="password"' in form.content.decode() and "a password is set" in form.content.decode()

    response = as_admin.post(f"/mailboxes/{box.pk}/edit/", imap_data(
        name="front", password="", host="mail.desk.example", after="move", move_folder="Done", assign=staff.pk,
        verify_tls=None, poll_interval="120", size_limit="1.5"))

    assert response.status_code == 302 and response["Location"] == f"/mailboxes/{box.pk}/"
    box.refresh_from_db()
    assert (box.name, box.host, box.after_label, box.assign_to, box.verify_tls, box.poll_interval) == (
        "front", "mail.desk.example", "move:Done", staff, False, 120)
    assert box.size_limit == int(1.5 * 1048576)
    assert box.secret == kept
    event = AuditEvent.objects.latest("id")
    assert (event.actor, event.kind, event.target) == (admin, "mailbox.edited", f"mailbox {box.pk}")
    # Certificate verification off: the mailbox page says so, prominently.
    page = as_admin.get(f"/mailboxes/{box.pk}/").content.decode()
    assert 'class="warnings" role="alert"' in page and "certificate verification is OFF" in page

    as_admin.post(f"/mailboxes/{box.pk}/edit/", imap_data(name="front", password="new-secret", assign=""))
    box.refresh_from_db()
    assert secrets.decrypt(box.secret) == "new-secret" and box.assign_to is None
    assert "password (changed)" in AuditEvent.objects.latest("id").detail


def test_a_rejected_edit_changes_nothing(as_admin, support):
    response = as_admin.post(f"/mailboxes/{support.pk}/edit/", form_data(name="support", path=""))
    assert response.status_code == 200
    assert "a maildir mailbox needs a path" in response.content.decode()
    support.refresh_from_db()
    assert support.path and support.name == "support"
    assert not AuditEvent.objects.exists()


def test_the_cli_and_the_form_validate_alike(support):
    with pytest.raises(CommandError) as failed:
        call_command("mailbox", "add", "pop", "--protocol", "pop3", "--host", "pop.desk.example", "--username", "desk",
                     "--after", "move:Done", stdout=io.StringIO(), stderr=io.StringIO())
    assert "after import move is not possible with pop3 (use delete, keep)" in str(failed.value)
    call_command("mailbox", "edit", "support", "--after", "seen", stdout=io.StringIO(), stderr=io.StringIO())
    event = AuditEvent.objects.get()
    assert (event.actor, event.kind, event.target) == (None, "mailbox.edited", f"mailbox {support.pk}")


# --- test connection ------------------------------------------------------------------------


def test_connection_failure_is_shown_exactly(as_admin, admin, support, data_dir):
    support.path = str(data_dir / "no-such-maildir")
    support.save()
    expected = f"{data_dir / 'no-such-maildir'} is not a Maildir (no cur/ and new/ directories)"

    response = as_admin.post(f"/mailboxes/{support.pk}/test/")

    assert response.status_code == 200
    result = response.context["test_result"]
    assert (result.ok, result.kind, result.message, result.permanent) == (False, "folder", expected, True)
    html = response.content.decode()
    assert "Connection test: failed" in html and "<strong>folder:</strong>" in html and expected in html
    event = AuditEvent.objects.get()
    assert (event.actor, event.kind, event.detail) == (admin, "mailbox.tested", f"support: folder: {expected}")
    support.refresh_from_db()
    assert support.consecutive_failures == 0 and not support.last_error  # a test is not a fetch


def test_connection_success_counts_the_messages(as_admin, support):
    for subject in ("One", "Two"):
        maildir_deliver(support.path, make_message(subject=subject))
    response = as_admin.post(f"/mailboxes/{support.pk}/test/")
    assert response.status_code == 200
    assert response.context["test_result"].ok
    assert "ok, 2 messages in INBOX" in response.content.decode()
    assert AuditEvent.objects.get().detail == "support: ok, 2 messages in INBOX"
    assert Intake.objects.count() == 0  # nothing imported


def test_a_password_that_cannot_be_decrypted_is_a_failure_too(as_admin):
    box = Mailbox.objects.create(name="office", protocol="imap", host="imap.desk.example", port=993, username="desk",
                                 secret="not-a-fernet-token")
    response = as_admin.post(f"/mailboxes/{box.pk}/test/")
    result = response.context["test_result"]
    assert (result.ok, result.kind) == (False, "secret")
    assert "cannot be decrypted" in response.content.decode()


def test_shared_result_reads_like_the_cli(support):
    result = mailboxes.test_connection(support)
    assert result.summary == "ok, 0 messages in INBOX" and result.as_dict() == {"ok": True, "messages": 0}


def test_the_pass_deadline_is_set_in_the_form(as_admin, admin):
    as_admin.post("/mailboxes/add/", form_data(pass_deadline="120"))
    box = Mailbox.objects.get(name="sales")
    assert box.pass_deadline == 120
    as_admin.post(f"/mailboxes/{box.pk}/edit/", form_data(pass_deadline=""))  # blank: unchanged
    assert Mailbox.objects.get(pk=box.pk).pass_deadline == 120
    response = as_admin.post(f"/mailboxes/{box.pk}/edit/", form_data(pass_deadline="3"))
    assert response.status_code == 200 and Mailbox.objects.get(pk=box.pk).pass_deadline == 120
