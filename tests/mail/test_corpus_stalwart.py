"""`parse()` against the MIME structure corpus of stalwartlabs/mail-parser.

The corpus (../shared/corpora/stalwart, read-only; see its MANIFEST.md) holds
53 messages - Dovecot's malformed and third-party MIME test messages and the
examples printed in the RFCs - each `NNN.eml` beside `NNN.json`, the upstream
parser's full result.  For every message we check that `parse()` does not
raise and that what a help-desk user sees agrees with upstream: subject,
addresses, date, Message-ID, the text body, the HTML body and the attachments.

The comparisons are deliberately tolerant where the two parsers legitimately
present the same content differently, and each tolerance says why:

* Text: each upstream text-body part must be *contained* in our `text` after
  whitespace normalisation (we join several body parts into one string and may
  tidy line ends).  Inside a `multipart/alternative` only one alternative has to
  be present (RFC 2046 5.1.4: they are the same content; JMAP lists all of them).
  An HTML part that upstream uses as the text body must show up word for word in
  our text (we render it with inscriptis; layout differs, words must not).
* HTML: our `html` is None exactly when upstream's html_body has no text/html
  part; otherwise the visible text of each upstream HTML part is contained in
  the visible text of ours (ignoring whitespace: nh3 sanitises the markup).
* Attachments: ours is a superset of upstream's JMAP `attachments` (we list
  every non-text leaf part, e.g. inline images that JMAP puts in the body
  lists, because staff need every stored part).  Every upstream attachment
  must match one of ours by content type and decoded size, by file name when
  upstream has one (after the same "basename" safety rule we apply), and by
  Content-ID when it has one; every extra one of ours must be a leaf part of
  the upstream tree that is not text/plain or text/html.
* message/* attachments: we re-serialise them, so only their presence (type,
  name, and the forwarded subject) is compared, not their size.
* Message-IDs are without angle brackets on our side.
* "Recovered" parts: where upstream could not finish a part (its closing
  boundary is missing, or a declared multipart has no parts, or the transfer
  encoding is broken) it flags `is_encoding_problem`, keeps the raw text and
  demotes the part to an attachment.  We may instead show such text in the
  body; either is accepted as long as every content line of it (not boundary
  or header lines) is still somewhere a person can read it: in our text, our
  HTML, or an attachment.

Each message converted to CRLF line ends must also parse to the same subject,
text, HTML and attachment list as the LF original.

Where a specific upstream reading of a broken message is one we reasonably
differ on, `DEVIATIONS` below says so per file, with the reason and with our
own expectation in place of upstream's.  Genuine losses (text, attachments,
subject) are never listed there: they stay failing tests.
"""

from __future__ import annotations

import codecs
import functools
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import CORPORA_DIR

CORPUS_NAME = "stalwart"
CASES = (
    [f"malformed/{n:03d}" for n in range(23)]
    + [f"rfc/{n:03d}" for n in range(10)]
    + [f"thirdparty/{n:03d}" for n in range(20)]
)


# --------------------------------------------------------------------------
# Loading the upstream JSON
# --------------------------------------------------------------------------


@dataclass
class UpPart:
    """One node of upstream's part tree, with what we compare resolved."""

    index: int
    content_type: str  # effective type, lower case (defaults applied)
    declared_type: bool  # False when the part has no Content-Type header
    params: dict[str, str]
    disposition: str | None
    disposition_params: dict[str, str]
    content_id: str | None
    kind: str  # Text, Html, Binary, InlineBinary, Message or Multipart
    text: str | None = None  # Text / Html
    data: bytes | None = None  # Binary / InlineBinary
    message: UpMessage | None = None  # Message
    children: list[int] = field(default_factory=list)  # Multipart
    encoding_problem: bool = False
    parent: int | None = None

    @property
    def filename(self) -> str | None:
        """JMAP's name: Content-Disposition filename, else Content-Type name."""
        return self.disposition_params.get("filename") or self.params.get("name") or None

    @property
    def is_leaf(self) -> bool:
        return self.kind != "Multipart"

    @property
    def size(self) -> int | None:
        """The decoded size in bytes, or None when upstream cannot tell us.

        Upstream gives text parts as Unicode; we re-encode them in the declared
        charset (US-ASCII by default).  A part with an encoding problem holds
        the raw, undecoded text, so its decoded size is unknown; message/*
        parts are compared by presence only (we re-serialise them).
        """
        if self.kind in ("Message", "Multipart") or self.content_type.startswith(("message/", "multipart/")):
            return None
        if self.encoding_problem:
            return None
        if self.data is not None:
            return len(self.data)
        assert self.text is not None
        charset = self.params.get("charset") or "us-ascii"
        try:
            return len(self.text.encode(codecs.lookup(charset).name))
        except (LookupError, UnicodeEncodeError):
            return None

    @property
    def is_recovered_text(self) -> bool:
        """A part upstream could not finish and kept as raw text (see module doc)."""
        if self.kind != "Text" or self.filename or self.disposition == "attachment":
            return False
        if self.content_type.startswith("multipart/"):
            return True  # a multipart whose parts upstream could not find
        return self.encoding_problem and self.content_type in ("text/plain", "text/html")


