"""parse(raw) -> ParsedMessage: the one entry point of the parser.

Steps, each a small function below:
  1. bytes -> email.message.Message (the stdlib's parser; see _TREE_POLICY)
  2. walk the MIME tree into leaf parts (depth-capped)
  3. choose the text body, the HTML body and the attachments (RFC 8621 4.1.4)
  4. decode: attachments (TNEF, forwarded messages, uuencode unpacked), text, HTML
  5. headers, auto-submitted classification
Every step records what it repaired in `defects`; no exception leaves `parse`.
"""

from __future__ import annotations

import binascii
import email
import email.errors
import email.parser
import hashlib
import html as html_module
import logging
import re
from dataclasses import dataclass, field
from email import policy
from email.message import Message

from postdesk.mail import _budget, _html
from postdesk.mail._budget import MAX_PARTS, one_parse
from postdesk.mail._auto import classify
from postdesk.mail._charsets import decode_body, decode_header_bytes
from postdesk.mail._encoded import filename_param
from postdesk.mail._filenames import safe_filename
from postdesk.mail._header_block import repair_header_block
from postdesk.mail._headers import MAX_HEADER_CHARS, HeaderReader, decode_words
from postdesk.mail._params import MimeFeedParser, MimeMessage
from postdesk.mail._payload import (
    decode_transfer_encoding,
    decoded_payload,
    looks_quoted_printable,
    transfer_encoding,
)
from postdesk.mail._sender import choose_sender
from postdesk.mail._types import Attachment, ForwardedMessage, ParsedMessage
from postdesk.mail._uuencode import extract_uu_blocks

log = logging.getLogger("postdesk.mail")

MAX_DEPTH = 200  # MIME nesting we follow; deeper subtrees are kept whole as attachments
MAX_FORWARD_DEPTH = 3  # forwarded messages whose text we read to fill an empty body
# HTML the sanitizer and HTML-to-text read from one part; the rest is kept as an
# attachment.  Their cost grows with the size (a 5 MB table: seconds).
MAX_HTML_CHARS = 1_000_000
# Tags the same: the linear pre-pass of _html_bounds costs about 8 us a tag in
# Python, and 100,000 tags in 400 KB (`<dl><dd>` repeated) took over 1 s.
MAX_HTML_TAGS = 30_000



class _Verbatim(policy.Compat32):
    """Header fields written as they came (their folds kept, nothing re-encoded):
    compat32's own folding goes through email.header.Header, quadratic in a
    long value (a To of 30,000 encoded words: minutes)."""

    def fold(self, name, value):
        return name + ": " + self.linesep.join(str(value).splitlines()) + self.linesep

    def fold_binary(self, name, value):
        return self.fold(name, value).encode("ascii", "surrogateescape")


_SERIALIZE = _Verbatim(linesep="\r\n")
# The MIME tree is built with compat32 and the header fields we show are decoded
# with policy.default's header parser (_headers.py).  Why not policy.default for
# the tree: it re-parses a header on every access, about 0.2 ms per Content-Type,
# which made a 10,000-part message take 12 s; the tree it builds is the same.
# Its Message class reads MIME parameters in linear time (_params.py).
_TREE_POLICY = policy.compat32.clone(message_factory=MimeMessage)
_CID_REF = re.compile(r"""cid:([^"'\s>)]+)""", re.I)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.I)
_MSGID_LINE = re.compile(r"^message-id:\s*<([^<>\s]+)>", re.I | re.M)
_INLINE_MEDIA = ("image/", "audio/", "video/")
# C0 controls but tab, newline and form feed; DEL.  They only ever garble a screen.
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f\r]")


@dataclass
class _Leaf:
    """A leaf MIME part and what body selection needs to know about it."""

    part: Message
    content_type: str
    disposition: str | None
    has_name: bool
    index: int
    opaque: bool = False  # a subtree beyond MAX_DEPTH, kept whole
    decoded: str | None = None  # the text, once decoded (an HTML part is read for HTML and text)


@dataclass
class _Tree:
    leaves: list[_Leaf] = field(default_factory=list)
    text_body: list[_Leaf] = field(default_factory=list)
    html_body: list[_Leaf] = field(default_factory=list)
    is_encrypted: bool = False


