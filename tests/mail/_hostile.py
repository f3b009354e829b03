"""Hostile messages that once made the parser slow (quadratic or worse), built as bytes.

Each generator takes a size (bytes or a count) and returns a whole raw message.
The tests in test_parse_slow_paths.py build them at full size and check the
outcome; bench/fuzz.py uses them as seeds for its mutations and reports the
time each parse takes.  Sizes default to what the issue measured on main.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

from tests.mail._build import b64, encoded_word, message, multipart, part, tnef

_HEAD = (
    b"From: Mallory <mallory@example.com>\n"
    b"To: Support <support@example.org>\n"
    b"Subject: hostile\n"
    b"Date: Mon, 02 Jun 2025 10:00:00 +0000\n"
    b"Message-ID: <hostile@example.com>\n"
    b"MIME-Version: 1.0\n"
)


def _with_body(content_type: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return _HEAD + b"Content-Type: " + content_type + b"\n" + extra + b"\n" + body


def _repeat(unit: bytes, size: int) -> bytes:
    return unit * max(1, size // len(unit))


# --- uuencode ---------------------------------------------------------------------


def uu_begins_without_end(size: int = 100_000) -> bytes:
    """`begin 644 name` lines and never an `end`: each begin searched the whole rest."""
    return _with_body(b"text/plain; charset=us-ascii", b"Hello,\n\n" + _repeat(b"begin 644 name\n", size) + b"Bye\n")


def uu_blocks(count: int = 5_000) -> bytes:
    """Many small well-formed uuencoded blocks in one text body."""
    block = b"begin 644 f.bin\n#86)C\n`\nend\n"
    return _with_body(b"text/plain; charset=us-ascii", b"Files:\n" + block * count)


# --- long header fields -------------------------------------------------------------


def content_type_unclosed_quote(size: int = 344_000) -> bytes:
    """A Content-Type whose quote never closes, followed by semicolons: the stdlib's
    parameter splitter counted the quotes from the start at every ';'."""
    value = b'multipart/mixed; boundary="zz"; name="' + _repeat(b"a;", size)
    body = b"--zz\nContent-Type: text/plain\n\nhello\n--zz--\n"
    return _with_body(value, body)


def content_type_many_params(size: int = 344_000) -> bytes:
    """Tens of thousands of parameters, the boundary last."""
    params = b"".join(b"; p%d=v" % i for i in range(size // 9))
    body = b"--zz\nContent-Type: text/plain\n\nhello\n--zz--\n"
    return _with_body(b"multipart/mixed" + params + b'; boundary="zz"', body)


def content_type_folded(size: int = 344_000) -> bytes:
    """One Content-Type folded over thousands of lines."""
    params = _repeat(b';\n x="y"', size)
    body = b"--zz\nContent-Type: text/plain\n\nhello\n--zz--\n"
    return _with_body(b'multipart/mixed; boundary="zz"' + params, body)


def rfc2231_continuations(count: int = 10_000) -> bytes:
    """A file name in `name*0*`..`name*9999*` continuations (RFC 2231)."""
    params = b"".join(b";\n name*%d*=%%41%%42" % i for i in range(count))
    attachment = b"Content-Type: application/octet-stream" + params + b"\nContent-Transfer-Encoding: base64\n\n" + b64(b"data")
    return _multipart_of([b"Content-Type: text/plain\n\nSee attached.\n", attachment])


def filename_of_encoded_words(count: int = 20_000) -> bytes:
    """A file name made of thousands of RFC 2047 encoded words."""
    words = " ".join(encoded_word("ä") for _ in range(count)).encode()
    attachment = b'Content-Type: application/pdf\nContent-Disposition: attachment; filename="' + words + b'"\n\n%PDF\n'
    return _multipart_of([b"Content-Type: text/plain\n\nSee attached.\n", attachment])


def subject_of_encoded_words(count: int = 20_000) -> bytes:
    return message(headers=[("Subject", " ".join(encoded_word(f"w{i}é") for i in range(count)))])


def many_headers(count: int = 50_000) -> bytes:
    lines = b"".join(b"X-Header-%d: value %d\n" % (i, i) for i in range(count))
    return _HEAD + lines + b"Content-Type: text/plain\n\nbody\n"


def many_received(count: int = 20_000) -> bytes:
    lines = b"Received: from a.example by b.example; Mon, 02 Jun 2025 10:00:00 +0000\n" * count
    return lines + _HEAD + b"Content-Type: text/plain\n\nbody\n"


def long_address_list(count: int = 20_000) -> bytes:
    to = ", ".join(f'"Person {i}" <p{i}@example.com>' for i in range(count))
    return message(headers=[("To", to), ("Cc", to[: len(to) // 2])])


def address_list_of_groups(count: int = 10_000) -> bytes:
    """Group syntax and comments: the structured parser's worst case."""
    to = ", ".join(f"g{i}: (c{i} (nested)) p{i}@example.com;" for i in range(count))
    return message(headers=[("To", to)])


