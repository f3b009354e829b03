"""A private Dovecot (IMAP, IMAPS, POP3, POP3S) for tests.

One instance per test session, everything under one temporary directory: its
own dovecot.conf (nothing from /etc/dovecot), sockets, state, log, users and
Maildirs.  It listens on 127.0.0.1 only, on free ports picked at start, and is
run in the foreground as our child process, so stopping it means terminating
exactly that pid.

Given an introspection URL (the session's does: tests/servers/oauth_provider.py),
it also accepts SASL XOAUTH2 and OAUTHBEARER: its oauth2 passdb asks that URL
about every token (RFC 7662, POST token=...), with no cache, so a token revoked
at the provider is refused at the next login.  PLAIN and LOGIN stay with the
passwd-files; the userdb is the passwd-file for both, so a user must exist here
(add_user) whichever way they sign in.

Written for Dovecot 2.3 (Debian 12's dovecot-imapd / dovecot-pop3d); 2.4
changed the configuration language.
"""

from __future__ import annotations

import contextlib
import ctypes
import grp
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from imapclient import IMAPClient

from .tls import TlsFiles, write_tls_files

HOST = "127.0.0.1"
START_TIMEOUT = 10.0  # seconds; a normal start takes well under one
STOP_TIMEOUT = 10.0
KICK_TIMEOUT = 5.0
INSTALL_HINT = (
    "run scripts/test, which installs the Debian packages dovecot-imapd and dovecot-pop3d "
    "(or: apt-get install dovecot-imapd dovecot-pop3d)"
)
# Not on a non-root user's PATH on Debian.
_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+@-]*")
_APPENDUID = re.compile(rb"\[APPENDUID \d+ (\d+)\]")


class DovecotError(RuntimeError):
    """Dovecot is missing or did not start/stop; the message says why."""


class Ports(NamedTuple):
    imap: int  # plain, STARTTLS offered
    imaps: int  # implicit TLS
    pop3: int  # plain, STLS offered
    pop3s: int  # implicit TLS


class MailUser(NamedTuple):
    username: str
    password: str


@dataclass(frozen=True)
class _MailOwner:
    """The system account that mail processes run as and that owns the Maildirs."""

    user: str
    uid: int
    gid: int

    @classmethod
    def for_this_process(cls) -> _MailOwner:
        # Dovecot refuses to give mail access as uid 0, so root runs mail as `nobody`
        # (uid 65534 is within Dovecot's default valid range, no limits to lower).
        # Anyone else can only run everything as themselves.
        entry = pwd.getpwnam("nobody") if _is_root() else pwd.getpwuid(os.geteuid())
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid)


def find_program(name: str) -> str:
    path = os.pathsep.join([os.environ.get("PATH", ""), *_SBIN_DIRS])
    program = shutil.which(name, path=path)
    if program is None:
        raise DovecotError(f"{name} is not installed: {INSTALL_HINT}")
    return program


def check_version(dovecot: str) -> None:
    version = subprocess.run([dovecot, "--version"], capture_output=True, text=True).stdout.strip()
    if not version.startswith("2.3."):
        found = version or "(unknown version)"
        raise DovecotError(f"dovecot {found} found; the test config is written for 2.3 (Debian 12)")


