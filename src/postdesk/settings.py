"""Django settings, read from the environment.

POSTDESK_DATA_DIR       where everything Postdesk keeps lives (default ./postdesk-data)
POSTDESK_DATABASE_URL   a database URL; default SQLite inside the data dir.
                        PostgreSQL (postgres://user@host:5432/name) is how Postdesk
                        scales past one machine.
POSTDESK_SECRET_KEY     Django's signing key; default: generated once and kept in
                        the data dir (mode 0600), so sessions survive a restart.
POSTDESK_DEBUG          "1" for Django's debug pages (never in production).
POSTDESK_ALLOWED_HOSTS  comma-separated host names the web UI answers to.
POSTDESK_PUBLIC_URL     the address people open Postdesk at (https://desk.example.com),
                        for links and the OAuth2 redirect URLs behind a reverse proxy.
POSTDESK_SIGNIN_FAILURES    failed sign-ins in a row (per account, per address) before
                            the first wait (default 5).
POSTDESK_SIGNIN_FIRST_WAIT  minutes of that first wait (default 1); each further failure
                            doubles it...
POSTDESK_SIGNIN_MAX_WAIT    ...up to this many minutes (default 60; less than a day, how
                            long failures are remembered).
POSTDESK_SIGNIN_LOG_DAYS    days the sign-in log (/staff/signins/) keeps its rows (default 90).

Single sign-on for staff (OpenID Connect, postdesk.signin.sso); off unless the issuer
and the client id are set.  Register POSTDESK_PUBLIC_URL + /login/sso/callback/ as the
redirect URL at the provider.
POSTDESK_SSO_ISSUER         the issuer URL (https://login.microsoftonline.com/TENANT-ID/v2.0,
                            https://accounts.google.com, https://kc.example.com/realms/staff,
                            https://authentik.example.com/application/o/postdesk/)
POSTDESK_SSO_CLIENT_ID      Postdesk's client id at that issuer
POSTDESK_SSO_CLIENT_SECRET  its client secret, or POSTDESK_SSO_CLIENT_SECRET_FILE: a file
                            holding it (never printed, never logged; none: a public client, PKCE only)
POSTDESK_SSO_LABEL          the button's text (default "Sign in with single sign-on")
POSTDESK_SSO_CREATE_STAFF   "1": the first sign-in of someone whose verified email no staff
                            member has creates one (default: refused)
POSTDESK_SSO_DOMAINS        comma-separated email domains that may be linked or created
                            (default: any)
POSTDESK_SSO_PASSWORDS      "on" (default) or "off": off, a member linked to single sign-on
                            cannot sign in with a password (`postdesk staff sso-unlink NAME`
                            gives the password back)
POSTDESK_SSO_TRUST_EMAIL    "1": take the email as verified when the issuer does not send
                            email_verified (Entra ID).  Only for an issuer whose directory
                            alone sets emails: anyone who can set their own email there can
                            sign in as the staff member with that email.
POSTDESK_REQUIRE_2FA    who must sign in with a second factor (postdesk.signin.two_factor):
                        "off" (default: each member chooses), "admins", or "all".
                        Members who sign in by single sign-on are exempt.
POSTDESK_2FA_ISSUER     the name authenticator apps show for Postdesk codes (default "Postdesk").

Answering by email (postdesk.notify.reply_address):
POSTDESK_REPLY_DELIMITER    the character between a mailbox's local part and the reply token
                            in a notification's Reply-To (default "+": plus addressing; "-" for
                            servers that use it, e.g. qmail/Postfix with recipient_delimiter=-)
POSTDESK_REPLY_TOKEN_DAYS   days a notification's reply address is accepted (default 30)

Notifications to staff (postdesk.notify.account); the environment wins over the admin's
page "Notification account", and without either a mailbox's own sending account is used:
POSTDESK_SMTP_URL       the system SMTP account: smtp://user@host:587 (STARTTLS, never
                        skipped) or smtps://user@host:465; ?ca_file=/path trusts that CA.
POSTDESK_SMTP_PASSWORD  its password, or POSTDESK_SMTP_PASSWORD_FILE: a file holding it.
POSTDESK_NOTIFY_FROM    the From of notifications (default: the URL's user when an address).
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

DATA_DIR = Path(os.environ.get("POSTDESK_DATA_DIR", "postdesk-data")).resolve()


def _secret_key() -> str:
    """The key from the environment, else one made once and kept in the data dir."""
    from_env = os.environ.get("POSTDESK_SECRET_KEY")
    if from_env:
        return from_env
    key_file = DATA_DIR / "secret.key"
    try:
        return key_file.read_text().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(50)
    if not DATA_DIR.is_dir() or os.environ.get("_POSTDESK_PRINT_ONLY"):
        # Commands that keep nothing (`postdesk inspect`, any --help) must not write
        # to the data dir as a side effect; those that do create it first (postdesk.cli).
        return key
    try:
        # O_EXCL: if two processes start at once, one key wins and both read it.
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
    except FileExistsError:
        return key_file.read_text().strip()
    except OSError:
        # A read-only data dir must not stop `postdesk inspect` from working.
        pass
    return key


def _database() -> dict:
    url = os.environ.get("POSTDESK_DATABASE_URL") or f"sqlite:///{DATA_DIR / 'postdesk.sqlite3'}"
    config = dj_database_url.parse(url, conn_max_age=60)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets the web UI read while the worker writes; a busy timeout makes
        # a writer wait for the lock instead of failing at once.  synchronous=FULL:
        # a commit is on disk before we tell a mail server it may delete the
        # message (NORMAL survives a crash of Postdesk, not of the machine).
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
        }
        config["CONN_MAX_AGE"] = 0
    return config


def _positive_int(name: str, default: int) -> int:
    """A whole number above zero from the environment, or a start-up error that names it."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ImproperlyConfigured(f"{name} must be a whole number above 0, not {raw!r}")
    return value


