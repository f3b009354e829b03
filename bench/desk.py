#!/usr/bin/env python3
"""The desk under load: queue pages, a request page, search, and a bulk close, timed over a
database of 100,000 requests and 300,000 messages that this script generates.

    .venv/bin/python bench/desk.py                          # SQLite in a temporary data dir
    .venv/bin/python bench/desk.py --requests 10000         # smaller, quicker
    POSTDESK_DATABASE_URL=postgres://postgres@127.0.0.1:5432/pd_bench .venv/bin/python bench/desk.py
    .venv/bin/python bench/desk.py --data-dir /tmp/desk     # keep the data dir; a second run reuses it

The rows go in with bulk inserts, the search index written alongside (desk.search.index),
in transactions of 5,000 requests. The pages are then fetched with Django's test Client,
signed in as a staff member, through the whole middleware stack and template rendering (no
network): each case is run --runs times after two warm-up runs, and p50 / p95 / max are
printed in milliseconds. Goals: a queue page p95 < 150 ms, a search p95 < 300 ms.

PostgreSQL: the database named must exist; it is migrated and filled (use one for the
benchmark only). Exits 0 either way (a benchmark, not a test).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

CHUNK = 5_000
FIRST = ["Jürgen", "Anna", "François", "Zoë", "Mohammed", "Li", "Sofia", "Björn", "Hélène", "Kenji", "Olga", "Pedro",
         "Ingrid", "Tomás", "Aisha", "Lukas", "Chloé", "Ravi", "Emma", "Noah"]
LAST = ["Müller", "Dupont", "Schmidt", "Rossi", "Nakamura", "García", "Kowalski", "Andersson", "Martin", "O'Brien",
        "Weiß", "Lefèvre", "田中", "Ivanova", "Silva", "Novak", "Jensen", "Keller", "Costa", "Meier"]
TOPICS = ["Invoice question", "Cannot log in", "Printer on fire", "Licence renewal", "Refund request", "Delivery late",
          "Password reset", "Bug report", "Feature idea", "Account closed", "Rechnung fehlt", "Problème de facturation",
          "東京の配送について", "Upgrade plan", "Billing address change"]
PHRASE = "the printer on floor two is on fire"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000, help="requests to generate (3 messages each)")
    parser.add_argument("--runs", type=int, default=30, help="timed runs per case")
    parser.add_argument("--data-dir", help="the installation's data dir (default: a temporary one, removed)")
    parser.add_argument("--generate-only", action="store_true", help="fill the database and stop (time it later)")
    args = parser.parse_args()
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="postdesk-bench-desk-")
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    os.environ["POSTDESK_DATA_DIR"] = data_dir
    os.environ.setdefault("POSTDESK_ALLOWED_HOSTS", "testserver,localhost")
    os.environ["DJANGO_SETTINGS_MODULE"] = "postdesk.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    print(f"database: {connection.vendor} ({connection.settings_dict['NAME']})")
    generate(args.requests)
    if args.generate_only:
        return
    results = measure(args.runs)
    report(results)
    if not args.data_dir and connection.vendor == "sqlite":
        import shutil

        shutil.rmtree(data_dir, ignore_errors=True)


# --- the data -------------------------------------------------------------------------


def generate(total: int) -> None:
    from postdesk.models import Request

    have = Request.objects.count()
    if have >= total:
        print(f"{have} requests already there: generating nothing")
        _display_parts()
        _analyze()  # statistics for indexes a newer migration added since the data was made
        return
    started = time.perf_counter()
    world = _world()
    rng = random.Random(15)
    for start in range(have, total, CHUNK):
        _chunk(world, rng, min(CHUNK, total - start))
        print(f"  {start + min(CHUNK, total - start)}/{total} requests, {time.perf_counter() - started:.0f} s", flush=True)
    _spread_dates()
    _analyze()
    print(f"generated {total - have} requests and {3 * (total - have)} messages in {time.perf_counter() - started:.0f} s")


def _world() -> dict:
    from django.contrib.auth.models import User

    from postdesk.models import Blob, Mailbox, Tag
    from postdesk.store import blobs

    staff = [User.objects.get_or_create(username=n, defaults={"first_name": n.title(), "is_staff": True})[0]
             for n in ("bench", "rita", "sam", "tom", "uma")]
    if not staff[0].is_superuser:
        staff[0].is_superuser = True
        staff[0].save()
    mailboxes = [Mailbox.objects.get_or_create(name=n, defaults={"address": f"{n}@desk.example", "protocol": "maildir",
                                                                  "path": "/nonexistent"})[0] for n in ("support", "billing", "sales")]
    tags = [Tag.objects.get_or_create(name=n)[0] for n in ("vip", "billing", "bug", "refund", "urgent-fix", "b2b", "press", "legal")]
    raw = Blob.objects.filter(pk=blobs.put(b"From: bench@example.com\r\n\r\nbench\r\n").pk).get()
    rng = random.Random(7)
    vocabulary = ["licences", "invoice", "account", "password", "delivery", "refund", "upgrade", "rechnung", "lieferung",
                  "facture", "livraison", "problème", "東京", "配送", "請求書"]
    vocabulary += ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 10))) for _ in range(3000)]
    return {"staff": staff, "mailboxes": mailboxes, "tags": tags, "raw": raw, "vocabulary": vocabulary}


def _text(rng: random.Random, vocabulary: list[str]) -> str:
    words = rng.choices(vocabulary, k=rng.randint(40, 120))
    if rng.random() < 0.01:
        words[5:5] = PHRASE.split()
    return "Hello,\n\n" + " ".join(words) + ".\n\nThanks\n"


def _chunk(world: dict, rng: random.Random, count: int) -> None:
    from django.db import transaction

    from postdesk.desk.search.index import Document, write_documents
    from postdesk.desk.search.normalise import index_text
    from postdesk.models import Attachment, Customer, Message, Request
    from postdesk.parsejob import display_of

    statuses = ["new"] * 2 + ["open"] * 3 + ["pending"] * 2 + ["closed"] * 13  # most of a desk's history is closed
    with transaction.atomic():
        people = [(f"c{rng.randrange(10**9)}@{rng.choice(['example.com', 'kunde.de', 'client.fr', 'firma.example'])}",
                   f"{rng.choice(FIRST)} {rng.choice(LAST)}") for _ in range(count // 3 + 1)]
        customers = Customer.objects.bulk_create([Customer(address=a, name=n) for a, n in people], ignore_conflicts=True)
        customers = list(Customer.objects.filter(address__in=[a for a, _ in people]))
        requests = Request.objects.bulk_create([
            Request(subject=f"{rng.choice(TOPICS)} {rng.randrange(10000)}", status=rng.choice(statuses),
                    priority=rng.choice([0, 1, 1, 1, 2, 3]), mailbox=rng.choice(world["mailboxes"]),
                    customer=rng.choice(customers), assignee=rng.choice([None, None, *world["staff"]]))
            for _ in range(count)])
        messages, texts = [], {}
        for req in requests:
            c = req.customer
            for i, (direction, name, address) in enumerate([("in", c.name, c.address), ("out", "Support", req.mailbox.address),
                                                             ("in", c.name, c.address)]):
                text = _text(rng, world["vocabulary"])
                texts.setdefault(req.pk, []).append((name, address, text))
                messages.append(Message(request=req, mailbox=req.mailbox, fingerprint=f"bench-{req.pk}-{i}", raw=world["raw"],
                                        subject=req.subject, sender_address=address, sender_name=name, direction=direction,
                                        to=[{"name": "", "address": req.mailbox.address if direction == "in" else c.address}],
                                        text=text, kind="reply" if direction == "out" else "",
                                        # What processing stores for the request page (parsejob.display_of).
                                        text_parts=display_of(text, None).text_parts if direction == "in" else None))
        Message.objects.bulk_create(messages, batch_size=2000)
        firsts = [m for m in messages[::3] if rng.random() < 0.1]
        Attachment.objects.bulk_create([Attachment(message=m, blob=world["raw"], position=0, filename="file.pdf",
                                                   content_type="application/pdf", size=100) for m in firsts])
        through = Request.tags.through
        tagged = [(req, rng.choice(world["tags"])) for req in requests if rng.random() < 0.2]
        through.objects.bulk_create([through(request=r, tag=t) for r, t in tagged])
        tag_names = {r.pk: t.name for r, t in tagged}
        write_documents([
            Document(req.pk, index_text(f"PD-{req.pk} {req.pk} {req.subject} {req.customer.name} {req.customer.address} "
                                        f"{tag_names.get(req.pk, '')}"),
                     index_text(" ".join(f"{n} {a}" for n, a, _ in texts[req.pk])),
                     index_text(" ".join(m.to[0]["address"] for m in messages[i * 3:i * 3 + 3])),
                     index_text("\n".join(t for _, _, t in texts[req.pk])))
            for i, req in enumerate(requests)])


def _display_parts() -> None:
    """A database generated before the display parts were: theirs, as processing stores
    them (the bench's texts quote nothing, so nothing is folded), or each request page's
    first view would compute them."""
    from postdesk.models import Message

    Message.objects.filter(direction="in", text_parts__isnull=True).update(text_parts={})


def _spread_dates() -> None:
    """Two years of history, newest last, as a real desk's (bulk inserts all say "now")."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("UPDATE postdesk_request SET created_at = now() - (((SELECT max(id) FROM postdesk_request) - id) "
                           "* interval '10 minutes'), updated_at = now() - (((SELECT max(id) FROM postdesk_request) - id) "
                           "* interval '7 minutes')")
        else:
            cursor.execute("UPDATE postdesk_request SET created_at = datetime('now', '-' || (((SELECT max(id) FROM "
                           "postdesk_request) - id) * 10) || ' minutes'), updated_at = datetime('now', '-' || (((SELECT "
                           "max(id) FROM postdesk_request) - id) * 7) || ' minutes')")


