"""MIME parameters (`; boundary=...; charset=...; name=...`), read in linear time.

The MIME tree is the standard library's (compat32), built from `MimeMessage`:
a Message whose parameter reading is ours.  The stdlib splits a header's
parameters by counting, at every `;`, the quotes from the start of what is
left: quadratic, and a 344 KB Content-Type with an unclosed quote took 103 s.
Here one pass keeps the quote parity as it goes, a long field keeps only the
parameters that mean something to us (each value capped), and the result is
remembered per field, since one part's parameters are read many times.

`MimeFeedParser` is the stdlib's feed parser with the bounds it lacks: it stops
reading at MAX_PARTS parts (keeping what it read), follows boundaries
MAX_BOUNDARY_DEPTH deep, tells a boundary line by one look-up however deep the
nesting (`_BoundaryInput`), and mends a part's broken header section before the
stdlib reads it (_header_block.py).
"""

from __future__ import annotations

import functools
import re
from email import utils
from email.feedparser import NLCRE, BufferedSubFile, BytesFeedParser, NeedMoreData, headerRE
from email.message import Message
from email.policy import compat32
from io import StringIO

from postdesk.mail._budget import MAX_PARTS
from postdesk.mail._header_block import repair_part_header_block

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


# Lines of a part's header section looked at for mending: parts carry a handful
# of fields; a longer run is read as it is (the look costs a regex a line).
MAX_PART_HEADER_LINES = 64

# The boundary matcher the stdlib's feed parser pushes for each open multipart
# (email/feedparser.py: '(?P<sep>' + re.escape('--' + boundary) + _BOUNDARY_TAIL).
_BOUNDARY_HEAD = "(?P<sep>"
_BOUNDARY_TAIL = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
_UNESCAPE = re.compile(r"\\(.)", re.S)


class _BoundaryInput(BufferedSubFile):
    """The feed parser's input, telling a line that ends an open part in one
    look-up instead of one regex per open multipart.

    The stdlib tries every line against the boundary of every enclosing
    multipart: lines x depth (600 KB of short lines 24 deep: 1.7 million regex
    calls, a quarter of a second).  A boundary line is `--boundary`, maybe `--`,
    blanks and the line end, so its separator is one of two strings cut from the
    line, looked up in the set of open separators.  A matcher this does not
    recognise (message/delivery-status pushes a blank-line matcher) is still
    called as the stdlib calls it."""

    def __init__(self):
        super().__init__()
        self._separators: dict[str, int] = {}  # open boundary separators, with how many levels use each
        self._others: list = []  # matchers read the stdlib's way
        self._keys: list = []  # per pushed matcher: its separator, or the matcher itself

    def push_eof_matcher(self, pred):
        key = _separator(pred)
        if key is None:
            self._others.append(pred)
            key = pred
        else:
            self._separators[key] = self._separators.get(key, 0) + 1
        self._keys.append(key)
        super().push_eof_matcher(pred)

    def pop_eof_matcher(self):
        key = self._keys.pop()
        if isinstance(key, str):
            left = self._separators[key] - 1
            if left:
                self._separators[key] = left
            else:
                del self._separators[key]
        else:
            self._others.remove(key)
        return super().pop_eof_matcher()

    def mend_header_block(self, defects: list[str]) -> None:
        """The header section of the part about to be read, mended as tolerant
        clients read it (_header_block.repair_part_header_block), when all of
        it has arrived; the lines the stdlib then reads are the mended ones."""
        lines: list[str] = []
        for line in self._lines:
            if NLCRE.match(line) or line.startswith("--"):
                break  # the empty line, or a boundary (a part's own, its empty line missing)
            lines.append(line)
            if len(lines) > MAX_PART_HEADER_LINES:
                return
        else:
            if not self._closed:
                return  # the section goes on in data not yet fed: read as it is
        if all(headerRE.match(line) for line in lines):
            return
        head = "".join(lines).encode("ascii", "surrogateescape")
        fixed = repair_part_header_block(head, defects)
        if fixed is None:
            return
        for _ in lines:
            self._lines.popleft()
        self._lines.extendleft(reversed([line.decode("ascii", "surrogateescape") for line in fixed.splitlines(keepends=True)]))

    def readline(self):
        if not self._lines:
            return "" if self._closed else NeedMoreData
        line = self._lines.popleft()
        if self._ends_a_part(line):
            self._lines.appendleft(line)  # the stdlib's "false EOF"
            return ""
        return line

    def _ends_a_part(self, line: str) -> bool:
        if self._separators and line.startswith("--") and self._is_open_boundary(line):
            return True
        return bool(self._others) and any(pred(line) for pred in self._others)

    def _is_open_boundary(self, line: str) -> bool:
        body = line[:-2] if line.endswith("\r\n") else line[:-1] if line.endswith(("\r", "\n")) else line
        body = body.rstrip(" \t")
        return body in self._separators or (body.endswith("--") and body[:-2] in self._separators)


