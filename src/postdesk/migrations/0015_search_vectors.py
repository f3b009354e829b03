"""PostgreSQL's search index gets a vector of its own for from: and to: (desk.search.index:
weights in one vector made every from: re-read each candidate's document). The table is
built again and filled for the requests already there. SQLite's FTS5 table is unchanged."""

from django.db import migrations

from postdesk.desk.search import index

BATCH = 500


def rebuild(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    index.drop_schema(schema_editor)
    index.create_schema(schema_editor)
    Request, Message = apps.get_model("postdesk", "Request"), apps.get_model("postdesk", "Message")
    ids = list(Request.objects.using(schema_editor.connection.alias).order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), BATCH):
        index.index_requests(ids[start:start + BATCH], models=(Request, Message))


# Going back: the table of 0013 (one weighted vector), empty; `postdesk search reindex` of
# the older code fills it.
OLD_TABLE = (f"DROP TABLE IF EXISTS {index.TABLE}; "
             f"CREATE TABLE {index.TABLE} (request_id bigint PRIMARY KEY, document tsvector NOT NULL); "
             f"CREATE INDEX {index.TABLE}_document ON {index.TABLE} USING gin (document)")


def back(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(OLD_TABLE)


class Migration(migrations.Migration):
    dependencies = [("postdesk", "0014_nav_counts")]
    operations = [migrations.RunPython(rebuild, back)]
