"""Attachment file names that are safe to show, store and write to disk."""

from __future__ import annotations

import re
import unicodedata

from postdesk.mail._part_names import extension_for, unnamed_stem

MAX_FILENAME_BYTES = 200  # well under every file system's 255-byte limit

_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.I)


def safe_filename(name: str | None, content_type: str, fallback_stem: str | None = None) -> str:
    """The last path component, without control or direction-override characters,
    leading dots or reserved device names, capped in length with its extension kept;
    a name made from the content type when nothing usable is left."""
    cleaned = _clean(name or "")
    if not cleaned:
        stem = _clean(fallback_stem or "") or _clean(unnamed_stem(content_type)) or "attachment"
        cleaned = _cap(stem, MAX_FILENAME_BYTES - 8) + extension_for(content_type)
    if _WINDOWS_RESERVED.match(cleaned):
        cleaned = "_" + cleaned
    return _cap(cleaned, MAX_FILENAME_BYTES)


def _clean(name: str) -> str:
    name = name.replace("\\", "/").split("/")[-1]
    # Cc: control characters; Cf: format characters such as U+202E, which would
    # show "exe.txt" for "txt.exe"; Cs: stray surrogates from broken input.
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn"))
    name = " ".join(name.split())
    return name.lstrip(". ").rstrip(". ")


def _cap(name: str, limit: int) -> str:
    if len(name.encode("utf-8")) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext) > 16 or not stem:
        stem, ext = name, ""
    ext = ("." + ext) if ext else ""
    room = limit - len(ext.encode("utf-8"))
    stem = stem.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip(". ")
    return (stem or "attachment") + ext
