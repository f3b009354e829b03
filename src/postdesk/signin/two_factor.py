"""Two factors: TOTP (any authenticator app) and single-use recovery codes.

Who is asked for a code
    A member with a confirmed authenticator (TotpDevice) who signs in with a
    password gives a code next (flow: Step.CODE_NEEDED, then give_code()).
    Single sign-on never asks for a local code: the identity provider owns the
    factors of the people it signs in (second_factor_needed).

Who must have one (POSTDESK_REQUIRE_2FA = off | admins | all)
    A member it applies to who has no authenticator yet is still signed in,
    and is then sent to the enrolment page on every page until done
    (EnrolmentRequiredMiddleware); they cannot turn it off either.  Members
    signed in by single sign-on are exempt, for the reason above.

The codes
    TOTP by django-otp's maths (postdesk.models.TotpDevice): a seed of
    SEED_BYTES random bytes, encrypted at rest; one step (30 s) of tolerance
    either way; a step is accepted once.  RECOVERY_CODES recovery codes are
    shown once, kept as digests (digest()), and each is spent by one UPDATE.
    Wrong codes, whatever their kind, count towards the device's throttle
    (django-otp's growing delay: 1, 2, 4, ... seconds); a sign-in that gets
    flow.MAX_WRONG_CODES wrong codes is dropped and starts again at the password.

Every change (on, off, new recovery codes, an admin's reset) writes an
AuditEvent ("2fa.enabled", "2fa.disabled", "2fa.recovery_codes", "2fa.reset").
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from base64 import b32encode
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from urllib.parse import quote, urlencode

from django.conf import settings
from django.db import transaction
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone

from postdesk.models import AuditEvent, RecoveryCode, TotpDevice
from postdesk.secrets import SecretError
from postdesk.signin.sessions import METHOD_KEY

log = logging.getLogger("postdesk.signin")

SEED_BYTES = 20  # 160 bits, the size RFC 4226 recommends
RECOVERY_CODES = 10
RECOVERY_LENGTH = 12  # characters of RECOVERY_ALPHABET: 60 bits each
# Crockford's base32: no i, l, o or u, so nothing reads as another character
# (and a typed i, l or o is read as the 1 or 0 that was meant).
RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
DEVICE_NAME = "Authenticator app"
SSO = "sso"


# --- who -----------------------------------------------------------------------------------


class Requirement(Enum):
    OFF = "off"
    ADMINS = "admins"
    ALL = "all"


def requirement() -> Requirement:
    return Requirement(settings.POSTDESK_REQUIRE_2FA)


def required_for(user) -> bool:
    """Whether POSTDESK_REQUIRE_2FA applies to this member (whatever the way in)."""
    rule = requirement()
    return rule is Requirement.ALL or (rule is Requirement.ADMINS and user.is_superuser)


def device_of(user, *, confirmed: bool = True) -> TotpDevice | None:
    return TotpDevice.objects.filter(user=user, confirmed=confirmed).first()


def is_on(user) -> bool:
    return TotpDevice.objects.filter(user=user, confirmed=True).exists()


def second_factor_needed(user, method: str) -> bool:
    """Whether a sign-in by `method` must also give a code: a password sign-in of a
    member with a confirmed authenticator.  Single sign-on ("sso") never does: the
    identity provider decides which factors its people give, and a local code on
    top would be a second, unmanaged set of factors for the same person."""
    return method != SSO and is_on(user)


def must_enrol(user, method: str) -> bool:
    """Signed in, required to use two factors (POSTDESK_REQUIRE_2FA), and without an
    authenticator yet.  Single sign-on is exempt (see second_factor_needed)."""
    return method != SSO and required_for(user) and not is_on(user)


# --- checking a code -----------------------------------------------------------------------


class CodeKind(Enum):
    TOTP = "totp"
    RECOVERY = "recovery"


class Verdict(Enum):
    ACCEPTED = "accepted"
    WRONG = "wrong"
    THROTTLED = "throttled"  # too soon after a wrong code: not even looked at


@dataclass(frozen=True)
class CodeCheck:
    verdict: Verdict
    kind: CodeKind | None = None
    recovery_left: int | None = None  # after a recovery code was spent
    retry_at: datetime | None = None  # when THROTTLED

    @property
    def accepted(self) -> bool:
        return self.verdict is Verdict.ACCEPTED

    def wait_seconds(self, now: datetime | None = None) -> int:
        if self.retry_at is None:
            return 0
        return max(1, int((self.retry_at - (now or timezone.now())).total_seconds() + 0.999))


def kind_of(code: str) -> CodeKind:
    """Six digits are an app's code; anything else is taken as a recovery code."""
    code = "".join(code.split())
    return CodeKind.TOTP if len(code) == TotpDevice.DIGITS and code.isdigit() else CodeKind.RECOVERY


