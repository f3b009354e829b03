"""Every setting of a mailbox, declared once: the table `SETTINGS`.

One `Setting` row says what a setting is called for people (label, help), what
kind of value it holds, where it is stored, which protocols and sign-in it
applies to, which group of the form it belongs to, its `postdesk mailbox`
options, how it reads in JSON, and what makes its value wrong.  From the table
come the CLI options (management/commands/mailbox.py), the web form
(web/mailboxes.py), the Django admin's hidden fields, `mailboxes.apply()`,
`problems()`, `as_dict()` and the audit of what changed.  A new setting is one
row here (tests/test_mailbox_settings.py walks the table, so none is forgotten).

Rules that join several settings (an IMAP mailbox needs a host, acknowledgements
need an SMTP server) are the named functions in `RULES`, after the table.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from postdesk.models import Mailbox

MB = 1048576
MIN_PASS_DEADLINE = 10  # seconds: less would not leave time to log in and list
AFTER_POLICIES = ("keep", "seen", "move", "delete")
# POP3 can neither mark a message nor move it.
POLICIES = {"imap": set(AFTER_POLICIES), "pop3": {"keep", "delete"}, "maildir": set(AFTER_POLICIES)}
SERVERS = frozenset({"imap", "pop3"})
EVERY_PROTOCOL = frozenset(Mailbox.Protocol.values)
AUTHS = ("password", "oauth")
NAMED_PROVIDERS = ("microsoft", "google")

# The sections of the web form, the Django admin and `mailbox add --help`, in order.
GROUPS = ("Mailbox", "Connection", "Sign-in", "After import", "Sending", "Acknowledgement", "Advanced")


@dataclass(frozen=True)
class Option:
    """One `postdesk mailbox add/edit` option of a setting.

    takes:  "value"  --flag VALUE, read as the setting's kind
            "const"  --flag alone sets `const` (a later option of the same setting wins:
                     put the "off" flag last, so --no-verify beats --verify)
            "negatable"  --flag / --no-flag (argparse.BooleanOptionalAction)
            "env"    --flag VAR: the value of that environment variable (secrets)
            "stdin"  --flag: one line of standard input (secrets, in table order)
            "file"   --flag PATH: the file's text (UTF-8)
    also:   other settings the option sets too (--oauth PROVIDER sets auth=oauth)."""

    flag: str
    takes: str = "value"
    const: object = None
    help: str = ""
    metavar: str | None = None
    edit_only: bool = False
    also: tuple[tuple[str, object], ...] = ()

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class Setting:
    """One mailbox setting.  `name` is its key in the changes that mailboxes.add/edit take.

    kind: text | int | float | bool | choice | secret | user | after
    field: the Mailbox field it is stored in (default: name)
    protocols / auth: what it applies to (the form hides it otherwise)
    options / no_option: its CLI options, or why it has none
    form: False with no_form saying why it has no form field
    json: its key in as_dict (a dotted key nests: "oauth.provider"); show: how it reads there
    check: what is wrong with its value on the mailbox (None: nothing)"""

    name: str
    label: str
    kind: str
    group: str
    help: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    field: str = ""
    protocols: frozenset[str] = EVERY_PROTOCOL
    auth: str = ""
    options: tuple[Option, ...] = ()
    no_option: str = ""
    hint: str = ""  # the option named in an error message (default: the first option; "-": none)
    form: bool = True
    no_form: str = ""
    required: bool = False  # the form refuses it blank
    blank_keeps: bool = False  # a blank form value leaves the setting as it is
    strip: bool = False
    minimum: float | None = None
    maximum: float | None = None
    widget: str = ""  # "textarea" | "password"
    json: str = ""
    show: Callable[[Mailbox], object] | None = None
    check: Callable[[Mailbox], str | None] | None = None
    noun: str = ""  # how a sentence names it ("SMTP password")
    in_json: bool = True  # False: shown as part of another setting

    @property
    def stored_in(self) -> str:
        return self.field or self.name

    @property
    def json_key(self) -> str:
        return self.json or self.name

    @property
    def option_hint(self) -> str:
        return self.hint or (self.options[0].flag if self.options else "")

    @property
    def only_for(self) -> str:
        """The protocols it applies to, space-separated ("" for every protocol): for the form's script."""
        return "" if self.protocols == EVERY_PROTOCOL else " ".join(sorted(self.protocols))

    def applies(self, protocol: str, auth: str) -> bool:
        """Whether the setting means anything for a mailbox of this protocol and sign-in."""
        return (not protocol or protocol in self.protocols) and (not self.auth or not auth or auth == self.auth)

    def read(self, mailbox: Mailbox) -> object:
        """The value as JSON shows it (secrets: only whether one is set)."""
        if self.show is not None:
            return self.show(mailbox)
        value = getattr(mailbox, self.stored_in)
        if self.kind == "secret":
            return "(set)" if value else "(not set)"
        return value


