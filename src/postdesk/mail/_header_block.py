"""The header section read the way tolerant mail clients read it.

The stdlib parser ends the header section at the first line that is neither
`Name: value` nor a folded continuation; everything after it becomes body.
Mailers and gateways do write such lines: a long base64 value wrapped without
leading white space, a stray line of text, `Subject :` (obsolete syntax).  The
request then has no subject, no From, and the rest of the header as its body.

`repair_header_block` returns the header bytes with those lines mended, only
while more `Name: value` lines follow (the section ends at the first empty
line, RFC 5322 section 2.1): a line without white space is a wrapped value and
continues the previous header; any other stray line is dropped.  Each repair
is recorded as a defect.  Only the bytes handed to the stdlib change: the raw
message is kept as it was.
"""

from __future__ import annotations

import re

# A field name (printable ASCII but ':'), optionally blanks before the colon.
_FIELD = re.compile(rb"([!-9;-~]+)([ \t]*):")
_ADDRESS_FIELDS = frozenset({b"from", b"to", b"cc", b"bcc", b"reply-to", b"sender", b"resent-to", b"resent-cc"})
_MAX_SHOWN = 60


def repair_header_block(head: bytes, defects: list[str]) -> bytes:
    """`head` (the header section, without its terminating empty line) mended."""
    lines = head.splitlines(keepends=True)
    kinds = [_kind(line, first=(i == 0)) for i, line in enumerate(lines)]
    last_field = max((i for i, kind in enumerate(kinds) if kind == "field"), default=-1)
    out: list[bytes] = []
    previous_name = b""
    for i, (line, kind) in enumerate(zip(lines, kinds, strict=True)):
        if kind == "field":
            match = _FIELD.match(line)
            assert match is not None
            previous_name = match.group(1).lower()
            if match.group(2):  # "Subject :": obsolete syntax for "Subject:"
                line = match.group(1) + line[match.end(2) :]
                defects.append("header name followed by a space repaired")
        elif kind == "stray" and i < last_field and previous_name:
            line = _mended(line, previous_name, defects)
        out.append(line)
    return b"".join(out)


def _kind(line: bytes, first: bool) -> str:
    if line[:1] in (b" ", b"\t"):
        return "fold"
    if first and line.startswith(b"From "):
        return "envelope"  # the mbox "From " line; the stdlib reads it
    return "field" if _FIELD.match(line) else "stray"


def _mended(line: bytes, previous_name: bytes, defects: list[str]) -> bytes:
    content = line.rstrip(b"\r\n")
    ending = line[len(content) :]
    name = previous_name.decode("ascii", "replace")
    shown = content[:_MAX_SHOWN].decode("utf-8", "replace")
    if not content.strip():
        return b""
    if b" " not in content.strip() or (previous_name in _ADDRESS_FIELDS and b"@" in content):
        # A wrapped value (base64, an encoded word, more addresses): fold it back.
        defects.append(f"header block: a line without a name continued {name}: {shown!r}")
        return b" " + content + ending
    defects.append(f"header block: a stray line among the headers dropped: {shown!r}")
    return b""