def check_code(user, code: str, *, recovery: bool = True, confirmed: bool = True) -> CodeCheck:
    """Check a code against the member's authenticator (or, when `recovery`, their
    recovery codes), under the device's throttle.  The device row is locked for the
    check, so two requests with the same code cannot both pass."""
    with transaction.atomic():
        device = TotpDevice.objects.select_for_update().filter(user=user, confirmed=confirmed).first()
        if device is None:
            return CodeCheck(Verdict.WRONG)
        allowed, info = device.verify_is_allowed()
        if not allowed:
            return CodeCheck(Verdict.THROTTLED, retry_at=info.get("locked_until"))
        kind = kind_of(code)
        if kind is CodeKind.TOTP:
            return _check_totp(device, code)
        if recovery and _spend_recovery_code(user, code):
            device.throttle_reset()
            return CodeCheck(Verdict.ACCEPTED, CodeKind.RECOVERY, recovery_left=recovery_codes_left(user))
        device.throttle_increment()
        return CodeCheck(Verdict.WRONG, kind)


def _check_totp(device: TotpDevice, code: str) -> CodeCheck:
    try:
        good = device.verify_token("".join(code.split()))
    except SecretError:
        # The key (POSTDESK_SECRET_KEY or mailbox.key) changed: no code can match
        # until an admin resets the member's two factors.
        log.error("two-factor seed cannot be decrypted", extra={"user": device.user.get_username()})
        good = False
    return CodeCheck(Verdict.ACCEPTED if good else Verdict.WRONG, CodeKind.TOTP)


# --- recovery codes ------------------------------------------------------------------------


def digest(user, code: str) -> str:
    """What is stored of a recovery code.  Plain SHA-256 is enough here, where a
    password would need a slow hash: a slow hash makes guessing a person's
    (low-entropy) password from its digest expensive, but these codes are 60
    random bits, so even at 10**10 guesses a second, one code takes years to find
    from a stolen database; the member's id in the input means one search cannot
    match every member's codes at once; and a code is only of use with the
    member's password too."""
    return hashlib.sha256(f"{user.pk}:{normalise(code)}".encode()).hexdigest()


def normalise(code: str) -> str:
    """As typed (any case, spaces, dashes) to the code's own characters."""
    plain = "".join(ch for ch in code.lower() if ch.isalnum())
    return plain.translate(str.maketrans({"i": "1", "l": "1", "o": "0"}))


def _new_code() -> str:
    plain = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
    return "-".join(plain[i:i + 4] for i in range(0, RECOVERY_LENGTH, 4))


def _replace_recovery_codes(user) -> list[str]:
    """A new set of codes, the old ones gone; the codes themselves are returned to be
    shown once, and never kept."""
    codes = [_new_code() for _ in range(RECOVERY_CODES)]
    RecoveryCode.objects.filter(user=user).delete()
    RecoveryCode.objects.bulk_create(RecoveryCode(user=user, digest=digest(user, code)) for code in codes)
    return codes


def _spend_recovery_code(user, code: str) -> bool:
    """One UPDATE, so a code is spent exactly once even by two requests at the same time."""
    fresh = RecoveryCode.objects.filter(user=user, digest=digest(user, code), used_at__isnull=True)
    return fresh.update(used_at=timezone.now()) == 1


def recovery_codes_left(user) -> int:
    return RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()


# --- enrolment -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Enrolment:
    """What the member copies into the app: the seed as base32, and the otpauth:// URI
    of the QR code (Google's Key URI format, which every authenticator app reads)."""

    secret: str  # base32, no padding
    issuer: str
    account: str

    @property
    def grouped_secret(self) -> str:
        return " ".join(self.secret[i:i + 4] for i in range(0, len(self.secret), 4))

    @property
    def uri(self) -> str:
        issuer = self.issuer.replace(":", "")
        label = quote(f"{issuer}:{self.account}")
        params = {"secret": self.secret, "issuer": issuer, "algorithm": "SHA1",
                  "digits": TotpDevice.DIGITS, "period": TotpDevice.STEP}
        return f"otpauth://totp/{label}?{urlencode(params, quote_via=quote)}"


def _enrolment(device: TotpDevice) -> Enrolment:
    secret = b32encode(device.bin_key).decode("ascii").rstrip("=")
    return Enrolment(secret, settings.POSTDESK_2FA_ISSUER, device.user.get_username())


def start(user) -> Enrolment | None:
    """A new seed for the member to add to the app (replacing one not yet confirmed).
    None when two factors are on already: turn them off first."""
    if is_on(user):
        return None
    TotpDevice.objects.filter(user=user).delete()
    device = TotpDevice(user=user, name=DEVICE_NAME, confirmed=False)
    device.set_key(secrets.token_bytes(SEED_BYTES))
    device.save()
    return _enrolment(device)


