"""IMAP and POP3 sources against a real server: the private Dovecot of tests/servers.

Postdesk runs as a subprocess against an isolated installation (`installation`),
so everything on the way is real: the CLI, the IMAP/POP3 clients, TLS verified
with our own CA, and Dovecot's own state, which the tests read back over IMAP.

    matrix          every protocol x security x after-import policy, fetched twice
    errors          one broken mailbox next to a healthy one: reported, the other fetched
    crashes         `fetch` killed at each crash point, then run again: exactly once
    identity        UIDVALIDITY change, one message through two mailboxes
    mailbox test    "ok, N messages", and nothing changed at the server
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers.dovecot import Dovecot, MailUser
from tests.servers.fixtures import running_dovecot
from tests.servers.sockets import SilentServer
from tests.servers.sockets import closed_port as free_closed_port
from tests.support.installation import Installation
from tests.support.mail import make_message, maildir_deliver, new_message_id

SECURITIES = ("none", "starttls", "tls")
IMAP_POLICIES = ("keep", "seen", "move:Imported", "delete")
POP3_POLICIES = ("keep", "delete")
SEEN = "\\Seen"
DEFAULT_FOLDERS = ["Drafts", "INBOX", "Junk", "Sent", "Trash"]
NETWORK_TIMEOUT = {"POSTDESK_NETWORK_TIMEOUT": "2"}  # seconds, for the silent server
CRASH_EXIT = 75  # os._exit status of postdesk.crashpoints


# =========================================================================== helpers


def port_of(dovecot: Dovecot, protocol: str, security: str) -> int:
    if protocol == "imap":
        return dovecot.ports.imaps if security == "tls" else dovecot.ports.imap
    return dovecot.ports.pop3s if security == "tls" else dovecot.ports.pop3


def add_mailbox(
    inst: Installation,
    name: str,
    *,
    protocol: str,
    host: str,
    port: int,
    security: str,
    username: str,
    password: str,
    after: str = "keep",
    ca_file: Path | None = None,
    options: tuple = (),
) -> None:
    """`postdesk mailbox add` with the password on standard input, as an admin would."""
    args = ["mailbox", "add", name, "--protocol", protocol, "--host", host, "--port", port, "--security", security,
            "--username", username, "--password-stdin", "--after", after]
    if ca_file is not None:
        args += ["--ca-file", ca_file]
    inst.run(*args, *options, input=password + "\n")


def add_dovecot_mailbox(
    inst: Installation,
    dovecot: Dovecot,
    name: str,
    user: MailUser,
    *,
    protocol: str = "imap",
    security: str = "none",
    after: str = "keep",
    options: tuple = (),
) -> None:
    add_mailbox(inst, name, protocol=protocol, host=dovecot.host, port=port_of(dovecot, protocol, security),
                security=security, username=user.username, password=user.password, after=after,
                ca_file=dovecot.ca_file if security != "none" else None, options=options)


def add_maildir(inst: Installation, name: str) -> Path:
    path = inst.root / "maildirs" / name
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    inst.run("mailbox", "add", name, "--protocol", "maildir", "--path", path, "--after", "keep")
    return path


def fetch(inst: Installation, *args, env: dict | None = None) -> dict[str, dict]:
    """`postdesk fetch --json` (must exit 0): {mailbox name: its report}."""
    proc = inst.run("fetch", *args, "--json", env=env)
    return {report["mailbox"]: report for report in json.loads(proc.stdout)}


def server_state(dovecot: Dovecot, user: MailUser) -> dict[str, dict[int, tuple[str, ...]]]:
    """{folder: {uid: flags}} for INBOX and Imported (when it exists): what Dovecot holds."""
    folders = dovecot.folders(user)
    return {folder: dovecot.fetch_flags(user, folder) for folder in ("INBOX", "Imported") if folder in folders}


def append_questions(dovecot: Dovecot, user: MailUser, prefix: str, count: int) -> list[str]:
    subjects = [f"{prefix} question {i}" for i in range(count)]
    for subject in subjects:
        dovecot.append(user, make_message(subject=subject))
    return subjects


def assert_policy_applied(state: dict, protocol: str, after: str, count: int) -> None:
    inbox, imported = state.get("INBOX", {}), state.get("Imported")
    if protocol == "pop3":
        assert len(inbox) == (count if after == "keep" else 0), state
        assert imported is None, state
    elif after == "keep":
        assert len(inbox) == count and not any(SEEN in flags for flags in inbox.values()), state
        assert imported is None, state
    elif after == "seen":
        assert len(inbox) == count and all(SEEN in flags for flags in inbox.values()), state
        assert imported is None, state
    elif after == "move:Imported":
        assert inbox == {} and imported is not None and len(imported) == count, state
    elif after == "delete":
        assert inbox == {} and imported is None, state
    else:
        raise AssertionError(f"no expectation for {protocol} --after {after}")


_DOVECOT_TIMING = re.compile(r" \([0-9.]+(?: \+ [0-9.]+)* secs\)")


def stable(error: str) -> str:
    """An error message without the timing Dovecot adds to its answers ("(0.001 + 0.000 secs)"),
    which differs from one attempt to the next."""
    return _DOVECOT_TIMING.sub("", error)


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The one line a failing command printed, besides its `warning:` lines."""
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("warning:")]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


