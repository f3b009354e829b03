"""Content-Transfer-Encoding: a leaf part's payload back to the bytes that were sent."""

from __future__ import annotations

import binascii
import re
from email.message import Message

_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


def decoded_payload(part: Message, defects: list[str]) -> bytes:
    """The decoded bytes of a leaf part; never raises, repairs what it can."""
    # The private attribute, because get_payload() decodes 8-bit payloads with
    # the declared charset, lossily; we need the exact bytes that were sent.
    payload = part._payload
    if isinstance(payload, list):  # a message/* part: the caller serializes it
        return b""
    if isinstance(payload, bytes | bytearray):
        raw = bytes(payload)
    else:
        raw = str(payload or "").encode("ascii", "surrogateescape")
    cte = _transfer_encoding(part)
    if cte == "base64":
        return _base64(raw, defects)
    if cte == "quoted-printable":
        return binascii.a2b_qp(raw)
    if cte in ("x-uuencode", "uuencode", "x-uue", "uue"):
        from postdesk.mail._uuencode import decode_uu_block

        data = decode_uu_block(raw)
        if data is None:
            defects.append("part: uuencoded body could not be decoded; kept as is")
            return raw
        return data
    return raw


def _transfer_encoding(part: Message) -> str:
    for name, value in part.raw_items():
        if name.lower() == "content-transfer-encoding":
            return str(value).strip().split(";")[0].strip().strip('"').lower()
    return "7bit"


def _base64(raw: bytes, defects: list[str]) -> bytes:
    try:
        return binascii.a2b_base64(raw, strict_mode=False)
    except binascii.Error:
        pass
    # Broken base64: keep only the alphabet and pad; a few bytes at a tear are
    # lost, the rest of the attachment is not.
    cleaned = _NOT_BASE64.sub(b"", raw.split(b"=", 1)[0])
    cleaned = cleaned[: len(cleaned) - len(cleaned) % 4] if len(cleaned) % 4 == 1 else cleaned
    cleaned += b"=" * (-len(cleaned) % 4)
    defects.append("part: invalid base64 repaired")
    try:
        return binascii.a2b_base64(cleaned)
    except binascii.Error:
        defects.append("part: base64 undecodable; kept as is")
        return raw
