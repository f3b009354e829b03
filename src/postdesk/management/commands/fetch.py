"""postdesk fetch: one pass over the enabled mailboxes."""

from __future__ import annotations

import sys

from postdesk.management.base import USAGE, PostdeskCommand
from postdesk.models import Mailbox
from postdesk.pipeline import LOCAL_KINDS, fetch_all


class Command(PostdeskCommand):
    help = "Fetch every enabled mailbox once: import new mail into requests, then exit."

    def add_arguments(self, parser):
        parser.add_argument("--mailbox", action="append", metavar="NAME", help="only this mailbox (repeatable)")
        parser.add_argument("--json", action="store_true", help="print one JSON report per mailbox")
        parser.add_argument(
            "--intake-only", action="store_true", help="store and acknowledge only; process later (`postdesk process`)"
        )

    def handle(self, *args, **options):
        names = options["mailbox"]
        if names:
            missing = sorted(set(names) - set(Mailbox.objects.filter(name__in=names).values_list("name", flat=True)))
            if missing:
                raise self.fail(f"no mailbox named {', '.join(missing)} (see `postdesk mailbox list`)", USAGE)
        progress = _progress if sys.stderr.isatty() and not options["json"] else None
        reports = fetch_all(names, progress, process_now=not options["intake_only"])
        if options["json"]:
            self.emit_json([r.as_dict() for r in reports])
        else:
            self._print(reports)
        # A server's failure is reported on its line (the worker retries it; exit 0, as
        # for cron).  A failure on our side (the disk, the database) fails the command, but
        # only now: every other mailbox was fetched first.
        ours = [r for r in reports if r.error_kind in LOCAL_KINDS]
        if ours:
            raise self.fail("; ".join(f"{r.mailbox}: {r.error_kind}: {r.error}" for r in ours))

    def _print(self, reports) -> None:
        if not reports:
            self.stdout.write("no enabled mailboxes; add one with `postdesk mailbox add`")
        for r in reports:
            if r.busy:
                self.stdout.write(f"{r.mailbox}: skipped: {r.busy}")
                continue
            line = f"{r.mailbox}: fetched {r.fetched}, {r.outcome_line()}"
            if r.error:
                line += f"; ERROR ({r.error_kind}): {r.error}"
            self.stdout.write(line)


def _progress(name: str, done: int, total: int) -> None:
    sys.stderr.write(f"\r{name}: {done}/{total} messages" + ("\n" if done >= total else ""))
    sys.stderr.flush()
