"""Sending and acknowledgement settings, as `postdesk mailbox add/edit` and the admin form set
them (both through postdesk.mailboxes): the SMTP password encrypted and never shown, the
templates checked when they are saved, and the same mistakes refused by both."""

from __future__ import annotations

import io
import json
import sys

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from postdesk import mailboxes, secrets
from postdesk.models import AuditEvent, Mailbox
from postdesk.outbound import acknowledge

pytestmark = pytest.mark.django_db

FETCH_SECRET, SMTP_SECRET = "fetch-secret-123", "smtp-secret-456"


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    secrets._fernet.cache_clear()  # the mailbox key lives in this test's data dir
    yield settings.DATA_DIR
    secrets._fernet.cache_clear()


def mailbox_command(*args, stdin: str = "") -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        call_command("mailbox", *map(str, args), stdout=out, stderr=err)
    finally:
        sys.stdin = saved
    return out.getvalue(), err.getvalue()


def maildir(**settings) -> dict:
    return {"name": "support", "protocol": "maildir", "path": "/srv/mail/support", "after": "keep",
            "address": "support@desk.example", **settings}


SMTP = {"smtp_host": "smtp.desk.example", "smtp_username": "mailer", "smtp_password": SMTP_SECRET}


# --- the command line ------------------------------------------------------------------------


def test_cli_sets_every_sending_and_acknowledgement_setting(tmp_path):
    body = tmp_path / "body.txt"
    body.write_text("Hi {{ customer_name }}, we have {{ tag }}.\n", encoding="utf-8")

    out, err = mailbox_command(
        "add", "office", "--protocol", "imap", "--host", "imap.desk.example", "--security", "tls", "--username", "desk",
        "--password-stdin", "--smtp-host", "smtp.desk.example", "--smtp-port", 2525, "--smtp-security", "starttls",
        "--smtp-username", "mailer", "--smtp-password-stdin", "--smtp-ca-file", "/etc/postdesk/ca.pem",
        "--from-address", "help@desk.example", "--from-name", "Desk Help", "--sent-folder", "Sent", "--ack",
        "--ack-subject", "Got it: {{ subject }}", "--ack-body-file", body, "--ack-backlog", "--ack-daily-limit", 3,
        "--json", stdin=f"{FETCH_SECRET}\n{SMTP_SECRET}\n")  # fetching password first, SMTP second

    shown = json.loads(out)
    assert {k: shown[k] for k in ("smtp_same_as_fetch", "smtp_host", "smtp_port", "smtp_security", "smtp_verify_tls",
                                  "smtp_ca_file", "smtp_username", "smtp_password", "from_address", "from_name",
                                  "sent_folder", "ack", "ack_subject", "ack_body", "ack_backlog", "ack_daily_limit")} == {
        "smtp_same_as_fetch": False, "smtp_host": "smtp.desk.example", "smtp_port": 2525, "smtp_security": "starttls",
        "smtp_verify_tls": True, "smtp_ca_file": "/etc/postdesk/ca.pem", "smtp_username": "mailer",
        "smtp_password": "(set)", "from_address": "help@desk.example", "from_name": "Desk Help", "sent_folder": "Sent",
        "ack": True, "ack_subject": "Got it: {{ subject }}", "ack_body": "Hi {{ customer_name }}, we have {{ tag }}.\n",
        "ack_backlog": True, "ack_daily_limit": 3}
    box = Mailbox.objects.get(name="office")
    assert secrets.decrypt(box.secret) == FETCH_SECRET and secrets.decrypt(box.smtp_secret) == SMTP_SECRET
    assert SMTP_SECRET not in box.smtp_secret
    event = AuditEvent.objects.get()
    assert "smtp_password (changed)" in event.detail and "sends via smtp.desk.example:2525 starttls" in event.detail
    for text in (out, err, event.detail, *mailbox_command("show", "office"), *mailbox_command("list", "--json")):
        assert SMTP_SECRET not in text and FETCH_SECRET not in text

    # Same as fetching: the IMAP host and login, TLS because fetching uses TLS (the SMTP port set stays).
    out, _ = mailbox_command("edit", "office", "--smtp-same-as-fetch", "--no-ack", "--ack-subject", "", "--json")
    shown = json.loads(out)
    assert (shown["smtp_host"], shown["smtp_port"], shown["smtp_security"], shown["smtp_username"]) == (
        "imap.desk.example", 2525, "tls", "desk")
    assert (shown["ack"], shown["ack_subject"], shown["ack_backlog"]) == (False, "", True)