def _analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


# --- the timings ----------------------------------------------------------------------


def measure(runs: int) -> list[tuple[str, str, list[float]]]:
    from django.contrib.auth.models import User
    from django.test import Client

    from postdesk.models import Request

    client = Client()
    client.force_login(User.objects.get(username="bench"))
    rng = random.Random(3)
    top = Request.objects.order_by("-pk").values_list("pk", flat=True)[:5000]
    numbers = list(top)

    def page(url, **params):
        def get():
            response = client.get(url, params)
            assert response.status_code == 200, (url, params, response.status_code)
        return get

    cases = [
        ("queue", "General", page("/queue/general/")),
        ("queue", "All", page("/queue/all/")),
        ("queue", "All, page 40", page("/queue/all/", page=40)),
        ("queue", "All status=closed, sorted", page("/queue/all/", status="closed", sort="-priority")),
        ("queue", "Mailbox billing", page("/queue/mailbox/billing/")),
        ("request", "a request page", lambda: page(f"/requests/{rng.choice(numbers)}/")()),
        ("search", "a word: licences", page("/queue/all/", q="licences")),
        ("search", "a rare word", page("/queue/all/", q="livraison rechnung")),
        ("search", "a name: Jürgen", page("/queue/all/", q="Jürgen")),
        ("search", "a phrase", page("/queue/all/", q=f'"{PHRASE}"')),
        ("search", "from:jurgen", page("/queue/all/", q="from:jurgen")),
        ("search", "from: and status:closed", page("/queue/all/", q="from:müller status:closed")),
        ("search", "a number [PD-n]", lambda: page("/queue/all/", q=f"[PD-{rng.choice(numbers)}]")()),
        ("search", "empty in General, n in All", page("/queue/general/", q="licences status:closed")),
        ("bulk", "close 100 requests", _bulk_close(client)),
    ]
    results = []
    for kind, name, run in cases:
        for _ in range(2):
            run()
        times, cpu = [], []
        for _ in range(runs if kind != "bulk" else max(5, runs // 3)):
            started, started_cpu = time.perf_counter(), time.process_time()
            run()
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        results.append((kind, name, times, cpu))
        print(f"  {name}: p50 {statistics.median(times):.0f} ms", flush=True)
    return results


def _bulk_close(client):
    """Close 100 open requests: through the queues' bulk endpoint when it exists, else
    desk.status.close in a loop (one transaction, one history line each), as it would."""
    from django.db import transaction
    from django.urls import NoReverseMatch, reverse

    from postdesk.desk import status
    from postdesk.models import Request

    try:
        url = reverse("postdesk_web:bulk")
    except NoReverseMatch:
        url = None

    def run():
        ids = list(Request.objects.exclude(status="closed").order_by("pk").values_list("pk", flat=True)[:100])
        if url:
            response = client.post(url, {"action": "close", "requests": ids})
            assert response.status_code in (200, 302), response.status_code
            return
        with transaction.atomic():
            for req in Request.objects.select_for_update().filter(pk__in=ids):
                status.record(req, status.close(req))
                req.save(update_fields=["status", "snooze_until", "updated_at"])

    run.how = "the bulk endpoint" if url else "desk.status.close in a loop (no bulk endpoint on this branch)"
    return run


def report(results) -> None:
    goals = {"queue": 150, "search": 300}
    print(f"\n{'case':<30} {'runs':>4} {'p50':>7} {'p95':>7} {'max':>7} {'cpu p50':>8} {'cpu p95':>8}   (ms)")
    for kind, name, times, cpu in results:
        p95 = _p95(times)
        goal = goals.get(kind)
        verdict = "" if goal is None else ("  ok" if p95 < goal else f"  FAIL (goal p95 < {goal})")
        print(f"{name:<30} {len(times):>4} {statistics.median(times):>7.1f} {p95:>7.1f} {max(times):>7.1f} "
              f"{statistics.median(cpu):>8.1f} {_p95(cpu):>8.1f}{verdict}")
    print("cpu: this process's CPU time (the page's Python, and SQLite's queries, which run in it; not PostgreSQL's):\n"
          "on a machine shared with other work the wall-clock figures include waiting for a CPU, these do not.")


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


if __name__ == "__main__":
    main()