@dataclass
class UpMessage:
    headers: dict[str, object]  # first occurrence of each standard header
    parts: list[UpPart]
    text_body: list[int]
    html_body: list[int]
    attachments: list[int]

    # -- headers -----------------------------------------------------------
    def text_header(self, name: str) -> str | None:
        value = self.headers.get(name)
        if isinstance(value, dict):
            if "Text" in value:
                return value["Text"]
            if "TextList" in value and value["TextList"]:
                return value["TextList"][0]
        return None

    def addresses(self, name: str) -> list[tuple[str, str]]:
        value = self.headers.get(name)
        if not isinstance(value, dict) or not isinstance(value.get("Address"), dict):
            return []
        addr = value["Address"]
        mailboxes = []
        if "List" in addr:
            mailboxes = addr["List"]
        elif "Group" in addr:
            mailboxes = [m for group in addr["Group"] for m in group.get("addresses") or []]
        return [(_norm_ws(m.get("name") or ""), (m.get("address") or "").strip()) for m in mailboxes]

    def date(self) -> datetime | None:
        value = self.headers.get("date")
        if not isinstance(value, dict) or "DateTime" not in value:
            return None
        d = value["DateTime"]
        offset = timedelta(hours=d["tz_hour"], minutes=d["tz_minute"])
        if d["tz_before_gmt"]:
            offset = -offset
        return datetime(
            d["year"], d["month"], d["day"], d["hour"], d["minute"], d["second"], tzinfo=timezone(offset)
        )

    # -- tree --------------------------------------------------------------
    def walk_leaves(self):
        """Every leaf part of the tree, descending into nested messages."""
        for part in self.parts:
            if part.is_leaf:
                yield part
            if part.message is not None:
                yield from part.message.walk_leaves()


def _attrs(value: object) -> tuple[str | None, str | None, dict[str, str]]:
    if not isinstance(value, dict) or "ContentType" not in value:
        return None, None, {}
    ct = value["ContentType"]
    params = {a["name"].lower(): a["value"] for a in ct.get("attributes") or []}
    return ct.get("c_type"), ct.get("c_subtype"), params


def _load_message(raw: dict) -> UpMessage:
    raw_parts = raw["parts"]
    parents: dict[int, int] = {}
    for i, p in enumerate(raw_parts):
        for child in p["body"].get("Multipart", []) if isinstance(p["body"], dict) else []:
            parents[child] = i
    parts: list[UpPart] = []
    for i, p in enumerate(raw_parts):
        headers: dict[str, object] = {}
        for h in p["headers"]:
            if isinstance(h["name"], str):
                headers.setdefault(h["name"], h["value"])
        c_type, c_sub, params = _attrs(headers.get("content_type"))
        d_type, _, d_params = _attrs(headers.get("content_disposition"))
        (kind, body), = p["body"].items()
        parent = parents.get(i)
        if c_type:
            content_type = f"{c_type}/{c_sub or ''}".lower()
        elif kind == "Message" or (parent is not None and parts[parent].content_type == "multipart/digest"):
            content_type = "message/rfc822"  # RFC 2046 5.1.5: the default inside a digest
        else:
            content_type = "text/plain"  # RFC 2045 5.2
        cid = headers.get("content_id")
        cid = cid.get("Text") if isinstance(cid, dict) else None
        part = UpPart(
            index=i,
            content_type=content_type,
            declared_type=bool(c_type),
            params=params,
            disposition=d_type.lower() if d_type else None,
            disposition_params=d_params,
            content_id=cid.strip().strip("<>") if cid else None,
            kind=kind,
            encoding_problem=p["is_encoding_problem"],
            parent=parent,
        )
        if kind in ("Text", "Html"):
            part.text = body
        elif kind in ("Binary", "InlineBinary"):
            part.data = bytes(body)
        elif kind == "Message":
            part.message = _load_message(body)
        elif kind == "Multipart":
            part.children = list(body)
        else:  # pragma: no cover - a new upstream body type
            raise AssertionError(f"unknown upstream body type {kind!r}")
        parts.append(part)
    top_headers: dict[str, object] = {}
    for h in raw_parts[0]["headers"] if raw_parts else []:
        if isinstance(h["name"], str):
            top_headers.setdefault(h["name"], h["value"])
    return UpMessage(top_headers, parts, raw["text_body"], raw["html_body"], raw["attachments"])


