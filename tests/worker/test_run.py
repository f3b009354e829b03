"""`postdesk run`: the web UI and the worker in one process.  The first start makes an
admin (its password printed once) and, unless --no-demo, a demo Maildir mailbox
whose five sample messages become four requests and one threaded reply; /metrics
shows what this process's worker fetched."""

from __future__ import annotations

import http.cookiejar
import re
import socket
import urllib.parse
import urllib.request

from tests.support.worker import RunProcess, http_get, metric, parse_metrics, wait_for
from tests.worker.helpers import FAST

PASSWORD_LINE = re.compile(r"^Log in as admin with the password (\S+)$", re.MULTILINE)


def printed_password(run: RunProcess) -> str | None:
    found = PASSWORD_LINE.findall("\n".join(run.lines))
    assert len(found) <= 1, run.output()
    return found[0] if found else None


def logs_in(url: str, username: str, password: str) -> bool:
    """The login form, as a browser posts it (CSRF cookie and token); True when it leads on."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(url + "login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "username": username, "password": password,
                                   "next": "/"}).encode()
    response = opener.open(urllib.request.Request(url + "login/", data=form, headers={"Referer": url + "login/"}),
                           timeout=10)
    return not response.geturl().endswith("/login/")  # a wrong password shows the form again


# /metrics is closed by default, loopback included: the scraper sends the token.
METRICS_TOKEN = "test-metrics-token"
WITH_METRICS = {**FAST, "POSTDESK_METRICS_TOKEN": METRICS_TOKEN}


def metrics_of(url: str) -> dict:
    status, text = http_get(url + "metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert status == 200, (status, text)
    return parse_metrics(text)


def test_first_start_without_demo_prints_the_admin_password_once(installation):
    with RunProcess(installation, "--no-demo", env=FAST) as run:
        run.wait_for_log(r"^Stop with Ctrl-C\.$")
        url = run.url
        password = printed_password(run)
        assert password, run.output()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url), url
        assert not run.matching(r"Demo mailbox"), run.output()
        assert logs_in(url, "admin", password)
        assert not logs_in(url, "admin", password + "x")
        code, seconds = run.stop()
    assert code == 0 and seconds < 5, (code, seconds, run.output())
    assert run.matching(r"^Postdesk stopped$"), run.output()
    assert installation.json("mailbox", "list") == []

    with RunProcess(installation, "--no-demo", env=FAST) as again:
        again.wait_for_log(r"^Stop with Ctrl-C\.$")
        assert printed_password(again) is None, again.output()
        assert not again.matching(r"password"), again.output()
        assert logs_in(again.url, "admin", password)  # still the first start's


def test_a_port_in_use_fails_the_start_and_the_next_start_still_shows_the_password(installation):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        failed = installation.run("run", "--port", busy.getsockname()[1], "--no-demo", check=False, env=FAST)
    assert failed.returncode != 0 and "cannot listen on 127.0.0.1:" in failed.stderr, (failed.stdout, failed.stderr)
    assert "password" not in failed.stdout

    with RunProcess(installation, "--no-demo", env=FAST) as run:
        run.wait_for_log(r"^Stop with Ctrl-C\.$")
        password = printed_password(run)
        assert password and logs_in(run.url, "admin", password), run.output()


def test_first_start_with_the_demo_mailbox_imports_the_samples_and_metrics_show_them(installation):
    with RunProcess(installation, env=WITH_METRICS) as run:
        run.wait_for_log(r"^Stop with Ctrl-C\.$")
        url, password = run.url, printed_password(run)
        assert password, run.output()
        assert run.matching(r"^Demo mailbox: \S*demo-maildir"), run.output()

        def imported():
            samples = metrics_of(url)
            return (metric(samples, "postdesk_messages_processed_total", mailbox="demo", outcome="created") == 4
                    and metric(samples, "postdesk_messages_processed_total", mailbox="demo", outcome="threaded") == 1
                    and samples)

        samples = wait_for(imported, 15, interval=0.2, what=run.output)
        assert metric(samples, "postdesk_messages_fetched_total", mailbox="demo") == 5
        assert metric(samples, "postdesk_mailbox_consecutive_failures", mailbox="demo") == 0
        assert metric(samples, "postdesk_intake_messages", status="processed") == 5
        code, seconds = run.stop()
    assert code == 0 and seconds < 5, (code, seconds, run.output())

    requests = installation.requests()
    assert len(requests) == 4, requests
    assert sorted(r["message_count"] for r in requests) == [1, 1, 1, 2]
    assert {r["mailbox"] for r in requests} == {"demo"}
    (demo,) = installation.json("mailbox", "list")
    assert demo["name"] == "demo" and demo["protocol"] == "maildir"

    with RunProcess(installation, env=WITH_METRICS) as again:  # no second admin, no second demo mailbox
        again.wait_for_log(r"^Stop with Ctrl-C\.$")
        assert printed_password(again) is None and not again.matching(r"Demo mailbox"), again.output()
        wait_for(lambda: metric(metrics_of(again.url), "postdesk_mailbox_last_success_timestamp_seconds",
                                mailbox="demo"), 5)
    assert len(installation.requests()) == 4
    assert len(installation.json("mailbox", "list")) == 1