def test_cli_reads_the_smtp_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("SMTP_PW", SMTP_SECRET)
    mailbox_command("add", "support", "--protocol", "maildir", "--path", "/srv/mail/support", "--smtp-host", "smtp.example",
                    "--smtp-username", "mailer", "--smtp-password-env", "SMTP_PW")
    assert secrets.decrypt(Mailbox.objects.get().smtp_secret) == SMTP_SECRET


def test_cli_wants_the_second_line_for_the_smtp_password():
    with pytest.raises(CommandError) as failed:
        mailbox_command("add", "office", "--protocol", "imap", "--host", "imap.example", "--username", "desk",
                        "--password-stdin", "--smtp-password-stdin", stdin=f"{FETCH_SECRET}\n")
    assert "no SMTP password on standard input (the second line, after the fetching password)" in str(failed.value)
    assert not Mailbox.objects.exists()


def test_cli_names_the_option_that_fixes_a_problem():
    with pytest.raises(CommandError) as failed:
        mailbox_command("add", "support", "--protocol", "maildir", "--path", "/srv/mail/support", "--address",
                        "support@desk.example", "--ack")
    assert "acknowledgements need an SMTP server to send through (or 'same as fetching') (--smtp-host)" in str(failed.value)


# --- what is refused, by both ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, setting, says",
    [
        (maildir(ack_enabled=True), "smtp_host", "acknowledgements need an SMTP server"),
        (maildir(ack_enabled=True, address="", **SMTP), "from_address", "acknowledgements need a From address"),
        (maildir(smtp_same_as_fetch=True), "smtp_same_as_fetch", "a maildir mailbox has no server to send through"),
        (maildir(ack_subject="{% if %}"), "ack_subject", "the acknowledgement subject template does not work"),
        (maildir(ack_body="Hello {{ name|nosuchfilter }}"), "ack_body", "the acknowledgement body template does not work"),
        (maildir(smtp_security="ssl"), "smtp_security", "SMTP security must be tls, starttls or none"),
        (maildir(smtp_port=70000), "smtp_port", "the SMTP port must be between 1 and 65535"),
        (maildir(ack_daily_limit=0), "ack_daily_limit", "at least 1"),
        (maildir(sent_folder="Sent"), "sent_folder", "a copy in a Sent folder needs an IMAP mailbox"),
        (maildir(smtp_host="smtp.example", smtp_username="mailer"), "smtp_password", "an SMTP username needs the SMTP password"),
        (maildir(from_address="Support <support@desk.example>"), "from_address", "must be one address"),
        (maildir(from_name="Support\r\nBcc: everyone@example.com"), "from_name", "the From name must be one line"),
    ],
    ids=["ack-without-smtp", "ack-without-from", "same-as-fetch-maildir", "subject-syntax", "body-filter", "security",
         "port", "daily-limit", "sent-folder-maildir", "username-without-password", "from-with-name", "from-name-header"],
)
def test_settings_that_cannot_work_are_refused(changes, setting, says):
    with pytest.raises(mailboxes.InvalidSettings) as refused:
        mailboxes.add(changes)
    assert says in refused.value.errors[setting], refused.value.errors
    assert not Mailbox.objects.exists()


def test_templates_are_checked_with_the_engine_that_renders_them():
    mailboxes.add(maildir(ack_subject="{{ subject|upper }} {{ tag }}", ack_body="{% if customer_name %}Hi{% endif %}"))
    assert acknowledge.render("{{ subject|upper }}", {"subject": "fire"}) == "FIRE"


