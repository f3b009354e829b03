"""Inline CSS (`style` attributes) reduced to declarations that load nothing.

A deny-list of spellings cannot win: CSS has escapes (`\\75 rl(`), comments
inside names (`u/**/rl(`), several loading functions (`url()`, `image()`,
`image-set()`, `-webkit-image-set()`, `cross-fade()`, `element()`, `src()`) and
new ones arrive with each level of the spec.  So the rule is
normalise-then-allow:

1. the value is normalised the way a browser's tokenizer would read it:
   comments removed, escapes decoded; what is left over (a backslash, a comment
   made by decoding) drops the whole attribute;
2. it is split into declarations, and each one is checked on its NFKC,
   lower-case form: every `name(` must be a function on `_SAFE_FUNCTIONS`
   (colours, maths, gradients, transforms: none of them takes a URL), and no
   `@`, `expression`, `javascript:` or binding may appear;
3. the *normalised* declarations that pass are what we emit, so the browser
   reads exactly the text that was checked.
"""

from __future__ import annotations

import re
import unicodedata

# Functions that take no URL and load nothing, in any CSS level we know of.
_SAFE_FUNCTIONS = frozenset(
    "rgb rgba hsl hsla hwb lab lch oklab oklch color color-mix device-cmyk "
    "calc min max clamp abs sign round mod rem sin cos tan asin acos atan atan2 pow sqrt hypot log exp "
    "linear-gradient radial-gradient conic-gradient repeating-linear-gradient "
    "repeating-radial-gradient repeating-conic-gradient -webkit-linear-gradient -moz-linear-gradient "
    "-webkit-radial-gradient -moz-radial-gradient "
    "translate translatex translatey translatez translate3d scale scalex scaley scalez scale3d "
    "rotate rotatex rotatey rotatez rotate3d skew skewx skewy matrix matrix3d perspective "
    "blur brightness contrast drop-shadow grayscale hue-rotate invert opacity saturate sepia "
    "cubic-bezier steps linear counter counters inset circle ellipse polygon rect xywh "
    "minmax repeat fit-content".split()
) | {""}  # "" is a bare bracket, as in calc((1px + 2px) * 2)
_FORBIDDEN_WORDS = ("expression", "javascript", "vbscript", "behavior", "binding", "@", "\\", "/*", "*/", "<", ">")
_PROPERTY = re.compile(r"-?[a-z][a-z0-9-]*\Z")
_FUNCTION = re.compile(r"([\w.-]*)\s*\(")
_COMMENT = re.compile(r"/\*.*?(?:\*/|\Z)", re.DOTALL)
# An escape: a backslash and 1-6 hex digits (one white space after them is part
# of it), or a backslash and any other character; a backslash before a newline
# is a line continuation (inside strings) and reads as nothing.
_ESCAPE = re.compile(r"\\(?:([0-9a-fA-F]{1,6})(?:\r\n|[ \t\r\n\f])?|(\r\n|[\r\n\f])|(.))", re.DOTALL)
_MAX_CODE_POINT = 0x10FFFF


def safe_style(value: str) -> str | None:
    """The declarations of `value` that load nothing, normalised; None when none is left."""
    normalised = _normalise(value)
    if normalised is None:
        return None
    kept = [d for d in _declarations(normalised) if _is_safe(d)]
    return "; ".join(kept) or None


def _normalise(value: str) -> str | None:
    """Comments removed and escapes decoded; None if either leaves a trace behind
    (decoding made a new escape or comment, which the browser would read again)."""
    text = _ESCAPE.sub(_decoded, _COMMENT.sub(" ", value.replace("\x00", "\ufffd")))
    if "\\" in text or "/*" in text:
        return None
    return text


def _decoded(match: re.Match[str]) -> str:
    hex_digits, newline, char = match.groups()
    if newline is not None:
        return ""
    if char is not None:
        return char
    code = int(hex_digits, 16)
    if code == 0 or code > _MAX_CODE_POINT or 0xD800 <= code <= 0xDFFF:
        return "\ufffd"
    return chr(code)


def _declarations(text: str) -> list[str]:
    """`text` split at the semicolons outside strings and brackets."""
    parts, start, depth, quote = [], 0, 0, ""
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth = max(0, depth - 1)
        elif char == ";" and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _is_safe(declaration: str) -> bool:
    name, colon, _value = declaration.partition(":")
    if not colon or not _PROPERTY.match(name.strip().lower()):
        return False
    # NFKC so that full-width and other compatibility letters are checked as the
    # letters they look like; lower case because CSS names are case-insensitive.
    folded = unicodedata.normalize("NFKC", declaration).lower()
    if any(word in folded for word in _FORBIDDEN_WORDS):
        return False
    return all(function in _SAFE_FUNCTIONS for function in _FUNCTION.findall(folded))
