"""What one `parse()` may spend, nested reads included.

parse() can read parts of a message more than once: a forwarded message is
parsed again for the text of an empty body, the content inside an S/MIME
signature is a message of its own, a base64-encoded message/rfc822 is read
from its decoded bytes.  Each read has its own bounds; this budget bounds them
together, so that one call stays linear in its input however the reads nest.

It lives in a context variable, set by `parse()` for the duration of one call,
rather than in an argument threaded through every step that may read: only
`_tree` (MIME parts), `parse_addresses` (address fields, and the structured
address parser) and
the charset guesses of `_charsets` spend it.  Outside parse() (a HeaderReader used on its own) each call gets a
fresh budget.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from collections import Counter
from dataclasses import dataclass, field

# MIME parts read in one parse(), the message's own tree first: the feed parser
# costs about 0.1 ms a part (a megabyte of empty parts: 50,000 of them, 5 s),
# and each leaf then costs as much again (charset guess, file name, text):
# 10,000 parts took 1.5-1.9 s in the fuzzer.  Real mail stays in the tens.  Past
# this the message is read up to where the part over the limit begins, and kept
# whole (see _parse._tree); a nested read gets what the message left.
MAX_PARTS = 3_000
# Characters of address fields read in one parse() (all of To, Cc, From...): the
# lenient splitter costs about 20 us an address, and one To of 600 KB held
# 14,000 of them (0.3 s).  This is some 3,000 addresses; the rest of a longer
# list is not read (a defect says so), the raw message keeps it.
MAX_ADDRESS_LIST_CHARS = 131_072
# Characters given to the stdlib's structured address parser in one parse().  It
# is asked only when the lenient splitter's answer looks wrong, and costs about
# 0.6 ms an address (20 us a character): 3,700 addresses in eleven broken Cc
# fields took 3.3 s on a loaded machine.  A broken From is a hundred characters.
MAX_STRUCTURED_ADDRESS_CHARS = 8_192
# Charset guesses in one parse() (charset-normalizer, or the plausibility score
# over 14 candidates: about 0.5 ms each, several on a long text).  Past this, an
# undeclared part is read as the message's most frequent guess so far: 3,000
# small parts of undeclared 8-bit text took 0.7 s to guess one by one.
MAX_CHARSET_GUESSES = 100


@dataclass
class ParseBudget:
    parts: int = MAX_PARTS
    address_list_chars: int = MAX_ADDRESS_LIST_CHARS
    structured_address_chars: int = MAX_STRUCTURED_ADDRESS_CHARS
    charset_guesses: int = MAX_CHARSET_GUESSES
    guessed: Counter[str] = field(default_factory=Counter)  # codec -> times guessed

    def likeliest_charset(self) -> str | None:
        """The message's most frequent guess, once the guessing budget is spent."""
        if self.charset_guesses > 0:
            return None
        return self.guessed.most_common(1)[0][0] if self.guessed else "cp1252"

    def guessed_charset(self, codec: str) -> None:
        self.charset_guesses -= 1
        self.guessed[codec] += 1


_CURRENT: ContextVar[ParseBudget | None] = ContextVar("postdesk_parse_budget", default=None)


@contextmanager
def one_parse() -> Iterator[ParseBudget]:
    """A fresh budget for the reads of one parse() call."""
    fresh = ParseBudget()
    token = _CURRENT.set(fresh)
    try:
        yield fresh
    finally:
        _CURRENT.reset(token)


def current() -> ParseBudget:
    """The running parse()'s budget, or a fresh one outside parse()."""
    return _CURRENT.get() or ParseBudget()
