"""`Content-Disposition: attachment` with a file name every browser reads the
same way (RFC 6266): a plain ASCII `filename="..."` fallback, and the exact
name as `filename*=UTF-8''...` (RFC 8187) when the fallback had to change it.

A name comes from the mail, so it is the sender's text: control characters
(CR and LF above all: header injection) are removed, and the fallback holds no
quote, backslash, semicolon or percent sign that a lax parser could read as
the end of the value or as an encoding.
"""

from __future__ import annotations

import io
import re
import unicodedata
from urllib.parse import quote

from django.http import FileResponse

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_FALLBACK_UNSAFE = re.compile(r'[^A-Za-z0-9 !#$&\'()*+,\-.=@\[\]^_`{}~]')
# RFC 8187 attr-char: what may stand unencoded in filename*.
_ATTR_CHARS = "!#$&+-.^_`|~"


def attachment(filename: str, default: str = "attachment") -> str:
    """The header value for a download named `filename`."""
    name = " ".join(_CONTROL.sub(" ", filename).split())
    if not name.strip("."):
        name = default  # "", "." and "..": no name a browser would keep
    fallback = _ascii_fallback(name) or default
    header = f'attachment; filename="{fallback}"'
    if fallback != name:
        header += f"; filename*=UTF-8''{quote(name, safe=_ATTR_CHARS)}"
    return header


def _ascii_fallback(name: str) -> str:
    """`name` in ASCII: accents dropped (é -> e), anything else unsafe -> "_";
    empty when nothing but underscores and dots is left."""
    decomposed = unicodedata.normalize("NFKD", name)
    ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c))
    fallback = _FALLBACK_UNSAFE.sub("_", ascii_only).strip(" .")
    return fallback if fallback.strip("_.") else ""


def download(data: bytes, filename: str, content_type: str) -> FileResponse:
    """Bytes of mail for the browser to save, never to show as a page of ours: every
    download (attachments, raw messages, quarantined intakes, the PDF preview's bytes)."""
    response = FileResponse(io.BytesIO(data), content_type=content_type)
    # Ours rather than Django's: its header keeps a CR or LF of the sender's name
    # (a 500) and has no ASCII fallback for non-ASCII names.
    response["Content-Disposition"] = attachment(filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response
