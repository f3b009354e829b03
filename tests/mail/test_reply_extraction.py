"""Reading replies: `split_reply()` and `split_reply_html()`.

The score is taken on mailgun/talon's reply fixtures (../shared/corpora/talon,
read-only; see its MANIFEST.md and EXPECTED.talon.json):

* standard_replies/*.eml: the first text/plain part, decoded; the reply with
  the quote stripped (`ReplyParts.reply_text`: new text and signature as
  written) must equal the expectation after `.strip()`.  Target: 11 of 12.
* html_replies/*.html: the body is first put through our `sanitize()` (what
  `split_reply_html` gets in production: class and id attributes are gone),
  the new part is turned into text with `to_text()`, and must equal the
  expectation with all whitespace removed.  Target: 8 of 9.

`python bench/replies.py` prints the same scores for every candidate library.
"""

from __future__ import annotations

import email
import json
import re
from email import policy
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postdesk.mail import ReplyParts, split_reply, split_reply_html
from postdesk.mail._html import sanitize, to_text

STANDARD_TARGET, HTML_TARGET = 11, 8


@pytest.fixture(scope="module")
def talon(corpora_dir: Path) -> Path:
    root = corpora_dir / "talon"
    if not root.is_dir():
        pytest.skip(f"the talon corpus is not at {root}")
    return root


def _first_plain(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=policy.default)
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_content()
    raise AssertionError("no text/plain part")


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_corpus_score(talon: Path) -> None:
    expected = json.loads((talon / "EXPECTED.talon.json").read_text())
    fixtures = talon / "tests" / "fixtures"
    misses = []

    standard = 0
    for name, want in expected["standard_replies"].items():
        got = split_reply(_first_plain((fixtures / "standard_replies" / name).read_bytes())).reply_text.strip()
        if got == want["expected_reply_text"]:
            standard += 1
        else:
            misses.append(f"{name}: {got!r}")

    html = 0
    for name, want in expected["html_replies"].items():
        body = sanitize((fixtures / "html_replies" / name).read_text("utf-8"))
        new, _quoted = split_reply_html(body)
        if _squeeze(to_text(new)) == _squeeze(want["expected_reply_plaintext"]):
            html += 1
        else:
            misses.append(f"{name}: {to_text(new)!r}")

    score = f"standard replies {standard}/{len(expected['standard_replies'])}, HTML replies {html}/{len(expected['html_replies'])}"
    print(f"\nreply extraction on the talon corpus: {score}")
    assert standard >= STANDARD_TARGET and html >= HTML_TARGET, f"{score} (targets {STANDARD_TARGET}, {HTML_TARGET}); misses: {misses}"


def test_corpus_single_cases(talon: Path) -> None:
    """The corpus's other fixtures (EXPECTED.talon.json "other"), in our terms."""
    fixtures = talon / "tests" / "fixtures"
    share = split_reply(_first_plain((fixtures / "reply-quotations-share-block.eml").read_bytes()))
    assert share.reply_text and "From" not in share.reply_text
    assert share.reply_text.rstrip().endswith("Joe XXX")

    new, quoted = split_reply_html(sanitize((fixtures / "OLK_SRC_BODY_SECTION.html").read_text()))
    assert to_text(new) == "Reply" and to_text(quoted).startswith("From: Bob")

    new, quoted = split_reply_html(sanitize((fixtures / "reply-separated-by-hr.html").read_text()))
    assert _squeeze(to_text(new)).startswith("Hithere") and "From" not in new
    assert quoted.startswith("<div><div><hr>") and "Sent: Friday" in to_text(quoted)


# Common shapes -------------------------------------------------------------


def test_angle_bracket_quoting() -> None:
    parts = split_reply("Thanks, that fixed it.\n\n> Did you try turning it off and on?\n> -- Support\n")
    assert parts == ReplyParts(
        new_text="Thanks, that fixed it.",
        quoted_text="> Did you try turning it off and on?\n> -- Support",
        signature="",
        reply_text="Thanks, that fixed it.",
    )


def test_on_date_name_wrote() -> None:
    text = "Yes, tomorrow works.\n\nOn Mon, 3 Jun 2024 at 10:12, Jane Doe <jane@example.com> wrote:\n> Can we call?\n"
    parts = split_reply(text)
    assert parts.new_text == "Yes, tomorrow works."
    assert parts.quoted_text.startswith("On Mon, 3 Jun 2024") and parts.quoted_text.endswith("> Can we call?")