def test_warnings_for_sending_without_verification_or_tls():
    box = mailboxes.add(maildir(smtp_host="smtp.example", smtp_security="none", smtp_verify_tls=False))
    found = mailboxes.warnings(box)
    assert any("certificate verification for sending is OFF" in w for w in found)
    assert any("sending without TLS" in w for w in found)
    assert mailboxes.warnings(mailboxes.edit(box, {"smtp_security": "starttls", "smtp_verify_tls": True})) == []


# --- the admin form ---------------------------------------------------------------------------------


@pytest.fixture
def as_admin(client):
    client.force_login(User.objects.create_user("ada", "ada@example.com", "pw", is_staff=True, is_superuser=True))
    return client


def form(**overrides) -> dict:
    data = {"name": "sales", "address": "sales@desk.example", "protocol": "maildir", "enabled": "on", "security": "tls",
            "verify_tls": "on", "path": "/srv/mail/sales", "folder": "INBOX", "after": "keep", "move_folder": "Imported",
            "poll_interval": "60", "size_limit": "50", "smtp_host": "smtp.desk.example", "smtp_port": "",
            "smtp_security": "starttls", "smtp_verify_tls": "on", "smtp_username": "mailer", "smtp_password": SMTP_SECRET,
            "from_address": "", "from_name": "Sales Team", "ack_enabled": "on", "ack_subject": "",
            "ack_body": "Dear {{ customer_name }}, see {{ tag }}.", "ack_daily_limit": "5"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_the_form_has_sending_and_acknowledgement_fieldsets_with_the_placeholders(as_admin):
    html = as_admin.get("/mailboxes/add/").content.decode()
    assert "<legend>Sending</legend>" in html and "<legend>Acknowledgement</legend>" in html
    for placeholder in ("number", "tag", "subject", "customer_name", "customer_address", "mailbox_name"):
        assert f"<code>{{{{ {placeholder} }}}}</code>" in html, placeholder
    assert "{{ subject }} {{ tag }}" in html  # the default subject
    assert "thank you for your message. We have received it as request {{ tag }}" in html  # the default body


def test_the_form_saves_sending_and_acknowledgement_and_never_shows_the_smtp_password(as_admin):
    response = as_admin.post("/mailboxes/add/", form())
    assert response.status_code == 302, response.context["form"].errors
    box = Mailbox.objects.get(name="sales")
    assert (box.smtp_host, box.smtp_port, box.smtp_username, box.from_name, box.ack_enabled, box.ack_daily_limit) == (
        "smtp.desk.example", None, "mailer", "Sales Team", True, 5)
    assert secrets.decrypt(box.smtp_secret) == SMTP_SECRET
    for url in ["/mailboxes/", f"/mailboxes/{box.pk}/", f"/mailboxes/{box.pk}/edit/"]:
        html = as_admin.get(url).content.decode()
        assert SMTP_SECRET not in html and box.smtp_secret not in html, url
    page = as_admin.get(f"/mailboxes/{box.pk}/").content.decode()
    assert "<h2 id=\"sending-heading\">Sending</h2>" in page and "smtp.desk.example" in page and "587" in page
    assert "Dear {{ customer_name }}, see {{ tag }}." in page

    # A blank SMTP password keeps the one set; switching acknowledgements off keeps the templates.
    kept = box.smtp_secret
    response = as_admin.post(f"/mailboxes/{box.pk}/edit/", form(smtp_password="", ack_enabled=None))
    assert response.status_code == 302
    box.refresh_from_db()
    assert box.smtp_secret == kept and not box.ack_enabled and box.ack_body == "Dear {{ customer_name }}, see {{ tag }}."


def test_the_form_shows_a_broken_template_on_its_field(as_admin):
    response = as_admin.post("/mailboxes/add/", form(ack_body="Dear {% if customer_name %}"))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "the acknowledgement body template does not work" in errors["ack_body"][0]
    assert SMTP_SECRET not in response.content.decode()
    assert not Mailbox.objects.exists()


def test_the_django_admin_does_not_show_the_smtp_secret(client):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    box = mailboxes.add(maildir(**SMTP))
    page = client.get(f"/admin/postdesk/mailbox/{box.pk}/change/").content.decode()
    assert box.smtp_secret not in page and 'name="smtp_secret"' not in page
