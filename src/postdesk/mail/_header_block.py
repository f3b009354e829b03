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

A MIME part's own header section breaks the same ways (a gateway's line after
the boundary, `name=` wrapped without white space), and the stdlib then reads
its Content-Type and Content-Disposition as text: `repair_part_header_block`
mends it, on the lines the feed parser is about to read (_params.py).
"""

from __future__ import annotations

import re

# A field name (printable ASCII but ':'), optionally blanks before the colon.
_FIELD = re.compile(rb"([!-9;-~]+)([ \t]*):")
_ADDRESS_FIELDS = frozenset({b"from", b"to", b"cc", b"bcc", b"reply-to", b"sender", b"resent-to", b"resent-cc"})
_MAX_SHOWN = 60


def repair_header_block(head: bytes, defects: list[str], *, part: bool = False) -> bytes:
    """`head` (the header section, without its terminating empty line) mended.

    In a MIME part (`part`), a stray line before any field is dropped as well:
    a gateway's line right after the boundary."""
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
        elif kind == "stray" and i < last_field and part:
            defects.append(f"header block: a stray line among the headers dropped: {_shown(line)!r}")
            line = b""
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
    shown = _shown(content)
    if not content.strip():
        return b""
    if b" " not in content.strip() or (previous_name in _ADDRESS_FIELDS and b"@" in content):
        # A wrapped value (base64, an encoded word, more addresses): fold it back.
        defects.append(f"header block: a line without a name continued {name}: {shown!r}")
        return b" " + content + ending
    defects.append(f"header block: a stray line among the headers dropped: {shown!r}")
    return b""


def _shown(line: bytes) -> str:
    return line.rstrip(b"\r\n")[:_MAX_SHOWN].decode("utf-8", "replace")


# Where the stdlib ends a header section (email.feedparser.headerRE), in bytes.
_STDLIB_HEADER_LINE = re.compile(rb"(From |[\041-\071\073-\176]*:|[\t ])")
# The fields a part's reading depends on: its type, name, encoding.
_CONTENT_FIELD = re.compile(rb"(content-[!-9;-~]*)[ \t]*:", re.I)


def repair_part_header_block(head: bytes, defects: list[str]) -> bytes | None:
    """A MIME part's header section (without its empty line) mended as a
    message's is, or None when there is nothing to mend.

    Only when a Content- field the part has not had yet comes at or after the
    line where the stdlib ends the section: a part whose header lines run
    straight into its text (no empty line) is common, and that text may hold
    `Name: value` lines of its own, a forwarded header even; a Content- field
    that is new to the part is what shows the lines were still its header (a
    gateway's stray line, a parameter wrapped without white space)."""
    lines = head.splitlines(keepends=True)
    stop = next((i for i, line in enumerate(lines) if not _STDLIB_HEADER_LINE.match(line)), None)
    if stop is None or not _content_fields(lines[stop:]) - _content_fields(lines[:stop]):
        return None
    found: list[str] = []
    fixed = repair_header_block(head, found, part=True)
    if fixed == head:
        return None
    defects.extend(f"part {defect}" for defect in found)
    return fixed


def _content_fields(lines: list[bytes]) -> set[bytes]:
    return {match.group(1).lower() for match in map(_CONTENT_FIELD.match, lines) if match}