class Dovecot:
    """A running (or stopped) private Dovecot; see the module docstring."""

    host = HOST

    def __init__(
        self, root: Path, tls: TlsFiles, *, dovecot: str, doveadm: str, introspection_url: str | None = None
    ) -> None:
        self.root = root
        self.introspection_url = introspection_url
        self.tls = tls
        self.binary = dovecot
        self.doveadm = doveadm
        self.ports = Ports(*_free_ports(4))
        self.owner = _MailOwner.for_this_process()
        self.config_file = root / "dovecot.conf"
        self.log_file = root / "dovecot.log"
        self.oauth2_config_file = root / "dovecot-oauth2.conf.ext"
        self.users_dir = root / "users"
        self.mail_dir = root / "mail"
        self._users: dict[str, str] = {}
        self._process: subprocess.Popen | None = None
        self._prepare_dirs()
        self.config_file.write_text(render_config(self))
        if introspection_url is not None:
            self.oauth2_config_file.write_text(render_oauth2_config(introspection_url))

    # -- creation and life cycle --------------------------------------------

    @classmethod
    def create(cls, parent: str | None = None, *, introspection_url: str | None = None) -> Dovecot:
        """A configured but not yet started Dovecot in a new temporary directory;
        with `introspection_url`, it also takes OAuth2 tokens (XOAUTH2, OAUTHBEARER)."""
        # Checked before making anything, so a missing Dovecot leaves nothing behind.
        dovecot, doveadm = find_program("dovecot"), find_program("doveadm")
        check_version(dovecot)
        # Not pytest's tmp_path: that sits in a 0700 directory, and the mail processes
        # (running as `owner`, not as us) must reach the sockets and the Maildirs.
        root = Path(tempfile.mkdtemp(prefix="postdesk-dovecot-", dir=parent))
        root.chmod(0o755)
        return cls(
            root, write_tls_files(root / "tls"), dovecot=dovecot, doveadm=doveadm, introspection_url=introspection_url
        )

    @property
    def ca_file(self) -> Path:
        return self.tls.ca_file

    @property
    def untrusted_ca_file(self) -> Path:
        return self.tls.untrusted_ca_file

    @property
    def instance_name(self) -> str:
        """Also in the process titles: ``dovecot-<instance_name>/imap``."""
        return "postdesk-test-" + self.root.name.rsplit("-", 1)[-1]

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start (or restart, on the same ports); return once every port greets."""
        if self.running:
            return
        with self.log_file.open("ab") as log:
            # -F: stay in the foreground as our child, so its pid is the one we stop.
            self._process = subprocess.Popen(
                [self.binary, "-F", "-c", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,  # config errors come here, before log_path is open
                env=_child_environment(),
                preexec_fn=_die_with_parent,
            )
        self._wait_until_listening()
        self._check_greetings()

    def stop(self) -> None:
        """Terminate our Dovecot (only the pid we started) and wait until its ports are closed."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            self._kick_all_sessions()
            # SIGTERM: the master stops its listeners and its own helper processes,
            # and exits about 1 s later (it gives its log process that long).
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._wait_until_closed()

    def cleanup(self) -> None:
        """Stop and remove the temporary directory (log included)."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- users ------------------------------------------------------------------

    def add_user(self, name: str, password: str) -> MailUser:
        """A new user with an empty mailbox; usable at once, also while running.

        Each user has a passwd-file of their own, read at the first login.
        """
        if not _NAME.fullmatch(name):
            raise ValueError(f"user name {name!r}: use letters, digits and ._+@- only")
        if any(c in password for c in ":\n\r") or not password:
            raise ValueError("the password must be non-empty and without ':' or line breaks (passwd-file)")
        if name in self._users:
            raise ValueError(f"user {name!r} exists already")
        self._write_passwd(name, password)
        self._users[name] = password
        return MailUser(name, password)

    def new_user(self, prefix: str = "user") -> MailUser:
        """A user with a name not used before in this session and a random password."""
        return self.add_user(f"{prefix}{len(self._users) + 1}-{secrets.token_hex(3)}", secrets.token_urlsafe(12))

    # -- looking at and changing mailboxes (over plain IMAP) -----------------------

    @contextlib.contextmanager
    def imap(self, user: str | MailUser, folder: str | None = None, *, readonly: bool = True) -> Iterator[IMAPClient]:
        """A logged-in IMAPClient for ``user``, with ``folder`` selected if given."""
        name = _username(user)
        client = IMAPClient(self.host, port=self.ports.imap, ssl=False, timeout=10)
        try:
            client.login(name, self._users[name])
            if folder is not None:
                client.select_folder(folder, readonly=readonly)
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def append(self, user: str | MailUser, raw: bytes, folder: str = "INBOX", flags=()) -> int:
        """Append one message (creating ``folder`` if needed); returns its UID."""
        with self.imap(user) as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            response = client.append(folder, raw, flags=tuple(flags))
        match = _APPENDUID.search(response)
        if match is None:
            raise DovecotError(f"APPEND gave no APPENDUID: {response!r}")
        return int(match.group(1))

    def uids(self, user: str | MailUser, folder: str = "INBOX") -> list[int]:
        with self.imap(user, folder) as client:
            return sorted(client.search("ALL"))

    def folders(self, user: str | MailUser) -> list[str]:
        with self.imap(user) as client:
            return sorted(name for _flags, _delimiter, name in client.list_folders())

    def fetch_flags(self, user: str | MailUser, folder: str = "INBOX") -> dict[int, tuple[str, ...]]:
        r"""UID -> flags, e.g. {3: ('\\Seen', 'custom')}; keywords included.

        Without \Recent: it only says which session saw the message first
        (this helper's own, often) and is gone from IMAP4rev2.
        """
        with self.imap(user, folder) as client:
            found = client.get_flags(client.search("ALL"))
        return {
            uid: tuple(_text(flag) for flag in flags if _text(flag) != "\\Recent")
            for uid, flags in sorted(found.items())
        }

    def message_count(self, user: str | MailUser, folder: str = "INBOX") -> int:
        with self.imap(user) as client:
            return client.folder_status(folder, [b"MESSAGES"])[b"MESSAGES"]

    # -- internals ------------------------------------------------------------------

    def _prepare_dirs(self) -> None:
        for sub in ("run", "state", "users"):
            (self.root / sub).mkdir(mode=0o755)
        self.mail_dir.mkdir(mode=0o700)
        # Homes are created by the mail processes, which run as `owner`.
        os.chown(self.mail_dir, self.owner.uid, self.owner.gid)

    def _write_passwd(self, name: str, password: str) -> None:
        # One passwd-file per user (the config's path ends in %u): Dovecot checks a
        # passwd-file for changes at most once a second, so users appended to a
        # shared file could not log in for up to a second; a new file is read at
        # its first lookup.  Line: user:{PLAIN}password:uid:gid:gecos:home:shell:extra,
        # uid/gid empty so that mail_uid/mail_gid apply.  Renamed into place so
        # that Dovecot never reads half a file.
        line = f"{name}:{{PLAIN}}{password}::::{self.mail_dir / name}::\n"
        new = self.users_dir / f".{name}.new"
        new.write_text(line)
        new.chmod(0o644)
        new.replace(self.users_dir / name)

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        waiting = set(self.ports)
        while waiting:
            if self._process.poll() is not None:
                self._fail_start(f"dovecot exited with status {self._process.returncode}")
            if time.monotonic() > deadline:
                self._fail_start(f"dovecot was not listening on ports {sorted(waiting)} after {START_TIMEOUT:.0f} s")
            waiting = {port for port in waiting if not _accepts(self.host, port)}
            if waiting:
                time.sleep(0.02)

    def _kick_all_sessions(self) -> None:
        # Logged-in IMAP/POP3 sessions are separate processes, and with Dovecot
        # 2.3.19 they keep serving their client after the master has exited
        # (shutdown_clients = yes notwithstanding).  A server that goes down must
        # drop its clients, so Dovecot's own `doveadm kick` ends them ("* BYE
        # Server shutting down.") while the master still knows them.  Best
        # effort: stopping the master must not depend on it.
        try:
            subprocess.run(
                [self.doveadm, "-c", str(self.config_file), "kick", "*"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=KICK_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pass

    def _wait_until_closed(self) -> None:
        # The master is gone, but a child still holding a listening socket would
        # keep accepting; tests of "server down" must really see it down.
        deadline = time.monotonic() + STOP_TIMEOUT
        while any(_accepts(self.host, port) for port in self.ports):
            if time.monotonic() > deadline:
                raise DovecotError(f"dovecot ports still open {STOP_TIMEOUT:.0f} s after stopping it")
            time.sleep(0.02)

    def _check_greetings(self) -> None:
        # An accepted connection only shows that the master is up: the login
        # processes behind it (chroot, privileges, the TLS key) may still fail
        # on every connection.  Each port must greet, the TLS ones over TLS
        # verified with our CA.
        context = ssl.create_default_context(cafile=str(self.ca_file))
        checks = [
            (self.ports.imap, None, b"* OK"),
            (self.ports.imaps, context, b"* OK"),
            (self.ports.pop3, None, b"+OK"),
            (self.ports.pop3s, context, b"+OK"),
        ]
        for port, tls, greeting in checks:
            try:
                line = _first_line(self.host, port, tls)
            except (OSError, ssl.SSLError) as error:
                line = repr(error).encode()
            if not line.startswith(greeting):
                self._fail_start(f"dovecot port {port} answered {line!r} instead of a greeting")

    def _fail_start(self, reason: str) -> None:
        self.stop()
        raise DovecotError(
            f"{reason}.\nIf dovecot is missing or broken: {INSTALL_HINT}.\n"
            f"config: {self.config_file}\n--- last lines of {self.log_file} ---\n{self.log_tail()}"
        )


def render_config(server: Dovecot) -> str:
    """The complete dovecot.conf: nothing is included from /etc/dovecot."""
    root, ports = server.root, server.ports
    return f"""\
# Written by tests/servers/dovecot.py for one test session.
base_dir = {root}/run
state_dir = {root}/state
instance_name = {server.instance_name}
log_path = {server.log_file}
info_log_path = {server.log_file}
auth_verbose = yes

protocols = imap pop3
listen = {HOST}
# Plain connections allowed, TLS offered (STARTTLS / STLS), implicit TLS on the *s ports.
ssl = yes
ssl_cert = <{server.tls.cert_file}
ssl_key = <{server.tls.key_file}
disable_plaintext_auth = no
auth_mechanisms = plain login{" xoauth2 oauthbearer" if server.introspection_url else ""}
# No slowing down of failed logins: a wrong-password test would otherwise wait
# 2 s (auth_failure_delay), and every later login from 127.0.0.1 up to 15 s
# (the per-IP auth penalty, kept by anvil; mode 0 turns its socket off).
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}

