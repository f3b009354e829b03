"""The admins' sign-in page (/staff/signins/): the log newest first, paginated, with
filters in the URL; the current lockouts; every member's open sessions, with an
"End" that is audited."""

from __future__ import annotations

import re

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.test import Client

from postdesk.models import AuditEvent, SignInEvent, StaffSession
from postdesk.signin import audit
from postdesk.web import signins

pytestmark = pytest.mark.django_db

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
EDGE = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87")


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def signed_in(username: str, password: str = "pw", agent: str = FIREFOX, address: str = "203.0.113.7") -> Client:
    client = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=address)
    assert client.post("/login/", {"username": username, "password": password}).status_code == 302
    return client


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def log_cells(page: str) -> list[list[str]]:
    """The cells of each row of the sign-in log table, as text."""
    table = page.split('<table class="requests signins">')[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S)
    return [[text(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)] for row in rows]


def log_rows(page: str) -> list[str]:
    return [" ".join(cell for cell in row if cell) for row in log_cells(page)]


def test_for_admins_only(client, logged_in):
    assert logged_in.get("/staff/signins/").status_code == 403
    assert logged_in.post("/staff/signins/sessions/1/end/").status_code == 403
    logged_in.logout()
    assert client.get("/staff/signins/")["Location"].startswith("/login/")


def test_the_log_shows_who_when_where_browser_method_and_detail_newest_first(admin, staff):
    phil = Client(HTTP_USER_AGENT=EDGE, REMOTE_ADDR="198.51.100.9")
    phil.post("/login/", {"username": "phil", "password": "wrong"})
    phil.post("/login/", {"username": "phil", "password": "pw"})
    ada = signed_in("ada")
    rows = log_rows(ada.get("/staff/signins/").content.decode())
    assert len(rows) == 3
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC signed in ada 203\.0\.113\.7 Firefox 128 on Linux password", rows[0])
    assert rows[1].endswith("signed in phil 198.51.100.9 Edge 126 on Windows password")
    assert rows[2].endswith("failed phil 198.51.100.9 Edge 126 on Windows — 1 in a row")


def test_filters_by_kind_user_and_address_in_a_shareable_url(as_admin, staff):
    SignInEvent.objects.all().delete()  # as_admin's own sign-in
    audit.record(audit.FAILED, username="phil")
    SignInEvent.objects.filter(username="phil").update(address="198.51.100.9")
    audit.record(audit.FAILED, username="mallory")
    audit.record(audit.SIGNED_OUT, username="phil")

    def what_who(query: str) -> list[tuple[str, str]]:
        return [(row[1], row[2]) for row in log_cells(as_admin.get("/staff/signins/" + query).content.decode())]

    assert what_who("?kind=failed") == [("failed", "mallory (no account)"), ("failed", "phil (no account)")]
    assert what_who("?user=PHI") == [("signed out", "phil (no account)"), ("failed", "phil (no account)")]
    assert what_who("?address=198.51.100.") == [("failed", "phil (no account)")]
    assert what_who("?kind=failed&user=phil") == [("failed", "phil (no account)")]
    assert len(what_who("?kind=nonsense")) == 3  # an unknown kind filters nothing


def test_pages_keep_the_filters(as_admin):
    for n in range(signins.PAGE_SIZE + 5):
        audit.record(audit.FAILED, username=f"guess{n}")
    page = as_admin.get("/staff/signins/?kind=failed&user=guess").content.decode()
    assert len(log_rows(page)) == signins.PAGE_SIZE
    assert 'href="?kind=failed&amp;user=guess&amp;page=2"' in page
    second = as_admin.get("/staff/signins/?kind=failed&user=guess&page=2").content.decode()
    assert len(log_rows(second)) == 5 and "guess0" in second


def test_shows_the_current_lockouts_with_a_link_to_unlock(as_admin, staff):
    robber = Client(REMOTE_ADDR="192.0.2.66")
    for _ in range(5):
        robber.post("/login/", {"username": "phil", "password": "wrong"})
    page = as_admin.get("/staff/signins/").content.decode()
    locked = page.split('id="lockouts-title"')[1].split("</section>")[0]
    assert "account <strong>phil</strong>: 5 failures" in locked and "address <strong>192.0.2.66</strong>" in locked
    assert 'href="/staff/lockouts/"' in locked and "UTC" in locked


def test_the_admin_nav_links_here(as_admin):
    nav = as_admin.get("/staff/signins/").content.decode().split('aria-label="Administration"')[1].split("</nav>")[0]
    assert 'href="/staff/lockouts/"' in nav and '<a href="/staff/signins/" aria-current="page">Sign-ins</a>' in nav


