"""postdesk reprocess ID... | --all: run quarantined messages through processing again."""

from __future__ import annotations

from postdesk import quarantine
from postdesk.management.base import USAGE, PostdeskCommand


class Command(PostdeskCommand):
    help = ("Re-run quarantined messages (by ID, or --all) through processing; the size limit does not apply; "
            "--parse-timeout gives them longer to read.  A message left on the server as too large is downloaded "
            "again by the mailbox's next pass.")

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", type=int, metavar="ID")
        parser.add_argument("--all", action="store_true", help="every quarantined message")
        parser.add_argument("--parse-timeout", type=int, metavar="SECONDS",
                            help="time limit to read each message, instead of POSTDESK_PARSE_TIMEOUT "
                                 "(for one that took too long to read)")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        if options["all"]:
            ids = list(quarantine.held().values_list("pk", flat=True))
        elif options["ids"]:
            ids = options["ids"]
            missing = quarantine.missing(ids)
            if missing:
                raise self.fail(f"no intake {', '.join(map(str, missing))}", USAGE)
        else:
            raise self.fail("name the IDs to re-run, or --all (see `postdesk quarantine list`)", USAGE)
        limit = options["parse_timeout"]
        if limit is not None and limit <= 0:
            raise self.fail("--parse-timeout must be a number of seconds above 0", USAGE)
        rerun = quarantine.rerun(ids, parse_timeout=limit)
        report = rerun.report
        released = [o for o in rerun.outcomes.values() if isinstance(o, quarantine.Released)]
        if options["json"]:
            return self.emit_json({**report.as_dict(), "released": len(released)})
        line = f"re-ran {len(ids)}: {report.outcome_line()}"
        if released:
            line += f"; {len(released)} left on the server: the next pass downloads them again (if within the size limit)"
        self.stdout.write(line)
