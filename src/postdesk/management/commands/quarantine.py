"""postdesk quarantine list|show|discard: messages that could not be imported, with why."""

from __future__ import annotations

import sys

from postdesk import quarantine
from postdesk.management.base import USAGE, PostdeskCommand
from postdesk.models import Intake
from postdesk.sizes import describe_size
from postdesk.store import blobs


class Command(PostdeskCommand):
    help = ("List quarantined messages (list [--json]), print one's raw bytes (show ID --raw), "
            "or discard one (discard ID: its bytes are kept).")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        lst = sub.add_parser("list")
        lst.add_argument("--json", action="store_true")
        show = sub.add_parser("show")
        show.add_argument("id", type=int)
        show.add_argument("--raw", action="store_true", help="write the raw message to standard output")
        discard = sub.add_parser("discard", help="give up on a quarantined message (recorded; the raw bytes are kept)")
        discard.add_argument("id", type=int)

    def handle(self, *args, **options):
        if options["action"] == "show":
            return self._show(options)
        if options["action"] == "discard":
            return self._discard(options)
        rows = [quarantine.as_dict(h.intake, h.envelope) for h in quarantine.with_envelopes(quarantine.held())]
        if options["json"]:
            return self.emit_json(rows)
        if not rows:
            self.stdout.write("the quarantine is empty")
        for r in rows:
            hint = f" ({r['hint']})" if r["hint"] else ""
            self.stdout.write(f"{r['id']:<8} {r['mailbox']:<16} {r['size_text']:>10}  {r['reason']}{hint}")
            self.stdout.write(f"{'':<8} from {r['from'] or '?'}: {(r['subject'] or '(no subject)')[:70]}")
        if rows:
            self.stdout.write("re-run with `postdesk reprocess ID` or `postdesk reprocess --all`")

    def _show(self, options):
        intake = Intake.objects.filter(pk=options["id"]).select_related("mailbox").first()
        if intake is None:
            raise self.fail(f"no intake #{options['id']}", USAGE)
        if options["raw"]:
            sys.stdout.buffer.write(blobs.read(intake.raw_id))
            return
        self.stdout.write(f"#{intake.pk} from {intake.mailbox.name} ({intake.source_key}), {describe_size(intake.size)}, {intake.status}")
        self.stdout.write(f"reason: {intake.quarantine_reason or '-'}")
        if quarantine.hint(intake):
            self.stdout.write(quarantine.hint(intake))

    def _discard(self, options):
        if not quarantine.discard(options["id"]):
            raise self.fail(f"intake #{options['id']} is not in the quarantine (see `postdesk quarantine list`)", USAGE)
        self.stdout.write(f"discarded #{options['id']} (its raw bytes are kept)")