def test_every_members_open_sessions_and_an_audited_end(admin, staff):
    phil = signed_in("phil", agent=EDGE, address="198.51.100.9")
    ada = signed_in("ada")
    page = ada.get("/staff/signins/").content.decode()
    open_part = page.split('id="sessions-title"')[1]
    assert "phil" in open_part and "Edge 126 on Windows" in open_part and "198.51.100.9" in open_part
    assert open_part.count(">End</button>") == 1  # not the admin's own (Log out is for that)
    phils = StaffSession.objects.get(user=staff)
    response = ada.post(f"/staff/signins/sessions/{phils.pk}/end/", follow=True)
    assert "Ended the session of phil (Edge 126 on Windows)." in response.content.decode()
    assert phil.get("/queue/all/").status_code == 302  # signed out
    event = AuditEvent.objects.get(kind="signin.session_ended")
    assert (event.actor, event.target, event.detail) == (admin, "session of phil", "Edge 126 on Windows, 198.51.100.9")
    logged = SignInEvent.objects.get(kind="session_ended")
    assert logged.user == staff and logged.detail.startswith("ended by ada")


def test_ending_a_session_that_is_gone_says_so(as_admin):
    response = as_admin.post("/staff/signins/sessions/999/end/", follow=True)
    assert "That session had already ended." in response.content.decode()
    assert not AuditEvent.objects.exists()


def test_an_admin_ending_their_own_session_is_signed_out(admin):
    ada = signed_in("ada")
    own = StaffSession.objects.get(user=admin)
    response = ada.post(f"/staff/signins/sessions/{own.pk}/end/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert ada.get("/staff/signins/")["Location"].startswith("/login/")
    assert not StaffSession.objects.exists()
    assert AuditEvent.objects.get(kind="signin.session_ended").actor == admin


def test_the_staff_list_says_how_each_member_signs_in_and_resets_a_lost_phone(client):
    from postdesk.models import SsoIdentity, TotpDevice
    from postdesk.signin import two_factor

    ada = User.objects.create_superuser("ada", "ada@example.com", "pw")
    phil = User.objects.create_user("phil", "phil@example.com", "pw")
    TotpDevice.objects.create(user=phil, name="phone", encrypted_key="x", confirmed=True)
    SsoIdentity.objects.create(user=ada, issuer="https://idp.example", subject="s1", email="ada@example.com")
    client.force_login(ada)
    page = client.get("/staff/signins/")
    rows = {m.username: m for m in page.context["members"]}
    assert rows["ada"].admin and rows["ada"].sso and rows["ada"].last_signed_in is not None
    assert rows["phil"].two_factor and not rows["phil"].sso and rows["phil"].last_signed_in is None
    assert 'action="/staff/phil/reset-2fa/"' in page.content.decode()
    assert 'action="/staff/ada/reset-2fa/"' not in page.content.decode()
    answer = client.post("/staff/phil/reset-2fa/", {"next": "/staff/signins/"})
    assert answer.status_code == 302 and answer.url == "/staff/signins/"
    assert not two_factor.status(phil).on


def test_the_account_page_says_how_the_member_signs_in(client):
    phil = User.objects.create_user("phil", "phil@example.com", "pw")
    client.force_login(phil)
    page = client.get("/account/").content.decode()
    assert "Two-factor sign-in" in page and 'href="/account/two-factor/"' in page and "Set up" in page


def test_staff_list_says_who_has_two_factors_and_single_sign_on():
    import io
    import json

    from django.core.management import call_command

    from postdesk.models import SsoIdentity, TotpDevice

    ada = User.objects.create_superuser("ada", "ada@example.com", "pw")
    phil = User.objects.create_user("phil", "phil@example.com", "pw")
    TotpDevice.objects.create(user=phil, name="phone", encrypted_key="x", confirmed=True)
    SsoIdentity.objects.create(user=ada, issuer="https://idp.example", subject="s1", email="ada@example.com")
    out = io.StringIO()
    call_command("staff", "list", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("ada") and lines[0].endswith("(admin, sso)")
    assert lines[1].startswith("phil") and lines[1].endswith("(2fa)")
    out = io.StringIO()
    call_command("staff", "list", "--json", stdout=out)
    rows = {r["username"]: r for r in json.loads(out.getvalue())}
    assert rows["phil"]["two_factor"] and not rows["phil"]["sso"] and rows["phil"]["last_signed_in"] is None
