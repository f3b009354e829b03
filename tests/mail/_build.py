"""Small helpers that build raw RFC 5322 / MIME messages as bytes for the parser tests.

Everything is written by hand (not with `email.message.EmailMessage`) so a test controls
every byte: raw 8-bit headers, broken charsets, odd parameters and so on.  Lines end in
LF; the parser must accept that as well as CRLF.

    raw = message(
        multipart("mixed", [
            part("text/plain; charset=utf-8", "Hello"),
            part("application/pdf", b"%PDF-1.4 ...", cte="base64", filename="a.pdf"),
        ]),
        headers=[("Subject", "Hi")],
    )
"""

from __future__ import annotations

import base64
import binascii
import itertools
import quopri
import struct
from collections.abc import Iterable, Sequence

HeaderValue = str | bytes | None
Headers = Sequence[tuple[str, HeaderValue]]

DEFAULT_HEADERS: list[tuple[str, str]] = [
    ("From", "Alice Example <alice@example.com>"),
    ("To", "Bob Example <bob@example.org>"),
    ("Subject", "Test message"),
    ("Date", "Mon, 02 Jun 2025 10:00:00 +0000"),
    ("Message-ID", "<test-1@example.com>"),
]

_boundaries = itertools.count(1)

# The JSON of `postdesk inspect --json` and ParsedMessage.to_dict(): exactly these keys.
TO_DICT_KEYS = {
    "message_id",
    "in_reply_to",
    "references",
    "subject",
    "date",
    "from",
    "from_source",
    "reply_to",
    "to",
    "cc",
    "text",
    "html",
    "attachments",
    "auto_submitted",
    "defects",
}
ATTACHMENT_KEYS = {"filename", "content_type", "size", "sha256", "content_id", "inline"}



def to_bytes(value: str | bytes, charset: str = "utf-8") -> bytes:
    return value if isinstance(value, bytes) else value.encode(charset)


def header_lines(headers: Headers) -> bytes:
    """`Name: value` lines; a bytes value is written verbatim (raw 8-bit headers)."""
    out = b""
    for name, value in headers:
        if value is None:
            continue
        out += name.encode("ascii") + b": " + to_bytes(value) + b"\n"
    return out


def b64(data: bytes) -> bytes:
    """Base64 wrapped at 76 columns, as MUAs send it."""
    return base64.encodebytes(data)


def qp(data: bytes) -> bytes:
    """Quoted-printable (with `=` soft line breaks for long lines)."""
    return quopri.encodestring(data)


def encoded_word(text: str, charset: str = "utf-8", encoding: str = "B") -> str:
    """One RFC 2047 encoded word."""
    raw = text.encode(charset)
    if encoding.upper() == "B":
        payload = base64.b64encode(raw).decode("ascii")
    else:
        payload = "".join(
            "_" if b == 0x20 else chr(b) if (0x30 <= b <= 0x39 or 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A) else f"={b:02X}"
            for b in raw
        )
    return f"=?{charset}?{encoding.upper()}?{payload}?="


def part(
    content_type: str | None,
    body: str | bytes = b"",
    *,
    charset: str = "utf-8",
    cte: str | None = None,
    disposition: str | None = None,
    filename: str | None = None,
    content_id: str | None = None,
    headers: Headers = (),
) -> bytes:
    """One MIME entity: its headers, a blank line and its body.

    `body` is the decoded content (a str is encoded with `charset`); `cte` "base64" or
    "quoted-printable" encodes it, any other value ("8bit", "7bit") is only declared.
    `filename` adds `; filename="..."` to the disposition (default disposition "attachment").
    `content_type=None` writes no Content-Type header at all.
    """
    data = to_bytes(body, charset)
    hdrs: list[tuple[str, HeaderValue]] = []
    if content_type is not None:
        hdrs.append(("Content-Type", content_type))
    if cte:
        hdrs.append(("Content-Transfer-Encoding", cte))
        if cte.lower() == "base64":
            data = b64(data)
        elif cte.lower() == "quoted-printable":
            data = qp(data)
    if filename is not None and disposition is None:
        disposition = "attachment"
    if disposition is not None:
        disp = disposition
        if filename is not None:
            disp += f'; filename="{filename}"'
        hdrs.append(("Content-Disposition", disp))
    if content_id is not None:
        hdrs.append(("Content-ID", content_id))
    hdrs.extend(headers)
    if data and not data.endswith(b"\n"):
        data += b"\n"
    return header_lines(hdrs) + b"\n" + data


def multipart(
    subtype: str,
    parts: Iterable[bytes],
    *,
    params: str = "",
    boundary: str | None = None,
    headers: Headers = (),
    preamble: bytes = b"This is a multi-part message in MIME format.\n",
) -> bytes:
    """A multipart entity (usable as a part or as the body of `message()`).

    `params` is appended to the Content-Type, e.g. '; protocol="application/pgp-signature"'.
    """
    boundary = boundary or f"==b{next(_boundaries):04d}=="
    hdrs: list[tuple[str, HeaderValue]] = [("Content-Type", f'multipart/{subtype}; boundary="{boundary}"{params}')]
    hdrs.extend(headers)
    out = header_lines(hdrs) + b"\n" + preamble
    delim = b"--" + boundary.encode("ascii")
    for p in parts:
        out += delim + b"\n" + p
        if not out.endswith(b"\n"):
            out += b"\n"
        # The line break before the next delimiter belongs to the delimiter (RFC 2046),
        # so add one: the part's own last line break stays part of its content.
        out += b"\n"
    out += delim + b"--\n"
    return out


