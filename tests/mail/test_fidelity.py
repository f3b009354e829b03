"""Issue 11, mail fidelity: the messages real mailers break, one class per section.

Every message is written here by hand (never copied from a corpus).  Each class
is checked against parse(), and once more through `postdesk inspect --json`
(a separate process, as a person runs it) at the end of the file.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postdesk.mail import fingerprint, parse
from tests.mail._build import message, multipart, part, text_message

# --------------------------------------------------------------------------- 1. broken header blocks

WRAPPED_BLOB = (
    b"Received: from mx.example.net by desk.example.org\n"
    b"X-Gateway-Blob: QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\n"
    b"QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJC\n"
    b"Q0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0ND\n"
    b"From: Alice Example <alice@example.com>\n"
    b"To: Help Desk <desk@example.org>\n"
    b"Subject: Printer on fire\n"
    b"Date: Mon, 02 Jun 2025 10:00:00 +0000\n"
    b"Message-ID: <blob-1@example.com>\n"
    b"Content-Type: text/plain; charset=utf-8\n"
    b"\n"
    b"The printer on floor 3 is on fire.\n"
)

STRAY_TEXT = (
    b"From: Alice Example <alice@example.com>\n"
    b"This message was scanned by the gateway\n"
    b"To: Help Desk <desk@example.org>,\n"
    b"second.desk@example.org\n"
    b"Subject : Invoice 7\n"
    b"Date: Mon, 02 Jun 2025 10:00:00 +0000\n"
    b"Content-Type: text/plain; charset=utf-8\n"
    b"\n"
    b"Please send invoice 7 again.\n"
)


def test_a_value_wrapped_without_white_space_continues_its_header():
    parsed = parse(WRAPPED_BLOB)
    assert parsed.subject == "Printer on fire"
    assert parsed.from_.address == "alice@example.com"
    assert [a.address for a in parsed.to] == ["desk@example.org"]
    assert parsed.message_id == "blob-1@example.com"
    assert parsed.text == "The printer on floor 3 is on fire."
    assert any("continued x-gateway-blob" in d for d in parsed.defects)


def test_a_stray_line_among_the_headers_is_dropped_and_recorded():
    parsed = parse(STRAY_TEXT)
    assert parsed.subject == "Invoice 7"
    assert parsed.from_.address == "alice@example.com"
    # A wrapped address list keeps its second recipient.
    assert [a.address for a in parsed.to] == ["desk@example.org", "second.desk@example.org"]
    assert parsed.text == "Please send invoice 7 again."
    assert any("stray line" in d and "scanned by the gateway" in d for d in parsed.defects)
    assert "scanned" not in parsed.text and "Subject" not in parsed.text


def test_a_missing_empty_line_still_starts_the_body_where_no_header_follows():
    # No field after the odd line: that line is the body (the separator is missing),
    # as before; nothing is folded into the headers.
    raw = b"From: alice@example.com\nSubject: No separator\nHello there, this is the body.\nSecond line.\n"
    parsed = parse(raw)
    assert parsed.subject == "No separator"
    assert "Hello there, this is the body." in parsed.text


def test_the_header_repair_does_not_change_the_raw_bytes_or_well_formed_mail():
    raw = bytes(STRAY_TEXT)
    parse(raw)
    assert raw == STRAY_TEXT
    clean = parse(text_message("fine"))
    assert not any("header block" in d for d in clean.defects)


_STRAY_LINE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters=":"), min_size=1, max_size=80
).filter(lambda line: line[0] not in " \t" and line.strip())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strays=st.lists(_STRAY_LINE, min_size=1, max_size=5), where=st.sampled_from(["X-Trace", "From", "To", "Received"]))
def test_fields_after_stray_lines_are_always_read(strays, where):
    head = [f"{where}: value@example.com".encode()] + [line.encode("utf-8") for line in strays]
    raw = b"\n".join([*head, b"Subject: Target", b"Message-ID: <p@example.com>", b"", b"body", b""])
    parsed = parse(raw)
    assert (parsed.subject, parsed.message_id, parsed.text) == ("Target", "p@example.com", "body")


# --------------------------------------------------------------------------- 2. senders without a usable address


@pytest.mark.parametrize(
    ("from_lines", "extra", "address", "name", "source"),
    [
        ([b"From: [??????]", b"From: Real Sender <real@example.com>"], [], "real@example.com", "Real Sender", "from"),
        ([b'From: "Pat Doe" <>'], [b"Reply-To: pat@example.com"], "pat@example.com", "Pat Doe", "reply-to"),
        ([b'From: "A" <>, "B Person" <b@example.com>'], [], "b@example.com", "B Person", "from"),
        ([b'From: "quoted@example.com" <>'], [], "quoted@example.com", "", "from"),
        ([b"From: Nobody"], [b"Sender: list-owner@example.com"], "list-owner@example.com", "Nobody", "sender"),
        ([b"From: <>"], [b"Return-Path: <bounces@example.com>"], "bounces@example.com", "", "return-path"),
    ],
    ids=["second-from", "reply-to", "second-in-list", "name-is-address", "sender", "return-path"],
)
def test_the_customer_is_a_real_address_whenever_the_message_holds_one(from_lines, extra, address, name, source):
    raw = b"\n".join([*from_lines, *extra, b"To: desk@example.org", b"Subject: Help", b"", b"Help me.", b""])
    parsed = parse(raw)
    assert (parsed.from_.address, parsed.from_.name, parsed.from_source) == (address, name, source)
    # The page shows what was written: the defect quotes the original From.
    (defect,) = [d for d in parsed.defects if d.startswith("from:")]
    assert from_lines[0].decode().split(": ", 1)[1] in defect


def test_a_valid_first_from_is_taken_as_it_is():
    parsed = parse(text_message("hi", headers=[("From", "Alice <alice@example.com>"), ("Reply-To", "other@example.com")]))
    assert (parsed.from_.address, parsed.from_source) == ("alice@example.com", "from")
    assert not any(d.startswith("from:") for d in parsed.defects)


def test_a_message_with_no_address_anywhere_keeps_the_name_and_says_so():
    parsed = parse(b"From: Just A Name\nSubject: x\n\nbody\n")
    assert (parsed.from_.name, parsed.from_.address) == ("Just A Name", "")
    assert any("no usable address" in d for d in parsed.defects)


# --------------------------------------------------------------------------- 3. labels that mean a superset

# Each: (label, text that only the superset encodes, the superset's codec)
SUPERSETS = [
    ("gb2312", "镕基工单", "gbk"),
    ("shift_jis", "①番～②番", "cp932"),
    ("euc-kr", "똠방각하", "cp949"),
    ("ks_c_5601-1987", "똠방각하", "cp949"),
    ("big5", "㐵字", "big5hkscs"),
    ("iso-8859-1", "price 10€ “quoted”", "cp1252"),
    ("us-ascii", "“smart quotes” – dash", "cp1252"),
    ("tis-620", "ราคา 10€", "cp874"),
]


@pytest.mark.parametrize(
    ("label", "codec"),
    [("gb2312", "gb18030"), (" \"Shift_JIS\" ", "cp932"), ("KS_C_5601-1987", "cp949"), ("big5", "big5hkscs"),
     ("ISO-8859-1", "cp1252"), ("us-ascii", "cp1252"), ("tis-620", "cp874"), ("iso-8859-9", "cp1254"),
     ("UTF8", "utf-8"), ("iso-2022-kr", "iso2022_kr"), ("cp850", "cp850"), ("utf-7", "utf-7"),
     ("undefined", None), ("uu", None), ("zlib", None), ("rot13", None), ("hex", None), ("unicode_escape", None),
     ("idna", None), ("iso-2022-cn", None), ("", None), (None, None)],
)
def test_labels_follow_the_whatwg_table_and_non_text_codecs_are_no_label(label, codec):
    from postdesk.mail._labels import codec_for

    assert codec_for(label) == codec


@pytest.mark.parametrize(("label", "text", "codec"), SUPERSETS, ids=[s[0] for s in SUPERSETS])
def test_a_superset_label_decodes_the_body(label, text, codec):
    parsed = parse(message(part(f"text/plain; charset={label}", text.encode(codec), cte="8bit")))
    assert parsed.text == text


@pytest.mark.parametrize(("label", "text", "codec"), SUPERSETS, ids=[s[0] for s in SUPERSETS])
def test_a_superset_label_decodes_encoded_words_in_subject_and_names(label, text, codec):
    word = "=?%s?B?%s?=" % (label, base64.b64encode(text.encode(codec)).decode())
    raw = text_message("body", headers=[("Subject", word), ("From", f"{word} <x@example.com>")])
    parsed = parse(raw)
    assert parsed.subject == text
    assert parsed.from_.name == text


@pytest.mark.parametrize(("label", "text", "codec"), SUPERSETS, ids=[s[0] for s in SUPERSETS])
def test_a_superset_label_decodes_rfc2231_file_names(label, text, codec):
    quoted = "".join(f"%{b:02X}" for b in (text + ".txt").encode(codec))
    attachment = part("application/octet-stream", b"data", cte="base64",
                      disposition=f"attachment; filename*={label}''{quoted}")
    parsed = parse(message(multipart("mixed", [part("text/plain", "see file"), attachment])))
    assert [a.filename for a in parsed.attachments] == [text + ".txt"]


def test_undeclared_8bit_header_bytes_use_the_bodys_superset():
    subject = "①番の件".encode("cp932")
    raw = message(part("text/plain; charset=shift_jis", "本文です".encode("cp932"), cte="8bit"), headers=[("Subject", subject)])
    assert parse(raw).subject == "①番の件"


@pytest.mark.parametrize(
    ("label", "text", "codec"),
    [
        ("iso-8859-1", "Jürgen Müller", "utf-8"),  # UTF-8 bytes under a Latin label: not "JÃ¼rgen"
        ("iso-2022-jp", "日本語の件名", "cp932"),  # Shift_JIS bytes under a 7-bit label
        ("utf-8", "Привет, мир", "cp1251"),  # windows-1251 bytes called UTF-8
    ],
)
def test_an_encoded_word_whose_bytes_do_not_fit_its_label_is_read_by_detection(label, text, codec):
    word = "=?%s?B?%s?=" % (label, base64.b64encode(text.encode(codec)).decode())
    parsed = parse(text_message("body", headers=[("Subject", word)]))
    assert parsed.subject == text
    assert "\ufffd" not in parsed.subject


def test_a_multibyte_character_split_across_two_encoded_words_is_joined():
    data = "お問い合わせ".encode("utf-8")
    words = " ".join("=?utf-8?B?%s?=" % base64.b64encode(data[i : i + 4]).decode() for i in range(0, len(data), 4))
    assert parse(text_message("x", headers=[("Subject", words)])).subject == "お問い合わせ"


# --------------------------------------------------------------------------- 4. parts without a file name


def _report() -> bytes:
    status = (
        "Reporting-MTA: dns; mx.example.org\n\n"
        "Final-Recipient: rfc822; gone@example.org\nAction: failed\nStatus: 5.1.1\n\n"
        "Final-Recipient: rfc822; also-gone@example.org\nAction: failed\nStatus: 5.1.1\n"
    )
    forwarded = b"From: bob@example.org\nSubject: Quarterly numbers\n\nThe numbers.\n"
    return message(
        multipart(
            "report",
            [
                part("text/plain", "Delivery failed."),
                part("message/delivery-status", status),
                part("text/rfc822-headers", "From: alice@example.com\nSubject: Original\n"),
                part("application/octet-stream", b"\x00\x01\x02", cte="base64"),
                part("application/pdf", b"%PDF-1.4 x", cte="base64"),
                part("text/calendar", "BEGIN:VCALENDAR\nEND:VCALENDAR\n"),
                part("message/rfc822", forwarded),
            ],
            params="; report-type=delivery-status",
        ),
        headers=[("From", "MAILER-DAEMON@example.org")],
    )


def test_unnamed_parts_are_named_after_what_they_are():
    parsed = parse(_report())
    assert [a.filename for a in parsed.attachments] == [
        "delivery-status.txt",
        "headers.txt",
        "attachment.bin",
        "attachment.pdf",
        "invite.ics",
        "Quarterly numbers.eml",
    ]
    assert not any(a.filename.startswith(("message.", "text.")) for a in parsed.attachments)


@pytest.mark.parametrize("ctype", ["message/\x00external-body", "message/../../etc", "message/" + "x" * 300])
def test_a_name_made_from_a_content_type_is_safe(ctype):
    from postdesk.mail._filenames import safe_filename

    name = safe_filename(None, ctype)
    assert name.isprintable() and "/" not in name and len(name) < 60


def test_a_delivery_status_part_keeps_every_recipient_block():
    (status,) = [a for a in parse(_report()).attachments if a.content_type == "message/delivery-status"]
    assert b"gone@example.org" in status.data and b"also-gone@example.org" in status.data


# --------------------------------------------------------------------------- 5. labels that are not text encodings


@pytest.mark.parametrize("label", ["undefined", "uu", "zlib", "rot13", "hex", "base64", "bz2", "unicode_escape", "x-no-such-charset"])
def test_a_label_that_is_not_a_text_encoding_is_read_as_a_missing_one_for_that_part_alone(label):
    raw = message(
        multipart(
            "mixed",
            [
                part(f"text/plain; charset={label}", "Café \\n crème".encode("cp1252"), cte="8bit"),
                part("application/pdf", b"%PDF-1.4 data", cte="base64", filename="report.pdf"),
                part("text/plain; charset=utf-8", "Ünïcödé notes", filename="notes.txt"),
            ],
        )
    )
    parsed = parse(raw)
    assert parsed.text == "Café \\n crème"
    assert [a.filename for a in parsed.attachments] == ["report.pdf", "notes.txt"]
    assert not any("original.eml" == a.filename for a in parsed.attachments)
    assert not any("parser failure" in d for d in parsed.defects)


def test_a_non_text_label_in_an_encoded_word_is_detected():
    word = "=?rot13?B?%s?=" % base64.b64encode("Grüße".encode("utf-8")).decode()
    assert parse(text_message("x", headers=[("Subject", word)])).subject == "Grüße"


# --------------------------------------------------------------------------- 6. the fingerprint


def test_two_messages_without_message_id_or_date_are_two():
    morning = b"Received: by mx; 08:00\nFrom: alice@example.com\nSubject: Note\n\nCall me.\n"
    evening = b"Received: by mx; 17:30\nFrom: alice@example.com\nSubject: Note\n\nCall me.\n"
    first, second = parse(morning), parse(evening)
    assert (first.text, first.subject) == (second.text, second.subject)
    assert fingerprint(first, _sha(morning)) != fingerprint(second, _sha(evening))


def test_the_same_bytes_are_one_message():
    raw = b"From: alice@example.com\nSubject: Note\n\nCall me.\n"
    assert fingerprint(parse(raw), _sha(raw)) == fingerprint(parse(raw), _sha(raw))


def test_the_same_message_id_and_content_through_two_paths_is_one_message():
    raw = text_message("Order 1234", headers=[("Message-ID", "<order-1234@example.com>")])
    via_sales, via_support = b"Delivered-To: sales@desk.example\n" + raw, b"Delivered-To: support@desk.example\n" + raw
    assert fingerprint(parse(via_sales), _sha(via_sales)) == fingerprint(parse(via_support), _sha(via_support))


def test_the_same_message_id_with_other_content_is_another_message():
    one = text_message("first text", headers=[("Message-ID", "<same@example.com>")])
    two = text_message("other text", headers=[("Message-ID", "<same@example.com>")])
    assert fingerprint(parse(one), _sha(one)) != fingerprint(parse(two), _sha(two))


def test_a_fingerprint_with_a_message_id_is_the_one_stored_before_this_change():
    # Rows already in the database must keep matching when their message comes again.
    import hashlib

    parsed = parse(text_message("hello", headers=[("Message-ID", "<kept@example.com>")]))
    h = hashlib.sha256()
    for piece in ["kept@example.com", "alice@example.com", parsed.date.isoformat(), parsed.subject, parsed.text, ""]:
        h.update(piece.encode() + b"\0")
    assert fingerprint(parsed, "unused") == h.hexdigest()


def _sha(raw: bytes) -> str:
    import hashlib

    return hashlib.sha256(raw).hexdigest()


# --------------------------------------------------------------------------- 7. broken part header blocks

PDF = b"%PDF-1.4\n"
PART_HEAD = b"Content-Type: application/pdf; name=report.pdf\nContent-Disposition: attachment; filename=report.pdf\n"


def _with_pdf_part(pdf_head: bytes) -> bytes:
    """A text part, then a PDF part whose header section is `pdf_head` (then its empty line)."""
    pdf = pdf_head + b"Content-Transfer-Encoding: base64\n\n" + base64.b64encode(PDF) + b"\n"
    return message(multipart("mixed", [part("text/plain; charset=utf-8", "See the report."), pdf]))


@pytest.mark.parametrize(
    ("pdf_head", "defect"),
    [
        (b"X-Scanned: yes\nThis part was scanned by the gateway\n" + PART_HEAD, "stray line among the headers dropped"),
        (b"This part was scanned by the gateway\n" + PART_HEAD, "stray line among the headers dropped"),
        (b"Content-Type: application/pdf;\nname=report.pdf\nContent-Disposition: attachment; filename=report.pdf\n", "continued content-type"),
        (b"Content-Type : application/pdf; name=report.pdf\nContent-Disposition: attachment; filename=report.pdf\n", "followed by a space"),
    ],
    ids=["stray-line", "stray-first-line", "wrapped-parameter", "space-before-colon"],
)
def test_a_parts_header_block_is_read_as_tolerant_clients_read_it(pdf_head, defect):
    raw = _with_pdf_part(pdf_head)
    kept = bytes(raw)
    parsed = parse(raw)
    assert parsed.text == "See the report."
    assert [(a.filename, a.content_type, a.data) for a in parsed.attachments] == [("report.pdf", "application/pdf", PDF)]
    assert any(d.startswith("part header") and defect in d for d in parsed.defects), parsed.defects
    assert raw == kept


def test_the_stdlib_alone_loses_a_parts_fields_after_a_stray_line():
    # Why the repair exists: the part's Content-Type and the base64 become text.
    import email
    from email import policy

    raw = _with_pdf_part(b"This part was scanned by the gateway\n" + PART_HEAD)
    pdf_part = email.message_from_bytes(raw, policy=policy.compat32).get_payload()[1]
    assert pdf_part.get_content_type() == "text/plain"
    assert "application/pdf" in pdf_part.get_payload()


def test_a_part_without_its_empty_line_starts_its_body_where_no_content_field_follows():
    # Header lines running into the text (no empty line) is common: the text stays
    # text, including a `Name: value` line of its own, and no field is invented.
    body = b"Content-Type: text/plain; charset=utf-8\nHello,\nPhone: 555 0100\n\nThanks\n"
    parsed = parse(message(multipart("mixed", [part("text/plain", "First part."), body])))
    assert parsed.text == "First part.\nHello,\nPhone: 555 0100\n\nThanks"
    assert not any("part header" in d for d in parsed.defects)


def test_header_lines_in_a_parts_text_with_a_content_type_it_already_has_stay_text():
    # A header quoted at the top of a text without its empty line: its Content-Type
    # is not new to the part, so the lines are text, not the part's fields.
    body = b"Content-Type: text/plain\nFirst line\nFrom: bob@example.com\nContent-Type: text/html\n\nrest\n"
    parsed = parse(message(multipart("mixed", [part("text/plain", "Outer."), body])))
    assert parsed.text == "Outer.\nFirst line\nFrom: bob@example.com\nContent-Type: text/html\n\nrest"
    assert parsed.html is None


def test_well_formed_parts_and_forwarded_headers_are_not_touched():
    forwarded = b"Content-Type: message/rfc822\n\nFrom: bob@example.com\nA stray line\nSubject: inner\nContent-Type: text/plain\n\ninner text\n"
    raw = message(multipart("mixed", [part("text/plain", "Outer."), part("application/pdf", PDF, cte="base64", filename="a.pdf"), forwarded]))
    parsed = parse(raw)
    assert [a.content_type for a in parsed.attachments] == ["application/pdf", "message/rfc822"]
    assert parsed.attachments[0].data == PDF
    # The forwarded message's bytes are kept as sent; only a MIME part's header is mended.
    assert b"A stray line" in parsed.attachments[1].data
    assert not any("part header" in d for d in parsed.defects)


# --------------------------------------------------------------------------- the same through `postdesk inspect --json`


def _gbk_body() -> bytes:
    return message(part("text/plain; charset=gb2312", "镕基工单".encode("gbk"), cte="8bit"))


def _undefined_label() -> bytes:
    return message(multipart("mixed", [part("text/plain; charset=undefined", "Café".encode("cp1252"), cte="8bit"),
                                       part("application/pdf", b"%PDF", cte="base64", filename="r.pdf")]))


INSPECTED = [
    ("header-block", WRAPPED_BLOB, lambda d: d["subject"] == "Printer on fire" and d["from"]["address"] == "alice@example.com"),
    ("sender", b'From: "Pat" <>\nReply-To: pat@example.com\nSubject: s\n\nx\n',
     lambda d: d["from"]["address"] == "pat@example.com" and d["from_source"] == "reply-to"),
    ("superset", _gbk_body(), lambda d: d["text"] == "镕基工单"),
    ("unnamed-parts", _report(), lambda d: [a["filename"] for a in d["attachments"]][:3] == ["delivery-status.txt", "headers.txt", "attachment.bin"]),
    ("part-header", _with_pdf_part(b"This part was scanned by the gateway\n" + PART_HEAD),
     lambda d: d["text"] == "See the report." and [a["filename"] for a in d["attachments"]] == ["report.pdf"]),
    ("non-text-label", _undefined_label(), lambda d: d["text"] == "Café" and [a["filename"] for a in d["attachments"]] == ["r.pdf"]),
]


@pytest.mark.parametrize(("name", "raw", "check"), INSPECTED, ids=[i[0] for i in INSPECTED])
def test_inspect_json_shows_the_repair(tmp_path, name, raw, check):
    path = tmp_path / f"{name}.eml"
    path.write_bytes(raw)
    env = {**os.environ, "POSTDESK_DATA_DIR": str(tmp_path / "data"), "DJANGO_SETTINGS_MODULE": "postdesk.settings"}
    env.pop("POSTDESK_DATABASE_URL", None)
    proc = subprocess.run([sys.executable, "-m", "postdesk", "inspect", "--json", str(path)], capture_output=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    shown = json.loads(proc.stdout)
    assert check(shown), shown
    assert shown == json.loads(json.dumps(parse(raw).to_dict()))