# =========================================================================== 1. the matrix


MATRIX = [("imap", security, after) for security in SECURITIES for after in IMAP_POLICIES] + [
    ("pop3", security, after) for security in SECURITIES for after in POP3_POLICIES
]


def case_name(protocol: str, security: str, after: str) -> str:
    return f"{protocol}-{security}-{after.partition(':')[0]}"


CASE_NAMES = [case_name(*case) for case in MATRIX]


@dataclass
class Case:
    protocol: str
    security: str
    after: str
    assign: str | None
    user: MailUser
    subjects: list[str]
    folders_before: list[str]


@dataclass
class Matrix:
    """One installation, one mailbox per case (each its own Dovecot user), fetched twice."""

    cases: dict[str, Case] = field(default_factory=dict)
    first: dict[str, dict] = field(default_factory=dict)
    second: dict[str, dict] = field(default_factory=dict)
    state_first: dict[str, dict] = field(default_factory=dict)
    state_second: dict[str, dict] = field(default_factory=dict)
    requests_first: list[dict] = field(default_factory=list)
    requests_second: list[dict] = field(default_factory=list)

    def requests_of(self, name: str, which: str = "first") -> list[dict]:
        rows = self.requests_first if which == "first" else self.requests_second
        return [r for r in rows if r["mailbox"] == name]


@pytest.fixture(scope="module")
def matrix(dovecot, tmp_path_factory) -> Matrix:
    # One shared installation and one `fetch` over all 16 mailboxes: some twenty
    # subprocesses instead of eighty.  Each mailbox is its own Dovecot user, so
    # the cases cannot see each other's mail.
    dovecot.start()  # no-op when running; another test may have stopped it
    inst = Installation(tmp_path_factory.mktemp("matrix"))
    try:
        inst.run("staff", "add", "phil", "--email", "phil@desk.example")
        result = Matrix()
        for index, (protocol, security, after) in enumerate(MATRIX):
            name = case_name(protocol, security, after)
            # Alternating, shifted per security mode, so every policy sees both routes.
            assign = "phil" if (index + SECURITIES.index(security)) % 2 else None
            user = dovecot.new_user(prefix=name.replace("-", ""))
            subjects = append_questions(dovecot, user, name, 3)
            add_dovecot_mailbox(inst, dovecot, name, user, protocol=protocol, security=security, after=after,
                                options=("--assign", "phil") if assign else ())
            result.cases[name] = Case(protocol, security, after, assign, user, subjects, dovecot.folders(user))
        result.first = fetch(inst)
        result.state_first = {name: server_state(dovecot, case.user) for name, case in result.cases.items()}
        result.requests_first = inst.requests()
        result.second = fetch(inst)
        result.state_second = {name: server_state(dovecot, case.user) for name, case in result.cases.items()}
        result.requests_second = inst.requests()
        yield result
    finally:
        inst.close()


@pytest.mark.parametrize("name", CASE_NAMES)
def test_fetch_imports_every_message_once_with_the_mailbox_routing(matrix, name):
    case = matrix.cases[name]
    report = matrix.first[name]
    assert report["error"] is None, report
    assert (report["fetched"], report["created"], report["duplicates"], report["quarantined"]) == (3, 3, 0, 0), report
    requests = matrix.requests_of(name)
    assert sorted(r["subject"] for r in requests) == case.subjects
    assert all(r["message_count"] == 1 for r in requests), requests
    assert [r["assignee"] for r in requests] == [case.assign] * 3


