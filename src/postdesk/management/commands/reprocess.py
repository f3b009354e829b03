"""postdesk reprocess ID... | --all: run quarantined messages through processing again."""

from __future__ import annotations

from postdesk import process
from postdesk.management.base import USAGE, PostdeskCommand
from postdesk.models import Intake
from postdesk.pipeline import MailboxReport


class Command(PostdeskCommand):
    help = "Re-run quarantined messages (by ID, or --all) through processing; the size limit does not apply."

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", type=int, metavar="ID")
        parser.add_argument("--all", action="store_true", help="every quarantined message")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        if options["all"]:
            ids = list(Intake.objects.filter(status=Intake.Status.QUARANTINED).values_list("pk", flat=True))
        elif options["ids"]:
            ids = options["ids"]
            missing = set(ids) - set(Intake.objects.filter(pk__in=ids).values_list("pk", flat=True))
            if missing:
                raise self.fail(f"no intake {', '.join(map(str, sorted(missing)))}", USAGE)
        else:
            raise self.fail("name the IDs to re-run, or --all (see `postdesk quarantine list`)", USAGE)
        process.requeue(ids)
        report = MailboxReport("reprocess")
        for outcome in process.iter_process(ids=ids):
            report.count(outcome)
        if options["json"]:
            return self.emit_json(report.as_dict())
        self.stdout.write(f"re-ran {len(ids)}: {report.outcome_line()}")
