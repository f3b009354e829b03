"""The one normaliser of search: the same Python turns stored text into index words and a
search's words into query words, on SQLite and on PostgreSQL alike, so both find the same.

Language-neutral, no stemming (a stemmer is one language's; a desk gets mail in many):
  - NFKC, then casefold: "Ｆｕｌｌ" is "full", "Straße" is "strasse".
  - Accents folded: "Jürgen", "jürgen" and "Jurgen" are the word "jurgen"; "café" is "cafe".
    A French or Spanish agent often types without accents, and a customer writes with them.
  - German umlauts also as their transliteration: "Jürgen" is indexed as "juergen" too, and a
    search for "Jürgen" looks for "jurgen" or "juergen" (a Swiss keyboard or an old mail
    client writes "Juergen"). The variants are appended after the text, so phrases still
    match the folded words in order.
  - CJK (Han, kana, Hangul) has no spaces between words: each run is cut into overlapping
    bigrams ("東京都" -> "東京 京都"), the usual language-neutral way; a search for a run is
    the phrase of its bigrams, a single character is a prefix of bigrams.
The result is words of letters and digits separated by spaces, which FTS5's unicode61 and
PostgreSQL's "simple" configuration both split exactly there.
"""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"[^\W_]+")
# Letters NFKD does not decompose but a reader takes for a plain one.
_PLAIN = str.maketrans({"ø": "o", "đ": "d", "ł": "l", "æ": "ae", "œ": "oe", "þ": "th", "ð": "d", "ı": "i"})
_GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue"})
_CJK_RANGES = (
    (0x3040, 0x30FF),  # hiragana, katakana
    (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FA1F),  # Han
    (0x1100, 0x11FF), (0x3130, 0x318F), (0xAC00, 0xD7AF),  # Hangul
)


def is_cjk(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _CJK_RANGES)


def fold(word: str) -> str:
    """A casefolded word without its accents."""
    decomposed = unicodedata.normalize("NFKD", word.translate(_PLAIN))
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def german(word: str) -> str | None:
    """The transliteration of a casefolded word with umlauts ("jürgen" -> "juergen"), else None."""
    if word.isascii() or not ("ä" in word or "ö" in word or "ü" in word):
        return None
    return fold(word.translate(_GERMAN))


def _split_cjk(word: str) -> list[tuple[str, bool]]:
    """A word cut into runs: (run, is CJK)."""
    runs: list[tuple[str, bool]] = []
    for char in word:
        cjk = is_cjk(char)
        if runs and runs[-1][1] == cjk:
            runs[-1] = (runs[-1][0] + char, cjk)
        else:
            runs.append((char, cjk))
    return runs


def bigrams(run: str) -> list[str]:
    return [run] if len(run) < 2 else [run[i:i + 2] for i in range(len(run) - 1)]


def words(text: str) -> list[tuple[str, str]]:
    """(folded index word, the casefolded original) for each word of `text`, in order."""
    text = text or ""
    if text.isascii():  # most mail: nothing to fold, no CJK (and ten times faster)
        return [(w, w) for w in _WORD.findall(text.lower())]
    out: list[tuple[str, str]] = []
    for match in _WORD.finditer(unicodedata.normalize("NFKC", text).casefold()):
        if match.group().isascii():
            out.append((match.group(), match.group()))
            continue
        for run, cjk in _split_cjk(match.group()):
            if cjk:
                out.extend((gram, gram) for gram in bigrams(run))
            else:
                out.append((fold(run), run))
    return [(w, o) for w, o in out if w]


def tokens(text: str) -> list[str]:
    return [word for word, _ in words(text)]


def index_text(text: str) -> str:
    """What the index holds for `text`: its folded words in order, then the German variants."""
    if (text or "").isascii():
        return " ".join(_WORD.findall(text.lower())) if text else ""
    pairs = words(text)
    variants = dict.fromkeys(v for _, original in pairs if (v := german(original)))
    return " ".join([word for word, _ in pairs] + list(variants))
