"""The test servers in tests/servers work: Dovecot over every protocol and TLS mode,
and the misbehaving sockets.  Clients here are the stdlib's and IMAPClient, used
directly, so a failure points at the fixture, not at Postdesk."""

from __future__ import annotations

import imaplib
import os
import poplib
import socket
import ssl
from pathlib import Path

import pytest
from imapclient import IMAPClient

MESSAGE = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hello\r\nMessage-ID: <1@example.com>\r\n\r\nHi.\r\n"


def tls_context(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


# -- IMAP ---------------------------------------------------------------------------


def test_imap_plain_login_append_and_uid_search(dovecot, mail_user):
    with imaplib.IMAP4(dovecot.host, dovecot.ports.imap, timeout=5) as imap:
        assert "STARTTLS" in imap.capabilities
        imap.login(*mail_user)
        typ, _ = imap.append("INBOX", None, None, MESSAGE)
        assert typ == "OK"
        imap.select("INBOX")
        typ, data = imap.uid("SEARCH", "ALL")
        assert typ == "OK"
        assert [int(uid) for uid in data[0].split()] == dovecot.uids(mail_user) == [1]
        typ, data = imap.capability()  # imaplib keeps the list from before login, which is shorter
    assert {b"IDLE", b"MOVE", b"UIDPLUS"} <= set(data[0].split())


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_imaps_verifies_with_the_ca(dovecot, mail_user, host):
    with imaplib.IMAP4_SSL(host, dovecot.ports.imaps, ssl_context=tls_context(dovecot.ca_file), timeout=5) as imap:
        assert imap.login(*mail_user)[0] == "OK"


def test_imaps_with_an_untrusted_ca_is_rejected(dovecot):
    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL(
            dovecot.host, dovecot.ports.imaps, ssl_context=tls_context(dovecot.untrusted_ca_file), timeout=5
        )


def test_imap_starttls_on_the_plain_port(dovecot, mail_user):
    with imaplib.IMAP4(dovecot.host, dovecot.ports.imap, timeout=5) as imap:
        assert imap.starttls(ssl_context=tls_context(dovecot.ca_file))[0] == "OK"
        assert imap.login(*mail_user)[0] == "OK"
        assert isinstance(imap.sock, ssl.SSLSocket)


def test_wrong_password_is_refused(dovecot, mail_user):
    with imaplib.IMAP4(dovecot.host, dovecot.ports.imap, timeout=5) as imap:
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            imap.login(mail_user.username, "wrong")


def test_idle_sees_a_new_message_and_move_reports_the_new_uid(dovecot, mail_user):
    with IMAPClient(dovecot.host, port=dovecot.ports.imap, ssl=False, timeout=5) as client:
        client.login(*mail_user)
        client.select_folder("INBOX")
        client.idle()
        dovecot.append(mail_user, MESSAGE)
        responses = client.idle_check(timeout=5)
        client.idle_done()
        assert (1, b"EXISTS") in responses

        client.create_folder("Processed")
        client.move([1], "Processed")
    assert dovecot.uids(mail_user) == []
    assert dovecot.uids(mail_user, "Processed") == [1]


# -- POP3 ---------------------------------------------------------------------------


def test_pop3_plain_and_stls_see_an_appended_message(dovecot, mail_user):
    dovecot.append(mail_user, MESSAGE)
    pop = poplib.POP3(dovecot.host, dovecot.ports.pop3, timeout=5)
    try:
        pop.stls(context=tls_context(dovecot.ca_file))
        pop.user(mail_user.username)
        pop.pass_(mail_user.password)
        assert pop.stat() == (1, len(MESSAGE))
    finally:
        pop.quit()


def test_pop3s_sees_an_appended_message(dovecot, mail_user):
    dovecot.append(mail_user, MESSAGE)
    pop = poplib.POP3_SSL(dovecot.host, dovecot.ports.pop3s, context=tls_context(dovecot.ca_file), timeout=5)
    try:
        pop.user(mail_user.username)
        pop.pass_(mail_user.password)
        assert pop.stat() == (1, len(MESSAGE))
    finally:
        pop.quit()


def test_pop3s_with_an_untrusted_ca_is_rejected(dovecot):
    with pytest.raises(ssl.SSLCertVerificationError):
        poplib.POP3_SSL(dovecot.host, dovecot.ports.pop3s, context=tls_context(dovecot.untrusted_ca_file), timeout=5)


# -- the fixture's helpers ------------------------------------------------------------


def test_helpers_append_with_flags_to_a_new_folder(dovecot, mail_user):
    first = dovecot.append(mail_user, MESSAGE, folder="Archive", flags=[r"\Seen", "postdesk-done"])
    second = dovecot.append(mail_user, MESSAGE, folder="Archive")
    assert (first, second) == (1, 2)
    assert "Archive" in dovecot.folders(mail_user)
    assert dovecot.message_count(mail_user, "Archive") == 2
    assert dovecot.message_count(mail_user) == 0
    assert dovecot.fetch_flags(mail_user, "Archive") == {1: (r"\Seen", "postdesk-done"), 2: ()}


def test_each_mail_user_starts_empty(dovecot, mail_user):
    other = dovecot.new_user()
    dovecot.append(other, MESSAGE)
    assert dovecot.uids(mail_user) == []
    assert dovecot.folders(mail_user) == ["Drafts", "INBOX", "Junk", "Sent", "Trash"]


def test_a_user_added_while_running_can_log_in_at_once(dovecot):
    user = dovecot.add_user("added-late", "s3cret")
    with imaplib.IMAP4(dovecot.host, dovecot.ports.imap, timeout=5) as imap:
        assert imap.login(*user)[0] == "OK"


# -- going down and coming back ---------------------------------------------------------


def test_stop_drops_clients_and_start_comes_back_on_the_same_ports(dovecot, mail_user):
    dovecot.append(mail_user, MESSAGE)
    ports, old_pid = dovecot.ports, dovecot.pid
    session = imaplib.IMAP4(dovecot.host, ports.imap, timeout=5)
    session.login(*mail_user)
    try:
        dovecot.stop()
        assert not dovecot.running
        with pytest.raises(imaplib.IMAP4.abort):  # "* BYE Server shutting down."
            session.noop()
        assert _processes_named(dovecot.instance_name) == []
        for port in ports:
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((dovecot.host, port), timeout=5)
    finally:
        dovecot.start()
    assert dovecot.ports == ports and dovecot.pid != old_pid
    assert dovecot.uids(mail_user) == [1]


def _processes_named(instance_name: str) -> list[int]:
    # Dovecot titles its processes "dovecot-<instance_name>/<service>" (zombies have no title).
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if instance_name.encode() in cmdline:
            found.append(int(pid))
    return found


# -- misbehaving peers -------------------------------------------------------------------


def test_silent_server_makes_a_client_time_out(silent_server):
    with pytest.raises(TimeoutError):
        imaplib.IMAP4(silent_server.host, silent_server.port, timeout=1)  # waits for the greeting
    assert silent_server.connection_count == 1


def test_silent_server_stalls_a_tls_handshake(silent_server, dovecot):
    with pytest.raises(TimeoutError):
        imaplib.IMAP4_SSL(silent_server.host, silent_server.port, ssl_context=tls_context(dovecot.ca_file), timeout=1)


def test_closed_port_refuses(closed_port):
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", closed_port), timeout=1)