def test_wrapped_attribution_line() -> None:
    text = "Sure.\n\nOn Mon, 3 Jun 2024 at 10:12, Jane Doe\n<jane@example.com> wrote:\n\n> Can we call?"
    parts = split_reply(text)
    assert parts.new_text == "Sure."
    assert parts.quoted_text.startswith("On Mon, 3 Jun 2024 at 10:12, Jane Doe\n<jane@example.com> wrote:")


def test_outlook_header_block_unquoted_history() -> None:
    text = (
        "Please see the attached invoice.\n\nRegards,\nTom\n\n"
        "________________________________\n"
        "From: Help Desk <help@example.com>\nSent: Monday, June 3, 2024 10:12 AM\n"
        "To: Tom <tom@example.org>\nSubject: RE: Invoice\n\nHello Tom,\nwe need the invoice.\n"
    )
    parts = split_reply(text)
    assert parts.new_text == "Please see the attached invoice.\n\nRegards,\nTom"
    assert parts.quoted_text.startswith("________________________________\nFrom: Help Desk")
    assert parts.quoted_text.endswith("we need the invoice.")


def test_outlook_original_message() -> None:
    text = "Done.\n\n-----Original Message-----\nFrom: a@example.com\nSent: Monday\nSubject: x\n\nbody"
    parts = split_reply(text)
    assert parts.new_text == "Done."
    assert parts.quoted_text.startswith("-----Original Message-----")


def test_german_headers() -> None:
    parts = split_reply("Danke!\n\nAm 03.06.2024 um 10:12 schrieb Max Muster <max@example.de>:\n> Hallo\n")
    assert parts.new_text == "Danke!" and parts.quoted_text.startswith("Am 03.06.2024")
    outlook = split_reply("Erledigt.\n\nVon: Max Muster\nGesendet: Montag, 3. Juni 2024 10:12\nAn: Support\nBetreff: Frage\n\nHallo")
    assert outlook.new_text == "Erledigt." and outlook.quoted_text.startswith("Von: Max Muster")


def test_french_headers() -> None:
    parts = split_reply("Merci.\n\nLe lun. 3 juin 2024 à 10:12, Jean Dupont <jean@example.fr> a écrit :\n> Bonjour\n")
    assert parts.new_text == "Merci." and parts.quoted_text.startswith("Le lun. 3 juin 2024")


def test_other_language_attribution_by_shape() -> None:
    # Not in the library's languages: a line that ends with ":", names a date or
    # an address and sits right above quoted lines is the attribution.
    parts = split_reply('Спасибо\n\n3 июня 2024 г., в 10:12, "Иван" <ivan@example.ru> написал(а):\n> Привет\n')
    assert parts.new_text == "Спасибо" and parts.quoted_text.startswith("3 июня 2024")


def test_signature_dash_dash_space() -> None:
    parts = split_reply("The printer works again.\n\n-- \nAlice Example\nACME Ltd.\n\nOn Mon, 3 Jun 2024, Bob wrote:\n> ok?\n")
    assert parts.new_text == "The printer works again."
    assert parts.signature == "-- \nAlice Example\nACME Ltd."
    assert parts.reply_text == "The printer works again.\n\n-- \nAlice Example\nACME Ltd."
    assert parts.quoted_text.startswith("On Mon, 3 Jun 2024, Bob wrote:")


def test_signature_without_quote() -> None:
    parts = split_reply("Hi,\nmy password reset link expired.\n\n-- \nAlice")
    assert (parts.new_text, parts.signature, parts.quoted_text) == ("Hi,\nmy password reset link expired.", "-- \nAlice", "")


def test_sent_from_my_phone_is_a_signature() -> None:
    parts = split_reply("Ok\n\nSent from my iPhone\n\nOn 3 Jun 2024, at 10:12, Bob <bob@example.com> wrote:\n\n> ok?")
    assert (parts.new_text, parts.signature) == ("Ok", "Sent from my iPhone")


def test_bottom_posting() -> None:
    parts = split_reply("On 06/03/2024 10:12 AM, Bob wrote:\n> Is it fixed?\n\nYes, since this morning.\n")
    assert parts.new_text == "Yes, since this morning."
    assert parts.quoted_text == "On 06/03/2024 10:12 AM, Bob wrote:\n> Is it fixed?"