def _signin_waits(remembered: timedelta) -> tuple[timedelta, timedelta]:
    """The first and the longest wait after failed sign-ins (postdesk.signin.throttle)."""
    first = timedelta(minutes=_positive_int("POSTDESK_SIGNIN_FIRST_WAIT", 1))
    longest = timedelta(minutes=_positive_int("POSTDESK_SIGNIN_MAX_WAIT", 60))
    if first > longest:
        raise ImproperlyConfigured(
            f"POSTDESK_SIGNIN_FIRST_WAIT ({first // timedelta(minutes=1)} minutes) must not be longer than "
            f"POSTDESK_SIGNIN_MAX_WAIT ({longest // timedelta(minutes=1)} minutes)"
        )
    if longest >= remembered:
        # Failures are forgotten after `remembered`: a longer wait would be cut short
        # and its count reset while it still runs.
        raise ImproperlyConfigured(
            f"POSTDESK_SIGNIN_MAX_WAIT must be under {remembered // timedelta(minutes=1)} minutes "
            f"(failed sign-ins are remembered that long), not {longest // timedelta(minutes=1)}"
        )
    return first, longest


SECRET_KEY = _secret_key()
DEBUG = os.environ.get("POSTDESK_DEBUG") == "1"
ALLOWED_HOSTS = [h for h in os.environ.get("POSTDESK_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",  # sign-in throttling (postdesk.signin.throttle)
    "postdesk",
    "postdesk.web",
]

MIDDLEWARE = [
    # First, so its headers reach every response, static files included.
    "postdesk.web.middleware.SecurityHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files straight from the apps' static/ folders: no collectstatic
    # step for the embedded default.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Django's SessionMiddleware, but a live page's poll does not extend the session (postdesk.web.live).
    "postdesk.web.live.PollSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "postdesk.signin.sessions.AdminRightsMiddleware",
    "postdesk.signin.sessions.LastSeenMiddleware",  # "last active" in the register of open sessions
    # A member who must use two factors and has none yet sees only the enrolment page.
    "postdesk.signin.two_factor.EnrolmentRequiredMiddleware",
    "postdesk.web.timezones.ReaderTimeZoneMiddleware",  # times in the reader's zone (desk.profile)
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as axes asks: turns a refused sign-in into the "try again in N minutes" page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "postdesk.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
WSGI_APPLICATION = "postdesk.wsgi.application"

# The web UI (postdesk.web): every page but the login needs a logged-in user.
LOGIN_URL = "postdesk_web:login"
LOGIN_REDIRECT_URL = "postdesk_web:home"
LOGOUT_REDIRECT_URL = "postdesk_web:login"
# Sessions end after POSTDESK_SESSION_HOURS of inactivity (every request moves
# the end forward), and at browser exit unless "keep me signed in" was ticked
# (postdesk.signin.sessions).
SESSION_COOKIE_AGE = int(float(os.environ.get("POSTDESK_SESSION_HOURS", "12")) * 3600)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Sign-in throttling (postdesk.signin.throttle): axes' backend goes first, so a locked
# account or address is refused before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_HANDLER = "postdesk.signin.throttle.ThrottleHandler"
AXES_FAILURE_LIMIT = _positive_int("POSTDESK_SIGNIN_FAILURES", 5)  # failures in a row before the first wait
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # per account, and per address
AXES_COOLOFF_TIME = timedelta(hours=24)  # how long failures are remembered; the wait itself grows (postdesk.signin.throttle)
# The growing wait (postdesk.signin.throttle.wait_after): first, doubled per failure, capped.
POSTDESK_SIGNIN_FIRST_WAIT, POSTDESK_SIGNIN_MAX_WAIT = _signin_waits(remembered=AXES_COOLOFF_TIME)
# How long the sign-in log keeps its rows (postdesk.signin.audit prunes older ones).
POSTDESK_SIGNIN_LOG_DAYS = _positive_int("POSTDESK_SIGNIN_LOG_DAYS", 90)
AXES_RESET_ON_SUCCESS = True  # a good sign-in ends the run of failures
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # refused attempts are logged, not counted
AXES_CLIENT_IP_CALLABLE = "postdesk.signin.client.client_address"
AXES_LOCKOUT_CALLABLE = "postdesk.signin.throttle.lockout_response"
AXES_VERBOSE = False


def _require_2fa() -> str:
    value = os.environ.get("POSTDESK_REQUIRE_2FA", "off").strip().lower() or "off"
    if value not in ("off", "admins", "all"):
        raise ImproperlyConfigured(f"POSTDESK_REQUIRE_2FA must be off, admins or all (not {value!r})")
    return value


# Two factors (postdesk.signin.two_factor): TOTP codes and recovery codes.
POSTDESK_REQUIRE_2FA = _require_2fa()
POSTDESK_2FA_ISSUER = os.environ.get("POSTDESK_2FA_ISSUER", "").strip() or "Postdesk"

DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Only for `postdesk collectstatic` (e.g. to let a front proxy serve them); WhiteNoise
# serves the apps' static folders directly, so the default needs none.
STATIC_ROOT = os.environ.get("POSTDESK_STATIC_ROOT") or None
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"()": "postdesk.logs.KeyValueFormatter"},
        "json": {"()": "postdesk.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if os.environ.get("POSTDESK_LOG_FORMAT") == "json" else "plain",
        }
    },
    "loggers": {
        "postdesk": {"handlers": ["console"], "level": os.environ.get("POSTDESK_LOG_LEVEL", "INFO")},
        # axes' own lines repeat ours (postdesk.signin) in another format.
        "axes": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}
