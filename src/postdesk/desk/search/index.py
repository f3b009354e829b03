"""The full-text index: one document per request, written in the caller's transaction.

A request's document has four columns, so that from: and to: look only where they mean:
    head        the number ("PD-3 3"), subject, customer's name and address, tags
    sender      each message's sender name and address (a note's: its author)
    recipients  each message's To and Cc names and addresses
    body        each message's subject and text (notes included: all readers are staff)
SQLite: an FTS5 table postdesk_search (rowid = request id, tokenizer unicode61).
PostgreSQL: postdesk_search(request_id, document, sender, recipients), three tsvectors each
with its GIN index: `document` all four columns (a plain search), `sender` and `recipients`
their own (from: and to:). Their own vectors rather than weights in one: a weight (or a
phrase) makes PostgreSQL re-read every candidate's whole document from TOAST to check it,
400 ms for a common name at 100,000 requests (bench/desk.py), where an index alone answers
in 20. Both databases hold normalise.index_text of the text, never the raw text.

Writing a request's document replaces it, so indexing twice leaves one entry.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db import connection
from django.db.models.functions import Substr

from postdesk import tags
from postdesk.desk.search import normalise
from postdesk.models import Message, Request

TABLE = "postdesk_search"
MESSAGE_TEXT_LIMIT = 100_000  # characters of a message's text that are indexed
# A request's body in the index, all messages together; PostgreSQL's tsvector is at most 1 MB.
BODY_LIMIT = 300_000
COLUMNS = ("head", "sender", "recipients", "body")
# PostgreSQL: the tsvector a search in each column reads ("document": all of them).
VECTORS = {"sender": "sender", "recipients": "recipients", None: "document"}


@dataclass(frozen=True)
class Document:
    request_id: int
    head: str
    sender: str
    recipients: str
    body: str


def index_requests(request_ids, models=(Request, Message)) -> int:
    """(Re)write the documents of these requests; the number written. `models`: the
    migration passes its historical Request and Message."""
    ids = sorted({int(i) for i in request_ids if i is not None})
    if not ids:
        return 0
    documents = build(ids, *models)
    write_documents(documents)
    _delete([i for i in ids if i not in {d.request_id for d in documents}])
    return len(documents)


def index_customer(customer_id: int) -> int:
    """A customer's name changed: every request of theirs."""
    return index_requests(Request.objects.filter(customer_id=customer_id).values_list("pk", flat=True))


def build(ids: list[int], Request=Request, Message=Message) -> list[Document]:  # noqa: N803
    requests = Request.objects.filter(pk__in=ids).select_related("customer").prefetch_related("tags")
    messages = defaultdict(list)
    rows = (Message.objects.filter(request_id__in=ids).order_by("request_id", "created_at", "id")
            .annotate(start=Substr("text", 1, MESSAGE_TEXT_LIMIT))
            .values_list("request_id", "subject", "sender_name", "sender_address", "to", "cc", "start"))
    for request_id, *fields in rows:
        messages[request_id].append(fields)
    return [_document(r, messages[r.pk]) for r in requests]


def _document(req, messages: list) -> Document:
    customer = req.customer
    head = [tags.label(req.pk), str(req.pk), req.subject,
            customer.name if customer else "", customer.address if customer else "",
            *(t.name for t in req.tags.all())]
    sender, recipients, body, size = [], [], [], 0
    for subject, sender_name, sender_address, to, cc, text in messages:
        sender += [sender_name, sender_address]
        recipients += [f"{p.get('name', '')} {p.get('address', '')}" for p in [*(to or []), *(cc or [])] if isinstance(p, dict)]
        if size < BODY_LIMIT:
            part = f"{subject if subject != req.subject else ''}\n{(text or '')[:BODY_LIMIT - size]}"
            body.append(part)
            size += len(part)
    return Document(req.pk, *(normalise.index_text("\n".join(part for part in column if part))
                              for column in (head, sender, recipients, body)))