@pytest.mark.parametrize("name", CASE_NAMES)
def test_fetch_leaves_the_server_as_the_after_import_policy_says(matrix, name):
    case = matrix.cases[name]
    assert case.folders_before == DEFAULT_FOLDERS  # no Imported: `move` had to create it
    assert_policy_applied(matrix.state_first[name], case.protocol, case.after, 3)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_second_fetch_imports_nothing_and_changes_nothing_at_the_server(matrix, name):
    report = matrix.second[name]
    assert report["error"] is None, report
    assert (report["fetched"], report["created"], report["threaded"], report["duplicates"]) == (0, 0, 0, 0), report
    assert matrix.requests_of(name, "second") == matrix.requests_of(name, "first")
    assert matrix.state_second[name] == matrix.state_first[name]


# =========================================================================== 2. errors

NO_STARTTLS_HOST = "127.0.0.2"  # where dovecot_without_starttls offers no STARTTLS / STLS


@pytest.fixture(scope="module")
def dovecot_without_starttls():
    """A second private Dovecot that also listens on 127.0.0.2, where it offers no
    STARTTLS (IMAP) or STLS (POP3): `ssl = no` for that local address only."""

    def without_starttls_on_second_address(server: Dovecot) -> None:
        config = server.config_file.read_text()
        assert "\nlisten = 127.0.0.1\n" in config, "tests/servers/dovecot.py's config changed: adapt this fixture"
        config = config.replace("\nlisten = 127.0.0.1\n", f"\nlisten = 127.0.0.1, {NO_STARTTLS_HOST}\n")
        server.config_file.write_text(config + f"local {NO_STARTTLS_HOST} {{\n  ssl = no\n}}\n")

    yield from running_dovecot(without_starttls_on_second_address)


@dataclass
class Broken:
    """A mailbox that cannot be read, and what its error must say."""

    kind: str
    says: str  # a fragment of the error message
    protocol: str
    host: str
    port: int
    security: str
    username: str
    password: str
    ca_file: Path | None = None
    options: tuple = ()
    log_file: Path | None = None  # the server's log: it must never name the user (no login attempted)


@dataclass
class Outage:
    """One installation: a healthy Maildir and one mailbox per kind of failure, fetched together twice."""

    inst: Installation
    broken: dict[str, Broken]
    reports: dict[str, dict]  # `fetch --json`
    text: str  # the plain `fetch` output
    requests: list[dict]


def broken_mailboxes(dovecot: Dovecot, without_starttls: Dovecot, silent: SilentServer) -> dict[str, Broken]:
    def user() -> MailUser:
        return dovecot.new_user(prefix="broken")

    def starttls_not_offered(protocol: str) -> Broken:
        plain = without_starttls.new_user(prefix="plaintext")
        port = without_starttls.ports.imap if protocol == "imap" else without_starttls.ports.pop3
        return Broken("tls", "does not offer", protocol, NO_STARTTLS_HOST, port, "starttls", plain.username,
                      plain.password, ca_file=without_starttls.ca_file, log_file=without_starttls.log_file)

    host, ports = dovecot.host, dovecot.ports
    port = free_closed_port()
    wrong, wrong_pop3, untrusted, missing = user(), user(), user(), user()
    return {
        "wrong-password": Broken("login", f"login as {wrong.username!r} refused", "imap", host, ports.imaps, "tls",
                                 wrong.username, wrong.password + "-wrong", ca_file=dovecot.ca_file),
        "wrong-password-pop3": Broken("login", f"login as {wrong_pop3.username!r} refused", "pop3", host, ports.pop3s,
                                      "tls", wrong_pop3.username, wrong_pop3.password + "-wrong",
                                      ca_file=dovecot.ca_file),
        "untrusted-certificate": Broken("certificate", f"certificate of {host}:{ports.imaps} rejected", "imap", host,
                                        ports.imaps, "tls", untrusted.username, untrusted.password,
                                        ca_file=dovecot.untrusted_ca_file),
        "closed-port": Broken("refused", f"connection to 127.0.0.1:{port} refused", "imap", "127.0.0.1", port, "none",
                              "nobody", "secret"),
        "silent-server": Broken("timeout", f"{silent.host}:{silent.port} did not answer in time", "imap", silent.host,
                                silent.port, "none", "nobody", "secret"),
        "missing-folder": Broken("folder", "'Nope'", "imap", host, ports.imaps, "tls", missing.username,
                                 missing.password, ca_file=dovecot.ca_file, options=("--folder", "Nope")),
        "starttls-not-offered": starttls_not_offered("imap"),
        "stls-not-offered-pop3": starttls_not_offered("pop3"),
    }