def message(body_part: bytes | None = None, headers: Headers = (), *, defaults: bool = True) -> bytes:
    """A whole message: top-level headers followed by `body_part` (as made by `part()`/`multipart()`).

    `headers` replace the default headers of the same name (case-insensitively, the
    first one takes the default's place); a None value drops that default.
    `body_part=None` gives a plain us-ascii text body.
    """
    if body_part is None:
        body_part = part("text/plain; charset=us-ascii", "Hello Bob,\n\nthis is a test.\n")
    given = {name.lower() for name, _ in headers}
    top: list[tuple[str, HeaderValue]] = []
    if defaults:
        top = [(n, v) for n, v in DEFAULT_HEADERS if n.lower() not in given]
    top.extend(headers)
    top.append(("MIME-Version", "1.0"))
    return header_lines(top) + body_part


def text_message(text: str | bytes, *, content_type: str = "text/plain; charset=utf-8", headers: Headers = (), **kw) -> bytes:
    """A single-part text message."""
    return message(part(content_type, text, **kw), headers)


def uuencode(data: bytes, name: str, mode: str = "644") -> bytes:
    """A classic `begin ... end` uuencoded block."""
    out = f"begin {mode} {name}\n".encode("ascii")
    for i in range(0, len(data), 45):
        out += binascii.b2a_uu(data[i : i + 45])
    out += b"`\nend\n"
    return out


# --- TNEF (winmail.dat) --------------------------------------------------------------------
#
# A TNEF stream is: u32 signature 0x223E9F78, u16 key, then attributes, each
#   u8 level (1 message, 2 attachment), u32 id = (attribute type << 16) | attribute name,
#   u32 length, data, u16 checksum (sum of the data bytes mod 65536), all little-endian.
# tnefparse starts a new attachment at each attAttachRendData and reads objects only while
# more than 12 bytes remain, so the last attribute must carry at least 2 bytes of data.

TNEF_SIGNATURE = 0x223E9F78
LVL_MESSAGE = 0x01
LVL_ATTACHMENT = 0x02

ATT_TNEF_VERSION = 0x00089006  # atpDword, attTnefVersion
ATT_OEM_CODEPAGE = 0x00069007  # atpByte,  attOemCodepage
ATT_MESSAGE_CLASS = 0x00078008  # atpWord,  attMessageClass
ATT_SUBJECT = 0x00018004  # atpString, attSubject
ATT_BODY = 0x0002800C  # atpText, attBody
ATT_ATTACH_REND_DATA = 0x00069002  # atpByte, attAttachRendData
ATT_ATTACH_TITLE = 0x00018010  # atpString, attAttachTitle
ATT_ATTACH_DATA = 0x0006800F  # atpByte, attAttachData


def tnef_attribute(level: int, attr_id: int, data: bytes) -> bytes:
    return struct.pack("<BII", level, attr_id, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)


def tnef(
    attachments: Sequence[tuple[str, bytes]] = (),
    *,
    body: str | None = None,
    subject: str | None = None,
    key: int = 0x1234,
    codepage: int = 1252,
) -> bytes:
    """A minimal winmail.dat: version, codepage, message class, optional subject and body
    (attBody, in `codepage`), then each attachment as rendering data + title + data."""
    out = struct.pack("<IH", TNEF_SIGNATURE, key)
    out += tnef_attribute(LVL_MESSAGE, ATT_TNEF_VERSION, struct.pack("<I", 0x00010000))
    out += tnef_attribute(LVL_MESSAGE, ATT_OEM_CODEPAGE, struct.pack("<II", codepage, 0))
    out += tnef_attribute(LVL_MESSAGE, ATT_MESSAGE_CLASS, b"IPM.Microsoft Mail.Note\x00")
    pyenc = f"cp{codepage}"
    if subject is not None:
        out += tnef_attribute(LVL_MESSAGE, ATT_SUBJECT, subject.encode(pyenc) + b"\x00")
    if body is not None:
        out += tnef_attribute(LVL_MESSAGE, ATT_BODY, body.encode(pyenc))
    for name, data in attachments:
        assert len(data) >= 2, "tnefparse drops a trailing attribute with less than 2 data bytes"
        # attRenddata: u16 type (1 = file), u32 position, u16 width, u16 height, u32 flags
        rend = struct.pack("<HIHHI", 1, 0xFFFFFFFF, 0xFFFF, 0xFFFF, 0)
        out += tnef_attribute(LVL_ATTACHMENT, ATT_ATTACH_REND_DATA, rend)
        out += tnef_attribute(LVL_ATTACHMENT, ATT_ATTACH_TITLE, name.encode(pyenc) + b"\x00")
        out += tnef_attribute(LVL_ATTACHMENT, ATT_ATTACH_DATA, data)
    return out