def write_documents(documents: list[Document]) -> None:
    if not documents:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            document = " || ".join(["to_tsvector('simple', %s)"] * len(COLUMNS))
            cursor.executemany(
                f"INSERT INTO {TABLE} (request_id, document, sender, recipients) "
                f"VALUES (%s, {document}, to_tsvector('simple', %s), to_tsvector('simple', %s)) "
                "ON CONFLICT (request_id) DO UPDATE SET document = EXCLUDED.document, sender = EXCLUDED.sender, "
                "recipients = EXCLUDED.recipients",
                [(d.request_id, d.head, d.sender, d.recipients, d.body, d.sender, d.recipients) for d in documents])
        else:
            cursor.executemany(f"DELETE FROM {TABLE} WHERE rowid = %s", [(d.request_id,) for d in documents])
            cursor.executemany(f"INSERT INTO {TABLE} (rowid, head, sender, recipients, body) VALUES (%s, %s, %s, %s, %s)",
                               [(d.request_id, d.head, d.sender, d.recipients, d.body) for d in documents])


def _delete(ids: list[int]) -> None:
    if ids:
        with connection.cursor() as cursor:
            key = "request_id" if connection.vendor == "postgresql" else "rowid"
            cursor.executemany(f"DELETE FROM {TABLE} WHERE {key} = %s", [(i,) for i in ids])


def indexed_ids(after: int, upto: int) -> list[int]:
    """The requests in (after, upto] that have a document."""
    key = "request_id" if connection.vendor == "postgresql" else "rowid"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {key} FROM {TABLE} WHERE {key} > %s AND {key} <= %s", [after, upto])
        return [row[0] for row in cursor.fetchall()]


# --- the schema (migration 0013_search) -----------------------------------------------

SQLITE_CREATE = (f"CREATE VIRTUAL TABLE IF NOT EXISTS {TABLE} USING fts5("
                 "head, sender, recipients, body, tokenize = 'unicode61 remove_diacritics 0')")
POSTGRES_CREATE = (
    # No foreign key to postdesk_request: Django empties its own tables with TRUNCATE (flush,
    # the tests), which PostgreSQL refuses on a table another one references. A document
    # whose request is gone matches nothing (searches join requests), and
    # `postdesk search reindex` drops it.
    f"CREATE TABLE IF NOT EXISTS {TABLE} (request_id bigint PRIMARY KEY, document tsvector NOT NULL, "
    "sender tsvector NOT NULL, recipients tsvector NOT NULL)",
    # A phrase is checked against each candidate's stored document: lz4 reads it back
    # about twice as fast as the default pglz (bench/desk.py, a phrase: 77 -> 45 ms).
    # A server built without lz4 keeps pglz.
    f"DO $$ BEGIN ALTER TABLE {TABLE} ALTER COLUMN document SET COMPRESSION lz4; "
    "EXCEPTION WHEN others THEN NULL; END $$",
    *(f"CREATE INDEX IF NOT EXISTS {TABLE}_{column} ON {TABLE} USING gin ({column})"
      for column in ("document", "sender", "recipients")),
)


def create_schema(schema_editor) -> None:
    statements = POSTGRES_CREATE if schema_editor.connection.vendor == "postgresql" else (SQLITE_CREATE,)
    for statement in statements:
        schema_editor.execute(statement)


def drop_schema(schema_editor) -> None:
    schema_editor.execute(f"DROP TABLE IF EXISTS {TABLE}")


def drop_orphans(after: int, upto: int | None) -> None:
    """Documents in (after, upto] whose request is gone (SQLite has no cascade into FTS5)."""
    key = "request_id" if connection.vendor == "postgresql" else "rowid"
    bound, params = (f" AND {key} <= %s", [after, upto]) if upto is not None else ("", [after])
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE {key} > %s{bound} "
                       f"AND {key} NOT IN (SELECT id FROM postdesk_request WHERE id > %s{bound.replace(key, 'id')})",
                       params + params)
