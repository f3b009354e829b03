"""Text that headers carry encoded: RFC 2047 encoded words and RFC 2231 parameters.

Both name a charset per piece of text, and mailers name it wrongly in the same
ways they do for bodies (`gb2312` for GBK bytes, `iso-8859-1` for UTF-8
bytes), so both go through the WHATWG label table (_labels.py), and bytes that
do not fit their label are read by detection rather than shown as U+FFFD or
mojibake.  The stdlib decoders use Python's own codec names and replace what
does not fit; these are the tolerant readings mail clients give.
"""

from __future__ import annotations

import base64
import binascii
import re

from postdesk.mail._charsets import guess_short
from postdesk.mail._labels import codec_for, is_single_byte

# Tolerant: any charset token, an optional RFC 2231 language ("utf-8*en"), blanks
# inside the encoded text (illegal, but sent by a few mailers).
_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_BLANKS = re.compile(r"[ \t\r\n]*")
_Q_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")


def decode_encoded_words(value: str, defects: list[str], where: str) -> str:
    """A header value with its RFC 2047 encoded words decoded.

    Adjacent encoded words of one charset are joined before decoding, since
    mailers split a multi-byte character across two words; the blanks between
    encoded words are not text (RFC 2047 section 6.2)."""
    if "=?" not in value:
        return value
    out: list[str] = []
    pending_charset: str | None = None
    pending: list[bytes] = []
    pos = 0
    for match in _WORD.finditer(value):
        between = value[pos : match.start()]
        adjacent = pos > 0 and _BLANKS.fullmatch(between) is not None and pending_charset is not None
        charset = match.group(1).split("*", 1)[0]
        if not (adjacent and charset.lower() == pending_charset):
            if pending_charset is not None:
                out.append(decode_labelled(b"".join(pending), pending_charset, defects, where))
                pending = []
            if not adjacent:
                out.append(between)
        pending_charset = charset.lower()
        pending.append(_word_bytes(match.group(2), match.group(3), defects, where))
        pos = match.end()
    if pending_charset is not None:
        out.append(decode_labelled(b"".join(pending), pending_charset, defects, where))
    out.append(value[pos:])
    return "".join(out)


def _word_bytes(encoding: str, text: str, defects: list[str], where: str) -> bytes:
    data = text.encode("ascii", "surrogateescape") if text.isascii() else text.encode("utf-8", "surrogateescape")
    if encoding in "bB":
        data = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
        data = data[: len(data) - len(data) % 4] if len(data) % 4 == 1 else data
        try:
            return base64.b64decode(data + b"=" * (-len(data) % 4))
        except (binascii.Error, ValueError):
            defects.append(f"{where}: unreadable base64 encoded word kept as is")
            return data
    return _Q_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), data.replace(b"_", b" "))


def decode_labelled(data: bytes, label: str | None, defects: list[str], where: str) -> str:
    """Short text in a declared charset: the label's codec (WHATWG table) when the
    bytes fit it, else the likeliest reading."""
    codec = codec_for(label)
    if data.isascii() and (codec is None or not codec.startswith(("utf-16", "utf-32", "utf-7", "iso2022", "hz"))):
        return data.decode("ascii")
    if codec is not None:
        if is_single_byte(codec) and _is_multibyte_utf8(data):
            # UTF-8 read with a one-byte codec is mojibake ("JÃ¼rgen"), and text in
            # a one-byte charset is almost never valid multi-byte UTF-8.
            defects.append(f"{where}: text labelled {label} is UTF-8; read as such")
            return data.decode("utf-8")
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            pass
        defects.append(f"{where}: bytes are not valid {label}; guessed the charset")
    elif label and label.lower() not in ("unknown-8bit", "x-unknown", "unknown"):
        defects.append(f"{where}: unknown charset {label!r}; guessed")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    guessed = guess_short(data)
    return guessed[0] if guessed else data.decode("cp1252", errors="replace")


def _is_multibyte_utf8(data: bytes) -> bool:
    if data.isascii():
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def rfc2231_text(value: object, defects: list[str], where: str) -> str | None:
    """A parameter value as `Message.get_param` returns it: a str, or for RFC 2231
    (`filename*=gb2312''%C4%E3`) a (charset, language, text) tuple whose text holds
    the raw bytes one per character."""
    if value is None:
        return None
    if isinstance(value, tuple) and len(value) == 3:
        charset, _language, text = value
        try:
            raw = str(text).encode("latin-1", "surrogateescape")
        except UnicodeEncodeError:  # not bytes after all: already text
            return str(text)
        return decode_labelled(raw, charset or None, defects, where)
    return str(value)


def filename_param(part, defects: list[str]) -> str | None:
    """The part's file name (Content-Disposition filename, else Content-Type name),
    RFC 2231 decoded through the label table; None when it has none."""
    missing = object()
    value = part.get_param("filename", missing, "content-disposition")
    if value is missing:
        value = part.get_param("name", missing, "content-type")
    if value is missing:
        return None
    text = rfc2231_text(value, defects, "filename")  # get_param has unquoted it
    return text.strip() if text is not None else None