# --- per-setting checks: a sentence for people, or None ------------------------------------


def _between(low: int, high: int, what: str) -> Callable[[int | None], str | None]:
    def check(value):
        return None if value is None or low <= value <= high else f"{what} must be between {low} and {high}, not {value}"
    return check


def _port(m: Mailbox) -> str | None:
    return _between(1, 65535, "the port")(m.port)


def _smtp_port(m: Mailbox) -> str | None:
    return _between(1, 65535, "the SMTP port")(m.smtp_port)


def _name(m: Mailbox) -> str | None:
    name = m.name or ""
    if not name:
        return "a mailbox needs a name"
    if "/" in name or len(name) > 100:
        # The name is part of the queue's address (/queue/mailbox/NAME/).
        return "a mailbox name has at most 100 characters and no '/'"
    if Mailbox.objects.filter(name=name).exclude(pk=m.pk).exists():
        return f"mailbox {name!r} exists already"
    return None


def _one_of(field_name: str, allowed, what: str) -> Callable[[Mailbox], str | None]:
    def check(m):
        value = getattr(m, field_name)
        return None if value in allowed else f"{what} must be {_or(allowed)}, not {value!r}"
    return check


def _or(values) -> str:
    values = list(values)
    return ", ".join(values[:-1]) + " or " + values[-1] if len(values) > 1 else values[0]


def _one_line(what: str, field_name: str) -> Callable[[Mailbox], str | None]:
    return lambda m: f"{what} must be one line" if _has_line_break(getattr(m, field_name)) else None


def _has_line_break(value: str) -> bool:
    return any(c in (value or "") for c in "\r\n\x00")


def one_address(value: str) -> bool:
    from email.headerregistry import Address

    local, at, domain = (value or "").partition("@")
    if not (at and local and domain) or any(c.isspace() or c in "<>,;\"()@" for c in local + domain):
        return False
    try:
        Address(addr_spec=value)  # what compose.py will make of it
    except (ValueError, IndexError):
        return False
    return True


def _from_address(m: Mailbox) -> str | None:
    if m.from_address and not one_address(m.from_address):
        return f"the From address must be one address like support@example.com, not {m.from_address!r}"
    return None


def _template(setting: str, label: str) -> Callable[[Mailbox], str | None]:
    def check(m):
        from postdesk.outbound import acknowledge

        template = getattr(m, setting)
        if not template:
            return None
        try:
            acknowledge.render(template, acknowledge.sample_context(m))
        except Exception as exc:  # noqa: BLE001 (TemplateSyntaxError mostly; a filter may fail as it renders)
            return f"the acknowledgement {label} template does not work: {exc}"
        return None
    return check


def provider_problem(provider: str) -> str | None:
    """microsoft, google, or an issuer URL: https://, or http:// on a loopback host only
    (tests and local set-ups need no certificate; anywhere else a token would cross the
    network in plain text)."""
    if provider in NAMED_PROVIDERS:
        return None
    wrong = ("the OAuth2 provider must be microsoft, google or an issuer URL starting with https:// "
             f"(http:// only on this machine: 127.0.0.1, ::1 or localhost), not {provider!r}")
    try:
        url = urlsplit(provider)
        host = url.hostname or ""
    except ValueError:
        return wrong
    if not host or url.query or url.fragment or url.username is not None:
        return wrong  # RFC 8414: an issuer has no query, fragment or user
    if url.scheme == "https" or (url.scheme == "http" and is_loopback(host)):
        return None
    return wrong


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _provider(m: Mailbox) -> str | None:
    if m.auth != "oauth":
        return None
    if not m.oauth_provider:
        return "OAuth2 sign-in needs a provider: microsoft, google or the issuer URL of another one"
    return provider_problem(m.oauth_provider)


