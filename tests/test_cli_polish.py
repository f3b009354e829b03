"""The command line, as polished as the pages: --help shows our options (Django's under
--help-all), errors read as one sentence without "CommandError:", empty lists say so,
--help writes nothing to the data dir, FAILING only after POSTDESK_FAILING_AFTER failures
in a row, `requests list --status pending` with priority and tags, scripts/run installs
only when pyproject.toml changed, and the Django admin says "Mailboxes"."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from postdesk.management.base import sentence
from postdesk.management.commands.mailbox import health_line
from postdesk.models import Customer, Mailbox, Request, Tag
from tests.support.installation import Installation

REPO = Path(__file__).resolve().parents[1]
DJANGOS = ("--settings", "--pythonpath", "--traceback", "--verbosity", "--no-color", "--force-color", "--skip-checks")


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    installation = Installation(tmp_path_factory.mktemp("cli") / "installation")
    try:
        yield installation
    finally:
        installation.close()


def postdesk(data_dir: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("POSTDESK_")}
    environment.update(POSTDESK_DATA_DIR=str(data_dir), **(env or {}))
    return subprocess.run([sys.executable, "-m", "postdesk", *args], capture_output=True, text=True,
                          env=environment, timeout=120, cwd=data_dir.parent)


# --- help ------------------------------------------------------------------------------------


def test_help_shows_our_options_and_writes_nothing(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    top = postdesk(data_dir, "--help")
    assert top.returncode == 0 and "mailbox" in top.stdout and "requests" in top.stdout
    for command in (["mailbox", "--help"], ["requests", "--help"], ["quarantine", "--help"], ["inspect", "--help"]):
        shown = postdesk(data_dir, *command)
        assert shown.returncode == 0, shown.stderr
        assert "--help-all" in shown.stdout, command
        for option in DJANGOS:
            assert option not in shown.stdout, (command, option)
    everything = postdesk(data_dir, "mailbox", "--help-all")
    assert everything.returncode == 0 and "--settings" in everything.stdout and "--traceback" in everything.stdout
    assert list(data_dir.iterdir()) == []  # not even a secret key


# --- errors and empty lists (the real command, as a person runs it) ----------------------------


def test_errors_read_as_one_sentence_with_the_same_exit_status(inst):
    missing = inst.run("mailbox", "show", "nope", check=False)
    assert missing.returncode == 2
    assert missing.stderr == "no mailbox named 'nope' (see `postdesk mailbox list`)\n"
    no_request = inst.run("requests", "show", "4711", check=False)
    assert (no_request.returncode, no_request.stderr) == (2, "no request #4711\n")
    for proc in (missing, no_request):
        assert "CommandError" not in proc.stderr and "Traceback" not in proc.stderr


def test_empty_lists_say_so(inst):
    assert inst.run("requests", "list").stdout == "no requests\n"
    assert inst.run("mailbox", "list").stdout.startswith("no mailboxes")
    assert inst.run("quarantine", "list").stdout == "the quarantine is empty\n"
    assert inst.json("requests", "list") == []  # JSON stays JSON


@pytest.mark.parametrize("message, said", [
    ("no mailbox named 'x'", "no mailbox named 'x'"),
    ("  two\n lines ", "two lines"),
    ("a-big: disk: disk full", "a-big: disk: disk full"),  # a mailbox's name is never changed
    ("folder 'Nope' cannot be opened: Mailbox doesn't exist: Nope", "folder 'Nope' cannot be opened: Mailbox doesn't exist: Nope"),
    ("", "failed"),
])
def test_an_error_is_one_sentence(message, said):
    assert sentence(message) == said


def test_called_from_code_an_error_is_still_an_exception(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no mailbox named"):
        call_command("mailbox", "show", "nope", stdout=io.StringIO())


# --- FAILING only after POSTDESK_FAILING_AFTER failures in a row --------------------------------


def _failing_box(failures: int) -> Mailbox:
    now = timezone.now()
    return Mailbox.objects.create(name=f"box{failures}", protocol="imap", host="imap.example", username="desk",
                                  last_attempt_at=now, last_error="connect: [Errno 111] Connection refused",
                                  last_error_at=now, consecutive_failures=failures)


def test_one_refused_connection_is_not_failing_yet(db, monkeypatch):
    monkeypatch.delenv("POSTDESK_FAILING_AFTER", raising=False)  # the default: 3
    once, thrice = _failing_box(1), _failing_box(3)
    assert health_line(once).startswith("ok (retrying after 1 failure: connect: [Errno 111]")
    assert health_line(thrice).startswith("FAILING x3: connect:")
    monkeypatch.setenv("POSTDESK_FAILING_AFTER", "1")
    assert health_line(once).startswith("FAILING x1:")


def test_the_pages_use_the_same_threshold(db, client, monkeypatch):
    from django.contrib.auth.models import User

    monkeypatch.delenv("POSTDESK_FAILING_AFTER", raising=False)
    _failing_box(1)
    client.force_login(User.objects.create_superuser("ada", "ada@example.com", "pw"))
    html = client.get("/mailboxes/").content.decode()
    assert "badge-failing" not in html and "banner-failing" not in html
    monkeypatch.setenv("POSTDESK_FAILING_AFTER", "1")
    html = client.get("/mailboxes/").content.decode()
    assert html.count('<span class="badge badge-failing">failing</span>') == 1 and "banner-failing" in html


# --- requests list ------------------------------------------------------------------------------


def test_requests_list_filters_waiting_and_shows_priority_and_tags(db):
    customer = Customer.objects.create(address="jurgen@example.com", name="Jürgen")
    waiting = Request.objects.create(subject="Licences for 2027", customer=customer, status=Request.Status.PENDING,
                                     priority=Request.Priority.URGENT)
    waiting.tags.add(Tag.objects.create(name="billing"))
    Request.objects.create(subject="Printer", customer=customer, status=Request.Status.OPEN)
    out = io.StringIO()
    call_command("requests", "list", "--status", "pending", stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"#{waiting.pk}")
    assert "pending" in lines[0] and "urgent" in lines[0] and "#billing" in lines[0] and "Licences" in lines[0]
    out = io.StringIO()
    call_command("requests", "list", "--status", "pending", "--json", stdout=out)
    assert '"priority": "urgent"' in out.getvalue() and '"billing"' in out.getvalue()


# --- scripts/run and the Django admin -------------------------------------------------------------


def _fake_checkout(root: Path) -> Path:
    """scripts/ and pyproject.toml beside a .venv whose pip and postdesk only write down that they ran."""
    shutil.copytree(REPO / "scripts", root / "scripts")
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    scripts = {"python": "exit 0", "pip": f"echo pip >> {root / 'ran.log'}", "postdesk": f"echo postdesk >> {root / 'ran.log'}"}
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return root


def test_scripts_run_installs_only_when_pyproject_changed(tmp_path):
    root = _fake_checkout(tmp_path / "checkout")
    env = {**os.environ, "PYTHON": sys.executable}
    for _ in range(2):
        subprocess.run(["bash", "scripts/run"], cwd=root, env=env, check=True, timeout=60, capture_output=True)
    assert (root / "ran.log").read_text().split() == ["pip", "postdesk", "postdesk"]
    with (root / "pyproject.toml").open("a") as fh:
        fh.write("\n# a dependency changed\n")
    subprocess.run(["bash", "scripts/run"], cwd=root, env=env, check=True, timeout=60, capture_output=True)
    assert (root / "ran.log").read_text().split() == ["pip", "postdesk", "postdesk", "pip", "postdesk"]


def test_the_django_admin_says_mailboxes(db, client):
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    html = client.get("/admin/").content.decode()
    assert ">Mailboxes<" in html and "Mailboxs" not in html
