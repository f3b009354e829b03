"""A kill -9 between the cause's commit and the send: the notification is sent once.

Real `postdesk` processes killed at crash points (postdesk.crashpoints):
    inside-process   before the processing transaction commits: no request, no
                     notification; the next run makes both, once
    before-send      the notification committed and claimed, not given to SMTP yet:
                     the next `postdesk send` takes the dead process's lease over and
                     sends it once
"""

from __future__ import annotations

from tests.outbound import cli
from tests.support.mail import make_message, maildir_deliver

CRASH_EXIT = 75  # os._exit status of postdesk.crashpoints
PHIL = "phil@staff.example"


def routed_mailbox(installation, smtp):
    installation.run("staff", "add", "phil", "--email", PHIL)
    inbox = cli.add_sending_maildir(installation, smtp, "support", "support@desk.example")
    installation.run("mailbox", "edit", "support", "--assign", "phil", "--no-ack")
    return inbox


def notifications(smtp) -> list:
    return [m for m in smtp.received if m.rcpt_tos == [PHIL]]


def test_a_kill_before_sending_sends_the_notification_once(installation, smtp):
    inbox = routed_mailbox(installation, smtp)
    maildir_deliver(inbox, make_message(subject="Printer on fire"))
    cli.fetch(installation)

    crashed = cli.send(installation, env={"POSTDESK_CRASH_AT": "before-send"}, check=False)

    assert crashed.returncode == CRASH_EXIT, crashed.stderr
    assert smtp.received == []
    assert "sent 1," in cli.send(installation).stdout
    assert "sent 0," in cli.send(installation).stdout
    (mail,) = notifications(smtp)
    assert mail.message["Auto-Submitted"] == "auto-generated"


def test_a_kill_inside_processing_plans_nothing_and_the_rerun_plans_it_once(installation, smtp):
    inbox = routed_mailbox(installation, smtp)
    maildir_deliver(inbox, make_message(subject="Printer on fire"))

    crashed = installation.run("fetch", env={"POSTDESK_CRASH_AT": "inside-process"}, check=False)

    assert crashed.returncode == CRASH_EXIT, crashed.stderr
    assert cli.state(installation)["outgoing"] == []
    installation.run("process")
    cli.send(installation)
    cli.send(installation)
    assert len(notifications(smtp)) == 1


def test_state_lists_notification_rows_too(installation, smtp):
    inbox = routed_mailbox(installation, smtp)
    maildir_deliver(inbox, make_message(subject="Printer on fire"))
    cli.fetch(installation)

    (row,) = cli.state(installation)["outgoing"]
    assert (row["kind"], row["recipients"], row["status"]) == ("notification", [PHIL], "queued")
