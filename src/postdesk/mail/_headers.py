"""Header fields: decoded, unfolded and typed, from the raw header lines.

We read the raw (surrogate-escaped) values ourselves rather than through the
policy's header objects, because undeclared 8-bit bytes must be decoded with a
charset guess first; the policy would turn them into U+FFFD or lone surrogates.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from email import policy, utils
from email.message import Message

from postdesk.mail._budget import MAX_ADDRESS_LIST_CHARS
from postdesk.mail._budget import current as current_budget
from postdesk.mail._charsets import decode_header_bytes
from postdesk.mail._encoded import decode_encoded_words
from postdesk.mail._types import Address

# The structured header parser is slow on pathological input; no real header
# needs more than this to say what it means.
MAX_HEADER_CHARS = 16384
# Address fields of one name read when a header repeats one (To, Cc, ...).
MAX_REPEATED_FIELDS = 100

_FOLD = re.compile(r"\r?\n[ \t]*")
_MSGID = re.compile(r"<\s*([^<>\s]+?)\s*>")
_HAS_SURROGATE = re.compile("[\udc80-\udcff]")


class HeaderReader:
    """Decoded access to one message's header fields, recording repairs in `defects`."""

    def __init__(self, msg: Message, charset_hint: str | None, defects: list[str]):
        self._raw: dict[str, list[str]] = {}
        for name, value in msg.raw_items():
            self._raw.setdefault(name.lower(), []).append(value if isinstance(value, str) else str(value))
        self._hint = charset_hint
        self._defects = defects

    def raw(self, name: str) -> str | None:
        values = self._raw.get(name.lower())
        return values[0] if values else None

    def has(self, name: str) -> bool:
        return name.lower() in self._raw

    def text(self, name: str, cap: bool = True) -> str | None:
        """The header's value as unicode, unfolded, 8-bit bytes decoded; RFC 2047 not yet applied."""
        value = self.raw(name)
        if value is None:
            return None
        if _HAS_SURROGATE.search(value):
            value = decode_header_bytes(value.encode("ascii", "surrogateescape"), self._hint)
            self._defects.append(f"{name}: undeclared 8-bit characters decoded")
        value = _FOLD.sub(" ", value).strip()
        if cap and len(value) > MAX_HEADER_CHARS:
            self._defects.append(f"{name}: {len(value)} characters long; cut to {MAX_HEADER_CHARS}")
            value = value[:MAX_HEADER_CHARS]
        return value

    def decoded(self, name: str) -> str:
        """An unstructured header (Subject) with RFC 2047 encoded words decoded."""
        value = self.text(name)
        if not value:
            return ""
        return decode_words(value, self._defects, name)

    def addresses(self, name: str) -> list[Address]:
        found: list[Address] = []
        for value in self._all_text(name):
            found.extend(parse_addresses(value, self._defects, name))
        return found

    def message_ids(self, name: str) -> list[str]:
        value = self.text(name)
        if not value:
            return []
        ids = _MSGID.findall(value)
        if not ids and "@" in value:
            # Some mailers leave out the angle brackets.
            ids = [token.strip("<>") for token in value.split() if "@" in token]
        return ids

    def date(self, name: str = "date") -> datetime | None:
        value = self.text(name)
        if not value:
            return None
        try:
            parsed = utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            self._defects.append(f"{name}: cannot read {value[:60]!r}")
            return None
        if parsed.tzinfo is None:
            # "-0000" means "no zone known"; UTC is the honest reading.
            parsed = parsed.replace(tzinfo=timezone.utc)
        try:
            # Year 9999 in a zone west of UTC is year 10000 in UTC: no database stores that.
            parsed.astimezone(timezone.utc)
        except OverflowError:
            self._defects.append(f"{name}: {value[:60]!r} is out of range")
            return None
        return parsed

    def all_text(self, name: str) -> list[str]:
        """Every occurrence of the header, each as `text()` gives it (uncapped)."""
        return self._all_text(name)

    def _all_text(self, name: str) -> list[str]:
        # Uncapped: cutting an address list could cut an address in two.
        count = len(self._raw.get(name.lower(), []))
        if count <= 1:
            value = self.text(name, cap=False)
            return [value] if value else []
        saved = self._raw[name.lower()]
        if count > MAX_REPEATED_FIELDS:
            # Each field is parsed on its own (about 0.5 ms): 19,000 To fields took 13 s.
            self._defects.append(f"{name}: {count} fields; the first {MAX_REPEATED_FIELDS} read")
        out = []
        for value in saved[:MAX_REPEATED_FIELDS]:
            self._raw[name.lower()] = [value]
            text = self.text(name, cap=False)
            if text:
                out.append(text)
        self._raw[name.lower()] = saved
        return out