BROKEN_NAMES = ["wrong-password", "wrong-password-pop3", "untrusted-certificate", "closed-port", "silent-server",
                "missing-folder", "starttls-not-offered", "stls-not-offered-pop3"]


@pytest.fixture(scope="module")
def outage(dovecot, dovecot_without_starttls, tmp_path_factory) -> Outage:
    # Every run gets POSTDESK_NETWORK_TIMEOUT=2: the silent server costs 2 s, not 60.
    dovecot.start()
    silent = SilentServer()
    inst = Installation(tmp_path_factory.mktemp("outage"))
    try:
        healthy = add_maildir(inst, "healthy")
        maildir_deliver(healthy, make_message(subject="Healthy question"))
        broken = broken_mailboxes(dovecot, dovecot_without_starttls, silent)
        assert sorted(broken) == sorted(BROKEN_NAMES)
        for name, b in broken.items():
            add_mailbox(inst, name, protocol=b.protocol, host=b.host, port=b.port, security=b.security,
                        username=b.username, password=b.password, ca_file=b.ca_file, options=b.options)
        reports = fetch(inst, env=NETWORK_TIMEOUT)  # exit status 0 although mailboxes are down
        text = inst.run("fetch", env=NETWORK_TIMEOUT).stdout  # likewise
        yield Outage(inst, broken, reports, text, inst.requests())
    finally:
        inst.close()
        silent.close()


def test_the_healthy_mailbox_is_fetched_while_the_others_fail(outage):
    report = outage.reports["healthy"]
    assert report["error"] is None and report["created"] == 1, report
    assert [(r["subject"], r["mailbox"]) for r in outage.requests] == [("Healthy question", "healthy")]
    shown = outage.inst.json("mailbox", "show", "healthy")
    assert (shown["last_error"], shown["consecutive_failures"]) == (None, 0)


@pytest.mark.parametrize("name", BROKEN_NAMES)
def test_fetch_reports_a_broken_mailbox_with_its_error_kind_in_one_line(outage, name):
    broken, report = outage.broken[name], outage.reports[name]
    assert report["error_kind"] == broken.kind, report
    assert report["error"] and "\n" not in report["error"] and "Traceback" not in report["error"], report
    assert broken.says in report["error"], report
    assert report["fetched"] == report["created"] == 0, report
    # The plain-text report says the same on the mailbox's line.
    (line,) = [line for line in outage.text.splitlines() if line.startswith(f"{name}:")]
    assert stable(line).endswith(f"; ERROR ({broken.kind}): {stable(report['error'])}"), outage.text


@pytest.mark.parametrize("name", BROKEN_NAMES)
def test_mailbox_test_prints_the_exact_failure_and_exits_1(outage, name):
    report = outage.reports[name]
    tested = outage.inst.run("mailbox", "test", name, env=NETWORK_TIMEOUT, check=False)
    assert tested.returncode == 1, (tested.stdout, tested.stderr)
    assert stable(error_line(tested)).endswith(f"{name}: {report['error_kind']}: {stable(report['error'])}")


@pytest.mark.parametrize("name", BROKEN_NAMES)
def test_mailbox_show_has_the_last_error_and_the_failure_count(outage, name):
    report, shown = outage.reports[name], outage.inst.json("mailbox", "show", name)
    assert stable(shown["last_error"]) == f"{report['error_kind']}: {stable(report['error'])}"
    assert shown["consecutive_failures"] == 2  # the two fetches; `mailbox test` does not count


@pytest.mark.parametrize("name", ["starttls-not-offered", "stls-not-offered-pop3"])
def test_starttls_not_offered_means_no_login_attempt(outage, name):
    broken = outage.broken[name]
    # auth_verbose logs every login attempt by user name: there was none, so no password was sent.
    assert broken.username not in broken.log_file.read_text(errors="replace")


