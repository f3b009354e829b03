"""HTML bodies: sanitized for display, and turned into text when there is no text part.

nh3 (Rust's ammonia) does the sanitizing: an allow-list of tags and
attributes, so anything it does not know is dropped.  On top of that we filter
inline CSS (_css.py), because ammonia passes style values through untouched, and we keep
`cid:` URLs so the UI can point them at stored attachments.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import nh3

from postdesk.mail._css import safe_style
from postdesk.mail._html_bounds import bound_html

_TAGS = set(nh3.ALLOWED_TAGS) | {"font", "center", "big", "tfoot", "th", "caption", "u"}
_GENERIC_ATTRS = {"style", "align", "valign", "dir", "lang", "title", "width", "height", "bgcolor", "color", "border"}
_ATTRS = {
    "*": _GENERIC_ATTRS,
    "a": {"href", "name"},
    "img": {"src", "alt", "hspace", "vspace"},
    "font": {"face", "size", "color"},
    "table": {"cellpadding", "cellspacing", "summary", "background"},
    "td": {"colspan", "rowspan", "nowrap", "background"},
    "th": {"colspan", "rowspan", "nowrap", "scope"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type"},
    "li": {"value"},
    "blockquote": {"cite", "type"},
    "q": {"cite"},
    "time": {"datetime"},
    "data": {"value"},
}
# Tags whose text would be noise or danger if kept: their content goes too.
_CLEAN_CONTENT = {"script", "style", "title", "noscript", "template", "object", "applet", "iframe", "noembed", "noframes", "xmp"}
_URL_SCHEMES = {"http", "https", "mailto", "cid", "tel", "data"}
_URL_ATTRS = {"href", "src", "background", "cite"}

_SAFE_DATA_IMAGE = re.compile(r"^data:image/(png|gif|jpe?g|webp|bmp);base64,[a-z0-9+/=\s]*$", re.I)

def sanitize(html: str, location_to_cid: Mapping[str, str] | None = None, defects: list[str] | None = None) -> str:
    """Safe HTML for a sandboxed frame.  `location_to_cid` rewrites Content-Location
    references (an image named by URL inside the mail) into `cid:` references.
    What had to be cut to keep the sanitizer fast goes into `defects`."""
    locations = dict(location_to_cid or {})

    def attribute_filter(tag: str, attr: str, value: str) -> str | None:
        if attr == "style":
            return safe_style(value)
        if attr in _URL_ATTRS:
            stripped = value.strip()
            if tag == "img" and attr == "src" and stripped in locations:
                return "cid:" + locations[stripped]
            if stripped[:5].lower() == "data:":
                # data: URLs only as images; a data: link could carry a whole page.
                return stripped if tag == "img" and _SAFE_DATA_IMAGE.match(stripped) else None
        return value

    return _clean(html, attribute_filter, defects)


# The last input bounded and its result, per thread (the web server shows
# messages from several threads): the parser reads one HTML part twice, for
# the HTML and for the text.
_last = threading.local()


def _bounded(html: str, defects: list[str] | None) -> str:
    """The input the native parsers get: nesting, tags and text runs bounded
    (_html_bounds.py), so that no HTML makes them slow."""
    last = getattr(_last, "pair", None)
    if last is not None and last[0] is html:
        bounded = last[1]
    else:
        bounded = bound_html(html, _ATTRS)
        _last.pair = (html, bounded)
    if defects is not None:
        defects.extend(bounded.defects)
    return bounded.html


def _clean(html: str, attribute_filter, defects: list[str] | None = None) -> str:
    return nh3.clean(
        _bounded(html, defects),
        tags=_TAGS,
        clean_content_tags=_CLEAN_CONTENT,
        attributes=_ATTRS,
        url_schemes=_URL_SCHEMES,
        attribute_filter=attribute_filter,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


_LINK_SCHEMES = {"http", "https", "mailto", "tel"}
# Attributes a browser loads by itself while rendering (links wait for a click).
_AUTO_LOADED = {("img", "src"), ("table", "background"), ("td", "background")}


@dataclass(frozen=True)
class DisplayHTML:
    html: str
    remote_blocked: int  # remote images left out (tracking pixels among them)


def for_display(html: str, cid_url: Callable[[str], str | None], remote_images: bool, own_host: str = "") -> DisplayHTML:
    """Stored (already sanitized) HTML made ready for the reader's frame.

    It goes through the same sanitizer again rather than a regex, so the rewrite
    works on parsed attributes: `cid:` references become our own URLs for the
    stored parts (`cid_url` returns None for an unknown one: the image is left
    out), and remote images are left out unless the reader asked for them.
    The frame's Content-Security-Policy enforces the same rule a second time.
    An image on `own_host` (our own server) is always left out: the frame is of our
    origin (so the page can size it), and such a request would carry the reader's
    session cookie to a URL the sender chose."""
    blocked = 0

    def attribute_filter(tag: str, attr: str, value: str) -> str | None:
        nonlocal blocked
        if attr == "style":
            return safe_style(value)
        if (tag, attr) == ("a", "href"):
            # Only absolute links: a relative one would resolve against our own
            # server and open, outside the sandbox, a page of the staff app.
            scheme = value.strip().split(":", 1)[0].lower() if ":" in value else ""
            return value if scheme in _LINK_SCHEMES else None
        if (tag, attr) not in _AUTO_LOADED:
            return value
        url = value.strip()
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == "cid":
            return cid_url(normalize_cid(url[4:]))
        if scheme in ("http", "https") or url.startswith("//"):
            if own_host and _host(url) == own_host.lower():
                return None
            if remote_images:
                return url
            blocked += 1
            return None
        return value if scheme == "data" else None

    cleaned = _clean(html, attribute_filter)
    return DisplayHTML(cleaned, blocked)


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return ""


def normalize_cid(reference: str) -> str:
    """A Content-ID as `cid:` URLs and headers both name it: RFC 2392 URLs are
    percent-encoded and carry no angle brackets; matching is case-insensitive."""
    return unquote(reference).strip().strip("<>").strip().lower()


_BLANKS = re.compile(r"\n[ \t]*\n([ \t]*\n)+")
_LINE_BREAKING_TAG = re.compile(r"</?(?:p|div|br|tr|li|dt|dd|h[1-6]|table|blockquote|pre|hr)\b[^<>]*>", re.I)
# inscriptis lays out tables and lists at a few microseconds a character (a
# 1.4 MB table: 4.7 s) and about 100 microseconds an element (26,000 nested
# table cells in 600 KB: 3.4 s); longer HTML, or HTML with more tags, gets the
# plain reading below.  The tag budget is for the whole message: ten thousand
# small HTML parts cost as much to lay out as one big one.
MAX_LAYOUT_CHARS = 400_000
MAX_LAYOUT_TAGS = 6_000
_TAGS_A_PART = 20  # what one call costs beyond its tags (a tree built, a canvas made)


class LayoutBudget:
    """The tags one message may still have laid out by inscriptis."""

    def __init__(self, tags: int = MAX_LAYOUT_TAGS) -> None:
        self.tags = tags
        self.refused = 0  # parts read plainly; the defect is recorded for the first

    def take(self, html: str) -> bool:
        """Whether `html` may be laid out; its tags are taken from the budget."""
        tags = html.count("<") + _TAGS_A_PART
        if len(html) > MAX_LAYOUT_CHARS or tags > self.tags:
            self.refused += 1
            return False
        self.tags -= tags
        return True


def to_text(html: str, defects: list[str] | None = None, budget: LayoutBudget | None = None) -> str:
    """Readable plain text from HTML (tables and lists laid out), for text-less mail.
    Past the layout budget (`budget`, else one of its own) the text is the plain
    reading: every word kept, tables and lists not laid out."""
    html = _bounded(html, defects)
    text = ""
    budget = budget or LayoutBudget()
    if budget.take(html):
        try:
            from inscriptis import get_text
            from inscriptis.model.config import ParserConfig

            text = get_text(html, ParserConfig(display_links=False, display_images=False))
        except Exception:  # inscriptis/lxml refuse some inputs; the plain reading below
            text = ""
    elif defects is not None and budget.refused == 1:
        defects.append(
            f"HTML of {len(html)} characters, {html.count('<')} tags (layout stops at {MAX_LAYOUT_CHARS} "
            f"characters, {MAX_LAYOUT_TAGS} tags a message): its text read without table layout"
        )
    if not text.strip():
        # Also when inscriptis found nothing: libxml2 returns an empty tree for
        # input it gives up on, and no text may be lost silently.
        text = _plain_text(html)
    lines = [line.rstrip() for line in text.splitlines()]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def _plain_text(html: str) -> str:
    """Tags stripped (line-breaking ones become line breaks), entities decoded."""
    import html as html_module

    text = nh3.clean(_LINE_BREAKING_TAG.sub("\n", _without_head(html)), tags=set(), clean_content_tags=_CLEAN_CONTENT)
    return html_module.unescape(text)


def _without_head(html: str) -> str:
    """The document without its <head> (what it holds is no text to read)."""
    lower = html.lower()
    start = lower.find("<head")
    end = lower.find("</head", start)
    if start < 0 or end < 0 or lower[start + 5 : start + 6] not in (">", " ", "\t", "\n", "\r", "/"):
        return html
    close = lower.find(">", end)
    return html[:start] + (html[close + 1 :] if close >= 0 else "")
