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
        return decode_transfer_encoding(bytes(payload), transfer_encoding(part), defects)
    payload = str(payload or "")
    cte = transfer_encoding(part)
    if cte == "base64" and payload.isascii():
        # binascii reads an ASCII str directly: no bytes copy of a large attachment.
        return _base64(payload, defects)
    return decode_transfer_encoding(payload.encode("ascii", "surrogateescape"), cte, defects)


def decode_transfer_encoding(raw: bytes, cte: str, defects: list[str]) -> bytes:
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


_QP_ESCAPE = re.compile(rb"=(?:[89A-F][0-9A-F]|3D|20|09)")
_QP_SOFT_BREAK = re.compile(rb"=\r?\n")
_UU_BEGIN = re.compile(rb"^begin [0-7]{3,4} ", re.M)


def looks_quoted_printable(raw: bytes) -> bool:
    """Quoted-printable sent without saying so (an empty or 7bit Content-Transfer-Encoding).

    Only escapes QP really produces (8-bit bytes, "=3D", encoded blanks) count,
    and never inside a uuencoded block, whose alphabet has "=" and hex digits."""
    sample = raw[:65536]
    if not sample.isascii() or _UU_BEGIN.search(sample):
        return False
    escapes = len(_QP_ESCAPE.findall(sample))
    return escapes >= 3 or (escapes >= 1 and _QP_SOFT_BREAK.search(sample) is not None)


def transfer_encoding(part: Message) -> str:
    for name, value in part.raw_items():
        if name.lower() == "content-transfer-encoding":
            return str(value).strip().split(";")[0].strip().strip('"').lower()
    return "7bit"


_BASE64_JUNK = re.compile(rb"[^A-Za-z0-9+/=\s]")
_BASE64_JUNK_STR = re.compile(r"[^A-Za-z0-9+/=\s]")


def _base64(raw: bytes | str, defects: list[str]) -> bytes:
    junk = _BASE64_JUNK_STR if isinstance(raw, str) else _BASE64_JUNK
    if junk.search(raw):
        # Non-alphabet bytes: a2b_base64 skips them; say so, since data was likely lost.
        defects.append("part: invalid characters in base64 skipped")
    try:
        data = binascii.a2b_base64(raw, strict_mode=False)
    except binascii.Error:
        data = None
    if data is not None:
        if not data and raw.strip("=\r\n\t " if isinstance(raw, str) else b"=\r\n\t "):
            defects.append("part: base64 body decodes to nothing")
        return data
    # Broken base64 (a torn last group, stray padding): keep only the alphabet and
    # pad; a few bytes at the tear are lost, the rest of the attachment is not.
    if isinstance(raw, str):
        raw = raw.encode("ascii")
    cleaned = _NOT_BASE64.sub(b"", raw.split(b"=", 1)[0])
    cleaned = cleaned[: len(cleaned) - len(cleaned) % 4] if len(cleaned) % 4 == 1 else cleaned
    cleaned += b"=" * (-len(cleaned) % 4)
    defects.append("part: invalid base64 repaired")
    try:
        return binascii.a2b_base64(cleaned)
    except binascii.Error:
        defects.append("part: base64 undecodable; kept as is")
        return raw
