#!/usr/bin/env python
"""Reply extraction on the talon corpus, per candidate library.

    python bench/replies.py              # the table
    python bench/replies.py --misses     # and what each candidate got wrong

Scores mailgun/talon's fixtures (../shared/corpora/talon, or
$POSTDESK_SHARED_DIR/corpora/talon) with the rules of its EXPECTED.talon.json:

* standard: standard_replies/*.eml, first text/plain part, quote stripped,
  `.strip()` equal to the expectation (12 messages);
* html: html_replies/*.html, quote stripped from the HTML, turned into text
  (our `to_text` for every candidate), equal with all whitespace removed (9).
  "sanitized" first puts the body through our `sanitize()`, which is what
  `split_reply_html` gets in production (class and id attributes are gone);
  "raw" is the fixture as it is.  Libraries with no HTML mode get `to_text(html)`
  through their text function.
* signatures (not a target): signature/emails/stripped, the signature found
  equal to the expected one (6), for candidates that look for signatures.

Candidates that are not installed are listed as such: only postdesk's choice,
mail-parser-reply, is a project dependency.  To re-run the comparison:
`pip install quotequail email-reply-parser` into the venv; talon 1.4.4 (2017)
pulls scikit-learn, scipy and numpy, so give it a scratch venv
(`pip install talon nh3 inscriptis mail-parser-reply`, PYTHONPATH=src).
"""

from __future__ import annotations

import argparse
import email
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from postdesk.mail._html import sanitize, to_text  # noqa: E402

Text = Callable[[str], str]


@dataclass
class Candidate:
    name: str  # the PyPI name
    note: str
    text: Text | None = None
    html: Text | None = None  # HTML in, HTML out
    signature: Callable[[str], str] | None = None
    missing: str = ""


def _candidates() -> list[Candidate]:
    out = []

    def add(name: str, note: str, build: Callable[[Candidate], None]) -> None:
        candidate = Candidate(name, note)
        try:
            build(candidate)
        except ImportError as e:
            candidate.missing = f"not installed ({e.name})"
        except Exception as e:  # installed but broken on this Python
            candidate.missing = f"does not load: {type(e).__name__}: {e}"
        out.append(candidate)

    def postdesk(c: Candidate) -> None:
        from postdesk.mail import split_reply, split_reply_html

        c.text = lambda text: split_reply(text).reply_text
        c.html = lambda html: split_reply_html(html)[0]
        c.signature = lambda text: split_reply(text).signature

    def mail_parser_reply(c: Candidate) -> None:
        from mailparser_reply import EmailReplyParser

        languages = ["en", "de", "fr", "es", "it", "nl", "sv", "da", "cs", "ja", "ko", "zh"]
        c.text = lambda text: EmailReplyParser(languages=languages).parse_reply(text) or ""
        c.signature = lambda text: EmailReplyParser(languages=languages).read(text).replies[0].signatures

    def quotequail(c: Candidate) -> None:
        import quotequail

        c.text = lambda text: quotequail.quote(text, quote_intro_line=True)[0][1]
        c.html = lambda html: quotequail.quote_html(html, quote_intro_line=True)[0][1]

    def email_reply_parser(c: Candidate) -> None:
        from email_reply_parser import EmailReplyParser

        c.text = EmailReplyParser.parse_reply

    def talon(c: Candidate) -> None:
        from talon import quotations
        from talon.signature.bruteforce import extract_signature

        c.text = quotations.extract_from_plain
        c.html = quotations.extract_from_html
        c.signature = lambda text: extract_signature(text)[1] or ""

    add("postdesk", "ours: split_reply / split_reply_html = mail-parser-reply's header patterns + our line rules (version: mail-parser-reply's)", postdesk)
    add("mail-parser-reply", "EmailReplyParser(languages).parse_reply", mail_parser_reply)
    add("quotequail", "quote / quote_html, quote_intro_line=True", quotequail)
    add("email-reply-parser", "EmailReplyParser.parse_reply", email_reply_parser)
    add("talon", "quotations.extract_from_plain / extract_from_html", talon)
    return out


