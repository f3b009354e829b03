"""A message's HTML shown as the customer wrote it, without any risk from it.

Three walls, each enough on its own against script:
1. the HTML was sanitized by nh3 when the mail was parsed, and is again here
   (postdesk.mail.for_display) while `cid:` images are pointed at us and remote
   images are left out;
2. the page embeds it in `<iframe sandbox="allow-same-origin allow-popups
   allow-popups-to-escape-sandbox">`: never allow-scripts, so no script runs in it;
3. the frame document carries its own Content-Security-Policy: no scripts, no
   forms, no fonts or styles from anywhere, images only from us (and from the
   web only once the reader clicked "show images"), and a `sandbox` directive
   so the same holds when the URL is opened directly in a tab.

Why allow-same-origin (since issue 15): the page sizes the frame to its content
(static/postdesk/reading.js reads contentDocument's height), which it can only do when
the frame is of its own origin; there is no other way without giving the frame scripts
(a script in the frame posting its height). Same-origin is dangerous together with
allow-scripts (the frame could lift its own sandbox); without it, and with the CSP
above, nothing in the frame can run, so nothing can use our origin. What does change:
- the frame's own requests to our server now carry the session cookie: so images on our
  own host are always left out (for_display's own_host), and a GET of ours never changes
  anything that matters (actions are POST with CSRF, which the frame cannot send: no
  forms in the sanitized HTML, form-action 'none', no allow-forms);
- links: the same as before: absolute http(s)/mailto only, rel="noopener noreferrer",
  opened in a new tab (allow-popups-to-escape-sandbox), never in the top window (no
  allow-top-navigation), no Referer (the frame's meta and header say no-referrer);
- inline images still use their signed tokens (they work with or without a cookie, and
  the "open in a new tab" view and older pages need them);
- no input fields survive the sanitizer, so a password manager has nothing to fill in.

Inline images are fetched with a signed, expiring token naming the attachment and the
reader (Django's TimestampSigner, keyed by the installation's secret key), so the URL is
its own credential wherever the frame document is shown.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core import signing
from django.urls import reverse
from django.utils.html import escape

from postdesk.mail import DisplayHTML, ReplyParts, for_display, normalize_cid
from postdesk.models import Message

INLINE_SALT = "postdesk.web.inline-image"
# Long enough for a page left open through a working day.
INLINE_TOKEN_MAX_AGE = 12 * 3600

# Never allow-scripts (see above); allow-same-origin lets the page measure the frame.
FRAME_SANDBOX = "allow-same-origin allow-popups allow-popups-to-escape-sandbox"

_DOCUMENT = """<!doctype html>
<html><head><meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<base target="_blank">
<style>
body {{ margin: 12px; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d232b; background: #fff; overflow-wrap: anywhere; }}
img {{ max-width: 100%; height: auto; }}
table {{ max-width: 100%; }}
pre {{ white-space: pre-wrap; }}
blockquote {{ margin: 0 0 0 .5em; padding-left: .8em; border-left: 3px solid #cfd6df; color: #4a5563; }}
</style>
<title>{title}</title></head>
<body>{body}</body></html>
"""


def inline_token(attachment_id: int, user_id: int) -> str:
    return signing.TimestampSigner(salt=INLINE_SALT).sign_object({"a": attachment_id, "u": user_id})


def read_inline_token(token: str) -> tuple[int, int] | None:
    """(attachment id, user id) from a valid, unexpired token; None otherwise."""
    try:
        data = signing.TimestampSigner(salt=INLINE_SALT).unsign_object(token, max_age=INLINE_TOKEN_MAX_AGE)
        return int(data["a"]), int(data["u"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None


def shown_html(message: Message, whole: bool) -> str:
    """The HTML the frame shows: all of it, or the new part of a reply (quote folded),
    as stored at processing time (never split again per view)."""
    html = message.html or ""
    if whole or message.html_new is None:
        return html
    return message.html_new


def has_fold(message: Message) -> bool:
    return bool(message.html) and message.html_new is not None


def text_parts(message: Message) -> ReplyParts | None:
    """The stored split of a received message's text; None when nothing is folded."""
    parts = message.text_parts or {}
    if not parts:
        return None
    new, quoted, signature = parts.get("new_text", ""), parts.get("quoted_text", ""), parts.get("signature", "")
    return ReplyParts(new, quoted, signature, "\n\n".join(p for p in (new, signature) if p))


def ensure_display(messages: list[Message]) -> None:
    """Messages stored before the display parts were computed at processing time get
    them here, once (saved): through a parser process under the parse time limit,
    so hostile input costs one view at most that long, never every view."""
    missing = [m for m in messages if m.direction == "in" and m.text_parts is None]
    if not missing:
        return
    from postdesk.process import parallel

    for message, display in zip(missing, parallel.display_now([(m.text, m.html) for m in missing]), strict=True):
        message.text_parts, message.html_new, message.remote_images = display.text_parts, display.html_new, display.remote_images
        Message.objects.filter(pk=message.pk).update(
            text_parts=display.text_parts, html_new=display.html_new, remote_images=display.remote_images)


def render_body(message: Message, user_id: int, remote_images: bool, whole: bool = True, own_host: str = "") -> DisplayHTML:
    """The frame's content: our sanitized HTML with cid: images pointed at signed URLs."""
    by_cid = {normalize_cid(a.content_id): a.pk for a in message.attachments.all() if a.content_id}

    def cid_url(cid: str) -> str | None:
        attachment_id = by_cid.get(cid)
        if attachment_id is None:
            return None
        return reverse("postdesk_web:inline_image", args=[inline_token(attachment_id, user_id)])

    shown = for_display(shown_html(message, whole), cid_url, remote_images, own_host)
    document = _DOCUMENT.format(title=escape(message.subject), body=shown.html)
    return DisplayHTML(document, shown.remote_blocked)


def host_of(request) -> str:
    """Our host name as the reader reached us ("desk.example.com", "127.0.0.1", "::1")."""
    return urlsplit("//" + request.get_host()).hostname or ""


def frame_policy(origin: str, remote_images: bool) -> str:
    """The Content-Security-Policy of the frame document.  `origin` is named
    explicitly beside 'self' because a sandboxed document's own origin is opaque."""
    images = f"'self' {origin} data:" + (" https: http:" if remote_images else "")
    return (
        f"default-src 'none'; img-src {images}; style-src 'unsafe-inline'; "
        "form-action 'none'; base-uri 'none'; frame-ancestors 'self'; "
        f"sandbox {FRAME_SANDBOX}"
    )