def enrolment(user) -> Enrolment | None:
    """The enrolment started and not yet confirmed, if any."""
    device = device_of(user, confirmed=False)
    return _enrolment(device) if device else None


def cancel(user) -> None:
    TotpDevice.objects.filter(user=user, confirmed=False).delete()


@dataclass(frozen=True)
class Codes:
    """The answer to confirming or asking for new codes: the recovery codes to show once."""

    check: CodeCheck
    recovery_codes: tuple[str, ...] = ()


def confirm(user, code: str) -> Codes:
    """The member typed a code from the app: the seed is theirs, two factors are on."""
    check = check_code(user, code, recovery=False, confirmed=False)
    if not check.accepted:
        return Codes(check)
    with transaction.atomic():
        TotpDevice.objects.filter(user=user, confirmed=False).update(confirmed=True)
        codes = _replace_recovery_codes(user)
        AuditEvent.record(user, "2fa.enabled", _target(user))
    log.info("two-factor sign-in turned on", extra={"user": user.get_username()})
    return Codes(check, tuple(codes))


def new_recovery_codes(user, code: str) -> Codes:
    """A new set of recovery codes (the old ones stop working), for a current app code."""
    check = check_code(user, code, recovery=False)
    if not check.accepted:
        return Codes(check)
    with transaction.atomic():
        codes = _replace_recovery_codes(user)
        AuditEvent.record(user, "2fa.recovery_codes", _target(user), detail=f"{len(codes)} new codes")
    return Codes(check, tuple(codes))


class TurnOff(Enum):
    DONE = "done"
    REQUIRED = "required"  # POSTDESK_REQUIRE_2FA applies to the member
    WRONG = "wrong"
    THROTTLED = "throttled"
    NOT_ON = "not on"


def turn_off(user, *, code: str = "", password: str = "") -> TurnOff:
    """Off, for a current app code or the member's password; never while required."""
    if required_for(user):
        return TurnOff.REQUIRED
    device = device_of(user)
    if device is None:
        return TurnOff.NOT_ON
    if code.strip():
        verdict = check_code(user, code, recovery=False).verdict
    else:
        verdict = _check_password(device, password)
    if verdict is not Verdict.ACCEPTED:
        return TurnOff.THROTTLED if verdict is Verdict.THROTTLED else TurnOff.WRONG
    _remove(user)
    AuditEvent.record(user, "2fa.disabled", _target(user))
    log.info("two-factor sign-in turned off", extra={"user": user.get_username()})
    return TurnOff.DONE


def _check_password(device: TotpDevice, password: str) -> Verdict:
    """The password, under the device's throttle: this form must not become a way
    around the sign-in throttle for guessing it."""
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        return Verdict.THROTTLED
    if password and device.user.check_password(password):
        return Verdict.ACCEPTED
    device.throttle_increment()
    return Verdict.WRONG


def reset(user, actor=None) -> bool:
    """An admin's reset for a member who lost the phone: the authenticator and the
    recovery codes are gone (they may enrol again).  Nothing else ends: the
    member's sessions stay open.  False when there was nothing to reset."""
    had = TotpDevice.objects.filter(user=user).exists() or RecoveryCode.objects.filter(user=user).exists()
    if not had:
        return False
    _remove(user)
    AuditEvent.record(actor, "2fa.reset", _target(user))
    log.warning("two-factor sign-in reset", extra={"user": user.get_username()})
    return True


def _remove(user) -> None:
    with transaction.atomic():
        TotpDevice.objects.filter(user=user).delete()
        RecoveryCode.objects.filter(user=user).delete()


def _target(user) -> str:
    return f"staff {user.get_username()}"


# --- what the account page shows -----------------------------------------------------------


@dataclass(frozen=True)
class Status:
    on: bool
    enrolling: bool  # started, not confirmed
    required: bool
    recovery_left: int
    since: datetime | None = None
    last_used: datetime | None = None


def status(user) -> Status:
    device = TotpDevice.objects.filter(user=user).first()
    on = device is not None and device.confirmed
    return Status(
        on=on,
        enrolling=device is not None and not device.confirmed,
        required=required_for(user),
        recovery_left=recovery_codes_left(user) if on else 0,
        since=device.created_at if on else None,
        last_used=device.last_used_at if on else None,
    )


# --- the requirement, on every page --------------------------------------------------------


class EnrolmentRequiredMiddleware:
    """Sends a signed-in member who must use two factors and has none yet to the
    enrolment page, from every page but that one, signing out and static files."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not _always_open(request.path):
            if must_enrol(user, request.session.get(METHOD_KEY, "")):
                return redirect("postdesk_web:two_factor")
        return self.get_response(request)


def _always_open(path: str) -> bool:
    static = "/" + settings.STATIC_URL.lstrip("/")
    return path.startswith(static) or path in (reverse("postdesk_web:two_factor"), reverse("postdesk_web:logout"))