_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*\Z")


def _tenant(m: Mailbox) -> str | None:
    if not m.oauth_tenant:
        return None
    if m.oauth_provider != "microsoft":
        return "a tenant is for Microsoft only (common, organizations, or your tenant's id or domain)"
    if not _TENANT.match(m.oauth_tenant):
        return f"the tenant must be common, organizations, or a tenant id or domain, not {m.oauth_tenant!r}"
    return None


def _client_id(m: Mailbox) -> str | None:
    if m.auth == "oauth" and not m.oauth_client_id:
        return "OAuth2 sign-in needs the client id of the app registered at the provider"
    return _one_line("the client id", "oauth_client_id")(m)


def _smtp_auth(m: Mailbox) -> str | None:
    if m.smtp_auth not in AUTHS:
        return f"SMTP sign-in must be password or oauth, not {m.smtp_auth!r}"
    if m.smtp_auth == "oauth" and m.auth != "oauth":
        return "sending with OAuth2 needs the mailbox to sign in with OAuth2 too (--oauth PROVIDER)"
    return None


def _auth(m: Mailbox) -> str | None:
    if m.auth not in AUTHS:
        return f"sign-in must be password or oauth, not {m.auth!r}"
    if m.auth == "oauth" and m.protocol not in SERVERS:
        return "OAuth2 sign-in is for IMAP and POP3 mailboxes (a Maildir has no server to sign in to)"
    return None


# --- how some settings read in JSON ------------------------------------------------------------


def sending_auth(m: Mailbox) -> str:
    """How mail is signed in for sending: "same as fetching" with OAuth2 uses the grant."""
    return m.auth if m.smtp_same_as_fetch and m.protocol in SERVERS else m.smtp_auth


def sends(mailbox: Mailbox) -> bool:
    """Whether the mailbox has an account to send through."""
    return bool(mailbox.smtp_host) if not mailbox.smtp_same_as_fetch else mailbox.protocol != "maildir"


def smtp_port(mailbox: Mailbox) -> int | None:
    """The SMTP port mail is sent to (the security's usual one when none is set)."""
    from postdesk.sources.smtp import DEFAULT_PORTS as SMTP_PORTS

    if mailbox.smtp_port:
        return mailbox.smtp_port
    security = mailbox.smtp_security
    if mailbox.smtp_same_as_fetch:
        security = "tls" if mailbox.security == "tls" else "starttls"
    return SMTP_PORTS.get(security)


def _smtp_port_shown(m: Mailbox):
    return smtp_port(m) if sends(m) else m.smtp_port


def _same(fetching: str, own: str, transform=lambda v: v):
    """A sending setting as it is used: the fetching account's with "same as fetching"."""
    return lambda m: transform(getattr(m, fetching) if m.smtp_same_as_fetch else getattr(m, own))


def _smtp_security_shown(m: Mailbox) -> str:
    return ("tls" if m.security == "tls" else "starttls") if m.smtp_same_as_fetch else m.smtp_security


def _set_or_not(value) -> str:
    return "(set)" if value else "(not set)"


SECURITY = tuple(Mailbox.Security.choices)
SIGN_IN = (("password", "Password"), ("oauth", "OAuth2 (Microsoft 365, Google, or another provider)"))

# --- the table ---------------------------------------------------------------------------------