def parse(raw: bytes) -> ParsedMessage:
    """Parse any byte string into a ParsedMessage; never raises."""
    defects: list[str] = []
    try:
        if not isinstance(raw, bytes):
            raw = bytes(raw)
        with one_parse():
            result = _parse(raw, defects, 0)
        result.defects = _counted(result.defects)
        return result
    except RecursionError:
        defects.append("MIME structure nested too deeply to follow; body kept as text")
    except Exception as exc:  # the last line of defence: bad mail must never stop intake
        log.debug("parse() fell back to text", exc_info=True)
        defects.append(f"parser failure ({type(exc).__name__}: {str(exc)[:120]}); body kept as text")
    result = _fallback(raw if isinstance(raw, bytes) else b"", defects)
    result.defects = _counted(result.defects)
    return result


def _counted(defects: list[str]) -> list[str]:
    """Each defect once, in order, with how often it occurred when more than once:
    a hostile message can repeat one flaw thousands of times."""
    counts: dict[str, int] = {}
    for defect in defects:
        counts[defect] = counts.get(defect, 0) + 1
    return [f"{defect} ({n} times)" if n > 1 else defect for defect, n in counts.items()]


def _parse(raw: bytes, defects: list[str], forward_depth: int) -> ParsedMessage:
    msg = _message_from_bytes(raw, defects)
    read_up_to = getattr(msg, "read_up_to", None)
    tree = _Tree()
    root_type = _content_type(msg, defects)
    if msg.is_multipart() and root_type.startswith("multipart/"):
        subtype = root_type.split("/", 1)[1]
        tree.is_encrypted = subtype == "encrypted"
        _walk(msg, subtype, subtype == "alternative", tree, defects, depth=0)
    else:
        _walk(msg, "mixed", False, tree, defects, depth=0)
    charset_hint = _first_declared_charset(tree.leaves)
    headers = HeaderReader(msg, charset_hint, defects)

    body_ids = {id(leaf) for leaf in tree.text_body + tree.html_body if leaf.content_type in ("text/plain", "text/html")}
    attachments, location_map = _attachments(tree, body_ids, defects)
    attachments.extend(_oversized_html(tree, defects))
    if read_up_to is not None:
        defects.append(f"more than {MAX_PARTS} MIME parts: read up to byte {read_up_to}, the whole message kept as original.eml")
        attachments.append(_attachment(raw, "original.eml", "message/rfc822", None, None))
    html = _html_body(tree.html_body, location_map, defects)
    text, uu_files = _text_body(tree.text_body, defects)
    for name, data in uu_files:
        attachments.append(_attachment(data, safe_filename(name, "application/octet-stream"), "application/octet-stream", None, None))
    text, html = _unwrap_opaque_signed(attachments, text, html, defects, forward_depth)
    _mark_inline(attachments, html)

    sender = choose_sender(headers, defects)
    result = ParsedMessage(
        message_id=_first(headers.message_ids("message-id")),
        in_reply_to=_first(headers.message_ids("in-reply-to")),
        references=headers.message_ids("references"),
        subject=headers.decoded("subject"),
        date=headers.date(),
        from_=sender.address,
        from_source=sender.source,
        reply_to=headers.addresses("reply-to"),
        to=headers.addresses("to"),
        cc=headers.addresses("cc"),
        text=text,
        html=html,
        attachments=attachments,
        defects=defects,
        forwarded=[a.forwarded for a in attachments if a.forwarded is not None],
    )
    result.auto_submitted = classify(headers, _content_type_header(msg))
    if result.auto_submitted and result.auto_submitted.kind == "bounce":
        original = _bounced_message_id(tree, text)
        if original:
            result.auto_submitted = type(result.auto_submitted)("bounce", result.auto_submitted.reason, original)
    _flag_security(tree, text, defects)
    if not result.text.strip():
        result.text = _text_of_last_resort(result, raw, forward_depth)
    return result


_PARAM_WITHOUT_SEMICOLON = re.compile(rb"(?im)^(content-type:[ \t]*multipart/[a-z0-9.+-]+)([ \t]*\r?\n[ \t]+|[ \t]+)(boundary[ \t]*=)")


_BOUNDARY_DEFECTS = (email.errors.StartBoundaryNotFoundDefect, email.errors.NoBoundaryInMultipartDefect)
_FOLD_BYTES = re.compile(rb"\r?\n(?=[ \t])")
_MAX_FOLDED_BOUNDARIES = 16