def test_a_mailbox_that_recovers_clears_its_error(installation, dovecot, mail_user):
    add_dovecot_mailbox(installation, dovecot, "support", mail_user, security="tls", options=("--folder", "Later"))
    (failed,) = fetch(installation).values()
    assert failed["error_kind"] == "folder"

    dovecot.append(mail_user, make_message(subject="Filed later"), folder="Later")
    (report,) = fetch(installation).values()

    assert report["error"] is None and report["created"] == 1, report
    shown = installation.json("mailbox", "show", "support")
    assert (shown["last_error"], shown["consecutive_failures"]) == (None, 0)


# =========================================================================== 3. crashes

CRASH_POINTS = ["after-intake", "after-acknowledge", "before-process", "inside-process"]
CRASH_POLICIES = [("imap", "keep"), ("imap", "move:Imported"), ("pop3", "delete")]
CRASH_CASES = [(point, protocol, after) for point in CRASH_POINTS for protocol, after in CRASH_POLICIES]
CRASH_MESSAGES = 4


def crash_name(point: str, protocol: str, after: str) -> str:
    return f"{point}-{protocol}-{after.partition(':')[0]}"


def crash_spec(point: str) -> str:
    # The processing points are reached once per message: die on the second.
    return f"{point}:2" if point in ("before-process", "inside-process") else point


@dataclass
class CrashCase:
    protocol: str
    after: str
    user: MailUser
    subjects: list[str]
    crashed: subprocess.CompletedProcess
    count_after_crash: int  # messages at the server right after the killed run


@dataclass
class Crashes:
    """One installation, one mailbox per (crash point, policy): each killed once by its own
    `fetch --mailbox NAME`, then one ordinary `fetch` over all of them."""

    cases: dict[str, CrashCase]
    requests_after_crashes: list[dict]
    reports: dict[str, dict]
    requests: list[dict]
    states: dict[str, dict]


@pytest.fixture(scope="module", params=["password", "oauth"])
def crashes(request, dovecot, oauth_provider, tmp_path_factory) -> Crashes:
    """Run once with password mailboxes and once with OAuth2 ones: exactly-once must not
    depend on how a mailbox signs in."""
    from tests.worker.helpers import add_imap_by

    dovecot.start()
    inst = Installation(tmp_path_factory.mktemp("crashes"))
    try:
        cases = {}
        for point, protocol, after in CRASH_CASES:
            name = crash_name(point, protocol, after)
            user = dovecot.new_user(prefix="crash")
            oauth_provider.add_user(user.username, user.password)
            subjects = append_questions(dovecot, user, name, CRASH_MESSAGES)
            add_imap_by(request.param, inst, dovecot, name, user, oauth_provider, protocol=protocol, after=after)
            crashed = inst.run("fetch", "--mailbox", name, check=False,
                               env={"POSTDESK_CRASH_AT": crash_spec(point), "POSTDESK_CRASH_MODE": "exit"})
            cases[name] = CrashCase(protocol, after, user, subjects, crashed, dovecot.message_count(user))
        requests_after_crashes = inst.requests()
        reports = fetch(inst)  # no crash this time
        states = {name: server_state(dovecot, case.user) for name, case in cases.items()}
        yield Crashes(cases, requests_after_crashes, reports, inst.requests(), states)
    finally:
        inst.close()


CRASH_NAMES = [crash_name(*case) for case in CRASH_CASES]


@pytest.mark.parametrize("name", CRASH_NAMES)
def test_fetch_killed_at_a_crash_point_then_rerun_imports_every_message_exactly_once(crashes, name):
    case = crashes.cases[name]
    assert case.crashed.returncode == CRASH_EXIT, (case.crashed.stdout, case.crashed.stderr)
    report = crashes.reports[name]
    assert report["error"] is None and report["quarantined"] == 0, report
    requests = [r for r in crashes.requests if r["mailbox"] == name]
    assert sorted(r["subject"] for r in requests) == case.subjects
    assert all(r["message_count"] == 1 for r in requests), requests


@pytest.mark.parametrize("name", CRASH_NAMES)
def test_after_a_crash_and_a_rerun_the_server_is_as_the_policy_says(crashes, name):
    case = crashes.cases[name]
    assert_policy_applied(crashes.states[name], case.protocol, case.after, CRASH_MESSAGES)