SETTINGS: tuple[Setting, ...] = (
    # Mailbox
    Setting("name", "Name", "text", "Mailbox", required=True, strip=True, check=_name,
            help="also the queue's name in the address bar; no '/'",
            no_option="the NAME argument of add and edit; --rename NEW_NAME on edit", hint="-"),
    Setting("address", "Address", "text", "Mailbox", help="the address customers write to",
            options=(Option("--address", help="the address customers write to"),)),
    Setting("protocol", "Protocol", "choice", "Mailbox", choices=tuple(Mailbox.Protocol.choices), required=True,
            check=_one_of("protocol", Mailbox.Protocol.values, "the protocol"), hint="-",
            options=(Option("--protocol", help="imap, pop3 or maildir"),)),
    Setting("path", "Maildir directory", "text", "Mailbox", protocols=frozenset({"maildir"}),
            help="the directory holding cur/, new/ and tmp/ (a path on the server)",
            options=(Option("--path", help="Maildir directory"),)),
    Setting("enabled", "Fetch this mailbox", "bool", "Mailbox", help="off: fetching leaves it alone",
            options=(Option("--enable", "const", True, edit_only=True), Option("--disable", "const", False)),
            hint="--enable"),
    # Connection
    Setting("host", "Server", "text", "Connection", protocols=SERVERS, help="e.g. imap.example.com",
            options=(Option("--host"),)),
    Setting("port", "Port", "int", "Connection", protocols=SERVERS, minimum=1, maximum=65535, check=_port,
            help="blank: the protocol's usual port (993 or 995 with TLS, 143 or 110 otherwise)",
            options=(Option("--port"),)),
    Setting("security", "Encryption", "choice", "Connection", protocols=SERVERS, choices=SECURITY, required=True,
            check=_one_of("security", Mailbox.Security.values, "security"),
            options=(Option("--security"),)),
    Setting("verify_tls", "Verify the server's certificate", "bool", "Connection", protocols=SERVERS,
            help="turning this off is shown as a warning everywhere",
            options=(Option("--verify", "const", True, edit_only=True, help="turn certificate verification back on"),
                     Option("--no-verify", "const", False, help="do not verify the certificate (shown as a warning)")),
            hint="--no-verify"),
    Setting("ca_file", "CA certificate file (PEM)", "text", "Connection", protocols=SERVERS,
            help="trust this CA for the server's certificate (a path on the server)",
            options=(Option("--ca-file", help="trust this CA (PEM) for the server's certificate"),)),
    # Sign-in
    Setting("username", "User name", "text", "Sign-in", protocols=SERVERS, options=(Option("--username"),)),
    Setting("auth", "Sign in with", "choice", "Sign-in", protocols=SERVERS, choices=SIGN_IN, check=_auth,
            blank_keeps=True, help="OAuth2: Microsoft 365 and Google no longer take a password for IMAP and POP3",
            options=(Option("--password-auth", "const", "password", edit_only=True,
                            help="sign in with the password again (the OAuth2 settings are kept)"),),
            hint="--oauth"),
    Setting("password", "Password", "secret", "Sign-in", field="secret", protocols=SERVERS, auth="password",
            widget="password", blank_keeps=True, noun="fetching password",
            options=(Option("--password-stdin", "stdin", help="read the password from standard input"),
                     Option("--password-env", "env", metavar="VAR", help="read the password from this environment variable"))),
    # Sign-in: OAuth2
    Setting("oauth_provider", "Provider", "text", "Sign-in", protocols=SERVERS, auth="oauth", strip=True,
            json="oauth.provider", check=_provider,
            help="microsoft, google, or the issuer URL of another provider (https://)",
            options=(Option("--oauth", metavar="PROVIDER", also=(("auth", "oauth"),),
                            help="sign in with OAuth2 at microsoft, google or an issuer URL (https://)"),)),
    Setting("oauth_tenant", "Tenant (Microsoft)", "text", "Sign-in", protocols=SERVERS, auth="oauth", strip=True,
            json="oauth.tenant", check=_tenant,
            help="Microsoft only: common, organizations, or your tenant's id or domain; blank: organizations",
            options=(Option("--oauth-tenant", metavar="TENANT"),)),
    Setting("oauth_client_id", "Client id", "text", "Sign-in", protocols=SERVERS, auth="oauth", strip=True,
            json="oauth.client_id", check=_client_id, help="the id of the app registered at the provider",
            options=(Option("--oauth-client-id", metavar="ID"),)),
    Setting("oauth_client_secret", "Client secret", "secret", "Sign-in", protocols=SERVERS, auth="oauth",
            widget="password", blank_keeps=True, json="oauth.client_secret", noun="OAuth2 client secret",
            help="blank for a public client (the provider then issues none)",
            options=(Option("--oauth-client-secret-env", "env", metavar="VAR",
                            help="read the client secret from this environment variable"),)),
    Setting("oauth_scope", "Scopes", "text", "Sign-in", protocols=SERVERS, auth="oauth", strip=True,
            json="oauth.scope", check=_one_line("the scopes", "oauth_scope"),
            help="blank: the provider's mail scopes (IMAP, POP3, SMTP and offline access)",
            options=(Option("--oauth-scope", metavar="SCOPES"),)),
    # After import
    Setting("folder", "Folder", "text", "After import", protocols=frozenset({"imap", "maildir"}),
            required=True, help="IMAP folder or Maildir++ subfolder to read",
            options=(Option("--folder", help="IMAP folder or Maildir++ subfolder to read (default INBOX)"),)),
    Setting("after", "After import", "after", "After import", field="after_import",
            choices=tuple(Mailbox.After.choices), required=True, show=lambda m: m.after_label,
            help="POP3 can only keep or delete",
            options=(Option("--after", help="after import: keep | seen | move:FOLDER | delete "
                                            "(default move:Imported; POP3 keep)"),)),
    Setting("move_folder", "Move to folder", "text", "After import", protocols=frozenset({"imap", "maildir"}),
            blank_keeps=True, help="with “move to a folder”", in_json=False,
            no_option="part of --after move:FOLDER", hint="--after"),
    Setting("poll_interval", "Check for new mail every (seconds)", "int", "Advanced", minimum=1,
            required=True,
            check=lambda m: "the poll interval is at least 1 second" if m.poll_interval is not None and m.poll_interval < 1 else None,
            options=(Option("--poll-interval", metavar="SECONDS"),)),
    Setting("pass_deadline", "Time limit of one fetch (seconds)", "int", "Advanced", minimum=MIN_PASS_DEADLINE,
            blank_keeps=True,
            check=lambda m: (f"the pass deadline is at least {MIN_PASS_DEADLINE} seconds"
                             if m.pass_deadline is None or m.pass_deadline < MIN_PASS_DEADLINE else None),
            help="a whole fetch pass ends by then, however slowly the server answers; what was stored stays, "
                 "the rest comes with the next pass (blank: unchanged, 600 for a new mailbox)",
            options=(Option("--pass-deadline", metavar="SECONDS",
                            help="a whole fetch pass ends by then, however slow the server (default 600)"),)),
    Setting("size_limit", "Size limit (MB)", "float", "Advanced", minimum=0.001, required=True,
            json="size_limit_mb", show=lambda m: round(m.size_limit / MB, 1),
            check=lambda m: "the size limit must be more than 0 MB" if m.size_limit < 1 else None,
            help="a bigger message is left on the server (its header is kept in the quarantine); "
                 "at most POSTDESK_MAX_MESSAGE_MB",
            options=(Option("--size-limit", metavar="MB", help="default 50"),)),
    # Routing
    Setting("assign", "New requests go to", "user", "Mailbox", field="assign_to",
            show=lambda m: m.assign_to.get_username() if m.assign_to_id else None,
            options=(Option("--assign", metavar="USERNAME", help="assign its new requests to this staff member"),
                     Option("--unassign", "const", None, edit_only=True, help="route to the general queue"))),
    # Sending
    Setting("smtp_same_as_fetch", "Send through the fetching server with its sign-in", "bool", "Sending",
            protocols=SERVERS,
            help="IMAP and POP3 only: its host, user name and password (or OAuth2 grant), with STARTTLS (or TLS "
                 "when fetching uses TLS); the server settings below are then not used",
            options=(Option("--smtp-same-as-fetch", "negatable",
                            help="send through the fetching server with its login (STARTTLS, or TLS when fetching uses TLS)"),)),
    Setting("smtp_host", "SMTP server", "text", "Sending", strip=True, show=_same("host", "smtp_host", lambda v: v or None),
            options=(Option("--smtp-host", metavar="HOST"),)),
    Setting("smtp_port", "SMTP port", "int", "Sending", minimum=1, maximum=65535, check=_smtp_port, show=_smtp_port_shown,
            help="blank: 465 with implicit TLS, 587 with STARTTLS, 25 without",
            options=(Option("--smtp-port", metavar="PORT", help="default: 465 with tls, 587 with starttls, 25 with none"),)),
    Setting("smtp_security", "SMTP encryption", "choice", "Sending", choices=SECURITY, required=True,
            check=_one_of("smtp_security", Mailbox.Security.values, "SMTP security"), show=_smtp_security_shown,
            options=(Option("--smtp-security", help="default starttls"),)),
    Setting("smtp_verify_tls", "Verify the SMTP server's certificate", "bool", "Sending",
            help="turning this off is shown as a warning everywhere", show=_same("verify_tls", "smtp_verify_tls"),
            options=(Option("--smtp-verify", "const", True, edit_only=True,
                            help="turn certificate verification for sending back on"),
                     Option("--smtp-no-verify", "const", False,
                            help="do not verify the SMTP server's certificate (shown as a warning)")),
            hint="--smtp-no-verify"),
    Setting("smtp_ca_file", "SMTP CA certificate file (PEM)", "text", "Sending", show=_same("ca_file", "smtp_ca_file"),
            help="trust this CA for the SMTP server's certificate (a path on the server)",
            options=(Option("--smtp-ca-file", metavar="PEM", help="trust this CA (PEM) for the SMTP server's certificate"),)),
    Setting("smtp_auth", "Send signed in with", "choice", "Sending", protocols=SERVERS, auth="oauth", choices=SIGN_IN,
            blank_keeps=True, check=_smtp_auth, show=sending_auth,
            help="OAuth2: the mailbox's grant (SMTP XOAUTH2); with “same as fetching” the fetching sign-in is used",
            options=(Option("--smtp-oauth", "const", "oauth", help="send with the mailbox's OAuth2 grant (SMTP XOAUTH2)"),
                     Option("--smtp-password-auth", "const", "password", edit_only=True,
                            help="send with the SMTP password again")),
            hint="--smtp-oauth"),
    Setting("smtp_username", "SMTP user name", "text", "Sending", strip=True, show=_same("username", "smtp_username"),
            options=(Option("--smtp-username", metavar="USER"),)),
    Setting("smtp_password", "SMTP password", "secret", "Sending", field="smtp_secret", widget="password",
            blank_keeps=True, noun="SMTP password", show=_same("secret", "smtp_secret", _set_or_not),
            options=(Option("--smtp-password-stdin", "stdin",
                            help="read the SMTP password from standard input (the second line with --password-stdin)"),
                     Option("--smtp-password-env", "env", metavar="VAR",
                            help="read the SMTP password from this environment variable")),
            hint="--smtp-password-env"),
    Setting("from_address", "From address", "text", "Sending", strip=True, check=_from_address,
            show=lambda m: m.from_address or m.address or None, help="blank: the mailbox's address",
            options=(Option("--from-address", metavar="ADDRESS", help="From of the mail we send (default: --address)"),)),
    Setting("from_name", "From name", "text", "Sending", strip=True, check=_one_line("the From name", "from_name"),
            help="shown to customers, e.g. “Example Support”; also {{ mailbox_name }}",
            options=(Option("--from-name", metavar="NAME", help="display name in From, e.g. 'Example Support'"),)),
    Setting("sent_folder", "Keep a copy in this folder", "text", "Sending", strip=True, protocols=frozenset({"imap"}),
            show=lambda m: m.sent_folder or None,
            check=lambda m: "a copy in a Sent folder needs an IMAP mailbox" if m.sent_folder and m.protocol != "imap" else None,
            help="IMAP only, e.g. Sent; blank: no copy",
            options=(Option("--sent-folder", metavar="FOLDER", help="IMAP only: keep a copy of what we send in this folder"),)),
    Setting("signature", "Signature", "text", "Sending", widget="textarea",
            help="below every staff reply from this mailbox, after the staff member's own; {agent_name} {mailbox}",
            options=(Option("--signature", metavar="TEXT", help="added below every staff reply ('' for none)"),)),
    # Acknowledgement
    Setting("ack_enabled", "Acknowledge new requests", "bool", "Acknowledgement", json="ack",
            help="only a new request from a person: never automatic mail, bounces, lists or our own addresses",
            options=(Option("--ack", "negatable", help="acknowledge new requests (--no-ack: stop)"),)),
    Setting("ack_subject", "Subject template", "text", "Acknowledgement", check=_template("ack_subject", "subject"),
            help="blank: the default; the request's tag is always added",
            options=(Option("--ack-subject", metavar="TEMPLATE",
                            help="Django template; {{ number }} {{ tag }} {{ subject }} {{ customer_name }} "
                                 "{{ customer_address }} {{ mailbox_name }}; '' for the default"),)),
    Setting("ack_body", "Body template", "text", "Acknowledgement", widget="textarea", check=_template("ack_body", "body"),
            help="blank: the default below",
            options=(Option("--ack-body", metavar="TEMPLATE", help="the same for the body; '' for the default"),
                     Option("--ack-body-file", "file", metavar="PATH", help="read the body template from this file (UTF-8)"))),
    Setting("ack_backlog", "Also acknowledge mail that was there when the mailbox was connected", "bool",
            "Acknowledgement",
            options=(Option("--ack-backlog", "negatable",
                            help="also acknowledge mail that was in the mailbox when it was connected"),)),
    Setting("ack_daily_limit", "At most this many per sender per day", "int", "Acknowledgement", minimum=1, required=True,
            check=lambda m: ("the daily limit of acknowledgements per sender is at least 1"
                             if m.ack_daily_limit is None or m.ack_daily_limit < 1 else None),
            options=(Option("--ack-daily-limit", metavar="N", help="acknowledgements per sender per day (default 5)"),)),
)