def _separator(pred) -> str | None:
    """`--boundary` of a boundary matcher the stdlib made, else None."""
    pattern = getattr(getattr(pred, "__self__", None), "pattern", None)
    if getattr(pred, "__name__", "") != "match" or not isinstance(pattern, str):
        return None
    return _separator_in(pattern)


@functools.lru_cache(maxsize=256)  # thousands of parts often share one boundary
def _separator_in(pattern: str) -> str | None:
    if not (pattern.startswith(_BOUNDARY_HEAD) and pattern.endswith(_BOUNDARY_TAIL)):
        return None
    escaped = pattern[len(_BOUNDARY_HEAD) : -len(_BOUNDARY_TAIL)]
    separator = _UNESCAPE.sub(lambda m: m.group(1), escaped)
    if re.escape(separator) != escaped or separator != separator.rstrip(" \t"):
        return None  # not the stdlib's form: read the stdlib's way
    return separator


class MimeFeedParser(BytesFeedParser):
    """The stdlib's parser, telling each new part how many multiparts enclose it,
    and ending the input where part `max_parts` + 1 begins (`stopped_at`)."""

    def __init__(self, *args, max_parts: int = MAX_PARTS, **kwargs):
        kwargs.setdefault("policy", compat32.clone(message_factory=MimeMessage))
        super().__init__(*args, **kwargs)
        self._input = _BoundaryInput()
        self._max_parts = max_parts
        self._parts = 0
        self._fed = 0
        self.stopped_at: int | None = None  # the byte where reading stopped, if it did

    def feed(self, data: bytes) -> None:
        if self.stopped_at is None:
            self._fed += len(data)
            super().feed(data)

    def _new_message(self):
        self._parts += 1
        if self._parts > self._max_parts and self.stopped_at is None:
            self._end_input_here()
        in_multipart = bool(self._msgstack) and self._msgstack[-1].get_content_maintype() == "multipart"
        super()._new_message()
        self._cur.boundary_depth = len(self._input._eofstack)
        if in_multipart and self.stopped_at is None:
            # A part's header section, broken as message headers break.  Not a
            # forwarded message's (message/rfc822): its bytes are kept as sent.
            self._input.mend_header_block(self._cur.header_defects)

    @property
    def parts_read(self) -> int:
        return min(self._parts, self._max_parts)

    def _end_input_here(self) -> None:
        """The unread rest dropped and the input closed: every open part ends
        here as at the end of the message, and what was read is kept.  (Raising
        instead loses the tree built so far, which then had to be read twice.)"""
        pending = self._input._lines
        self.stopped_at = self._fed - sum(map(len, pending)) - len(self._input._partial.getvalue())
        pending.clear()
        self._input._partial = StringIO(newline="")
        self._input._closed = True


class MimeMessage(Message):
    """A compat32 Message whose parameter reading is linear and capped.

    `header_defects` collects what was cut or mended in its header fields, for the parser to report."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._params_cache: dict[tuple[str, str], list] = {}
        self.header_defects: list[str] = []
        self.boundary_depth = 0

    def get_boundary(self, failobj=None):
        if self.boundary_depth >= MAX_BOUNDARY_DEPTH:
            if not self.header_defects or "boundary not followed" not in self.header_defects[-1]:
                self.header_defects.append(f"multipart nested deeper than {MAX_BOUNDARY_DEPTH}: boundary not followed, read as text")
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
            self.header_defects.append(f"{header.lower()}: {len(value)} characters of parameters; only the known ones read")
        else:
            pairs = [(name[:MAX_PARAM_NAME_CHARS], val) for name, val in pairs]
        try:
            return utils.decode_params(pairs)
        except (ValueError, TypeError):  # a continuation number too long for int(); "name*" beside "name*0"
            self.header_defects.append(f"{header.lower()}: unreadable parameters ignored")
            return pairs[:1]
