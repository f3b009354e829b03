"""Refreshing across real processes, on an installation of their own (both databases):
a kill -9 between the provider's answer and our save, and processes refreshing at once.
Also `postdesk mailbox connect` itself: the device grant and the loopback redirect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.oauth.conftest import PASSWORD
from tests.oauth.support import SCOPE

SCRIPT = Path(__file__).with_name("grant_process.py")
SRC = Path(__file__).resolve().parents[2] / "src"
TIMEOUT = 300


def env(installation, extra: dict | None = None) -> dict:
    e = installation.env(extra)
    e["PYTHONPATH"] = os.pathsep.join([str(SRC), e.get("PYTHONPATH", "")])  # this tree's postdesk
    return e


def start(installation, *args: str, extra: dict | None = None, stdin: str | None = None) -> subprocess.Popen:
    installation.data_dir.mkdir(parents=True, exist_ok=True)  # `postdesk` makes it; this script does not
    proc = subprocess.Popen([sys.executable, str(SCRIPT), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=installation.work_dir, env=env(installation, extra))
    proc.given = stdin or ""  # handed over by finish()
    return proc


def finish(proc: subprocess.Popen) -> tuple[int, dict | None, str]:
    out, err = proc.communicate(proc.given, timeout=TIMEOUT)
    return proc.returncode, json.loads(out) if proc.returncode == 0 else None, err


def run(installation, *args: str, extra: dict | None = None, stdin: str | None = None) -> dict:
    code, data, err = finish(start(installation, *args, extra=extra, stdin=stdin))
    assert code == 0, err
    return data


def connected(installation, provider, client_id: str, person: str, *due: str) -> dict:
    """An OAuth mailbox "support" with a minted grant; with "due", its access token about to run out."""
    t = provider.mint(person, client_id, scope=SCOPE)
    return run(installation, "add", "support", *due, stdin=json.dumps(
        {"issuer": provider.issuer, "client_id": client_id, "username": person, "scope": SCOPE,
         "access_token": t.access_token, "refresh_token": t.refresh_token, "expires_in": t.expires_in}))


def not_connected(installation, provider, client_id: str, person: str) -> None:
    run(installation, "add", "support", stdin=json.dumps({"issuer": provider.issuer, "client_id": client_id,
                                                          "username": person, "scope": SCOPE}))


# =========================================================================== refresh


def test_a_kill_between_the_refresh_and_its_save_strands_nothing(installation, provider, client_id, person):
    before = connected(installation, provider, client_id, person)
    code, _, err = finish(start(installation, "token", "support", "due",
                                extra={"POSTDESK_CRASH_AT": "oauth-after-refresh", "POSTDESK_CRASH_MODE": "exit"}))
    assert code == 75, err
    assert provider.refreshes(person) == 1  # the provider rotated; we never saved its answer
    after_kill = run(installation, "grant", "support")
    assert (after_kill["generation"], after_kill["refresh_sha256"]) == (1, before["refresh_sha256"])
    # The next process takes the dead pid's lease over at once and refreshes with the old token.
    again = run(installation, "token", "support")
    assert again["generation"] == 2 and again["state"] == "ok" and again["refresh_sha256"] != before["refresh_sha256"]
    assert provider.refreshes(person) == 2
    # And the grant goes on: the saved token is the provider's newest, not a replay.
    assert run(installation, "token", "support", "due")["generation"] == 3


def test_processes_refreshing_at_once_make_one_refresh(installation, provider, client_id, person):
    connected(installation, provider, client_id, person, "due")
    at = str(time.time() + 6)  # after every process has started and imported Django
    procs = [start(installation, "token", "support", at) for _ in range(4)]
    results = [finish(p) for p in procs]
    assert [code for code, _, _ in results] == [0] * 4, [err for _, _, err in results]
    assert len({data["sha256"] for _, data, _ in results}) == 1  # all use the one new token
    assert provider.refreshes(person) == 1
    grant = run(installation, "grant", "support")
    assert (grant["generation"], grant["state"], grant["lease_owner"]) == (2, "ok", "")


# =========================================================================== postdesk mailbox connect


def postdesk(installation, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "postdesk", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=installation.work_dir, env=env(installation))


def read_until(proc: subprocess.Popen, marker: str) -> list[str]:
    lines = []
    while True:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"the command ended before {marker!r}:\n{''.join(lines)}\n{proc.stderr.read()}")
        lines.append(line)
        if marker in line:
            return lines


def test_connect_by_device_code(installation, provider, client_id, person):
    not_connected(installation, provider, client_id, person)
    proc = postdesk(installation, "mailbox", "connect", "support")
    try:
        shown = read_until(proc, "enter the code")[-1]
        assert provider.verification_uri in shown
        user_code = shown.rsplit(" ", 1)[1].strip()
        provider.approve_device(user_code, person)
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert f"support: connected: scopes {SCOPE}" in out
    assert run(installation, "grant", "support")["state"] == "ok"
    shown = installation.json("mailbox", "show", "support")
    assert shown["oauth"]["state"] == "ok" and shown["oauth"]["granted_scope"] == SCOPE


def test_connect_by_loopback_redirect(installation, provider, client_id, person):
    not_connected(installation, provider, client_id, person)
    proc = postdesk(installation, "mailbox", "connect", "support", "--no-device")
    try:
        url = read_until(proc, provider.authorization_endpoint)[-1].strip()
        read_until(proc, "waiting for the sign-in")
        answer = requests.post(url, data={"username": person, "password": PASSWORD, "decision": "allow"},
                               allow_redirects=False, timeout=30)
        back = requests.get(answer.headers["Location"], timeout=30)  # what the browser does next
        assert "signed in" in back.text
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert f"support: connected: scopes {SCOPE}" in out


def test_connect_refused_at_the_consent_page_saves_nothing(installation, provider, client_id, person):
    not_connected(installation, provider, client_id, person)
    proc = postdesk(installation, "mailbox", "connect", "support", "--no-device")
    try:
        url = read_until(proc, provider.authorization_endpoint)[-1].strip()
        answer = requests.post(url, data={"decision": "deny"}, allow_redirects=False, timeout=30)
        requests.get(answer.headers["Location"], timeout=30)
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert "support: the sign-in was refused at the provider" in err
    assert installation.json("mailbox", "show", "support")["oauth"]["state"] == "not connected"