def _folded_boundaries(msg: Message) -> list[bytes]:
    """The raw Content-Type values whose boundary has a fold in it, for parts
    whose boundary was not found."""
    found: list[bytes] = []
    for part in msg.walk():
        if not any(isinstance(d, _BOUNDARY_DEFECTS) for d in part.defects):
            continue
        boundary = part.get_boundary() or ""
        if "\n" not in boundary:
            continue
        for name, value in part.raw_items():
            if name.lower() == "content-type" and "\n" in value:
                data = str(value).encode("ascii", "surrogateescape")
                if data not in found:
                    found.append(data)
        if len(found) >= _MAX_FOLDED_BOUNDARIES:
            break
    return found


_FEED_SLICE = 1 << 16


def _tree(raw: bytes, tree_policy) -> Message:
    """The stdlib parser, fed in slices: message_from_bytes would first decode the
    whole message into one string (2 bytes a character once any byte is 8-bit)
    and split all of it into lines at once; slices keep a 50 MB message near 3x.
    It reads the parts this parse() has left (_budget.py), then stops
    (`read_up_to`); _parse keeps the whole message."""
    parser = MimeFeedParser(policy=tree_policy, max_parts=max(0, _budget.current().parts))
    view = memoryview(raw)
    for start in range(0, len(raw), _FEED_SLICE):
        parser.feed(bytes(view[start : start + _FEED_SLICE]))
        if parser.stopped_at is not None:
            break
    msg = parser.close()
    msg.parts_read = parser.parts_read
    _budget.current().parts -= parser.parts_read
    if parser.stopped_at is not None:
        msg.read_up_to = parser.stopped_at
    return msg


def _read_again(raw: bytes, discarded: Message) -> Message:
    """The tree of repaired bytes, in place of `discarded` (whose parts are given back)."""
    _budget.current().parts += getattr(discarded, "parts_read", 0)
    return _tree(raw, _TREE_POLICY)


def _message_from_bytes(raw: bytes, defects: list[str]) -> Message:
    msg = _tree(raw, _TREE_POLICY)
    folded = _folded_boundaries(msg)
    if folded:
        # A boundary folded inside its quotes ("foo<CRLF> bar") means "foo bar"
        # once unfolded (RFC 5322).  Unfolding those header values in the raw
        # bytes and parsing again is linear; policy.default, which unfolds every
        # header, took seconds on a message of thousands of parts.
        for value in folded:
            raw = raw.replace(value, _FOLD_BYTES.sub(b"", value))
        defects.append("Content-Type: boundary folded inside quotes unfolded")
        msg = _read_again(raw, msg)
    repairs = []
    broken_head = any(isinstance(d, email.errors.MissingHeaderBodySeparatorDefect) for d in msg.defects)
    if any(isinstance(d, email.errors.NoBoundaryInMultipartDefect) for d in msg.defects):
        # "multipart/mixed<fold>boundary=..." without the ';': common enough to repair.
        repairs.append((_PARAM_WITHOUT_SEMICOLON, rb"\1;\2\3", "Content-Type: missing ';' before boundary repaired"))
    if not repairs and not broken_head:
        return msg
    ends = [end for end in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if end >= 0]
    head = raw[: min(ends) if ends else len(raw)]
    # A line in the header section that is neither a field nor folded ("Subject :",
    # a wrapped base64 value, a stray line): mended as tolerant clients do.
    fixed = repair_header_block(head, defects) if broken_head else head
    for pattern, replacement, defect in repairs:
        fixed, count = pattern.subn(replacement, fixed)
        if count:
            defects.append(defect)
    if fixed == head:
        return msg
    return _read_again(fixed + raw[len(head) :], msg)


# --- 2. the MIME tree -------------------------------------------------------


