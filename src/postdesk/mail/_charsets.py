"""Bytes to text, for bodies and for raw 8-bit headers.

Order of trust: the declared charset; then a guess (charset-normalizer for
longer text, a small plausibility score for short header strings, where
detectors are unreliable); windows-1252 for anything labelled ISO-8859-1 or
ASCII (mailers mean cp1252 when they say latin-1); UTF-8 with replacement
characters as the last resort, so a body is never lost to a decoding error.
"""

from __future__ import annotations

import unicodedata

from charset_normalizer import from_bytes

from postdesk.mail._budget import current as current_budget
from postdesk.mail._labels import codec_for

# What to try, in order, for undeclared 8-bit header bytes that are not UTF-8.
_HEADER_CANDIDATES = (
    "cp1252", "cp1251", "koi8-r", "iso-8859-2", "cp1250", "iso-8859-7", "cp1253",
    "cp932", "cp949", "gb18030", "big5hkscs", "iso-8859-8", "cp1254", "cp1257",
)


def python_codec(label: str | None) -> str | None:
    """The Python codec for a MIME charset label, or None when unknown."""
    return codec_for(label)  # the WHATWG label table; None for uu, zlib, undefined...


def decode_body(data: bytes, declared: str | None, defects: list[str], where: str = "body") -> str:
    """Decode a text part's bytes; never raises, records every guess."""
    if data.isascii():
        # Fast path for most mail: ASCII decodes the same in every charset we accept,
        # except UTF-7 and the ISO-2022 family, which are themselves ASCII-only.
        codec = python_codec(declared)
        if codec in (None, "cp1252", "utf-8", "ascii") or not _is_ascii_encoding(codec):
            return data.decode("ascii")
    codec = python_codec(declared)
    if declared and codec is None:
        defects.append(f"{where}: unknown charset {declared!r}; guessed")
    if codec:
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            defects.append(f"{where}: bytes are not valid {declared}; guessed the charset")
    elif not declared:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            defects.append(f"{where}: no charset declared; guessed")
    return _guess(data, defects, where)


def _is_ascii_encoding(codec: str) -> bool:
    """Codecs whose encoded form is 7-bit and must still be decoded (ISO-2022, UTF-7)."""
    return codec.startswith("iso2022") or codec in ("utf-7", "hz")


def _guess(data: bytes, defects: list[str], where: str) -> str:
    try:
        text = data.decode("utf-8")
        defects.append(f"{where}: decoded as utf-8")
        return text
    except UnicodeDecodeError:
        pass
    budget = current_budget()
    likeliest = budget.likeliest_charset()
    if likeliest is not None:
        defects.append(f"{where}: decoded as {likeliest}, the message's likeliest charset (no more guesses)")
        return data.decode(likeliest, errors="replace")
    sample = data[:65536]
    if len(sample) >= 64:
        best = from_bytes(sample).best()
        if best is not None and best.encoding:
            try:
                text = data.decode(best.encoding)
                defects.append(f"{where}: decoded as {best.encoding}")
                budget.guessed_charset(best.encoding)
                return text
            except (UnicodeDecodeError, LookupError):
                pass
    guessed = guess_short(data)
    if guessed is not None:
        defects.append(f"{where}: decoded as {guessed[1]}")
        budget.guessed_charset(guessed[1])
        return guessed[0]
    defects.append(f"{where}: undecodable bytes replaced")
    return data.decode("utf-8", errors="replace")


def decode_header_bytes(data: bytes, hint: str | None) -> str:
    """Undeclared 8-bit header bytes: UTF-8, else the body's charset, else the likeliest."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    codec = python_codec(hint)
    if codec and codec not in ("utf-8", "ascii"):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            pass
    budget = current_budget()
    likeliest = budget.likeliest_charset()
    if likeliest is not None:
        return data.decode(likeliest, errors="replace")
    guessed = guess_short(data)
    if guessed is not None:
        budget.guessed_charset(guessed[1])
    return guessed[0] if guessed else data.decode("cp1252", errors="replace")


# The plausibility score is pure Python, about 2 us a character: it reads this
# much of a long text (a body the detector gave up on), the decoding is of all.
_SCORED_CHARS = 8192


def guess_short(data: bytes) -> tuple[str, str] | None:
    """Decode a short string with the candidate whose result reads most like text.

    Detectors need hundreds of bytes; a header has a dozen.  Decoding with each
    candidate and scoring letters against symbols and odd case changes tells
    KOI8-R from windows-1251 and Latin-2 from Latin-1 on a single word.
    """
    best: tuple[float, str, str] | None = None
    for codec in _HEADER_CANDIDATES:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        score = _plausibility(text[:_SCORED_CHARS])
        if best is None or score > best[0]:
            best = (score, text, codec)
    return (best[1], best[2]) if best else None


_FAMILY = {"HIRAGANA": "HAN", "KATAKANA": "HAN", "CJK": "HAN", "IDEOGRAPHIC": "HAN"}


def _plausibility(text: str) -> float:
    score = 0.0
    families: dict[str, int] = {}
    for i, ch in enumerate(text):
        if ch.isascii():
            continue
        cat = unicodedata.category(ch)
        name = unicodedata.name(ch, "UNKNOWN")
        if not cat.startswith("L"):
            if cat not in ("Pd", "Pi", "Pf", "Ps", "Pe", "Sc", "Zs"):  # dashes, quotes, €: neutral
                score -= 2
            continue
        first = name.split(" ")[0]
        if first == "HALFWIDTH":
            score -= 1  # half-width katakana: how Chinese bytes read as Shift_JIS look
            continue
        family = _FAMILY.get(first, first)
        families[family] = families.get(family, 0) + 1
        prev = text[i - 1] if i else ""
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if family == "LATIN":
            # Latin languages put accented letters between plain ones ("Jürgen");
            # a run of accented letters only ("Ïðèâåò") is Cyrillic read as cp1252.
            score += 1 if (prev.isascii() and prev.isalpha()) or (nxt.isascii() and nxt.isalpha()) else 0.25
        elif (prev.isascii() and prev.isalpha()) or (nxt.isascii() and nxt.isalpha()):
            score -= 1  # Cyrillic, Greek or CJK letters do not run into ASCII ones ("Јуdј", "J黵gen")
        elif prev.isalpha() or nxt.isalpha():
            # A two-byte character is as much evidence as two one-byte letters.
            score += 2 if family in ("HAN", "HANGUL") else 1
        # "рТЙЧЕФ": an upper-case letter right after a lower-case one is how
        # a Cyrillic text decoded with the wrong Cyrillic charset looks.
        if cat == "Lu" and prev.isalpha() and prev.islower():
            score -= 1.5
    if len(families) > 1:
        score -= 2 * (sum(families.values()) - max(families.values()))
    return score
