"""Was this message written by a person?  (RFC 3834 and what mailers really send.)

The answer decides later whether Postdesk may acknowledge the message (never
answer a machine: that is how mail loops start) and how the request is flagged.
Each rule is a small named function; the first that matches wins, most
specific first.
"""

from __future__ import annotations

from collections.abc import Callable

from postdesk.mail._headers import HeaderReader
from postdesk.mail._types import AutoSubmitted

Rule = Callable[[HeaderReader, str], AutoSubmitted | None]


def delivery_report(headers: HeaderReader, content_type: str) -> AutoSubmitted | None:
    ct = content_type.lower()
    if ct.startswith("multipart/report") and "delivery-status" in ct:
        return AutoSubmitted("bounce", "multipart/report; report-type=delivery-status")
    if headers.has("x-failed-recipients"):
        return AutoSubmitted("bounce", "X-Failed-Recipients")
    return None


def read_receipt(headers: HeaderReader, content_type: str) -> AutoSubmitted | None:
    if content_type.lower().startswith("multipart/report") and "disposition-notification" in content_type.lower():
        return AutoSubmitted("auto-replied", "multipart/report; report-type=disposition-notification")
    return None


def auto_submitted_header(headers: HeaderReader, content_type: str) -> AutoSubmitted | None:
    value = (headers.text("auto-submitted") or "").split(";")[0].strip().lower()
    if not value or value == "no":
        return None
    kind = "auto-replied" if value == "auto-replied" else "auto-generated"
    return AutoSubmitted(kind, f"Auto-Submitted: {value}")


def autoreply_headers(headers: HeaderReader, content_type: str) -> AutoSubmitted | None:
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Autoreply-From"):
        if headers.has(name):
            return AutoSubmitted("auto-replied", f"{name} header")
    return None


def mailing_list(headers: HeaderReader, content_type: str) -> AutoSubmitted | None:
    if headers.has("list-id"):
        return AutoSubmitted("list", "List-Id header")
    if (headers.text("precedence") or "").strip().lower() == "list":
        return AutoSubmitted("list", "Precedence: list")
    return None


def bulk_precedence(headers: HeaderReader, content_type: str) -> AutoSubmitted | None:
    value = (headers.text("precedence") or "").strip().lower()
    if value in ("bulk", "junk", "auto_reply"):
        return AutoSubmitted("auto-generated", f"Precedence: {value}")
    return None


def response_suppress(headers: HeaderReader, content_type: str) -> AutoSubmitted | None:
    value = (headers.text("x-auto-response-suppress") or "").strip()
    if value and value.lower() != "none":
        return AutoSubmitted("auto-generated", f"X-Auto-Response-Suppress: {value}")
    return None


def null_return_path(headers: HeaderReader, content_type: str) -> AutoSubmitted | None:
    value = headers.text("return-path")
    if value is not None and value.strip().strip("<>").strip() == "":
        return AutoSubmitted("auto-generated", "empty Return-Path")
    return None


RULES: tuple[Rule, ...] = (
    delivery_report,
    read_receipt,
    auto_submitted_header,
    autoreply_headers,
    mailing_list,
    bulk_precedence,
    response_suppress,
    null_return_path,
)


def classify(headers: HeaderReader, content_type: str) -> AutoSubmitted | None:
    for rule in RULES:
        verdict = rule(headers, content_type)
        if verdict is not None:
            return verdict
    return None
