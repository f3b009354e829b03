"""A server whose UIDVALIDITY keeps changing (after-import "keep"), against Dovecot:
`doveadm mailbox update --uid-validity` between passes, as a broken server would
do it every session.

    recognised   the messages we hold take their old intake row over, without a
                 download (size, INTERNALDATE, Message-ID) or, with no Message-ID,
                 by their bytes after it: no new intake row, no duplicate request
    flagged      the 3rd change in a day flags the mailbox: `mailbox show/list`
                 (text and JSON) and the warning on every listing
"""

from __future__ import annotations

import sqlite3
import subprocess

from tests.servers.dovecot import Dovecot, MailUser
from tests.support.installation import Installation
from tests.support.mail import make_message

ADVICE = ("the server changes UIDVALIDITY all the time, so messages have no stable identity: "
          "use after-import move or delete")


def change_uidvalidity(dovecot: Dovecot, user: MailUser) -> int:
    with dovecot.imap(user) as client:
        old = client.select_folder("INBOX", readonly=True)[b"UIDVALIDITY"]
    subprocess.run([dovecot.doveadm, "-c", dovecot.config_file, "mailbox", "update", "-u", user.username,
                    "--uid-validity", str(old + 1000), "INBOX"], check=True, capture_output=True, timeout=30)
    return old + 1000


def intake_keys(inst: Installation) -> list[str]:
    """Every intake row's source key, straight from the installation's database."""
    sql = "SELECT source_key FROM postdesk_intake ORDER BY id"
    if inst.backend == "sqlite":
        with sqlite3.connect(inst.data_dir / "postdesk.sqlite3") as db:
            return [key for (key,) in db.execute(sql)]
    import psycopg

    with psycopg.connect(inst.database_url) as db:
        return [key for (key,) in db.execute(sql)]


def fetch(inst: Installation) -> tuple[dict, str]:
    """`postdesk fetch --json` for the one mailbox: (its report, the log on stderr)."""
    import json

    proc = inst.run("fetch", "--json")
    (report,) = json.loads(proc.stdout)
    assert report["error"] is None, report
    return report, proc.stderr


def test_messages_keep_their_intake_rows_across_uidvalidity_changes_and_the_third_change_flags_the_mailbox(
    installation, dovecot, mail_user
):
    for n in range(3):
        dovecot.append(mail_user, make_message(subject=f"Question {n}"))
    dovecot.append(mail_user, make_message(subject="No Message-ID", message_id=""))
    installation.run("mailbox", "add", "support", "--protocol", "imap", "--host", dovecot.host, "--port",
                     dovecot.ports.imap, "--security", "none", "--username", mail_user.username, "--password-stdin",
                     "--after", "keep", input=mail_user.password + "\n")
    first, _ = fetch(installation)
    assert first["created"] == 4, first

    for change in range(1, 4):
        uidvalidity = change_uidvalidity(dovecot, mail_user)
        report, log = fetch(installation)

        # Three recognised before download; the one without a Message-ID downloaded and
        # recognised by its bytes: no new row either way.
        assert (report["listed"], report["fetched"], report["created"], report["duplicates"]) == (4, 0, 0, 0), report
        assert "recognised 3 messages after a UIDVALIDITY change (by size, date and Message-ID)" in log, log
        assert "recognised 1 messages after a UIDVALIDITY change (by content)" in log, log
        keys = intake_keys(installation)
        assert len(keys) == 4 and all(key.startswith(f"{uidvalidity}/") for key in keys), keys
        shown = installation.json("mailbox", "show", "support")
        assert shown["uidvalidity_changes_24h"] == change
        assert shown["identity_unstable"] is (change >= 3), shown
    assert len(installation.requests()) == 4

    shown = installation.run("mailbox", "show", "support")
    assert f"warning: support: {ADVICE}" in shown.stderr
    (line,) = installation.run("mailbox", "list").stdout.splitlines()
    assert "UNSTABLE IDENTITY" in line, line
    assert f"support: {ADVICE}" in installation.json("mailbox", "list")[0]["warnings"]

    dovecot.append(mail_user, make_message(subject="Really new"))  # new mail still comes in
    report, log = fetch(installation)
    assert (report["fetched"], report["created"]) == (1, 1), report
    assert "recognised" not in log, log
    assert len(intake_keys(installation)) == 5