def _walk(part: Message, parent_type: str, in_alternative: bool, tree: _Tree, defects: list[str], depth: int) -> None:
    """RFC 8621 section 4.1.4 (parseStructure), over the children of one multipart."""
    children = part.get_payload() if part.is_multipart() else [part]
    if not isinstance(children, list):
        children = [part]
    text_len, html_len = len(tree.text_body), len(tree.html_body)
    text_on, html_on = True, True  # JMAP sets the lists to null; we keep flags
    for i, child in enumerate(children):
        if not isinstance(child, Message):
            continue
        ctype = _content_type(child, defects)
        if child.is_multipart() and ctype.startswith("multipart/") and depth < MAX_DEPTH:
            subtype = ctype.split("/", 1)[1]
            if subtype == "encrypted":
                tree.is_encrypted = True
            _walk(child, subtype, in_alternative or subtype == "alternative", tree, defects, depth + 1)
            continue
        opaque = ctype.startswith("multipart/") and child.is_multipart()  # only past MAX_DEPTH
        leaf = _leaf(child, ctype, len(tree.leaves), defects, opaque=opaque)
        if leaf.opaque:
            defects.append(f"MIME nesting deeper than {MAX_DEPTH}; the rest kept as one attachment")
        tree.leaves.append(leaf)
        is_inline_media = ctype.startswith(_INLINE_MEDIA)
        is_body = (
            not leaf.opaque
            and leaf.disposition != "attachment"
            and (ctype in ("text/plain", "text/html") or is_inline_media)
            and (i == 0 or (parent_type != "related" and (is_inline_media or not leaf.has_name)))
        )
        if not is_body:
            continue
        if parent_type == "alternative":
            if ctype == "text/plain":
                tree.text_body.append(leaf)
            elif ctype == "text/html":
                tree.html_body.append(leaf)
            continue
        if in_alternative:
            if ctype == "text/plain":
                html_on = False
            if ctype == "text/html":
                text_on = False
        if text_on:
            tree.text_body.append(leaf)
        if html_on:
            tree.html_body.append(leaf)
    if parent_type == "alternative":
        # One alternative only had an HTML part, or only a text part: it serves for both.
        if len(tree.text_body) == text_len and len(tree.html_body) != html_len:
            tree.text_body.extend(tree.html_body[html_len:])
        if len(tree.html_body) == html_len and len(tree.text_body) != text_len:
            tree.html_body.extend(tree.text_body[text_len:])


def _content_type(part: Message, defects: list[str]) -> str:
    try:
        ctype = part.get_content_type().lower()
    except Exception:
        defects.append("part: unreadable Content-Type; read as text/plain")
        return "text/plain"
    finally:
        _take_header_defects(part, defects)
    if ctype.startswith("multipart/") and not part.is_multipart():
        defects.append(f"part: {ctype} without usable boundary; read as text")
        return "text/plain"
    if ctype == "application/ms-tnef" or ctype == "application/vnd.ms-tnef":
        return "application/ms-tnef"
    return ctype


def _leaf(part: Message, ctype: str, index: int, defects: list[str], opaque: bool) -> _Leaf:
    try:
        disposition = part.get_content_disposition()
    except Exception:
        disposition = None
    has_name = _raw_filename(part, defects) is not None
    _take_header_defects(part, defects)
    return _Leaf(part, ctype, disposition, has_name, index, opaque)


def _take_header_defects(part: Message, defects: list[str]) -> None:
    """What MimeMessage cut from over-long parameter lists (_params.py), once each."""
    found = getattr(part, "header_defects", None)
    if found:
        defects.extend(found)
        found.clear()


def _raw_filename(part: Message, defects: list[str]) -> str | None:
    try:
        name = filename_param(part, defects)  # RFC 2231 charsets through the WHATWG table
    except Exception:
        defects.append("part: unreadable file name")
        return None
    if name is None:
        return None
    name = str(name)
    if re.search("[\udc80-\udcff]", name):
        name = decode_header_bytes(name.encode("ascii", "surrogateescape"), part.get_content_charset())
    if "=?" in name:
        if len(name) > MAX_HEADER_CHARS:
            # RFC 2047 decoding is the stdlib's header parser: slow on a huge
            # value, and a file name is cut to 200 bytes anyway.
            defects.append(f"filename: {len(name)} characters long; cut to {MAX_HEADER_CHARS}")
            name = name[:MAX_HEADER_CHARS]
        name = decode_words(name, defects, "filename")
    return name


def _first_declared_charset(leaves: list[_Leaf]) -> str | None:
    for leaf in leaves:
        if leaf.content_type.startswith("text/"):
            charset = leaf.part.get_content_charset()
            if charset and charset.lower() not in ("us-ascii", "utf-8", "ascii"):
                return charset
    return None


# --- 4. attachments -----------------------------------------------------------


