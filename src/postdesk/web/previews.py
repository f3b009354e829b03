"""Attachments shown on the request page, not only downloaded: which ones, and how safely.

- png, jpeg, gif, webp: a thumbnail (an <img> of our own origin; a browser shows these
  types only as pictures, never as a document) that opens larger in a new tab;
- PDF: PDF.js (static/postdesk/pdfjs, pdfjs-dist from npm) in a frame sandboxed with
  allow-scripts but never allow-same-origin, so PDF.js and the PDF run in an opaque origin
  that cannot touch the app. Chromium's own viewer is no option: it refuses to show a PDF
  inside a sandboxed frame, and outside one it would be the app's origin. The frame's
  script fetches the bytes from a signed, short-lived token URL (the opaque origin sends
  no session cookie), answered with CORS for any origin since the token is the credential;
- SVG (it can carry script) and everything else: download only, as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core import signing

from postdesk.models import Attachment

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
PDF_TYPES = frozenset({"application/pdf", "application/x-pdf"})
PDF_SALT = "postdesk.web.pdf-preview"
# Read by the frame right after it loads; short, because the URL is a bearer credential.
PDF_TOKEN_MAX_AGE = 10 * 60
PDF_MAGIC = b"%PDF-"
PDF_FRAME_SANDBOX = "allow-scripts"  # never with allow-same-origin: see above


@dataclass(frozen=True)
class Preview:
    kind: str  # "image", "pdf" or "" (download only)


def declared_type(attachment: Attachment) -> str:
    return attachment.content_type.split(";")[0].strip().lower()


def preview_of(attachment: Attachment) -> Preview:
    content_type = declared_type(attachment)
    if content_type in IMAGE_TYPES:
        return Preview("image")
    if is_pdf(attachment):
        return Preview("pdf")
    return Preview("")


def is_pdf(attachment: Attachment) -> bool:
    """Declared a PDF, or sent as generic bytes with a .pdf name (as many mailers do)."""
    content_type = declared_type(attachment)
    named_pdf = (attachment.filename or "").lower().endswith(".pdf")
    return content_type in PDF_TYPES or (content_type == "application/octet-stream" and named_pdf)


def pdf_token(attachment_id: int, user_id: int) -> str:
    return signing.TimestampSigner(salt=PDF_SALT).sign_object({"a": attachment_id, "u": user_id})


def read_pdf_token(token: str) -> tuple[int, int] | None:
    """(attachment id, user id) from a valid, unexpired token; None otherwise."""
    try:
        data = signing.TimestampSigner(salt=PDF_SALT).unsign_object(token, max_age=PDF_TOKEN_MAX_AGE)
        return int(data["a"]), int(data["u"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None


def pdf_frame_policy(origin: str) -> str:
    """The PDF frame document's CSP: scripts only from our static PDF.js (and the blob:
    wrapper PDF.js makes to start its worker), bytes only from us, nothing else."""
    static = f"{origin}/static/postdesk/"
    return (
        f"default-src 'none'; script-src {static} blob:; worker-src blob: {static}; "
        f"connect-src {origin}/preview/; img-src blob: data:; style-src {static} 'unsafe-inline'; font-src data:; "
        "form-action 'none'; base-uri 'none'; frame-ancestors 'self'; "
        f"sandbox {PDF_FRAME_SANDBOX}"
    )
