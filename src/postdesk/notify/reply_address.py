"""The reply address of a notification: `<local>+<token>@<domain>` of the mailbox
the request belongs to, where the token is signed and names one staff member and
one request.

Why plus addressing: the answer must land in a mailbox Postdesk already reads,
with no new DNS, MX or account.  `support+<token>@desk.example` is delivered to
`support@desk.example` by Gmail / Google Workspace, Microsoft 365 / Outlook.com
(plus addressing is on by default since 2022), Fastmail, iCloud, Proton,
Zoho, and by Postfix (`recipient_delimiter = +`), Dovecot LMTP
(`recipient_delimiter`), Exim and Sendmail with their usual configurations.
qmail and some Postfix setups use "-" instead: `POSTDESK_REPLY_DELIMITER`.

Why this token format and not django.core.signing: a local part is at most 64
characters (RFC 5321 §4.5.3.1.1) and some servers lower-case it, so the token is
packed bytes -- version, expiry day, staff id, request id (varints), then 10 bytes
(80 bits) of HMAC-SHA256 under the site's SECRET_KEY with its own salt -- written
in lower-case base32 (RFC 4648, no padding): about 30 characters, and a server
that changes its case changes nothing.  A key in SECRET_KEY_FALLBACKS still
verifies, so rotating the key does not break the notifications already sent.

The expiry (`POSTDESK_REPLY_TOKEN_DAYS`, default 30) is a day number, checked on
reading: a token is good up to the end of that day (UTC).
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
import struct
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from email.utils import parseaddr

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.crypto import constant_time_compare, salted_hmac

SALT = "postdesk.notify.reply_address"  # no other signature of the site can be replayed as a token
VERSION = 1
MAC_BYTES = 10  # 80 bits: guessing one takes ~2^79 tries, each one a mail
MAX_LOCAL_PART = 64  # RFC 5321
EPOCH = date(1970, 1, 1)
# What a token looks like in a local part: base32 and long enough.  Anything else after
# the delimiter (support+billing@) is ordinary plus addressing, not a token.
TOKEN_SHAPE = re.compile(r"[a-z2-7]{20,}", re.IGNORECASE)


# The notification's first line of text (the notify helper writes it there).  answer.py
# drops everything from the line that holds it, quoted or not: whatever a mail client
# does with the notification below it never reaches the customer (an @mention's
# notification quotes an internal note).
ANSWER_ABOVE = "## Reply above this line to answer the customer ##"


class ReplyAddressError(ValueError):
    """No reply address can be made (the mailbox's local part leaves no room for a token)."""


@dataclass(frozen=True)
class ReplyToken:
    """What a reply address says: who may answer at it, about what, until when."""

    staff_id: int
    request_id: int
    expires: date  # good up to the end of this day (UTC)


class TokenStatus(enum.Enum):
    OK = "ok"
    EXPIRED = "expired"  # signed by us, but past its day: its staff and request are still known
    BAD = "bad token"  # looks like a token, but its signature or its bytes are wrong: nothing in it is trusted
    NONE = "none"  # no reply address among the recipients


@dataclass(frozen=True)
class ReplyAddressCheck:
    """read_reply_address()'s answer.  `token` is set for OK and EXPIRED only: a token
    whose signature fails names nothing we may believe."""

    status: TokenStatus
    token: ReplyToken | None = None
    address: str = ""

    @property
    def ok(self) -> bool:
        return self.status is TokenStatus.OK

    @property
    def found(self) -> bool:
        """A reply address is there (good or not): the message is an answer, not customer mail."""
        return self.status is not TokenStatus.NONE


def reply_address(staff, request, base_address: str, *, now: datetime | None = None) -> str:
    """The address a notification to `staff` about `request` asks to be answered at:
    `base_address` (the request's mailbox address) with the token after its local part.

    The notify helper passes `request.mailbox.from_address or request.mailbox.address`.
    Raises ReplyAddressError when the local part would pass 64 characters (then send
    the notification without a Reply-To)."""
    local, at, domain = base_address.strip().rpartition("@")
    if not at or not local or not domain:
        raise ReplyAddressError(f"{base_address!r} is not an email address")
    token = make_token(staff.pk, request.pk, _today(now) + timedelta(days=settings.POSTDESK_REPLY_TOKEN_DAYS))
    tokened = f"{local}{delimiter()}{token}"
    if len(tokened) > MAX_LOCAL_PART:
        raise ReplyAddressError(f"{local!r} leaves no room for a reply token within 64 characters")
    return f"{tokened}@{domain}"


def read_reply_address(addresses: list[str], *, now: datetime | None = None) -> ReplyAddressCheck:
    """The best reply token among `addresses` (a message's To, Cc, Delivered-To,
    X-Original-To): a good one wins, then an expired one, then a bad one."""
    checks = [_check_address(address, now) for address in addresses]
    for status in (TokenStatus.OK, TokenStatus.EXPIRED, TokenStatus.BAD):
        for check in checks:
            if check.status is status:
                return check
    return ReplyAddressCheck(TokenStatus.NONE)


def delimiter() -> str:
    value = settings.POSTDESK_REPLY_DELIMITER
    if len(value) != 1 or value.isalnum() or value in '@"\\ ':
        raise ImproperlyConfigured(f"POSTDESK_REPLY_DELIMITER must be one character like + or -, not {value!r}")
    return value


def make_token(staff_id: int, request_id: int, expires: date) -> str:
    payload = struct.pack(">BH", VERSION, (expires - EPOCH).days) + _varint(staff_id) + _varint(request_id)
    raw = payload + _mac(payload, settings.SECRET_KEY)
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def read_token(text: str, *, now: datetime | None = None) -> ReplyAddressCheck:
    """One token's check (the part after the delimiter)."""
    try:
        raw = base64.b32decode(text.upper() + "=" * (-len(text) % 8))
        payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
        version, day = struct.unpack(">BH", payload[:3])
        staff_id, rest = _read_varint(payload[3:])
        request_id, rest = _read_varint(rest)
    except (binascii.Error, struct.error, ValueError):
        return ReplyAddressCheck(TokenStatus.BAD)
    # Canonical spelling only: the last base32 character carries unused bits, and a
    # token must not have several spellings that all pass.
    canonical = base64.b32encode(raw).decode("ascii").rstrip("=").lower() == text.lower()
    if version != VERSION or rest or not canonical or not _signed_by_us(payload, mac):
        return ReplyAddressCheck(TokenStatus.BAD)
    token = ReplyToken(staff_id, request_id, EPOCH + timedelta(days=day))
    status = TokenStatus.EXPIRED if _today(now) > token.expires else TokenStatus.OK
    return ReplyAddressCheck(status, token)


def _check_address(address: str, now: datetime | None) -> ReplyAddressCheck:
    local = parseaddr(address)[1].rpartition("@")[0]
    # After the last delimiter: the token is written last, whatever the base holds.
    base, delim, suffix = local.rpartition(delimiter())
    if not delim or not base or not TOKEN_SHAPE.fullmatch(suffix):
        return ReplyAddressCheck(TokenStatus.NONE)
    check = read_token(suffix, now=now)
    return ReplyAddressCheck(check.status, check.token, parseaddr(address)[1].lower())


def _signed_by_us(payload: bytes, mac: bytes) -> bool:
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return any(constant_time_compare(_mac(payload, key), mac) for key in keys)


def _mac(payload: bytes, key: str) -> bytes:
    return salted_hmac(SALT, payload, secret=key, algorithm="sha256").digest()[:MAC_BYTES]


def _today(now: datetime | None) -> date:
    return (now or datetime.now(dt_timezone.utc)).astimezone(dt_timezone.utc).date()


def _varint(value: int) -> bytes:
    """LEB128: small ids take one or two bytes, any id fits."""
    if value < 0:
        raise ValueError("ids are not negative")
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes) -> tuple[int, bytes]:
    value = 0
    for i, byte in enumerate(data[:9]):
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, data[i + 1:]
    raise ValueError("truncated number")