def _attachments(tree: _Tree, body_ids: set[int], defects: list[str]) -> tuple[list[Attachment], dict[str, str]]:
    """Every leaf that is not shown as a text or HTML body, in message order."""
    attachments: list[Attachment] = []
    location_map: dict[str, str] = {}
    for leaf in tree.leaves:
        if id(leaf) in body_ids:
            continue
        try:
            attachments.extend(_leaf_attachments(leaf, defects))
        except Exception as exc:  # one broken part must not cost the others
            defects.append(f"part {leaf.index}: could not be read ({type(exc).__name__}); skipped")
            continue
        main = attachments[-1] if attachments else None
        location = _content_location(leaf.part)
        if location and main is not None:
            if not main.content_id:
                main.content_id = f"loc{leaf.index}.{main.sha256[:12]}@postdesk.invalid"
            main.content_location = location
            location_map[location] = main.content_id
            location_map.setdefault(location.rsplit("/", 1)[-1], main.content_id)
    # Keep TNEF contents after their container but the container itself last in its group.
    return attachments, location_map


def _leaf_attachments(leaf: _Leaf, defects: list[str]) -> list[Attachment]:
    part = leaf.part
    content_id = _content_id(part)
    name = _raw_filename(part, defects)
    if leaf.opaque:
        data = _serialize(part, defects)
        return [_attachment(data, safe_filename(name, "message/rfc822", "nested-part"), "message/rfc822", content_id, None)]
    inner = part.get_payload()
    ctype = leaf.content_type
    is_forward = ctype in ("message/rfc822", "message/global")
    if isinstance(inner, list):  # a message/* part the stdlib parsed as a message
        inner_msg = inner[0] if inner and isinstance(inner[0], Message) else None
        # message/delivery-status is parsed into one block per recipient: keep them all.
        data = b"".join(_serialize(block, defects) for block in inner if isinstance(block, Message))
        cte = transfer_encoding(part)
        if cte in ("base64", "quoted-printable"):
            # Not allowed for message/rfc822, but sent: the "message" is the encoded text.
            data = decode_transfer_encoding(data, cte, defects)
            inner_msg = _tree(data, _TREE_POLICY)
        if not is_forward:  # message/partial, message/external-body: keep, don't pretend
            return [_attachment(data, safe_filename(name, ctype), ctype, content_id, None)]
        forwarded = _headline(inner_msg, defects) if inner_msg is not None else None
        stem = forwarded.subject if forwarded and forwarded.subject else "forwarded-message"
        return [_attachment(data, safe_filename(name, ctype, stem), ctype, content_id, forwarded)]
    data = decoded_payload(part, defects)
    forwarded = None
    if is_forward:  # wrongly transfer-encoded: parse the bytes
        forwarded = _headline(_tree(data, _TREE_POLICY), defects)
    fallback = forwarded.subject if forwarded else None
    main = _attachment(data, safe_filename(name, ctype, fallback), ctype, content_id, forwarded)
    if ctype == "application/ms-tnef" or (name or "").lower() == "winmail.dat":
        return _tnef_attachments(data, defects) + [main]
    return [main]


def _attachment(data: bytes, filename: str, ctype: str, content_id: str | None, forwarded: ForwardedMessage | None) -> Attachment:
    return Attachment(
        filename=filename,
        content_type=ctype,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        content_id=content_id,
        inline=False,
        data=data,
        forwarded=forwarded,
    )


def _content_id(part: Message) -> str | None:
    value = part.get("content-id", None) if "content-id" in part else None
    if value is None:
        return None
    value = " ".join(str(value).split()).strip().strip("<>").strip()
    return value or None


def _content_location(part: Message) -> str | None:
    if "content-location" not in part:
        return None
    value = "".join(str(part.get("content-location", "")).split()).strip('"')
    return value or None


def _serialize(msg: Message, defects: list[str]) -> bytes:
    # Written with compat32 and the header fields verbatim, as policy.default
    # with refold_source="none" writes them; not with policy.default itself,
    # which parses every Content-Type again while writing (about 1 ms a part:
    # 4,000 forwarded parts took 17 s; one long Content-Type, seconds).
    try:
        return msg.as_bytes(policy=_SERIALIZE)
    except Exception:
        try:
            return msg.as_bytes(policy=policy.compat32)
        except Exception:
            defects.append("forwarded message could not be re-serialized; kept as text")
            return msg.as_string(policy=policy.compat32).encode("utf-8", "surrogateescape")


def _headline(msg: Message, defects: list[str]) -> ForwardedMessage:
    headers = HeaderReader(msg, None, [])
    return ForwardedMessage(
        subject=headers.decoded("subject"),
        from_=_first(headers.addresses("from")),
        date=headers.date(),
        message_id=_first(headers.message_ids("message-id")),
    )