{_accounts_config(server.owner)}
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {server.users_dir}/%u
}}
{_oauth2_passdb(server)}userdb {{
  driver = passwd-file
  args = username_format=%u {server.users_dir}/%u
}}
mail_location = maildir:~/Maildir

namespace inbox {{
  inbox = yes
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
}}

# Tests open many connections per user from one address (default limit 10).
protocol imap {{
  mail_max_userip_connections = 200
}}
protocol pop3 {{
  mail_max_userip_connections = 200
}}

service imap-login {{
  inet_listener imap {{
    port = {ports.imap}
  }}
  inet_listener imaps {{
    port = {ports.imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {ports.pop3}
  }}
  inet_listener pop3s {{
    port = {ports.pop3s}
    ssl = yes
  }}
}}
{"" if _is_root() else _UNPRIVILEGED_SERVICES}"""


def _oauth2_passdb(server: Dovecot) -> str:
    if server.introspection_url is None:
        return ""
    return f"""passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {server.oauth2_config_file}
}}
"""


def render_oauth2_config(introspection_url: str) -> str:
    """The oauth2 passdb's own file: every token is introspected at the provider."""
    # No tokeninfo_url: introspection alone decides.  No auth cache exists
    # (auth_cache_size is 0 by default), so each login asks the provider anew and a
    # revoked or expired token fails at once.  username_format %u, not the default
    # %Lu: the test users' names are compared as they are.
    return f"""\
introspection_mode = post
introspection_url = {introspection_url}
force_introspection = yes
username_attribute = username
username_format = %u
active_attribute = active
active_value = true
timeout_msecs = 10000
"""


