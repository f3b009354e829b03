"""postdesk process: turn stored, not yet processed messages into requests."""

from __future__ import annotations

from postdesk import process
from postdesk.management.base import PostdeskCommand
from postdesk.pipeline import MailboxReport


class Command(PostdeskCommand):
    help = "Process every stored message not yet processed (after `fetch --intake-only`, or a crash)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        report = MailboxReport("process")
        for outcome in process.iter_process():
            report.count(outcome)
        if options["json"]:
            return self.emit_json(report.as_dict())
        self.stdout.write(f"processed: {report.outcome_line()}")
