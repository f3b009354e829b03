"""MIME parameters (`; boundary=...; charset=...; name=...`), read in linear time.

The MIME tree is the standard library's (compat32), built from `MimeMessage`:
a Message whose parameter reading is ours.  The stdlib splits a header's
parameters by counting, at every `;`, the quotes from the start of what is
left: quadratic, and a 344 KB Content-Type with an unclosed quote took 103 s.
Here one pass keeps the quote parity as it goes, a long field keeps only the
parameters that mean something to us (each value capped), and the result is
remembered per field, since one part's parameters are read many times.
"""

from __future__ import annotations

from email import utils
from email.feedparser import BytesFeedParser
from email.message import Message

# A parameter list longer than this is an attack or a broken mailer: only the
# parameters in _KEPT are read from it, and a defect says so.
MAX_PARAMS_CHARS = 8192
MAX_PARAM_VALUE_CHARS = 2048
MAX_PARAM_NAME_CHARS = 100
MAX_KEPT_PARAMS = 256  # RFC 2231 continuations of one file name included

_KEPT = {
    "boundary", "charset", "name", "filename", "type", "start", "protocol", "micalg", "smime-type",
    "report-type", "format", "delsp", "reply-type", "method", "access-type", "size",
}  # fmt: skip


def split_params(value: str) -> list[str]:
    """`email.message._parseparam`, in one pass: the same pieces, stripped.

    A `;` ends a piece unless it stands inside quotes, counted as the stdlib
    does (quotes minus backslash-quotes since the piece began, odd = inside)."""
    s = ";" + value
    pieces: list[str] = []
    pos, n = 0, len(s)
    while pos < n and s[pos] == ";":
        start = pos + 1
        end = s.find(";", start)
        scanned, quotes = start, 0
        while end > start:
            quotes += s.count('"', scanned, end) - s.count('\\"', scanned, end)
            scanned = end
            if quotes % 2 == 0:
                break
            end = s.find(";", end + 1)
        if end < 0:
            end = n
        piece = s[start:end]
        if "=" in piece:
            i = piece.index("=")
            piece = piece[:i].strip().lower() + "=" + piece[i + 1 :].strip()
        pieces.append(piece.strip())
        pos = end
    return pieces


def _pairs(pieces: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for piece in pieces:
        name, sep, val = piece.partition("=")
        pairs.append((name.strip(), val.strip()) if sep else (piece.strip(), ""))
    return pairs


def _kept(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The media type and the parameters we read, each capped."""
    kept = pairs[:1]
    for name, val in pairs[1:]:
        if len(name) > MAX_PARAM_NAME_CHARS or name.split("*", 1)[0].lower() not in _KEPT:
            continue
        kept.append((name, _capped(val)))
        if len(kept) > MAX_KEPT_PARAMS:
            break
    return kept


def _capped(value: str) -> str:
    if len(value) <= MAX_PARAM_VALUE_CHARS:
        return value
    if value.startswith('"'):  # keep it a quoted string: cut inside, close the quote
        return value[: MAX_PARAM_VALUE_CHARS - 1].rstrip("\\") + '"'
    return value[:MAX_PARAM_VALUE_CHARS]


# Multiparts open around a part beyond which its own boundary is not followed
# (the part is read as text).  The stdlib's feed parser tests every line against
# the boundary of every open multipart: lines x depth (300 levels and 1.5 MB of
# short lines: 18 s).  Real mail nests a dozen deep.
MAX_BOUNDARY_DEPTH = 24


# MIME parts in one message: the feed parser costs about 0.1 ms a part (a
# megabyte of empty parts: 50,000 of them, 5 s), and each leaf then costs as
# much again (charset guess, file name, text): 10,000 parts took 1.5-1.9 s in
# the fuzzer.  Real mail stays in the tens.  Past this the message is read up
# to where the parts began to exceed it, and kept whole (see _parse._tree).
MAX_PARTS = 3_000


class TooManyParts(Exception):
    pass


class MimeFeedParser(BytesFeedParser):
    """The stdlib's parser, telling each new part how many multiparts enclose it,
    and stopping (TooManyParts) past `max_parts` parts."""

    def __init__(self, *args, max_parts: int | None = MAX_PARTS, **kwargs):
        super().__init__(*args, **kwargs)
        self._max_parts = max_parts
        self._parts = 0

    def _new_message(self):
        self._parts += 1
        if self._max_parts is not None and self._parts > self._max_parts:
            raise TooManyParts
        super()._new_message()
        self._cur.boundary_depth = len(self._input._eofstack)


class MimeMessage(Message):
    """A compat32 Message whose parameter reading is linear and capped.

    `param_defects` collects what was cut, for the parser to report."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._params_cache: dict[tuple[str, str], list] = {}
        self.param_defects: list[str] = []
        self.boundary_depth = 0

    def get_boundary(self, failobj=None):
        if self.boundary_depth >= MAX_BOUNDARY_DEPTH:
            if not self.param_defects or "boundary not followed" not in self.param_defects[-1]:
                self.param_defects.append(f"multipart nested deeper than {MAX_BOUNDARY_DEPTH}: boundary not followed, read as text")
            return failobj
        return super().get_boundary(failobj)

    def _get_params_preserve(self, failobj, header):
        missing = object()
        value = self.get(header, missing)
        if value is missing:
            return failobj
        value = str(value)
        key = (header.lower(), value)
        cached = self._params_cache.get(key)
        if cached is None:
            cached = self._params_cache[key] = self._read_params(header, value)
        return list(cached)

    def _read_params(self, header: str, value: str) -> list:
        pairs = _pairs(split_params(value))
        if len(value) > MAX_PARAMS_CHARS:
            pairs = _kept(pairs)
            self.param_defects.append(f"{header.lower()}: {len(value)} characters of parameters; only the known ones read")
        else:
            pairs = [(name[:MAX_PARAM_NAME_CHARS], val) for name, val in pairs]
        try:
            return utils.decode_params(pairs)
        except (ValueError, TypeError):  # a continuation number too long for int(); "name*" beside "name*0"
            self.param_defects.append(f"{header.lower()}: unreadable parameters ignored")
            return pairs[:1]
