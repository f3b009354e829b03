"""uuencoded blocks ("begin 644 name" ... "end"), still sent by some old mailers."""

from __future__ import annotations

import binascii
import bisect
import re

_BEGIN = re.compile(r"^begin(?:-base64)? [0-7]{3,4} ([^\r\n]+)\r?\n", re.M)
_END = re.compile(r"^end[ \t]*$\r?\n?", re.M)


def decode_uu_lines(lines: list[bytes]) -> bytes | None:
    out = bytearray()
    for line in lines:
        line = line.rstrip(b"\r\n")
        if not line or line in (b"`", b" "):
            continue
        try:
            out += binascii.a2b_uu(line)
        except binascii.Error:
            # Some encoders pad short lines wrongly: decode what the length byte says.
            try:
                nbytes = (((line[0] - 32) & 63) * 4 + 5) // 3
                out += binascii.a2b_uu(line[:nbytes])
            except (binascii.Error, IndexError):
                return None
    return bytes(out)


def decode_uu_block(raw: bytes) -> bytes | None:
    """A whole body sent with Content-Transfer-Encoding: x-uuencode."""
    lines = raw.splitlines()
    inside = [ln for ln in lines if not ln.startswith((b"begin ", b"end"))]
    return decode_uu_lines(inside)


def extract_uu_blocks(text: str) -> tuple[str, list[tuple[str, bytes]]]:
    """(text without the blocks, [(file name, bytes)]) for the blocks that decode.

    A block runs from a `begin` line to the first `end` line after it.  The
    `end` lines are found once, up front, and each `begin` looks up the next
    one: a search per `begin` (a regex with `.*?`) went over the whole rest of
    the text every time, quadratic in a body of `begin` lines without `end`."""
    if "begin " not in text:
        return text, []
    ends = [(m.start(), m.end()) for m in _END.finditer(text)]
    end_starts = [start for start, _ in ends]
    found: list[tuple[str, bytes]] = []
    kept: list[str] = []
    pos = 0  # text before this has been copied to `kept` or dropped as a block
    search_from = 0
    while True:
        begin = _BEGIN.search(text, search_from)
        if begin is None:
            break
        i = bisect.bisect_left(end_starts, begin.end())
        if i == len(ends):
            break  # no `end` after this `begin`, nor after any later one
        end_start, end_end = ends[i]
        data = decode_uu_lines(text[begin.end() : end_start].encode("latin-1", "replace").splitlines())
        if data is not None:
            found.append((begin.group(1).strip(), data))
            kept.append(text[pos : begin.start()])
            pos = end_end
        search_from = end_end if end_end > begin.start() else begin.end()
    if not found:
        return text, []
    kept.append(text[pos:])
    return "".join(kept), found
