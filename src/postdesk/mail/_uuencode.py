"""uuencoded blocks ("begin 644 name" ... "end"), still sent by some old mailers."""

from __future__ import annotations

import binascii
import re

_BLOCK = re.compile(r"^begin(?:-base64)? [0-7]{3,4} ([^\r\n]+)\r?\n(.*?)^end[ \t]*$\r?\n?", re.M | re.S)


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
    """(text without the blocks, [(file name, bytes)]) for the blocks that decode."""
    if "begin " not in text:
        return text, []
    found: list[tuple[str, bytes]] = []

    def take(match: re.Match) -> str:
        data = decode_uu_lines(match.group(2).encode("latin-1", "replace").splitlines())
        if data is None:
            return match.group(0)
        found.append((match.group(1).strip(), data))
        return ""

    remaining = _BLOCK.sub(take, text)
    return remaining, found
