"""The table of mailbox settings (postdesk.mailbox_settings): every setting has its label, CLI
option, form field and JSON, or says why not; the OAuth2 settings through the CLI, the form
and `mailbox show --json`; the client secret never shown."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.utils import timezone

from postdesk import mailbox_settings, mailboxes, secrets
from postdesk.management.commands.mailbox import Command
from postdesk.models import AuditEvent, Mailbox, OAuthGrant
from postdesk.web.mailboxes import FORM_SETTINGS, MailboxForm

pytestmark = pytest.mark.django_db

CLIENT_SECRET = "client-secret-7f3a9"
KINDS = {"text", "int", "float", "bool", "choice", "secret", "user", "after"}
# Mailbox columns that are not settings: the secrets' companions, health, leases, identity.
NOT_SETTINGS = {"id", "last_attempt_at", "last_success_at", "last_error", "last_error_at", "consecutive_failures",
                "last_error_kind", "fetch_lease_owner", "fetch_lease_until", "fetch_lease_token", "uidvalidity",
                "uidvalidity_changes", "identity_unstable_at", "created_at", "updated_at"}


from tests.outbound.test_settings import data_dir, mailbox_command  # noqa: F401  (the fixture, shared)


def cli_flags(action: str) -> set[str]:
    parser = Command().create_parser("postdesk", "mailbox")
    sub = next(a for a in parser._actions if a.dest == "action")
    return {flag for a in sub.choices[action]._actions for flag in a.option_strings}


# --- the table: nothing forgotten ------------------------------------------------------------------


@pytest.mark.parametrize("setting", mailbox_settings.SETTINGS, ids=lambda s: s.name)
def test_every_setting_has_a_label_an_option_a_field_and_json_or_says_why_not(setting):
    assert setting.label and setting.label[0].isupper() and "_" not in setting.label
    assert setting.kind in KINDS and setting.group in mailbox_settings.GROUPS
    assert setting.options or setting.no_option, "a CLI option, or no_option saying why not"
    assert setting.form or setting.no_form, "a form field, or no_form saying why not"
    assert setting.in_json or setting.name == "move_folder"  # shown in "after" (move:FOLDER)
    flags = cli_flags("add") | cli_flags("edit")
    for option in setting.options:
        assert option.flag in flags
    if setting.form:
        assert setting.name in MailboxForm().fields
        assert MailboxForm().fields[setting.name].label == setting.label
    if setting.kind == "choice" and setting.name not in ("protocol",):
        assert setting.choices
    Mailbox._meta.get_field(setting.stored_in)  # stored in a real column


def test_every_column_of_a_mailbox_is_a_setting_or_known_not_to_be():
    stored = {s.stored_in for s in mailbox_settings.SETTINGS} | {"move_folder"}
    columns = {f.attname.removesuffix("_id") if f.name == "assign_to" else f.name
               for f in Mailbox._meta.concrete_fields}
    assert columns - stored - NOT_SETTINGS == set(), "a new Mailbox column needs a row in mailbox_settings.SETTINGS"


def test_the_form_labels_read_for_people():
    labels = {s.name: s.label for s in FORM_SETTINGS}
    assert labels["verify_tls"] == "Verify the server's certificate"
    assert labels["ca_file"] == "CA certificate file (PEM)" and labels["size_limit"] == "Size limit (MB)"
    for label in labels.values():
        assert not re.search(r"\b(tls|mb|ca)\b", label), label  # not "Verify tls", "Size limit mb"


def test_the_json_keys_stay_as_they_were():
    box = mailboxes.add({"name": "support", "protocol": "maildir", "path": "/srv/mail", "after": "keep"})
    shown = mailboxes.as_dict(box)
    for key in ("name", "address", "protocol", "host", "port", "security", "verify_tls", "ca_file", "username",
                "password", "folder", "path", "after", "assign", "enabled", "poll_interval", "pass_deadline",
                "size_limit_mb", "smtp_same_as_fetch", "smtp_host", "smtp_port", "smtp_security", "smtp_verify_tls",
                "smtp_ca_file", "smtp_username", "smtp_password", "from_address", "from_name", "sent_folder", "ack",
                "ack_subject", "ack_body", "ack_backlog", "ack_daily_limit", "auth", "smtp_auth", "oauth",
                "last_error", "warnings"):
        assert key in shown, key
    assert shown["oauth"] is None and shown["auth"] == "password"


# --- OAuth2 through the command line -----------------------------------------------------------------


def test_an_oauth_mailbox_round_trips_through_the_cli(monkeypatch):
    monkeypatch.setenv("CLIENT_SECRET", CLIENT_SECRET)
    out, err = mailbox_command(
        "add", "office", "--protocol", "imap", "--host", "outlook.office365.com", "--security", "tls",
        "--username", "support@example.com", "--oauth", "microsoft", "--oauth-client-id", "app-123",
        "--oauth-client-secret-env", "CLIENT_SECRET", "--oauth-tenant", "example.onmicrosoft.com",
        "--oauth-scope", "https://outlook.office.com/IMAP.AccessAsUser.All offline_access", "--smtp-same-as-fetch",
        "--json")
    shown = json.loads(out)
    assert (shown["auth"], shown["password"], shown["smtp_auth"]) == ("oauth", "(not set)", "oauth")  # sends with the grant
    assert shown["oauth"] == {
        "provider": "microsoft", "tenant": "example.onmicrosoft.com", "client_id": "app-123", "client_secret": "(set)",
        "scope": "https://outlook.office.com/IMAP.AccessAsUser.All offline_access", "state": "not connected"}
    box = Mailbox.objects.get(name="office")
    assert secrets.decrypt(box.oauth_client_secret) == CLIENT_SECRET and CLIENT_SECRET not in box.oauth_client_secret
    assert "(OAuth2 microsoft)" in AuditEvent.objects.get().detail

    # A grant: its state and times are shown, never a token.
    now = timezone.now()
    OAuthGrant.objects.create(mailbox=box, refresh_token=secrets.encrypt("refresh-TOKEN"),
                              access_token=secrets.encrypt("access-TOKEN"), access_expires_at=now,
                              granted_scope="IMAP.AccessAsUser.All", connected_at=now, refresh_failures=2,
                              last_error="provider down")
    out, _ = mailbox_command("show", "office", "--json")
    grant = json.loads(out)["oauth"]
    assert (grant["state"], grant["granted_scope"], grant["refresh_failures"], grant["last_error"]) == (
        "ok", "IMAP.AccessAsUser.All", 2, "provider down")
    assert grant["connected_at"] and grant["last_used_at"] is None
    texts = [out, *mailbox_command("show", "office"), *mailbox_command("list", "--json"), err,
             *AuditEvent.objects.values_list("detail", flat=True)]
    for text in texts:
        assert "TOKEN" not in text and CLIENT_SECRET not in text

    # Back to the password: the OAuth2 settings are kept but not used, and not shown.
    out, _ = mailbox_command("edit", "office", "--password-auth", "--no-smtp-same-as-fetch", "--password-stdin", "--json",
                             stdin="app-password\n")
    shown = json.loads(out)
    assert (shown["auth"], shown["password"], shown["oauth"], shown["smtp_auth"]) == ("password", "(set)", None, "password")
    assert "auth, password (changed)" in AuditEvent.objects.latest("id").detail


def test_the_smtp_grant_needs_oauth_sign_in():
    with pytest.raises(CommandError) as failed:
        mailbox_command("add", "office", "--protocol", "imap", "--host", "imap.example", "--username", "desk",
                        "--smtp-host", "smtp.example", "--smtp-oauth")
    assert "sending with OAuth2 needs the mailbox to sign in with OAuth2 too (--oauth PROVIDER) (--smtp-oauth)" in str(failed.value)


def test_oauth_with_an_own_smtp_server_needs_no_smtp_password():
    out, _ = mailbox_command("add", "office", "--protocol", "imap", "--host", "imap.gmail.com", "--username", "desk",
                             "--oauth", "google", "--oauth-client-id", "id", "--smtp-host", "smtp.gmail.com",
                             "--smtp-username", "desk", "--smtp-oauth", "--json")
    assert json.loads(out)["smtp_auth"] == "oauth"
    with pytest.raises(CommandError) as failed:  # back to the SMTP password: then one is needed
        mailbox_command("edit", "office", "--smtp-password-auth")
    assert "an SMTP username needs the SMTP password (--smtp-password-env)" in str(failed.value)


@pytest.mark.parametrize(
    "changes, setting, says",
    [
        ({"oauth_provider": ""}, "oauth_provider", "OAuth2 sign-in needs a provider"),
        ({"oauth_client_id": ""}, "oauth_client_id", "OAuth2 sign-in needs the client id"),
        ({"oauth_tenant": "common", "oauth_provider": "google"}, "oauth_tenant", "a tenant is for Microsoft only"),
        ({"oauth_tenant": "a b", "oauth_provider": "microsoft"}, "oauth_tenant", "the tenant must be common"),
        ({"protocol": "maildir", "path": "/srv/mail"}, "auth", "OAuth2 sign-in is for IMAP and POP3 mailboxes"),
        ({"auth": "kerberos"}, "auth", "sign-in must be password or oauth"),
        ({"oauth_scope": "a\nb"}, "oauth_scope", "the scopes must be one line"),
    ],
    ids=["no-provider", "no-client-id", "tenant-not-microsoft", "tenant-shape", "maildir", "auth-kind", "scope-line"],
)
def test_oauth_settings_that_cannot_work_are_refused(changes, setting, says):
    settings = {"name": "office", "protocol": "imap", "host": "imap.example", "username": "desk", "auth": "oauth",
                "oauth_provider": "https://id.example.com/realms/mail", "oauth_client_id": "desk", **changes}
    with pytest.raises(mailboxes.InvalidSettings) as refused:
        mailboxes.add(settings)
    assert says in refused.value.errors[setting], refused.value.errors
    assert not Mailbox.objects.exists()


@pytest.mark.parametrize("provider", ["microsoft", "google", "https://id.example.com/realms/mail", "https://id.example.com",
                                      "http://127.0.0.1:8080/", "http://127.8.9.10/issuer", "http://[::1]:9000",
                                      "http://localhost:5556/dex"])
def test_providers_that_are_accepted(provider):
    assert mailbox_settings.provider_problem(provider) is None


@pytest.mark.parametrize("provider", ["okta", "http://id.example.com", "http://10.0.0.1/", "http://[::2]/",
                                      "http://localhost.example.com/", "ftp://id.example.com", "https://",
                                      "https://id.example.com/?tenant=1", "https://id.example.com/#x",
                                      "https://user@id.example.com/", "//id.example.com"])
def test_providers_that_are_refused(provider):
    problem = mailbox_settings.provider_problem(provider)
    assert problem and "must be microsoft, google or an issuer URL starting with https://" in problem


def test_a_plain_http_provider_is_refused_by_the_cli_in_plain_words():
    with pytest.raises(CommandError) as failed:
        mailbox_command("add", "office", "--protocol", "imap", "--host", "imap.example", "--username", "desk",
                        "--oauth", "http://id.example.com", "--oauth-client-id", "desk")
    assert "http:// only on this machine: 127.0.0.1, ::1 or localhost" in str(failed.value)
    assert "(--oauth)" in str(failed.value) and not Mailbox.objects.exists()


def test_cli_secret_sources_are_one_at_a_time(monkeypatch):
    monkeypatch.setenv("PW", "x")
    with pytest.raises(CommandError) as failed:
        mailbox_command("add", "office", "--protocol", "imap", "--host", "h", "--username", "u", "--password-stdin",
                        "--password-env", "PW", stdin="y\n")
    assert "give --password-stdin or --password-env, not both" in str(failed.value)


def test_cli_zero_is_a_value_not_an_absence():
    with pytest.raises(CommandError) as failed:
        mailbox_command("add", "support", "--protocol", "maildir", "--path", "/srv/mail", "--ack-daily-limit", 0)
    assert "the daily limit of acknowledgements per sender is at least 1 (--ack-daily-limit)" in str(failed.value)


# --- the form --------------------------------------------------------------------------------------


@pytest.fixture
def as_admin(client):
    client.force_login(User.objects.create_user("ada", "ada@example.com", "pw", is_staff=True, is_superuser=True))
    return client


def field_tag(html: str, name: str) -> str:
    """The opening tag of the .field div holding the input called `name`."""
    at = html.index(f'name="{name}"')
    start = html.rindex('<div class="field', 0, at)
    return html[start:html.index(">", start) + 1]


def test_the_edit_form_of_a_maildir_mailbox_hides_the_server_fields(as_admin):
    box = mailboxes.add({"name": "support", "protocol": "maildir", "path": "/srv/mail", "after": "keep",
                         "verify_tls": True})
    html = as_admin.get(f"/mailboxes/{box.pk}/edit/").content.decode()
    for name in ("host", "port", "security", "verify_tls", "ca_file", "username", "password", "auth", "oauth_provider",
                 "oauth_client_secret", "sent_folder", "smtp_same_as_fetch"):
        assert " hidden" in field_tag(html, name), name
    for name in ("name", "path", "folder", "after", "smtp_host", "ack_enabled"):
        assert " hidden" not in field_tag(html, name), name
    assert re.search(r"<fieldset hidden>\s*<legend>Connection</legend>", html)
    assert "mailbox-form.js" in html
    # Hidden fields are still posted: saving changes none of them.
    data = {k: v for k, v in MailboxForm(mailbox=box).initial.items() if v not in (None, False)}
    data.update(verify_tls="on", enabled="on", name="support", assign="")
    response = as_admin.post(f"/mailboxes/{box.pk}/edit/", data)
    assert response.status_code == 302, response.context["form"].errors
    box.refresh_from_db()
    assert box.verify_tls and box.protocol == "maildir"


def _fold(legend: str, opened: bool) -> str:
    return f'<details class="fold"{" open" if opened else ""}><summary><span class="fold-name">{legend}</span>'


def test_sending_and_acknowledgements_fold_away_until_used(as_admin):
    html = as_admin.get("/mailboxes/add/").content.decode()
    for legend in ("After import", "Sending", "Acknowledgement", "Advanced"):
        assert _fold(legend, False) in html, legend
    for legend in ("Connection", "Sign-in"):  # what every new mailbox needs: open, and folds on a click
        assert _fold(legend, True) in html, legend
    box = mailboxes.add({"name": "support", "protocol": "maildir", "path": "/srv/mail", "after": "keep",
                         "smtp_host": "smtp.example", "address": "support@example.com", "ack_enabled": True})
    html = as_admin.get(f"/mailboxes/{box.pk}/edit/").content.decode()
    for legend in ("After import", "Sending", "Acknowledgement"):  # in use: "keep" is not the default
        assert _fold(legend, True) in html, legend
    assert _fold("Advanced", False) in html  # every value at its default


def test_the_add_form_hides_nothing_until_a_protocol_is_chosen(as_admin):
    html = as_admin.get("/mailboxes/add/").content.decode()
    assert " hidden" not in field_tag(html, "host") and " hidden" not in field_tag(html, "path")
    assert 'data-protocols="imap pop3"' in field_tag(html, "host") and 'data-auth="oauth"' in field_tag(html, "oauth_provider")


def test_the_form_shows_oauth_fields_for_an_oauth_mailbox_only(as_admin):
    box = mailboxes.add({"name": "office", "protocol": "imap", "host": "imap.example", "username": "desk",
                         "auth": "oauth", "oauth_provider": "google", "oauth_client_id": "id",
                         "oauth_client_secret": CLIENT_SECRET})
    html = as_admin.get(f"/mailboxes/{box.pk}/edit/").content.decode()
    assert " hidden" not in field_tag(html, "oauth_client_id") and " hidden" in field_tag(html, "password")
    assert CLIENT_SECRET not in html and box.oauth_client_secret not in html
    assert "a secret is set; leave blank to keep it" in html
    page = as_admin.get(f"/mailboxes/{box.pk}/").content.decode()
    assert "Client secret" in page and "(set)" in page and "not connected" in page and CLIENT_SECRET not in page


def test_an_oauth_mailbox_is_added_with_the_form(as_admin):
    data = {"name": "office", "protocol": "imap", "enabled": "on", "host": "imap.example", "security": "tls",
            "verify_tls": "on", "username": "desk", "auth": "oauth", "oauth_provider": "http://127.0.0.1:9/realms/x",
            "oauth_client_id": "desk-app", "oauth_client_secret": CLIENT_SECRET, "folder": "INBOX", "after": "seen",
            "poll_interval": "60", "size_limit": "50", "smtp_security": "starttls", "smtp_verify_tls": "on",
            "ack_daily_limit": "5"}
    response = as_admin.post("/mailboxes/add/", data)
    assert response.status_code == 302, response.context["form"].errors
    box = Mailbox.objects.get(name="office")
    assert (box.auth, box.oauth_provider, box.oauth_client_id) == ("oauth", "http://127.0.0.1:9/realms/x", "desk-app")
    assert secrets.decrypt(box.oauth_client_secret) == CLIENT_SECRET
    detail = AuditEvent.objects.get().detail
    assert "oauth_client_secret (changed)" in detail and CLIENT_SECRET not in detail

    response = as_admin.post(f"/mailboxes/{box.pk}/edit/", {**data, "oauth_provider": "http://id.example.com/"})
    assert response.status_code == 200
    assert "an issuer URL starting with https://" in response.context["form"].errors["oauth_provider"][0]
    assert CLIENT_SECRET not in response.content.decode()


def test_the_django_admin_passes_djangos_checks():
    call_command("check", stdout=io.StringIO())  # duplicate or unknown fields in the fieldsets fail here


def test_the_django_admin_groups_the_settings_and_hides_every_secret(client):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    box = mailboxes.add({"name": "office", "protocol": "imap", "host": "imap.example", "username": "desk",
                         "auth": "oauth", "oauth_provider": "google", "oauth_client_id": "id",
                         "oauth_client_secret": CLIENT_SECRET})
    page = client.get(f"/admin/postdesk/mailbox/{box.pk}/change/").content.decode()
    assert box.oauth_client_secret not in page and 'name="oauth_client_secret"' not in page and CLIENT_SECRET not in page
    for legend in ("Connection", "Sign-in", "After import", "Sending", "Advanced", "Health and state"):
        assert f">{legend}</h2>" in page, legend
    assert "Verify the server&#x27;s certificate" in page and "Size limit (MB)" in page
