"""Reading a message: `{{ text|linkify }}` and `{{ attachment|preview_kind }}`.

Plain-text mail with its links clickable (linkify):

The same rule as for links in HTML mail (postdesk.mail for_display): only absolute
http(s) and mailto links, never javascript:, data: or a relative URL (which would open a
page of our own app); each opens in a new tab with rel="noopener noreferrer nofollow",
so the site learns neither the request's URL nor gets a handle on our page. Links load
nothing until clicked, so the remote-images switch does not apply to them. Every piece
of text is escaped; whitespace is left to the CSS (white-space: pre-wrap)."""

from __future__ import annotations

import re

from django import template
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# Linear: one character class, no nesting. Quotes and angle brackets end a URL (as in mail
# clients), so text like <https://x> or "https://x" links only the URL.
_URL = re.compile(r"\b(?:https?://[^\s<>\"'`]+|mailto:[^\s<>\"'`/?]+@[^\s<>\"'`]+)", re.IGNORECASE)
_TRAILING = ".,;:!?*'\""
_CLOSERS = {")": "(", "]": "[", "}": "{"}
MAX_LINKED_TEXT = 2_000_000  # beyond this a message is shown as plain escaped text


def _trim(url: str) -> str:
    """Sentence punctuation after a URL is not part of it; a closing bracket is only when
    the URL opened one ("https://en.wikipedia.org/wiki/Mail_(disambiguation)")."""
    while url:
        last = url[-1]
        if last in _TRAILING or (last in _CLOSERS and url.count(_CLOSERS[last]) < url.count(last)):
            url = url[:-1]
            continue
        return url
    return url


def _names_something(url: str) -> bool:
    return bool(url.split(":", 1)[1].lstrip("/"))


def link(url: str) -> SafeString:
    return format_html('<a href="{}" rel="noopener noreferrer nofollow" target="_blank" class="text-link">{}</a>', url, url)


@register.filter(is_safe=True)
def linkify(text) -> SafeString:
    text = "" if text is None else str(text)
    if len(text) > MAX_LINKED_TEXT:
        return escape(text)
    pieces, done = [], 0
    for match in _URL.finditer(text):
        url = _trim(match.group(0))
        if not _names_something(url):
            continue  # "https://" followed by punctuation alone
        pieces += [escape(text[done:match.start()]), link(url)]
        done = match.start() + len(url)
    pieces.append(escape(text[done:]))
    return mark_safe("".join(pieces))


@register.filter
def preview_kind(attachment) -> str:
    """"image", "pdf" or "" (download only): web.previews decides."""
    from postdesk.web.previews import preview_of

    return preview_of(attachment).kind