# Only root may chroot(); these services do by default.  (Blocks of the same
# service merge with the ones above.)
_UNPRIVILEGED_SERVICES = "".join(
    f"service {name} {{\n  chroot =\n}}\n"
    for name in ("anvil", "imap-login", "pop3-login", "ipc", "old-stats", "aggregator")
)


def _accounts_config(owner: _MailOwner) -> str:
    if _is_root():
        # Mail processes drop to `owner`; login/internal processes use Debian's
        # dovenull/dovecot accounts (created by dovecot-core).
        return (
            f"mail_uid = {owner.uid}\nmail_gid = {owner.gid}\n"
            f"first_valid_uid = {owner.uid}\nfirst_valid_gid = {owner.gid}\n"
        )
    # Unprivileged: Dovecot can switch to no one, so every process is us.
    return (
        f"default_internal_user = {owner.user}\ndefault_login_user = {owner.user}\n"
        f"default_internal_group = {_group_name(owner.gid)}\n"
        f"first_valid_uid = {owner.uid}\nfirst_valid_gid = {owner.gid}\n"
    )


def _is_root() -> bool:
    return os.geteuid() == 0


def _group_name(gid: int) -> str:
    return grp.getgrgid(gid).gr_name


def _free_ports(count: int) -> list[int]:
    # Hold all sockets open until every port is known, so the ports differ.
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _accepts(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError:
        return False
    return True


def _first_line(host: str, port: int, tls: ssl.SSLContext | None) -> bytes:
    with socket.create_connection((host, port), timeout=5) as sock:
        if tls is None:
            return sock.makefile("rb").readline()
        with tls.wrap_socket(sock, server_hostname=host) as tls_sock:
            return tls_sock.makefile("rb").readline()


def _child_environment() -> dict[str, str]:
    # Dovecot imports these (systemd socket activation / readiness); inherited from
    # a CI service they would make it use sockets or notify a unit that are not its own.
    inherited = {"LISTEN_PID", "LISTEN_FDS", "NOTIFY_SOCKET"}
    return {key: value for key, value in os.environ.items() if key not in inherited}


# Loaded here, not in the forked child, where loading a library is unsafe.
_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Linux: if pytest dies without its teardown (SIGKILL, CI timeout), the kernel
    # sends our Dovecot SIGTERM instead of leaving it running.
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _username(user: str | MailUser) -> str:
    return user.username if isinstance(user, MailUser) else user


def _text(flag: bytes | str) -> str:
    return flag.decode() if isinstance(flag, bytes) else flag