def long_references(count: int = 20_000) -> bytes:
    refs = " ".join(f"<ref{i}@example.com>" for i in range(count))
    return message(headers=[("References", refs), ("In-Reply-To", f"<ref{count - 1}@example.com>")])


def header_of_nested_comments(size: int = 200_000) -> bytes:
    value = "(" * (size // 2) + ")" * (size // 2)
    return message(headers=[("From", value + " a@example.com"), ("Date", value)])


# --- MIME structure ---------------------------------------------------------------


def same_boundary_nesting(size: int = 250_000) -> bytes:
    """Multiparts nested inside each other, all with the same boundary."""
    unit = b"--b\nContent-Type: multipart/mixed; boundary=b\n\n"
    body = _repeat(unit, size) + b"--b\nContent-Type: text/plain\n\nhi\n--b--\n"
    return _with_body(b"multipart/mixed; boundary=b", body)


def same_boundary_nesting_folded(size: int = 250_000) -> bytes:
    """The same, with the boundary folded inside its quotes (the repair path)."""
    unit = b'--b c\nContent-Type: multipart/mixed; boundary="b\n c"\n\n'
    body = _repeat(unit, size) + b"--b c\nContent-Type: text/plain\n\nhi\n--b c--\n"
    return _with_body(b'multipart/mixed; boundary="b\n c"', body)


def distinct_boundary_nesting(depth: int = 5_000) -> bytes:
    """Deep nesting, every level its own boundary (the stack of boundaries grows)."""
    opening = b"".join(b"--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n" % (i, i + 1) for i in range(depth))
    closing = b"".join(b"--b%d--\n" % i for i in reversed(range(depth + 1)))
    return _with_body(b"multipart/mixed; boundary=b0", opening + b"--b%d\nContent-Type: text/plain\n\nhi\n" % depth + closing)


def many_parts(count: int = 10_000) -> bytes:
    return _multipart_of([b"Content-Type: text/plain\n\npart %d\n" % i for i in range(count)])


def many_attachments_one_name(count: int = 5_000) -> bytes:
    """What `inspect --extract` found slow: one name, thousands of times."""
    attachment = part("application/octet-stream", b"x", cte="base64", filename="same.txt")
    return message(multipart("mixed", [part("text/plain", "files")] + [attachment] * count))


def many_html_parts(count: int = 2_000) -> bytes:
    return _multipart_of([b"Content-Type: text/html\n\n<p>part %d</p>\n" % i for i in range(count)])


def nested_rfc822(depth: int = 2_000) -> bytes:
    """message/rfc822 inside message/rfc822, thousands deep (one header block per level)."""
    levels = b"".join(b"Subject: level %d\nContent-Type: message/rfc822\n\n" % i for i in range(depth))
    return _HEAD + b"Content-Type: message/rfc822\n\n" + levels + b"Subject: innermost\nContent-Type: text/plain\n\nhello\n"


def nested_rfc822_attachments(depth: int = 50) -> bytes:
    """message/rfc822 inside multipart inside message/rfc822 ..., each a forward."""
    raw = message(part("text/plain", "innermost"))
    for i in range(depth):
        raw = message(multipart("mixed", [part("text/plain", ""), b"Content-Type: message/rfc822\n\n" + raw]), headers=[("Subject", f"fwd {i}")])
    return raw


def _multipart_of(parts: list[bytes]) -> bytes:
    body = b"".join(b"--zz\n" + p + b"\n" for p in parts) + b"--zz--\n"
    return _with_body(b'multipart/mixed; boundary="zz"', body)


# --- HTML -------------------------------------------------------------------------------


def nested_divs(size: int = 1_000_000) -> bytes:
    return _with_body(b"text/html; charset=utf-8", _repeat(b"<div>", size) + b"hello")


def nested_tables(count: int = 4_000) -> bytes:
    return _with_body(b"text/html; charset=utf-8", b"<table><tr><td>" * count + b"hello")


def nested_tables_closed(count: int = 4_000) -> bytes:
    return _with_body(b"text/html; charset=utf-8", b"<table><tr><td>" * count + b"hello" + b"</td></tr></table>" * count)


def nested_blockquotes(count: int = 4_000) -> bytes:
    """A reply quoted thousands of times over, with text at every level."""
    return _with_body(b"text/html; charset=utf-8", b"<p>new text</p>" + b"<blockquote>On Mon, A wrote:<br>" * count + b"old")


def formatting_elements(count: int = 50_000) -> bytes:
    """Unclosed formatting elements (<b><i><font>...) misnested with blocks: the
    HTML parser's adoption agency algorithm and its list of active formatting elements."""
    return _with_body(b"text/html; charset=utf-8", _repeat(b"<b><i><font><a href=x><p>", count * 20) + b"text")


def misnested_formatting(count: int = 20_000) -> bytes:
    return _with_body(b"text/html; charset=utf-8", b"<b><p>x</b>y" * count)


def unclosed_tags(size: int = 1_000_000) -> bytes:
    return _with_body(b"text/html; charset=utf-8", _repeat(b"<span><em><li><dl><dd><ol><option><select>", size))


def nested_lists(count: int = 20_000) -> bytes:
    return _with_body(b"text/html; charset=utf-8", b"<ul><li>" * count + b"item")


def many_attributes(count: int = 100_000) -> bytes:
    attrs = b" ".join(b'a%d="v"' % i for i in range(count))
    return _with_body(b"text/html; charset=utf-8", b"<p " + attrs + b' style="color:red">text</p>')


def duplicate_attributes(count: int = 100_000) -> bytes:
    return _with_body(b"text/html; charset=utf-8", b"<p " + b'title="v" ' * count + b">text</p>")


def long_table(rows: int = 20_000) -> bytes:
    """A wide, long table: inscriptis lays tables out."""
    row = b"<tr>" + b"<td>cell</td>" * 20 + b"</tr>"
    return _with_body(b"text/html; charset=utf-8", b"<table>" + row * rows + b"</table>")


def nested_tables_with_text(count: int = 2_000) -> bytes:
    """Nested tables with cells of text at every level (inscriptis lays out each)."""
    return _with_body(b"text/html; charset=utf-8", b"<table><tr><td>cell text<table><tr><td>" * count + b"hi")


def many_comments(count: int = 100_000) -> bytes:
    return _with_body(b"text/html; charset=utf-8", b"<!-- c -->x" * count)


def unclosed_comment(size: int = 1_000_000) -> bytes:
    return _with_body(b"text/html; charset=utf-8", b"<p>a</p><!--" + _repeat(b"<p>x", size))


def many_entities(count: int = 200_000) -> bytes:
    return _with_body(b"text/html; charset=utf-8", b"&amp;&#x41;&notanentity" * count)


def html_reply_huge(count: int = 20_000) -> bytes:
    """A reply with thousands of paragraphs and an Outlook header block."""
    html = b"<p>line of new text</p>" * count + b"<hr><p>From: A<br>Sent: Monday<br>To: B<br>Subject: x</p>" + b"<p>old</p>" * count
    return _with_body(b"text/html; charset=utf-8", html)


def html_with_many_tags_no_close(count: int = 200_000) -> bytes:
    return _with_body(b"text/html; charset=utf-8", b"<p" * count)


# --- text bodies -------------------------------------------------------------------------


def long_text_line(size: int = 5_000_000) -> bytes:
    return _with_body(b"text/plain; charset=utf-8", b"x" * size + b"\n")


def deep_quote_levels(count: int = 2_000) -> bytes:
    """Lines quoted ever deeper ('>' x N)."""
    lines = b"".join(b">" * i + b" quoted\n" for i in range(count))
    return _with_body(b"text/plain; charset=utf-8", b"new text\n\nOn Mon, A wrote:\n" + lines)


def many_quote_blocks(count: int = 50_000) -> bytes:
    """Alternating new and quoted lines (an inline reply without end)."""
    return _with_body(b"text/plain; charset=utf-8", b"answer\n> question\n" * count)


def many_attribution_lines(count: int = 20_000) -> bytes:
    return _with_body(b"text/plain; charset=utf-8", b"On Mon, 2 Jun 2025 at 10:00, A <a@example.com> wrote:\n> x\n" * count)


def long_lines_of_colons(count: int = 20_000) -> bytes:
    return _with_body(b"text/plain; charset=utf-8", b"Word: value\n" * count + b"-----Original Message-----\nFrom: x\n")


def qp_long_line(size: int = 5_000_000) -> bytes:
    """Quoted-printable with one enormous line and escapes throughout."""
    return _with_body(b"text/plain; charset=utf-8", _repeat(b"=C3=A4=3D", size) + b"\n", b"Content-Transfer-Encoding: quoted-printable\n")


def qp_soft_breaks(count: int = 500_000) -> bytes:
    return _with_body(b"text/plain; charset=utf-8", b"a=\n" * count, b"Content-Transfer-Encoding: quoted-printable\n")


def undeclared_qp(size: int = 2_000_000) -> bytes:
    return _with_body(b"text/plain; charset=utf-8", _repeat(b"caf=C3=A9 =3D ", size))


def broken_base64_long(size: int = 5_000_000) -> bytes:
    """Base64 on one line, with junk and stray padding everywhere (the repair path)."""
    return _with_body(b"application/octet-stream", _repeat(b"QUJD=*!=", size), b"Content-Transfer-Encoding: base64\n")


def broken_base64_text(size: int = 2_000_000) -> bytes:
    return _with_body(b"text/plain; charset=utf-8", _repeat(b"QUJD\x00=", size), b"Content-Transfer-Encoding: base64\n")


def undeclared_8bit_text(size: int = 2_000_000) -> bytes:
    """Bytes that are not UTF-8 and no charset: the charset detector's whole input."""
    data = bytes(range(128, 256)) * (size // 128)
    return _HEAD + b"Content-Type: text/plain\n\n" + data


def undeclared_8bit_html(size: int = 2_000_000) -> bytes:
    data = b"<p>" + bytes(range(160, 256)) * (size // 96) + b"</p>"
    return _HEAD + b"Content-Type: text/html\n\n" + data


def wrong_charset_cjk(size: int = 2_000_000) -> bytes:
    """Declared Shift_JIS, bytes that are not: the detector must guess."""
    data = bytes(range(0x81, 0xFF)) * (size // 126)
    return _with_body(b"text/plain; charset=shift_jis", data)


def many_8bit_headers(count: int = 5_000) -> bytes:
    lines = b"".join(b"X-H%d: \xe4\xf6\xfc caf\xe9\n" % i for i in range(count))
    return _HEAD + lines + b"Subject: \xe4\xf6\xfc\nContent-Type: text/plain\n\nbody\n"


def pgp_text(size: int = 2_000_000) -> bytes:
    return _with_body(b"text/plain", b"-----BEGIN PGP MESSAGE-----\n" + _repeat(b"hQEMA0x\n", size))


# --- attachments ----------------------------------------------------------------------------


def tnef_many_attachments(count: int = 2_000) -> bytes:
    data = tnef([(f"f{i}.txt", b"data %d" % i) for i in range(count)], body="Hello")
    return message(multipart("mixed", [part("text/plain", ""), part("application/ms-tnef", data, cte="base64", filename="winmail.dat")]))


def tnef_garbage(size: int = 1_000_000) -> bytes:
    data = tnef([("a.txt", b"ab")], body="x") + bytes(size)
    return message(multipart("mixed", [part("text/plain", "see"), part("application/ms-tnef", data, cte="base64", filename="winmail.dat")]))


def pkcs7_garbage(size: int = 1_000_000) -> bytes:
    return message(part("application/pkcs7-mime; smime-type=signed-data", b"\x30\x80" * (size // 2), cte="base64", filename="smime.p7m"))


def big_attachment(size: int = 20_000_000) -> bytes:
    return message(multipart("mixed", [part("text/plain", "see"), part("application/octet-stream", b"\xff" * size, cte="base64", filename="big.bin")]))


def base64_without_newlines(size: int = 20_000_000) -> bytes:
    data = base64.b64encode(b"\x00" * size)
    return message(multipart("mixed", [part("text/plain", "see"), b"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n" + data + b"\n"]))


HOSTILE: dict[str, Callable[[], bytes]] = {
    name: func
    for name, func in dict(globals()).items()
    if callable(func) and not name.startswith("_") and getattr(func, "__module__", None) == __name__
}
