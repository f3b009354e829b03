"""Secrets at rest: mailbox passwords and tokens, two-factor seeds (postdesk.models.TotpDevice),
encrypted with Fernet (AES-128-CBC + HMAC-SHA256).

The key is derived from POSTDESK_SECRET_KEY when set (so several hosts sharing
one database share it too), else kept in the data dir as `mailbox.key` (0600).
A password is decrypted only when a connection needs it, and is never printed
or logged.
"""

from __future__ import annotations

import base64
import hashlib
import os
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class SecretError(Exception):
    """The stored secret cannot be decrypted with this installation's key."""


@lru_cache(maxsize=1)
def _fernet() -> Fernet:
    return Fernet(_key())


def _key() -> bytes:
    from_env = os.environ.get("POSTDESK_SECRET_KEY")
    if from_env:
        digest = hashlib.sha256(b"postdesk mailbox secrets\0" + from_env.encode()).digest()
        return base64.urlsafe_b64encode(digest)
    key_file = settings.DATA_DIR / "mailbox.key"
    try:
        return key_file.read_bytes().strip()
    except FileNotFoundError:
        pass
    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        # O_EXCL: two processes starting at once agree on one key.
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
            fh.flush()
            os.fsync(fh.fileno())
    except FileExistsError:
        return key_file.read_bytes().strip()
    return key


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode("utf-8")).decode("ascii") if plain else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise SecretError("the stored password cannot be decrypted: the key (POSTDESK_SECRET_KEY or mailbox.key) changed") from None