def test_inline_reply_is_not_folded() -> None:
    text = "> Which version?\n2.1\n> Which OS?\nLinux\n"
    parts = split_reply(text)
    assert parts == ReplyParts(text.strip(), "", "", text.strip())


def test_no_quote_returns_everything_as_new_text() -> None:
    text = "Hello,\n\nmy order 1234 has not arrived.\nDate: 3 June\n\nThanks,\nBob\n"
    assert split_reply(text) == ReplyParts(text.strip(), "", "", text.strip())


def test_all_quote_is_not_hidden() -> None:
    # A forward is what the customer wants us to read; a message that is all quote has nothing new.
    text = "---------- Forwarded message ---------\nFrom: Shop <shop@example.com>\nDate: Mon, 3 Jun 2024\nSubject: Order\n\nYour order"
    assert split_reply(text).new_text == text
    assert split_reply("FYI, see below.\n\n" + text).quoted_text == ""
    assert split_reply("> only a quote\n> here").quoted_text == ""


def test_empty_input() -> None:
    assert split_reply("") == ReplyParts("", "", "", "")
    assert split_reply("\n \n") == ReplyParts("", "", "", "")
    assert split_reply_html("") == ("", "")


def test_crlf_line_ends() -> None:
    parts = split_reply("Hello\r\n\r\nOn Mon, 3 Jun 2024, Bob wrote:\r\n> x\r\n")
    assert parts.new_text == "Hello" and parts.quoted_text == "On Mon, 3 Jun 2024, Bob wrote:\r\n> x"


# HTML ----------------------------------------------------------------------


def test_html_blockquote_with_attribution() -> None:
    body = sanitize(
        '<div dir="ltr">Works now, thanks!</div><div class="gmail_quote"><div>On Mon, Jun 3, 2024 at 10:12 AM '
        'Bob &lt;bob@example.com&gt; wrote:<br></div><blockquote style="margin:0 0 0 .8ex">Try again?</blockquote></div>'
    )
    new, quoted = split_reply_html(body)
    assert to_text(new) == "Works now, thanks!"
    assert to_text(quoted).startswith("On Mon, Jun 3, 2024") and "Try again?" in quoted
    assert "<blockquote" in quoted


def test_html_outlook_border_top_block() -> None:
    body = sanitize(
        "<div><p>Attached.</p><div style=\"border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in\">"
        "<p><b>From:</b> Help Desk<br><b>Sent:</b> Monday, June 3, 2024<br><b>To:</b> Tom<br><b>Subject:</b> x</p>"
        "</div><p>Hello Tom</p></div>"
    )
    new, quoted = split_reply_html(body)
    assert to_text(new) == "Attached."
    assert to_text(quoted).startswith("From: Help Desk") and to_text(quoted).endswith("Hello Tom")
    assert quoted.startswith("<div><div style=")  # the cut re-opens the element it was inside


def test_html_signature_folds_with_the_quote() -> None:
    new, quoted = split_reply_html("<p>Hi</p><p>--&nbsp;</p><p>Alice</p><blockquote>old</blockquote>")
    assert new == "<p>Hi</p>" and to_text(quoted).startswith("--")


def test_html_bottom_posting() -> None:
    body = "<div>On 03.06.2024 10:12, Bob wrote:</div><blockquote><p>Is it fixed?</p></blockquote><p>Yes.</p><p>-- </p><p>Alice</p>"
    new, quoted = split_reply_html(body)
    assert new == "<p>Yes.</p><p>-- </p><p>Alice</p>"  # a signature below the reply stays with it
    assert quoted.startswith("<div>On 03.06.2024 10:12, Bob wrote:</div><blockquote>") and "Is it fixed?" in quoted


def test_html_without_quote_is_returned_unchanged() -> None:
    body = "<p>Hello</p><p>Please help.</p>"
    assert split_reply_html(body) == (body, "")


def test_html_halves_stay_sanitized() -> None:
    hostile = '<p>Hi</p><p>On Mon, 3 Jun 2024, Bob wrote:</p><blockquote><img src=x onerror="alert(1)"><script>x()</script>q</blockquote>'
    new, quoted = split_reply_html(hostile)
    assert to_text(new) == "Hi"
    for half in (new, quoted):
        assert "onerror" not in half and "<script" not in half


