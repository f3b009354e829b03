"""Reading an attachment's bytes, re-made from the raw message when the file is gone or torn.

Attachment files are written without a file-system sync (they are derived
data); the raw message they came from is synced.  So every read checks the
sha256, and on a mismatch parses the raw message again and rewrites the file.
"""

from __future__ import annotations

from postdesk.mail import parse
from postdesk.models import Attachment
from postdesk.store import blobs


class AttachmentLost(Exception):
    """Neither the file nor the raw message yields these bytes (should not happen)."""


def read_attachment(attachment: Attachment) -> bytes:
    data = blobs.read_verified(attachment.blob_id)
    if data is not None:
        return data
    raw = blobs.read(attachment.message.raw_id)
    for part in parse(raw).attachments:
        if part.sha256 == attachment.blob_id:
            blobs.path_for(part.sha256).unlink(missing_ok=True)  # a torn file of the right size would be kept
            blobs.write_files([(part.sha256, part.data)])  # durable now: it was lost once
            return part.data
    raise AttachmentLost(f"attachment {attachment.pk} ({attachment.filename}) cannot be re-made from its message")