def _tnef_attachments(data: bytes, defects: list[str]) -> list[Attachment]:
    """Outlook's winmail.dat: the files inside it (its body is read by _tnef_body)."""
    import mimetypes

    from tnefparse import TNEF

    data = _tnef_prefix(data, defects)
    try:
        tnef = TNEF(data, do_checksum=False)
    except Exception as exc:
        defects.append(f"winmail.dat could not be unpacked ({type(exc).__name__}); kept as is")
        return []
    found: list[Attachment] = []
    for item in tnef.attachments:
        try:
            name = item.long_filename() or item.name
        except Exception:
            name = getattr(item, "name", None)
        if isinstance(name, bytes):
            name = name.decode("cp1252", "replace")
        name = (name or "").strip("\x00")
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        payload = item.data if isinstance(item.data, bytes) else bytes(item.data or b"")
        found.append(_attachment(payload, safe_filename(name, ctype), ctype, None, None))
    body_text = _tnef_body_text(tnef)
    if body_text:
        found.append(_attachment(body_text.encode("utf-8"), "winmail-body.txt", "text/plain", None, None))
    return found


# tnefparse copies the rest of the data for every attribute it reads: quadratic
# in the number of attributes (4 MB of zeros: 90 s).  It reads the attributes
# up to this many bytes copied in all (real winmail.dat files: a few dozen
# attributes); the file itself stays an attachment whole.
MAX_TNEF_COPIED = 1 << 30


def _tnef_prefix(data: bytes, defects: list[str]) -> bytes:
    """The leading attributes of a TNEF stream that tnefparse can read in time."""
    offset, copied, size = 6, 0, len(data)
    while offset + 12 < size:  # tnefparse's own walk (TNEF.MIN_OBJ_SIZE, TNEFObject.length)
        remaining = size - offset
        copied += remaining
        if copied > MAX_TNEF_COPIED:
            defects.append(f"winmail.dat: too many parts to unpack all; read up to byte {offset}")
            return data[:offset]
        offset += min(remaining, int.from_bytes(data[offset + 5 : offset + 9], "little") + 11)
    return data


def _tnef_body_text(tnef) -> str | None:
    body = tnef.body or tnef.htmlbody
    if body is None:
        return _rtf_text(tnef)
    if isinstance(body, bytes):
        body = decode_body(body.rstrip(b"\x00"), None, [], "winmail.dat body")
    body = body.strip("\x00").strip()
    if tnef.body is None:
        body = _html.to_text(body)
    return body or None


def _rtf_text(tnef) -> str | None:
    """Outlook's compressed RTF body, as plain text (striprtf)."""
    try:
        rtf = tnef.rtfbody
        if not rtf:
            return None
        from striprtf.striprtf import rtf_to_text

        rtf_str = rtf.decode("cp1252", "replace") if isinstance(rtf, bytes) else rtf
        return rtf_to_text(rtf_str, errors="ignore").strip() or None
    except Exception:  # a body we cannot read: the attachments still count
        return None


# --- 4. text and HTML ------------------------------------------------------


def _decoded_text(leaf: _Leaf, defects: list[str]) -> str:
    if leaf.decoded is None:
        leaf.decoded = _decode_text(leaf, defects)
    return leaf.decoded


def _oversized_html(tree: _Tree, defects: list[str]) -> list[Attachment]:
    """HTML bodies longer than MAX_HTML_CHARS or with more than MAX_HTML_TAGS
    tags: what the parsers read is cut at a tag there (their cost grows with
    it), and the whole body is kept as an attachment, so nothing is lost."""
    kept = []
    seen: set[int] = set()
    for leaf in tree.html_body + tree.text_body:
        if leaf.content_type != "text/html" or id(leaf) in seen:
            continue
        seen.add(id(leaf))
        html = _decoded_text(leaf, defects)
        cut = _html_cut(html)
        if cut is None:
            continue
        leaf.decoded = html[:cut]
        defects.append(
            f"part {leaf.index}: HTML of {len(html)} characters, {html.count('<')} tags; "
            f"the first {len(leaf.decoded)} characters shown, the whole kept as body.html"
        )
        kept.append(_attachment(html.encode("utf-8", "surrogatepass"), "body.html", "text/html", None, None))
    return kept