POSTDESK_TAG_PREFIX = os.environ.get("POSTDESK_TAG_PREFIX", "PD")
# Answering by email: postdesk.notify.reply_address reads these.
POSTDESK_REPLY_DELIMITER = os.environ.get("POSTDESK_REPLY_DELIMITER", "+")
POSTDESK_REPLY_TOKEN_DAYS = int(os.environ.get("POSTDESK_REPLY_TOKEN_DAYS", "30"))
POSTDESK_PUBLIC_URL = os.environ.get("POSTDESK_PUBLIC_URL", "").rstrip("/")


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _sso_client_secret() -> str:
    """The secret itself, or the contents of the file named (kept out of the environment)."""
    path = os.environ.get("POSTDESK_SSO_CLIENT_SECRET_FILE", "")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get("POSTDESK_SSO_CLIENT_SECRET", "")


def _sso_passwords() -> bool:
    value = os.environ.get("POSTDESK_SSO_PASSWORDS", "on").strip().lower()
    if value not in ("on", "off"):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"POSTDESK_SSO_PASSWORDS must be on or off, not {value!r}")
    return value == "on"


# Single sign-on for staff (postdesk.signin.sso reads these, and nothing else does).
POSTDESK_SSO_ISSUER = os.environ.get("POSTDESK_SSO_ISSUER", "").strip()
POSTDESK_SSO_CLIENT_ID = os.environ.get("POSTDESK_SSO_CLIENT_ID", "").strip()
POSTDESK_SSO_CLIENT_SECRET = _sso_client_secret()  # "SECRET" in the name: Django's debug pages hide it
POSTDESK_SSO_LABEL = os.environ.get("POSTDESK_SSO_LABEL", "").strip() or "Sign in with single sign-on"
POSTDESK_SSO_CREATE_STAFF = _flag("POSTDESK_SSO_CREATE_STAFF")
POSTDESK_SSO_DOMAINS = [d.strip().lower().lstrip("@") for d in os.environ.get("POSTDESK_SSO_DOMAINS", "").split(",") if d.strip()]
POSTDESK_SSO_PASSWORDS = _sso_passwords()
POSTDESK_SSO_TRUST_EMAIL = _flag("POSTDESK_SSO_TRUST_EMAIL")


def _smtp_password() -> str:
    """The notification account's password, or the contents of the file named."""
    path = os.environ.get("POSTDESK_SMTP_PASSWORD_FILE", "")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get("POSTDESK_SMTP_PASSWORD", "")


# The system account for notifications (postdesk.notify.account reads these, nothing else does).
POSTDESK_SMTP_URL = os.environ.get("POSTDESK_SMTP_URL", "").strip()
POSTDESK_SMTP_PASSWORD = _smtp_password()  # "PASSWORD" in the name: Django's debug pages hide it
POSTDESK_NOTIFY_FROM = os.environ.get("POSTDESK_NOTIFY_FROM", "").strip()
# A failed OAuth or single sign-on callback is a failed sign-in (signin.throttle.count_failure):
# its code and state are masked in axes' failure records, like the password.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "code", "state"]