BY_NAME = {s.name: s for s in SETTINGS}
SECRETS = tuple(s for s in SETTINGS if s.kind == "secret")
# Model fields that hold secrets: never shown, never in a form's initial values.
SECRET_FIELDS = tuple(s.stored_in for s in SECRETS)
# Keys a change may also carry, for callers of the days before the table.
LEGACY_KEYS = frozenset({"unassign"})


def model_default(setting: Setting):
    """The value a new mailbox starts with (the model field's default), as the form shows it."""
    if setting.kind == "user":
        return None
    if setting.kind == "after":
        return Mailbox.After.MOVE
    default = Mailbox._meta.get_field(setting.stored_in).get_default()
    return round(default / MB, 3) if setting.name == "size_limit" else default


# --- what joins several settings: named rules, each {setting: message} -------------------------------------------


def _server_or_path(m: Mailbox) -> dict[str, str]:
    if m.protocol == "maildir":
        return {} if m.path else {"path": "a maildir mailbox needs a path (the Maildir directory)"}
    found = {}
    if not m.host:
        found["host"] = f"an {m.protocol} mailbox needs a host"
    if not m.username:
        found["username"] = f"an {m.protocol} mailbox needs a username"
    return found


def _after_possible(m: Mailbox) -> dict[str, str]:
    if m.after_import in POLICIES[m.protocol]:
        return {}
    allowed = ", ".join(sorted(POLICIES[m.protocol]))
    return {"after": f"after import {m.after_import} is not possible with {m.protocol} (use {allowed})"}


