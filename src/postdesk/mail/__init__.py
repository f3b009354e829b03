"""Turning raw RFC 5322 bytes into a safe, structured message.

`parse(raw)` never raises and never touches a database or the network.
"""

from postdesk.mail._delivery import DELIVERY_HEAD_BYTES, delivered_to
from postdesk.mail._fingerprint import fingerprint
from postdesk.mail._html import DisplayHTML, for_display, normalize_cid
from postdesk.mail._parse import parse
from postdesk.mail._reply import ReplyParts, split_reply, split_reply_html
from postdesk.mail._types import Address, Attachment, AutoSubmitted, ForwardedMessage, ParsedMessage

__all__ = ["DELIVERY_HEAD_BYTES", "delivered_to", "DisplayHTML", "fingerprint", "for_display", "normalize_cid", "Address", "Attachment", "AutoSubmitted", "ForwardedMessage", "ParsedMessage", "parse", "ReplyParts", "split_reply", "split_reply_html"]