def _corpus(corpora_dir: Path) -> Path:
    path = corpora_dir / CORPUS_NAME
    if not path.is_dir():
        pytest.skip(f"the {CORPUS_NAME} corpus is not at {path}")
    return path


@functools.lru_cache(maxsize=None)
def _upstream(case: str) -> UpMessage:
    return _load_message(json.loads((CORPORA_DIR / CORPUS_NAME / f"{case}.json").read_text("utf-8")))


def _raw(case: str, crlf: bool = False) -> bytes:
    raw = (CORPORA_DIR / CORPUS_NAME / f"{case}.eml").read_bytes()
    return re.sub(rb"\r?\n", b"\r\n", raw) if crlf else raw


@functools.lru_cache(maxsize=None)
def _ours(case: str, crlf: bool = False):
    from postdesk.mail import parse

    return parse(_raw(case, crlf))


# --------------------------------------------------------------------------
# Tolerant text comparison
# --------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\ufffd]")


def _norm_ws(s: str) -> str:
    return " ".join(s.split())


def _norm_text(s: str) -> str:
    """NFC, no control characters or replacement characters, whitespace collapsed."""
    return _norm_ws(_CONTROL.sub("", unicodedata.normalize("NFC", s)))


def _segments(s: str) -> list[str]:
    """The normalised pieces of `s` between U+FFFD: upstream replaces undecodable
    bytes with U+FFFD, while we may guess a charset for them; the decodable
    text around them must survive either way."""
    return [seg for seg in (_norm_text(x) for x in s.split("\ufffd")) if seg]


_HEADER_LINE = re.compile(r"^[!-9;-~]+:\s")


def _content_lines(s: str) -> list[str]:
    """The lines of a recovered part that are content, not MIME structure
    (boundary delimiters and header lines that upstream swallowed)."""
    lines = []
    for line in s.splitlines():
        norm = _norm_text(line)
        if norm and not norm.startswith("--") and not _HEADER_LINE.match(norm):
            lines.append(norm)
    return lines


