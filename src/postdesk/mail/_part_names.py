"""Names for parts sent without a file name, after what they are.

A delivery report's status part, the returned headers, a bare octet stream:
mail clients name them (`delivery-status.txt`, `headers.txt`,
`attachment.bin`), so staff can tell them apart in a list of downloads; a
generic `message.txt` says nothing.  A forwarded message is named after its
subject by the caller, which has parsed it.
"""

from __future__ import annotations

import mimetypes
import re

# content type -> (stem, extension)
_NAMED = {
    "message/delivery-status": ("delivery-status", ".txt"),
    "message/global-delivery-status": ("delivery-status", ".txt"),
    "message/disposition-notification": ("disposition-notification", ".txt"),
    "message/global-disposition-notification": ("disposition-notification", ".txt"),
    "text/rfc822-headers": ("headers", ".txt"),
    "message/rfc822-headers": ("headers", ".txt"),
    "message/global-headers": ("headers", ".txt"),
    "message/rfc822": ("forwarded-message", ".eml"),
    "message/global": ("forwarded-message", ".eml"),
    "message/partial": ("partial-message", ".eml"),
    "message/external-body": ("external-body", ".txt"),
    "text/calendar": ("invite", ".ics"),
    "application/ics": ("invite", ".ics"),
    "text/vcard": ("contact", ".vcf"),
    "text/x-vcard": ("contact", ".vcf"),
    "text/directory": ("contact", ".vcf"),
    "application/pgp-keys": ("key", ".asc"),
    "application/pgp-signature": ("signature", ".asc"),
    "application/pkcs7-signature": ("smime", ".p7s"),
    "application/x-pkcs7-signature": ("smime", ".p7s"),
    "application/pkcs7-mime": ("smime", ".p7m"),
    "application/x-pkcs7-mime": ("smime", ".p7m"),
    "application/ms-tnef": ("winmail", ".dat"),
    "application/vnd.ms-tnef": ("winmail", ".dat"),
}

# Types mimetypes does not know or names oddly (".jpe", ".ksh" for text/plain on some systems).
_EXTENSIONS = {
    "text/plain": ".txt",
    "text/html": ".html",
    "text/csv": ".csv",
    "text/markdown": ".md",
    "text/xml": ".xml",
    "application/xml": ".xml",
    "application/json": ".json",
    "application/octet-stream": ".bin",
    "application/pdf": ".pdf",
    "application/zip": ".zip",
    "application/gzip": ".gz",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/svg+xml": ".svg",
    "image/tiff": ".tif",
    "audio/mpeg": ".mp3",
    "video/mp4": ".mp4",
}

_TOKEN = re.compile(r"[a-z0-9][a-z0-9.+-]{0,39}")  # a subtype fit for a file name, nothing a sender smuggled in
_MEDIA_STEMS = {"image": "image", "audio": "audio", "video": "video"}


def unnamed_stem(content_type: str) -> str:
    """The file name stem for a part of this type sent without a name."""
    if content_type in _NAMED:
        return _NAMED[content_type][0]
    major, _, subtype = content_type.partition("/")
    if major == "message" and _TOKEN.fullmatch(subtype):
        return subtype  # message/news, message/sip...: the subtype says what it is
    return _MEDIA_STEMS.get(major, "attachment")


def extension_for(content_type: str) -> str:
    """The usual file extension for a content type; ".bin" when none is known."""
    if content_type in _NAMED:
        return _NAMED[content_type][1]
    if content_type in _EXTENSIONS:
        return _EXTENSIONS[content_type]
    if content_type.startswith("text/"):
        return mimetypes.guess_extension(content_type, strict=False) or ".txt"
    if content_type.startswith("message/"):
        return ".eml"
    return mimetypes.guess_extension(content_type, strict=False) or ".bin"