def test_pop3_session_cut_between_dele_and_quit_keeps_the_mail_and_the_rerun_deletes_without_importing(crashes):
    name = crash_name("after-acknowledge", "pop3", "delete")
    case = crashes.cases[name]
    assert case.crashed.returncode == CRASH_EXIT
    assert case.count_after_crash == CRASH_MESSAGES  # DELE without QUIT: rolled back by the server
    assert [r for r in crashes.requests_after_crashes if r["mailbox"] == name] == []  # stored, not processed
    report = crashes.reports[name]
    assert report["fetched"] == 0, report  # held already: deleted at the source, not imported again
    assert report["created"] == CRASH_MESSAGES, report  # what the cut run stored is processed now
    assert crashes.states[name] == {"INBOX": {}}


# =========================================================================== 4-5. identity


def test_uidvalidity_change_makes_no_new_intake_rows_and_no_duplicate_requests(installation, dovecot, mail_user):
    subjects = append_questions(dovecot, mail_user, "Validity", 3)
    add_dovecot_mailbox(installation, dovecot, "support", mail_user, after="keep")
    (first,) = fetch(installation).values()
    assert first["created"] == 3, first

    with dovecot.imap(mail_user) as client:
        old = client.select_folder("INBOX", readonly=True)[b"UIDVALIDITY"]
    subprocess.run([dovecot.doveadm, "-c", dovecot.config_file, "mailbox", "update", "-u", mail_user.username,
                    "--uid-validity", str(old + 1000), "INBOX"], check=True, capture_output=True, timeout=30)
    with dovecot.imap(mail_user) as client:
        assert client.select_folder("INBOX", readonly=True)[b"UIDVALIDITY"] == old + 1000

    (second,) = fetch(installation).values()

    assert second["error"] is None, second
    # New keys, the same messages: recognised by size, date and Message-ID, not downloaded
    # again (postdesk.identity; more in tests/pipeline/test_uidvalidity.py).
    assert (second["fetched"], second["created"], second["duplicates"]) == (0, 0, 0), second
    requests = installation.requests()
    assert sorted(r["subject"] for r in requests) == subjects
    assert all(r["message_count"] == 1 for r in requests), requests
    (third,) = fetch(installation).values()
    assert (third["fetched"], third["created"]) == (0, 0), third


def test_one_message_delivered_to_two_users_makes_one_request_and_a_later_reply_joins_it(installation, dovecot):
    installation.run("staff", "add", "phil", "--email", "phil@desk.example")
    sales, support = dovecot.new_user(prefix="sales"), dovecot.new_user(prefix="support")
    message_id = new_message_id()
    raw = make_message(subject="Quote and a problem", to="sales@desk.example", cc="support@desk.example",
                       message_id=message_id)
    for user, address in ((sales, "sales@desk.example"), (support, "support@desk.example")):
        # As an MTA delivers it: the same message, each copy with its own envelope headers.
        dovecot.append(user, f"Delivered-To: {address}\r\nReturn-Path: <alice@customer.example>\r\n".encode() + raw)
    add_dovecot_mailbox(installation, dovecot, "sales", sales, security="tls", options=("--assign", "phil"))
    add_dovecot_mailbox(installation, dovecot, "support", support, security="tls")

    reports = fetch(installation)

    assert sum(r["created"] for r in reports.values()) == 1, reports
    assert sum(r["duplicates"] for r in reports.values()) == 1, reports
    (request,) = installation.requests()
    assert request["message_count"] == 1

    reply = make_message(subject="Re: Quote and a problem", to="support@desk.example", in_reply_to=message_id,
                         references=message_id, body="Any news?\n")
    dovecot.append(support, b"Delivered-To: support@desk.example\r\n" + reply)
    reports = fetch(installation)

    assert reports["support"]["threaded"] == 1 and reports["support"]["created"] == 0, reports
    (joined,) = installation.requests()
    assert joined["number"] == request["number"] and joined["message_count"] == 2
    assert joined["assignee"] == request["assignee"]


# =========================================================================== 6. mailbox test


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_mailbox_test_says_ok_with_the_message_count_and_changes_nothing(installation, dovecot, mail_user, protocol):
    append_questions(dovecot, mail_user, "Counted", 2)
    add_dovecot_mailbox(installation, dovecot, "support", mail_user, protocol=protocol, security="starttls")
    before = server_state(dovecot, mail_user)

    tested = installation.run("mailbox", "test", "support")

    assert "ok, 2 messages" in tested.stdout, tested.stdout
    assert installation.json("mailbox", "test", "support") == {"ok": True, "messages": 2}
    assert server_state(dovecot, mail_user) == before
    assert installation.requests() == []