class _Visible(HTMLParser):
    SKIP = {"script", "style", "head", "title", "template"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skipping += 1
        self.out.append(" ")

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1
        self.out.append(" ")

    def handle_data(self, data):
        if not self.skipping:
            self.out.append(data)


def _visible_text(html: str) -> str:
    parser = _Visible()
    parser.feed(html)
    parser.close()
    return _norm_text("".join(parser.out))


def _squash(s: str) -> str:
    return re.sub(r"\s+", "", s)


def _words(s: str) -> set[str]:
    return {w.casefold() for w in re.findall(r"\w+", s)}


# An upstream body list as a requirement tree: ("all"|"any", [children]) or
# ("part", UpPart).  Inside multipart/alternative any one alternative will do.
def _requirement(msg: UpMessage, body: list[int], kinds: tuple[str, ...], index: int = 0):
    part = msg.parts[index]
    if part.kind == "Multipart":
        children = [r for c in part.children if (r := _requirement(msg, body, kinds, c)) is not None]
        if not children:
            return None
        return ("any" if part.content_type == "multipart/alternative" else "all", children)
    if index in body and part.kind in kinds:
        return ("part", part)
    return None


def _unmet(req, ok: Callable[[UpPart], bool]) -> list[UpPart]:
    """The parts that keep `req` from holding (empty when it holds)."""
    if req is None:
        return []
    op, arg = req
    if op == "part":
        return [] if ok(arg) else [arg]
    results = [_unmet(r, ok) for r in arg]
    if op == "any":
        return [] if any(not r for r in results) else [p for r in results for p in r]
    return [p for r in results for p in r]


def _text_part_shown(part: UpPart, ours) -> bool:
    """Is upstream text-body part `part` present in our text?"""
    text = _norm_text(ours.text)
    if part.kind == "Html":
        return _words(_visible_text(part.text)) <= _words(text)
    if part.is_recovered_text:
        return _readable_somewhere(part, ours)
    return all(seg in text for seg in _segments(part.text))


def _html_part_shown(part: UpPart, ours) -> bool:
    return ours.html is not None and _squash(_visible_text(part.text)) in _squash(_visible_text(ours.html))


def _readable_somewhere(part: UpPart, ours) -> bool:
    """Every content line of a recovered part is in our text, HTML or an attachment."""
    haystack = [_norm_text(ours.text)]
    if ours.html is not None:
        haystack.append(_visible_text(ours.html))
    haystack += [_norm_text(a.data.decode("utf-8", "replace")) for a in ours.attachments]
    return all(any(line in h for h in haystack) for line in _content_lines(part.text))


# --------------------------------------------------------------------------
# Attachments
# --------------------------------------------------------------------------


def _safe_name(name: str) -> str:
    """The safety rule of our file names that upstream does not apply: keep the
    last path component, drop control characters and leading dots."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    return name.strip().lstrip(".").strip()


def _describe(part: UpPart) -> str:
    bits = [f"part {part.index} {part.content_type}"]
    if part.filename:
        bits.append(f"name={part.filename!r}")
    if part.size is not None:
        bits.append(f"size={part.size}")
    if part.content_id:
        bits.append(f"cid={part.content_id!r}")
    if part.message is not None and part.message.text_header("subject") is not None:
        bits.append(f"forwarded subject={part.message.text_header('subject')!r}")
    return " ".join(bits)


def _ours_described(ours) -> str:
    return "\n".join(
        f"  - {a.filename!r} {a.content_type} size={a.size} cid={a.content_id!r} inline={a.inline}"
        + (f" forwarded={a.forwarded.subject!r}" if a.forwarded else "")
        for a in ours.attachments
    ) or "  (none)"


def _matches(up: UpPart, a) -> bool:
    if a.content_type != up.content_type:
        return False
    if up.size is not None and a.size != up.size:
        return False
    if up.filename and a.filename != _safe_name(up.filename):
        return False
    if up.content_id and a.content_id != up.content_id:
        return False
    if up.message is not None:
        subject = up.message.text_header("subject")
        if subject is not None:
            # The spec exposes a forwarded message's subject on its attachment.
            if a.forwarded is None or _norm_ws(a.forwarded.subject) != _norm_ws(subject):
                return False
    return True


def _match_upstream_attachments(msg: UpMessage, ours) -> tuple[dict[int, int], list[UpPart]]:
    """Pair upstream attachments with ours; returns ({upstream index: our index}, unmatched)."""
    wanted = [msg.parts[i] for i in msg.attachments]
    # Most specific first, so a loose expectation does not take a specific one's match.
    wanted.sort(key=lambda p: (p.filename is None, p.content_id is None, p.size is None))
    taken: dict[int, int] = {}
    missing: list[UpPart] = []
    for up in wanted:
        for j, a in enumerate(ours.attachments):
            if j not in taken.values() and _matches(up, a):
                taken[up.index] = j
                break
        else:
            if up.is_recovered_text and _readable_somewhere(up, ours):
                continue
            missing.append(up)
    return taken, missing


def _cid_references(msg: UpMessage) -> set[str]:
    refs = set()
    for i in msg.html_body:
        part = msg.parts[i]
        if part.kind == "Html":
            refs |= {m.strip() for m in re.findall(r"""cid:([^"'\s>]+)""", part.text, re.I)}
    return refs


# --------------------------------------------------------------------------
# Deliberate deviations from upstream, per message
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Deviation:
    """We read this message differently from upstream, on purpose.

    `replaces` names the comparisons (subject, addresses, date, message_id,
    text, html, attachments, extras) that `check` performs instead of the
    upstream comparison; `check` asserts our own expectation."""

    reason: str
    replaces: frozenset[str]
    check: Callable[[object], None]


DEVIATIONS: dict[str, Deviation] = {}


def _deviation(case: str, replaces: set[str], reason: str):
    def register(check):
        DEVIATIONS[case] = Deviation(" ".join(reason.split()), frozenset(replaces), check)
        return check

    return register


def _deviates(case: str, what: str) -> Deviation | None:
    dev = DEVIATIONS.get(case)
    return dev if dev is not None and what in dev.replaces else None


def _assert_text_shows(ours, *alternatives: str) -> None:
    text = _norm_text(ours.text)
    assert any(_norm_text(a) in text for a in alternatives), f"none of {alternatives} in {ours.text[:300]!r}"


def _assert_html_shows(ours, visible: str, cid: str) -> None:
    assert visible in _visible_text(ours.html), f"{visible!r} not in our html {ours.html[:300]!r}"
    assert f"cid:{cid}" in ours.html, f"cid:{cid} lost from our html"


@_deviation(
    "malformed/000",
    {"html"},
    """":" is a legal boundary character (RFC 2046 5.1.1 bcharsnospace), so
    we find the message's empty text/plain and text/html parts where upstream
    finds no parts at all; our html may therefore exist, but it must be as
    empty as the message.""",
)
def _expect_malformed_000(ours):
    assert ours.html is None or _visible_text(ours.html) == ""
    assert _norm_text(ours.text) == ""


@_deviation(
    "malformed/019",
    {"date"},
    """The message has two Date headers and the first is garbled
    ("10:00:t <rimap-test@...>"); upstream reads its seconds as 00.  Refusing
    the garbled value (None), reading it as upstream does, or taking the intact
    second Date (10:00:01) are all defensible.  (The rest of the header block,
    after the garbled field name "Fro :", must still be read: that is compared
    with upstream as usual.)""",
)
def _expect_malformed_019(ours):
    garbled, intact = (datetime(2026, 4, 7, 10, 0, s, tzinfo=timezone.utc) for s in (0, 1))
    assert ours.date in (None, garbled, intact)


@_deviation(
    "thirdparty/004",
    {"text"},
    """The last part declares an empty Content-Transfer-Encoding but its body is
    quoted-printable ("Move =E2=99=9A to ...").  Upstream shows the escapes as
    they are; we decode undeclared quoted-printable (the spec: never leave
    quoted-printable artefacts in text), so staff read the chess pieces.""",
)
def _expect_thirdparty_004(ours):
    assert "=E2=99" not in ours.text
    assert ours.text.count("Move ♚ to ♛'s ♝") == 5
    assert "Move black king to queen's bishop" in ours.text


_RELATED_FIRST_REASON = """The multipart/alternative part carries the headers of its
    own first child (a second Content-Type, text/plain) and no opening delimiter.
    Upstream gives up and shows the whole multipart body - delimiters, headers
    and HTML source - as plain text, with no HTML body.  We honour the first
    Content-Type (RFC 2045: a field appears at most once, so a repeated one is
    ignored), which puts the plain-text line into the ignored preamble and finds
    the text/html alternative: text rendered from the HTML, an HTML body
    showing the cid: image.  Both are defensible; we accept either reading, and
    neither may lose the visible message: the HTML body text, the image."""


@_deviation("malformed/020", {"text", "html"}, _RELATED_FIRST_REASON)
def _expect_malformed_020(ours):
    _assert_text_shows(ours, "Plain Text", "HTML Body")
    if ours.html is not None:
        _assert_html_shows(ours, "HTML Body", "part1")


@_deviation("malformed/021", {"text", "html"}, _RELATED_FIRST_REASON)
def _expect_malformed_021(ours):
    _assert_text_shows(ours, "áóúäöüß")
    if ours.html is not None:
        _assert_html_shows(ours, "áóúäöüß", "part1")


@_deviation(
    "malformed/012",
    {"extras"},
    """Upstream does not let the outer delimiter "--1" end the inner multipart,
    so its second message/rfc822 swallows the third ("22 --1 ... 333").  RFC 2046
    5.1.2 ends a nested multipart at an enclosing delimiter; we list three
    message/rfc822 attachments, holding "1", "22" and "333".""",
)
def _expect_malformed_012(ours):
    messages = [a for a in ours.attachments if a.content_type == "message/rfc822"]
    assert [a.data.split(b"\n")[-1].strip() for a in messages] == [b"1", b"22", b"333"]
    assert len(ours.attachments) == 3


@_deviation(
    "thirdparty/002",
    {"attachments"},
    """The third part's base64 is no base64 at all ("?garbage").  Upstream keeps
    the raw characters as a text/plain attachment; we decode what base64 there is
    (flagged in defects).  Nothing readable is at stake either way; the two
    intact parts are compared with upstream in the text test.""",
)
def _expect_thirdparty_002(ours):
    assert any("base64" in d.casefold() for d in ours.defects), ours.defects
    assert all(a.content_type == "text/plain" for a in ours.attachments)


_PROXMOX_REASON = """The three forwarded message/rfc822 parts were cut off right after
    their headers (no blank line, no body) and the outer delimiter follows.
    Upstream keeps reading the first part's header block past that delimiter
    and merges all three into one nested tree (with the second one's subject);
    we end each part at the enclosing delimiter (RFC 2046 5.1.2), so staff get
    all three attachments under their own names and subjects."""


@_deviation("thirdparty/015", {"attachments", "extras"}, _PROXMOX_REASON)
def _expect_thirdparty_015(ours):
    got = [(a.filename, a.content_type) for a in ours.attachments]
    assert got == [
        ("training-mail.txt", "message/rfc822"),
        ("office-reply.txt", "message/rfc822"),
        ("shop-mail.txt", "message/rfc822"),
    ]
    subjects = [a.forwarded.subject if a.forwarded else None for a in ours.attachments]
    assert subjects[:2] == [
        "Exciting updates for our training partnership",
        "RE: (#5290765) Proxmox Shop E-Mails",
    ]
    # shop-mail.txt has a blank line inside its header block, so its Subject
    # is already body text: no subject is the right reading.


def test_every_deviation_names_a_corpus_message_and_a_known_comparison():
    known = {"subject", "addresses", "date", "message_id", "text", "html", "attachments", "extras"}
    for case, dev in DEVIATIONS.items():
        assert case in CASES
        assert dev.replaces and dev.replaces <= known, case
        assert len(dev.reason) > 40, case


# --------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------

case_ids = pytest.mark.parametrize("case", CASES, ids=CASES)


@pytest.fixture
def corpus(corpora_dir: Path) -> Path:
    return _corpus(corpora_dir)


def test_corpus_holds_exactly_the_expected_messages(corpus: Path):
    found = sorted(str(p.relative_to(corpus).with_suffix("")) for p in corpus.glob("*/*.eml"))
    assert found == sorted(CASES)


@case_ids
def test_parses_without_exception(corpus, case):
    msg = _ours(case)
    assert isinstance(msg.text, str)
    assert msg.date is None or msg.date.utcoffset() is not None


@case_ids
def test_subject_matches_upstream(corpus, case):
    if dev := _deviates(case, "subject"):
        dev.check(_ours(case))
        return
    expected = _upstream(case).text_header("subject") or ""
    assert _norm_ws(_ours(case).subject) == _norm_ws(expected)


@case_ids
def test_addresses_match_upstream(corpus, case):
    if dev := _deviates(case, "addresses"):
        dev.check(_ours(case))
        return
    up, ours = _upstream(case), _ours(case)

    def pairs(addresses):
        return [(_norm_ws(a.name), a.address.strip()) for a in addresses]

    senders = up.addresses("from")
    assert (pairs([ours.from_]) if ours.from_ else []) == senders[:1], "From"
    assert pairs(ours.to) == up.addresses("to"), "To"
    assert pairs(ours.cc) == up.addresses("cc"), "Cc"
    assert pairs(ours.reply_to) == up.addresses("reply_to"), "Reply-To"


@case_ids
def test_date_matches_upstream(corpus, case):
    if dev := _deviates(case, "date"):
        dev.check(_ours(case))
        return
    expected, got = _upstream(case).date(), _ours(case).date
    if expected is None:
        assert got is None
    else:
        assert got == expected and got.utcoffset() == expected.utcoffset()


@case_ids
def test_message_id_matches_upstream(corpus, case):
    if dev := _deviates(case, "message_id"):
        dev.check(_ours(case))
        return
    expected = _upstream(case).text_header("message_id")
    # Ours is without angle brackets (upstream's JSON is too).
    assert _ours(case).message_id == (expected.strip().strip("<>") if expected else None)


@case_ids
def test_text_body_matches_upstream(corpus, case):
    if dev := _deviates(case, "text"):
        dev.check(_ours(case))
        return
    up, ours = _upstream(case), _ours(case)
    req = _requirement(up, up.text_body, ("Text", "Html"))
    unmet = _unmet(req, lambda p: _text_part_shown(p, ours))
    if unmet:
        pytest.fail(
            "upstream text-body parts missing from our text:\n"
            + "\n".join(f"  {_describe(p)}: {p.text[:200]!r}" for p in unmet)
            + f"\nour text: {ours.text[:600]!r}"
        )


@case_ids
def test_html_body_matches_upstream(corpus, case):
    if dev := _deviates(case, "html"):
        dev.check(_ours(case))
        return
    up, ours = _upstream(case), _ours(case)
    req = _requirement(up, up.html_body, ("Html",))
    if req is None:
        # Upstream demotes an unfinished text/html part to an attachment; we
        # may still show it as the HTML body (see "recovered parts" above).
        if any(p.is_recovered_text and p.content_type == "text/html" for p in up.parts):
            return
        assert ours.html is None, "upstream has no HTML body"
        return
    assert ours.html is not None, "upstream has an HTML body, we have none"
    unmet = _unmet(req, lambda p: _html_part_shown(p, ours))
    if unmet:
        pytest.fail(
            "upstream HTML parts whose text is missing from our html:\n"
            + "\n".join(f"  {_describe(p)}: {_visible_text(p.text)[:200]!r}" for p in unmet)
            + f"\nour html: {ours.html[:600]!r}"
        )
    # cid: references stay, so the UI can point them at the stored parts.
    for cid in _cid_references(up):
        assert f"cid:{cid}".casefold() in ours.html.casefold(), f"cid:{cid} lost from our html"


@case_ids
def test_upstream_attachments_are_ours_too(corpus, case):
    if dev := _deviates(case, "attachments"):
        dev.check(_ours(case))
        return
    up, ours = _upstream(case), _ours(case)
    taken, missing = _match_upstream_attachments(up, ours)
    if missing:
        pytest.fail(
            "upstream attachments we do not have:\n"
            + "\n".join(f"  {_describe(p)}" for p in missing)
            + "\nours:\n"
            + _ours_described(ours)
        )
    # Parts the HTML shows by cid: are flagged inline.
    refs = {r.casefold() for r in _cid_references(up)}
    for a in ours.attachments:
        if a.content_id and a.content_id.casefold() in refs:
            assert a.inline, f"{a.filename!r} is referenced by cid: but not inline"


@case_ids
def test_extra_attachments_are_non_text_leaf_parts(corpus, case):
    """Our extras over upstream's JMAP list must be non-text leaf parts of the
    upstream tree (inline images, parts inside forwarded messages, ...)."""
    if dev := _deviates(case, "extras"):
        dev.check(_ours(case))
        return
    up, ours = _upstream(case), _ours(case)
    taken, _ = _match_upstream_attachments(up, ours)
    matched_parts = {id(up.parts[i]) for i in taken}
    pool = [
        p
        for p in up.walk_leaves()
        if id(p) not in matched_parts and p.content_type not in ("text/plain", "text/html")
    ]
    unexplained = []
    for j, a in enumerate(ours.attachments):
        if j in taken.values():
            continue
        for p in pool:
            if p.content_type == a.content_type and (p.size is None or p.size == a.size):
                pool.remove(p)
                break
        else:
            unexplained.append(a)
    if unexplained:
        pytest.fail(
            "our attachments that are no non-text leaf part upstream:\n"
            + "\n".join(f"  - {a.filename!r} {a.content_type} size={a.size}" for a in unexplained)
            + "\nupstream leaves:\n"
            + "\n".join(f"  {_describe(p)}" for p in up.walk_leaves())
        )


# Where converting LF to CRLF changes the content itself, not only the framing.
CRLF_TEXT_EXCEPTIONS = {
    "thirdparty/005": "its first part is binary UTF-16LE whose LF bytes are halves of code "
    "units (0x0A 0x00); turning them into CRLF corrupts the text itself",
}


def _lf(s: str | None) -> str | None:
    return None if s is None else s.replace("\r\n", "\n")


@case_ids
def test_crlf_variant_parses_the_same(corpus, case):
    lf, crlf = _ours(case), _ours(case, crlf=True)
    assert crlf.subject == lf.subject
    if case not in CRLF_TEXT_EXCEPTIONS:
        assert _lf(crlf.text) == _lf(lf.text)
        assert _lf(crlf.html) == _lf(lf.html)

    def listing(msg):
        return [
            (a.filename, a.content_type, a.data.replace(b"\r\n", b"\n")) for a in msg.attachments
        ]

    assert listing(crlf) == listing(lf)