# Never raises, never loses text ---------------------------------------------

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_LINES = st.sampled_from(
    [
        "Hello", "", " ", "> quoted", ">> deeper", "> ", "-- ", "--", "Sent from my iPhone",
        "On Mon, 3 Jun 2024, Bob <bob@example.com> wrote:", "Am 03.06.2024 schrieb Max:", "From: a@b.c",
        "Sent: Monday", "To: x", "Subject: y", "-----Original Message-----", "_" * 32, "3.6.2024, Bob <b@c.d>:",
        "Thanks,", "\xa0", "\r", "text with: colon 1",
    ]
)  # fmt: skip
_MAILISH = st.lists(st.one_of(_LINES, st.text(max_size=40)), max_size=40).map("\n".join)


def _nonspace(text: str) -> str:
    return "".join(sorted(re.sub(r"\s", "", text)))


@PROPERTY
@given(st.one_of(st.text(max_size=2000), _MAILISH))
def test_split_reply_never_raises_and_keeps_every_character(text: str) -> None:
    parts = split_reply(text)
    assert isinstance(parts, ReplyParts)
    # Every non-whitespace character of the input is in exactly one part.
    assert _nonspace(parts.new_text + parts.quoted_text + parts.signature) == _nonspace(text)
    assert _nonspace(parts.reply_text) == _nonspace(parts.new_text + parts.signature)
    if not parts.quoted_text and not parts.signature:
        assert parts.new_text.strip() == text.strip()


_TAGS = st.sampled_from(["<p>", "</p>", "<div>", "</div>", "<br>", "<blockquote>", "</blockquote>", "<hr>", "<b>", "</b>", '<div style="border-top:solid #ccc 1pt">', "<pre>", "</pre>", "&nbsp;", "&gt; "])


@PROPERTY
@given(st.lists(st.one_of(_TAGS, _LINES, st.text(max_size=20)), max_size=60).map("".join))
def test_split_reply_html_never_raises_and_keeps_the_text(html: str) -> None:
    body = sanitize(html)
    new, quoted = split_reply_html(body)
    if not quoted:
        assert new == body
    else:
        assert _nonspace(to_text(new) + to_text(quoted)) == _nonspace(to_text(body))


@PROPERTY
@given(st.text(alphabet=st.sampled_from("<>!/[]-&;#x \n=\"'abpdivquote"), max_size=300))
def test_split_reply_html_never_raises_on_any_markup(html: str) -> None:
    new, quoted = split_reply_html(html)
    assert isinstance(new, str) and isinstance(quoted, str)


# The reply-header search tries the library's patterns only at line starts near a
# colon or a "-----" line (mail/_reply._matches_at_line_starts); it must find
# exactly what finditer over the whole text finds.
_HEADER_PIECES = st.sampled_from([
    "On Mon, 1 Jan 2024 at 10:00, Bob <bob@example.com> wrote:", "On Mon, 1 Jan 2024, Bob", "wrote:",
    "Am 01.01.2024 schrieb Bob <b@x.de>:", "Le 1 janv. 2024 à 10:00, Bob a écrit :", "El lun, Bob escribió:",
    "From: Bob", "Sent: Monday", "To: Alice", "Subject: Re: x", "Von: Bob", "Gesendet: Montag", "An: Alice",
    "-----Original Message-----", "-----Oprindelig meddelelse-----", "Fra: Bob", "Sendt: mandag",
    "2024年1月1日 Bob 写道：", "2024년 1월 1일 Bob님이 작성하였습니다:", "> quoted", "> > deeper", "",
    "plain text line", "a line: with a colon", "*From:* Bob", "  ", "Date: today", "Cc: carol",
])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_HEADER_PIECES, max_size=25), st.sampled_from(["\n", "\n\n", "\n> "]))
def test_header_search_at_line_starts_finds_what_finditer_finds(pieces, joiner) -> None:
    from postdesk.mail._reply import _matches_at_line_starts, _patterns

    headers, _ = _patterns()
    text = joiner.join(pieces)
    expected = [(m.start(), m.end()) for m in headers.finditer(text)]
    assert [(m.start(), m.end()) for m in _matches_at_line_starts(headers, text)] == expected
