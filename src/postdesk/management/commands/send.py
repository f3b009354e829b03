"""postdesk send: deliver what the outbox holds now (the worker does this continuously)."""

from __future__ import annotations

from postdesk.management.base import PostdeskCommand


class Command(PostdeskCommand):
    help = "Send the queued outgoing mail once: acknowledgements, staff replies and notifications (the worker does this by itself)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        from postdesk.outbound import sender

        results = []
        # Retries are due later, not now: the loop ends when nothing is due.
        while batch := sender.send_due():
            results += batch
        if options["json"]:
            return self.emit_json([r.__dict__ for r in results])
        counts = {s: sum(1 for r in results if r.status == s) for s in ("sent", "retry", "failed")}
        self.stdout.write(f"sent {counts['sent']}, to retry {counts['retry']}, failed {counts['failed']}")
        for r in results:
            if r.status != "sent":
                self.stdout.write(f"  outgoing {r.outgoing_id}: {r.status}: {r.detail}")