def _same_as_fetch_needs_a_server(m: Mailbox) -> dict[str, str]:
    if m.smtp_same_as_fetch and m.protocol == "maildir":
        return {"smtp_same_as_fetch": "a maildir mailbox has no server to send through: set an SMTP server instead"}
    return {}


def _smtp_login_needs_a_password(m: Mailbox) -> dict[str, str]:
    own_account = not m.smtp_same_as_fetch
    if own_account and m.smtp_username and not m.smtp_secret and m.smtp_auth != "oauth":
        return {"smtp_password": "an SMTP username needs the SMTP password"}
    return {}


def _acknowledgements_need_a_way_out(m: Mailbox) -> dict[str, str]:
    if not m.ack_enabled:
        return {}
    found = {}
    if not m.smtp_same_as_fetch and not m.smtp_host:
        found["smtp_host"] = "acknowledgements need an SMTP server to send through (or 'same as fetching')"
    if not one_address(m.from_address or m.address):
        found["from_address"] = "acknowledgements need a From address: set the mailbox's address or a From address"
    return found


# In order; the first message for a setting is the one reported.
RULES = (_server_or_path, _after_possible, _same_as_fetch_needs_a_server, _smtp_login_needs_a_password,
         _acknowledgements_need_a_way_out)


def problems(m: Mailbox) -> dict[str, str]:
    """What keeps these settings from working: {setting: message}, empty when they are fine."""
    protocol = BY_NAME["protocol"].check(m)
    if protocol:
        return {"protocol": protocol, **({"name": _name(m)} if _name(m) else {})}
    found: dict[str, str] = {}
    for setting in SETTINGS:
        message = setting.check(m) if setting.check else None
        if message:
            found[setting.name] = message
    for rule in RULES:
        for name, message in rule(m).items():
            found.setdefault(name, message)
    return found