def _html_cut(html: str) -> int | None:
    """Where the HTML the parsers read ends (at a tag), or None for all of it."""
    end = None
    if len(html) > MAX_HTML_CHARS:
        cut = html.rfind("<", MAX_HTML_CHARS // 2, MAX_HTML_CHARS)
        end = cut if cut > 0 else MAX_HTML_CHARS
    if html.count("<", 0, end) <= MAX_HTML_TAGS:
        return end
    pos = -1
    for _ in range(MAX_HTML_TAGS + 1):  # the start of the first tag past the limit
        pos = html.find("<", pos + 1)
    return pos


def _decode_text(leaf: _Leaf, defects: list[str]) -> str:
    data = decoded_payload(leaf.part, defects)
    if transfer_encoding(leaf.part) in ("7bit", "8bit", "") and looks_quoted_printable(data):
        data = binascii.a2b_qp(data)
        defects.append(f"part {leaf.index}: undeclared quoted-printable decoded")
    charset = leaf.part.get_content_charset()
    if charset is None and leaf.content_type == "text/html":
        meta = _META_CHARSET.search(data[:4096])
        charset = meta.group(1).decode("ascii") if meta else None
    text = decode_body(data, charset, defects, f"part {leaf.index}")
    return _CONTROL_CHARS.sub("", text.replace("\r\n", "\n"))


def _text_body(leaves: list[_Leaf], defects: list[str]) -> tuple[str, list[tuple[str, bytes]]]:
    pieces: list[str] = []
    uu_files: list[tuple[str, bytes]] = []
    budget = _html.LayoutBudget()  # one for the message: many small HTML parts add up
    for leaf in leaves:
        if leaf.content_type == "text/plain":
            text, found = extract_uu_blocks(_decoded_text(leaf, defects))
            uu_files.extend(found)
            pieces.append(text)
        elif leaf.content_type == "text/html":
            pieces.append(_html.to_text(_decoded_text(leaf, defects), defects, budget))
    return "\n".join(p.strip("\n") for p in pieces if p.strip()), uu_files


def _html_body(leaves: list[_Leaf], location_map: dict[str, str], defects: list[str]) -> str | None:
    if not any(leaf.content_type == "text/html" for leaf in leaves):
        return None
    pieces: list[str] = []
    for leaf in leaves:
        if leaf.content_type == "text/html":
            pieces.append(_decoded_text(leaf, defects))
        elif leaf.content_type == "text/plain":
            pieces.append('<div style="white-space: pre-wrap">' + html_module.escape(_decoded_text(leaf, defects)) + "</div>")
        else:
            # An image between HTML parts (Apple Mail): show it where it stood.
            cid = _content_id(leaf.part)
            if cid:
                pieces.append(f'<img src="cid:{html_module.escape(cid)}">')
    return _html.sanitize("\n".join(pieces), location_map, defects)


def _mark_inline(attachments: list[Attachment], html: str | None) -> None:
    if not html or "cid:" not in html.lower():
        return
    from urllib.parse import unquote

    referenced = {unquote(ref).lower() for ref in _CID_REF.findall(html)}
    for attachment in attachments:
        if attachment.content_id and attachment.content_id.lower() in referenced:
            attachment.inline = True


# --- 5. what the headers and structure tell ----------------------------------


def _content_type_header(msg: Message) -> str:
    for name, value in msg.raw_items():
        if name.lower() == "content-type":
            return " ".join(str(value).split())
    return ""


def _bounced_message_id(tree: _Tree, text: str) -> str | None:
    for leaf in tree.leaves:
        if leaf.content_type in ("message/rfc822", "message/global", "message/rfc822-headers", "text/rfc822-headers"):
            inner = leaf.part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                found = HeaderReader(inner[0], None, []).message_ids("message-id")
            else:
                headers_text = decoded_payload(leaf.part, []).decode("utf-8", "replace")
                found = _MSGID_LINE.findall(headers_text)
            if found:
                return found[0]
    match = _MSGID_LINE.search(text)
    return match.group(1) if match else None


_PKCS7_TYPES = ("application/pkcs7-mime", "application/x-pkcs7-mime")


def _unwrap_opaque_signed(
    attachments: list[Attachment], text: str, html: str | None, defects: list[str], depth: int
) -> tuple[str, str | None]:
    """S/MIME opaque signing wraps the whole message in a PKCS#7 blob: the content
    inside is the message.  The blob stays an attachment (it carries the signature)."""
    for attachment in list(attachments):
        if attachment.content_type not in _PKCS7_TYPES or depth >= MAX_FORWARD_DEPTH:
            continue
        content = _signed_content(attachment.data)
        if content is None:
            continue
        inner = _parse(content, defects, depth + 1)
        text = text if text.strip() else inner.text
        html = html if html is not None else inner.html
        position = attachments.index(attachment)
        attachments[position:position] = inner.attachments
    return text, html


def _signed_content(data: bytes) -> bytes | None:
    """The content of a PKCS#7 signed-data blob, or None (encrypted, or not PKCS#7)."""
    from asn1crypto import cms

    try:
        info = cms.ContentInfo.load(data)
        if info["content_type"].native != "signed_data":
            return None
        content = info["content"]["encap_content_info"]["content"].native
    except Exception:  # not DER we can read: stays an opaque attachment
        return None
    return content if isinstance(content, bytes) and content else None


def _flag_security(tree: _Tree, text: str, defects: list[str]) -> None:
    for leaf in tree.leaves:
        if leaf.content_type in _PKCS7_TYPES:
            smime_type = (leaf.part.get_param("smime-type") or "").lower()
            if smime_type != "signed-data" and _signed_content(decoded_payload(leaf.part, [])) is None:
                tree.is_encrypted = True
    if tree.is_encrypted or "-----BEGIN PGP MESSAGE-----" in text:
        defects.append("encrypted message: kept as an attachment, content not readable here")


_SCAFFOLDING = re.compile(r"^(--\S*|content-[a-z-]+:.*|[ \t]+\S+=.*)$", re.I)


def body_of(raw: bytes) -> bytes:
    crlf = raw.find(b"\r\n\r\n")
    lf = raw.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return raw[crlf + 4 :].strip()
    return raw[lf + 2 :].strip() if lf >= 0 else b""


def _scaffolding_removed(text: str) -> str:
    lines = [line for line in text.splitlines() if not _SCAFFOLDING.match(line.strip())]
    return "\n".join(line for line in lines).strip()


def _text_of_last_resort(result: ParsedMessage, raw: bytes, forward_depth: int) -> str:
    """Text for a message whose body is empty: a forwarded message's, or winmail.dat's body."""
    for attachment in result.attachments:
        if attachment.filename == "winmail-body.txt" and attachment.content_type == "text/plain":
            return attachment.data.decode("utf-8", "replace")
    if result.html:
        # Sanitized HTML can be longer than its source (nh3 adds rel="..." to links): capped again.
        return _html.to_text(result.html[:MAX_HTML_CHARS])
    if not result.attachments and body_of(raw):
        # The structure yielded nothing (boundaries the stdlib could not follow):
        # show the body's lines that are not MIME scaffolding rather than nothing.
        result.defects.append("MIME structure unreadable; body shown as text")
        return _scaffolding_removed(decode_body(body_of(raw), None, [], "body"))
    for attachment in result.attachments:
        if attachment.forwarded is not None and forward_depth < MAX_FORWARD_DEPTH:
            inner = _parse(attachment.data, [], forward_depth + 1)
            fwd = attachment.forwarded
            sender = f"{fwd.from_.name} <{fwd.from_.address}>".strip() if fwd.from_ else ""
            return f"---------- Forwarded message ----------\nFrom: {sender}\nSubject: {fwd.subject}\n\n{inner.text}".strip()
    return ""


def _fallback(raw: bytes, defects: list[str]) -> ParsedMessage:
    """When the MIME structure cannot be followed: headers, and the body as text."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = raw.partition(b"\n\n")
    result = ParsedMessage(defects=defects)
    try:
        msg = email.message_from_bytes(head + b"\n\n", policy=_TREE_POLICY)
        headers = HeaderReader(msg, None, defects)
        result.subject = headers.decoded("subject")
        result.message_id = _first(headers.message_ids("message-id"))
        result.in_reply_to = _first(headers.message_ids("in-reply-to"))
        result.references = headers.message_ids("references")
        result.date = headers.date()
        sender = choose_sender(headers, defects)
        result.from_, result.from_source = sender.address, sender.source
        result.to = headers.addresses("to")
        result.cc = headers.addresses("cc")
        result.reply_to = headers.addresses("reply-to")
    except Exception:
        defects.append("headers could not be read")
    result.text = decode_body(body[:1_000_000], None, defects, "body")
    result.attachments = [_attachment(raw, "original.eml", "message/rfc822", None, None)]
    return result


def _first(items: list) -> object | None:
    return items[0] if items else None