def _first_plain(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=policy.default)
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_content()
    return ""


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _call(function: Callable[[str], str], value: str) -> str:
    try:
        return function(value) or ""
    except Exception as e:
        return f"<raised {type(e).__name__}: {e}>"


def score(candidate: Candidate, corpus: Path) -> dict[str, tuple[int, int, list[str]]]:
    expected = json.loads((corpus / "EXPECTED.talon.json").read_text())
    fixtures = corpus / "tests" / "fixtures"
    results: dict[str, tuple[int, int, list[str]]] = {}

    misses = []
    for name, want in expected["standard_replies"].items():
        got = _call(candidate.text, _first_plain((fixtures / "standard_replies" / name).read_bytes())).strip()
        if got != want["expected_reply_text"]:
            misses.append(f"{name}: {got[:70]!r}")
    results["standard"] = (len(expected["standard_replies"]) - len(misses), len(expected["standard_replies"]), misses)

    for mode in ("sanitized", "raw"):
        misses = []
        for name, want in expected["html_replies"].items():
            body = (fixtures / "html_replies" / name).read_text("utf-8")
            if mode == "sanitized":
                body = sanitize(body)
            if candidate.html is not None:
                out = _call(candidate.html, body)
                got = out if out.startswith("<raised") else to_text(out)
            else:
                got = _call(candidate.text, to_text(body))
            if _squeeze(got) != _squeeze(want["expected_reply_plaintext"]):
                misses.append(f"{name}: {_squeeze(got)[:60]!r}")
        results[f"html {mode}"] = (len(expected["html_replies"]) - len(misses), len(expected["html_replies"]), misses)

    if candidate.signature is not None:
        misses = []
        for name, files in expected["signature_stripped"].items():
            body = (fixtures / files["body"]).read_text()
            want = (fixtures / files["expected_signature"]).read_text().strip()
            got = _call(candidate.signature, body).strip()
            if got != want:
                misses.append(f"{name}: {got[:50]!r}")
        total = len(expected["signature_stripped"])
        results["signatures"] = (total - len(misses), total, misses)
    return results


def _about(name: str) -> tuple[str, str]:
    if name == "postdesk":
        name = "mail-parser-reply"
    try:
        meta = metadata.metadata(name)
    except metadata.PackageNotFoundError:
        return "-", "-"
    license_ = meta.get("License") or ""
    if not license_ or len(license_) > 20:
        classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
        license_ = classifiers[0] if classifiers else (license_[:20] or "?")
    return meta["Version"], license_


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--misses", action="store_true", help="print what each candidate got wrong")
    args = parser.parse_args()
    shared = Path(os.environ.get("POSTDESK_SHARED_DIR", ROOT.parent / "shared"))
    corpus = shared / "corpora" / "talon"
    if not corpus.is_dir():
        print(f"the talon corpus is not at {corpus} (set POSTDESK_SHARED_DIR)")
        return 1

    columns = ["standard", "html sanitized", "html raw", "signatures"]
    print(f"reply extraction on {corpus}  (targets: standard >= 11/12, html sanitized >= 8/9)")
    print(f"{'candidate':20} {'version':8} {'license':10} " + " ".join(f"{c:>15}" for c in columns))
    for candidate in _candidates():
        version, license_ = _about(candidate.name)
        if candidate.missing:
            print(f"{candidate.name:20} {version:8} {license_:10} {candidate.missing}")
            continue
        results = score(candidate, corpus)
        cells = [f"{results[c][0]}/{results[c][1]}" if c in results else "-" for c in columns]
        print(f"{candidate.name:20} {version:8} {license_:10} " + " ".join(f"{cell:>15}" for cell in cells))
        if args.misses:
            for column in columns:
                for miss in results.get(column, (0, 0, []))[2]:
                    print(f"    {column}: {miss}")
    print()
    for candidate in _candidates():
        print(f"{candidate.name:20} {candidate.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