def decode_words(value: str, defects: list[str], where: str) -> str:
    """RFC 2047 encoded words to text; tolerant of the common mistakes."""
    if "=?" not in value:
        return value
    # Our own decoder, not the policy's: charset labels through the WHATWG table,
    # and bytes that do not fit their label read by detection (_encoded.py).
    return decode_encoded_words(value, defects, where)


def parse_addresses(value: str, defects: list[str], where: str) -> list[Address]:
    """Addresses with decoded names.  The lenient stdlib splitter first: it is
    linear and about twenty times faster than the structured parser, which we
    ask only when the splitter's answer looks wrong."""
    value = _within_budget(value, defects, where)
    if len(value) > MAX_HEADER_CHARS:
        defects.append(f"{where}: {len(value)} characters long; read leniently")
        return [_address(name[:1000], addr[:1000]) for name, addr in utils.getaddresses([value]) if name or addr]
    pairs = [(name, addr) for name, addr in utils.getaddresses([value]) if name or addr]
    if _plausible(pairs, value):
        return [_address(decode_words(name, defects, where) if "=?" in name else name, addr) for name, addr in pairs]
    if not _structured_allowed(value):
        defects.append(f"{where}: malformed address list; read leniently (structured reading spent for this message)")
        return [_address(decode_words(name, defects, where), addr) for name, addr in pairs]
    try:
        header = policy.default.header_factory(where, value)
        found = [_address(a.display_name, a.addr_spec) for a in header.addresses]
        if found or not value.strip():
            return found
    except Exception:  # the structured parser has raised on odd input before
        pass
    defects.append(f"{where}: malformed address list")
    return [_address(decode_words(name, defects, where), addr) for name, addr in pairs]


def _within_budget(value: str, defects: list[str], where: str) -> str:
    """`value`, cut at a comma where this parse()'s address characters run out."""
    budget = current_budget()
    if len(value) <= budget.address_list_chars:
        budget.address_list_chars -= len(value)
        return value
    cut = max(0, value.rfind(",", 0, budget.address_list_chars))
    budget.address_list_chars = 0
    defects.append(f"{where}: addresses past {MAX_ADDRESS_LIST_CHARS} characters a message not read")
    return value[:cut]


def _structured_allowed(value: str) -> bool:
    """Whether this parse()'s budget for the structured parser covers `value` (spent if so)."""
    budget = current_budget()
    if len(value) > budget.structured_address_chars:
        return False
    budget.structured_address_chars -= len(value)
    return True


def _plausible(pairs: list[tuple[str, str]], value: str) -> bool:
    if not pairs:
        return "@" not in value
    return all(addr.count("@") == 1 and " " not in addr and "<" not in addr for _, addr in pairs)


def _address(name: str, addr: str) -> Address:
    name, addr = _clean_name(name), _clean_addr(addr)
    if addr and "@" not in addr and not name:
        # "From: Whomever": a name without an address, not an address.
        return Address(name=_clean_name(addr), address="")
    return Address(name=name, address=addr)


def _clean_name(name: str) -> str:
    return " ".join(name.split()).strip('"').strip()


def _clean_addr(addr: str) -> str:
    addr = addr.strip().strip("<>")
    return "" if addr in ("", "@") else addr
