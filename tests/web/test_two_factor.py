"""Two-factor sign-in (postdesk.signin.two_factor, web/two_factor.py): who is asked for
a code, the code step (/login/code/) with its throttle and its limit of wrong codes,
recovery codes, enrolment on /account/two-factor/, turning off, the admin's reset,
and the requirement (POSTDESK_REQUIRE_2FA) on every page."""

from __future__ import annotations

import logging
import re
import threading
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone
from django_otp.oath import TOTP

from postdesk import settings as postdesk_settings
from postdesk.models import AuditEvent, RecoveryCode, SignInEvent, TotpDevice
from postdesk.signin import sessions, two_factor
from postdesk.signin.two_factor import Verdict

pytestmark = pytest.mark.django_db

NEXT = "/queue/all/"


# --- helpers -------------------------------------------------------------------------------


def code_of(user, at: float | None = None) -> str:
    """What the member's app shows now (or at `at`)."""
    device = TotpDevice.objects.get(user=user)
    totp = TOTP(device.bin_key, TotpDevice.STEP, 0, TotpDevice.DIGITS)
    totp.time = time.time() if at is None else at
    return f"{totp.token():06d}"


def fresh_code(user) -> str:
    """A code the device has not seen: forget the last step accepted (the tests
    use several codes within one 30-second step)."""
    TotpDevice.objects.filter(user=user).update(last_t=-1)
    return code_of(user)


def wrong_code(user) -> str:
    """Six digits that are none of the codes accepted now (a step either side)."""
    now = time.time()
    near = {code_of(user, at=now + offset) for offset in (-60, -30, 0, 30, 60)}
    return next(code for code in ("000000", "111111", "222222", "333333", "444444", "555555") if code not in near)


def wait_out_throttle(user) -> None:
    """As if the growing wait after the last wrong code had passed."""
    TotpDevice.objects.filter(user=user).update(throttling_failure_timestamp=timezone.now() - timedelta(days=1))


def enrol(user) -> list[str]:
    """Two factors on for `user`, as the account page does it; the recovery codes."""
    two_factor.start(user)
    done = two_factor.confirm(user, code_of(user))
    assert done.check.accepted
    return list(done.recovery_codes)


def password_step(username: str = "phil", password: str = "pw", next_url: str = NEXT) -> tuple[Client, object]:
    client = Client()
    response = client.post("/login/", {"username": username, "password": password, "next": next_url})
    return client, response


def at_code_step(username: str = "phil", next_url: str = NEXT) -> Client:
    client, response = password_step(username, next_url=next_url)
    assert response.status_code == 302 and response["Location"] == "/login/code/", response
    return client


def is_signed_in(client: Client) -> bool:
    return client.get(NEXT).status_code == 200


def signed_in_method(client: Client) -> str | None:
    return client.session.get(sessions.METHOD_KEY)


# --- who is asked for a code ---------------------------------------------------------------


def test_a_password_sign_in_asks_for_a_code_only_once_two_factors_are_on(staff):
    assert not two_factor.second_factor_needed(staff, "password")
    two_factor.start(staff)  # started, not confirmed: the seed is not asked for
    assert not two_factor.second_factor_needed(staff, "password")
    client, response = password_step()
    assert response["Location"] == NEXT and is_signed_in(client)
    enrol(staff)
    assert two_factor.second_factor_needed(staff, "password")


def test_single_sign_on_never_asks_for_a_local_code(staff):
    enrol(staff)
    assert not two_factor.second_factor_needed(staff, "sso")


@pytest.mark.parametrize("rule, staff_must, admin_must", [("off", False, False), ("admins", False, True), ("all", True, True)])
def test_who_must_enrol_per_setting(settings, staff, admin, rule, staff_must, admin_must):
    settings.POSTDESK_REQUIRE_2FA = rule
    assert two_factor.must_enrol(staff, "password") is staff_must
    assert two_factor.must_enrol(admin, "password") is admin_must
    assert not two_factor.must_enrol(admin, "sso")  # the identity provider owns the factors
    enrol(admin)
    assert not two_factor.must_enrol(admin, "password")


def test_a_bad_require_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("POSTDESK_REQUIRE_2FA", "everyone")
    with pytest.raises(ImproperlyConfigured, match="POSTDESK_REQUIRE_2FA must be off, admins or all"):
        postdesk_settings._require_2fa()
    monkeypatch.setenv("POSTDESK_REQUIRE_2FA", "Admins")
    assert postdesk_settings._require_2fa() == "admins"
    monkeypatch.delenv("POSTDESK_REQUIRE_2FA")
    assert postdesk_settings._require_2fa() == "off"


# --- the code step -------------------------------------------------------------------------


def test_password_then_code_signs_in(staff):
    enrol(staff)
    client = at_code_step()
    assert not is_signed_in(client)  # the password alone signs no one in
    assert 'name="code"' in client.get("/login/code/").content.decode()
    response = client.post("/login/code/", {"code": fresh_code(staff)})
    assert response.status_code == 302 and response["Location"] == NEXT
    assert is_signed_in(client) and signed_in_method(client) == "password+totp"


def test_without_a_pending_sign_in_the_code_page_sends_to_the_password(client, staff):
    enrol(staff)
    for response in (client.get("/login/code/"), client.post("/login/code/", {"code": code_of(staff)})):
        assert response.status_code == 302 and response["Location"] == "/login/"
    assert not is_signed_in(client)


def test_a_wrong_code_is_audited_logged_and_throttled(settings, staff, caplog):
    caplog.set_level(logging.INFO, logger="postdesk.signin")
    settings.OTP_TOTP_THROTTLE_FACTOR = 3600  # the wait after one wrong code outlasts the test
    enrol(staff)
    client = at_code_step()
    caplog.clear()
    response = client.post("/login/code/", {"code": wrong_code(staff)})
    assert response.status_code == 200 and "That code is not right" in response.content.decode()
    event = SignInEvent.objects.get(kind=SignInEvent.CODE_FAILED)
    assert event.username == "phil" and event.user == staff and event.method == "password" and "1 of 5" in event.detail
    assert [r.getMessage() for r in caplog.records if r.name == "postdesk.signin"] == ["sign-in code refused"]
    # Right away, even the right code is not looked at (django-otp's growing delay),
    # and the refusal is not counted as a wrong code.
    response = client.post("/login/code/", {"code": fresh_code(staff)})
    assert response.status_code == 429 and "wait" in response.content.decode()
    assert not is_signed_in(client) and SignInEvent.objects.filter(kind=SignInEvent.CODE_FAILED).count() == 1
    wait_out_throttle(staff)
    assert client.post("/login/code/", {"code": fresh_code(staff)})["Location"] == NEXT
    assert is_signed_in(client)


def test_the_delay_grows_with_each_wrong_code(staff):
    enrol(staff)
    device = TotpDevice.objects.get(user=staff)
    assert device.get_throttle_factor() == 1
    for failures, wait in ((1, 1), (2, 2), (3, 4), (4, 8)):
        wait_out_throttle(staff)
        assert two_factor.check_code(staff, "not-a-code").verdict is Verdict.WRONG
        device.refresh_from_db()
        allowed, info = device.verify_is_allowed()
        assert not allowed and info["failure_count"] == failures
        assert info["locked_until"] - device.throttling_failure_timestamp == timedelta(seconds=wait)


def test_the_delay_stops_at_the_password_throttles_longest_wait(staff, settings):
    """Someone who knows the password must not lock the real member out for years with wrong codes."""
    enrol(staff)
    device = TotpDevice.objects.get(user=staff)
    device.throttling_failure_count = 40  # 2**39 seconds uncapped
    device.throttling_failure_timestamp = timezone.now() - settings.POSTDESK_SIGNIN_MAX_WAIT + timedelta(seconds=30)
    device.save()
    assert device.verify_is_allowed()[0] is False
    device.throttling_failure_timestamp -= timedelta(seconds=31)
    device.save()
    assert device.verify_is_allowed() == (True, None)


def test_five_wrong_codes_drop_the_pending_sign_in(staff):
    enrol(staff)
    client = at_code_step()
    wrong = "abcd-efgh-jkmn"
    for tries_left in (4, 3, 2, 1):
        wait_out_throttle(staff)
        page = client.post("/login/code/", {"code": wrong}).content.decode()
        assert f"{tries_left} tr{'y' if tries_left == 1 else 'ies'} left" in page
    wait_out_throttle(staff)
    response = client.post("/login/code/", {"code": wrong})
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert "Too many wrong codes" in client.get("/login/").content.decode()
    wait_out_throttle(staff)
    assert client.post("/login/code/", {"code": fresh_code(staff)})["Location"] == "/login/"  # gone: password first
    assert not is_signed_in(client)
    assert SignInEvent.objects.filter(kind=SignInEvent.CODE_FAILED, username="phil").count() == 5
    wait_out_throttle(staff)
    client = at_code_step()  # a new sign-in starts counting afresh
    assert client.post("/login/code/", {"code": fresh_code(staff)})["Location"] == NEXT


def test_a_recovery_code_signs_in_once_and_says_how_many_are_left(staff):
    codes = enrol(staff)
    client = at_code_step()
    response = client.post("/login/code/", {"code": codes[0].upper().replace("-", " ")})  # as typed from paper
    assert response["Location"] == NEXT and signed_in_method(client) == "password+recovery"
    assert "9 recovery codes left" in client.get(NEXT).content.decode()
    again = at_code_step()
    page = again.post("/login/code/", {"code": codes[0]}).content.decode()
    assert "That code is not right" in page and not is_signed_in(again)
    wait_out_throttle(staff)
    assert again.post("/login/code/", {"code": codes[1]})["Location"] == NEXT


def test_a_code_is_accepted_for_one_step_only(staff):
    enrol(staff)
    client = at_code_step()
    code = fresh_code(staff)
    assert client.post("/login/code/", {"code": code})["Location"] == NEXT
    thief = at_code_step()
    # The same code again (seen over a shoulder): refused, even while its step lasts.
    assert two_factor.check_code(staff, code).verdict is Verdict.WRONG
    wait_out_throttle(staff)
    page = thief.post("/login/code/", {"code": code}).content.decode()
    assert "That code is not right" in page and not is_signed_in(thief)


def check_at(user, offset: int) -> Verdict:
    """The verdict on the code of `offset` seconds from now, checked within the step it
    was made in (a check that straddles a step boundary is done again)."""
    while True:
        TotpDevice.objects.filter(user=user).update(last_t=-1)
        wait_out_throttle(user)
        step = int(time.time()) // TotpDevice.STEP
        verdict = two_factor.check_code(user, code_of(user, at=time.time() + offset)).verdict
        if int(time.time()) // TotpDevice.STEP == step:
            return verdict


def test_codes_a_step_either_side_are_accepted_two_away_are_not(staff):
    enrol(staff)
    for offset, verdict in ((-60, Verdict.WRONG), (60, Verdict.WRONG), (-30, Verdict.ACCEPTED), (30, Verdict.ACCEPTED)):
        assert check_at(staff, offset) is verdict, offset


def test_the_page_asked_for_is_opened_if_it_is_ours(staff):
    enrol(staff)
    client = at_code_step(next_url="https://evil.example/phish")
    assert client.post("/login/code/", {"code": fresh_code(staff)})["Location"] == "/"
    client = at_code_step(next_url="/requests/1/")
    assert client.post("/login/code/", {"code": fresh_code(staff)})["Location"] == "/requests/1/"


# --- enrolment -----------------------------------------------------------------------------


def secret_on(page: str) -> bytes:
    from base64 import b32decode

    grouped = re.search(r'<code id="totp-secret" class="secret">([A-Z2-7 ]+)</code>', page).group(1)
    plain = grouped.replace(" ", "")
    return b32decode(plain + "=" * (-len(plain) % 8))


def test_enrol_confirm_and_the_recovery_codes_are_shown_once(logged_in, staff):
    page = logged_in.get("/account/two-factor/").content.decode()
    assert "Off:" in page and 'value="start"' in page
    assert logged_in.post("/account/two-factor/", {"action": "start"})["Location"] == "/account/two-factor/"
    response = logged_in.get("/account/two-factor/")
    page = response.content.decode()
    assert '<svg' in page and 'class="qr"' in page and "Postdesk" in page and "phil" in page
    assert "style=" not in page.split('<svg', 1)[1].split("</svg>")[0]  # nothing the CSP would block
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    key = secret_on(page)
    totp = TOTP(key)
    response = logged_in.post("/account/two-factor/", {"action": "confirm", "code": f"{totp.token():06d}"})
    page = response.content.decode()
    codes = re.findall(r"<li><code>([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})</code></li>", page)
    assert len(codes) == 10 and len(set(codes)) == 10 and "shown only this once" in page
    assert AuditEvent.objects.filter(kind="2fa.enabled", target="staff phil", actor=staff).count() == 1
    page = logged_in.get("/account/two-factor/").content.decode()
    assert "On:" in page and "10 recovery codes left" in page
    assert not any(code in page for code in codes)
    # At rest: neither the seed nor a recovery code is in the database in the clear.
    device = TotpDevice.objects.get(user=staff)
    assert key.hex() not in device.encrypted_key and device.confirmed
    stored = " ".join(RecoveryCode.objects.filter(user=staff).values_list("digest", flat=True))
    assert not any(code.replace("-", "") in stored or code in stored for code in codes)


def test_a_wrong_confirmation_code_leaves_it_off(logged_in, staff):
    logged_in.post("/account/two-factor/", {"action": "start"})
    page = logged_in.post("/account/two-factor/", {"action": "confirm", "code": "12345"}).content.decode()
    assert "That code is not right" in page and 'id="totp-secret"' in page
    assert not two_factor.is_on(staff) and not AuditEvent.objects.filter(kind="2fa.enabled").exists()


def test_an_unconfirmed_seed_cannot_sign_in(staff):
    enrolment = two_factor.start(staff)
    assert enrolment is not None
    assert two_factor.check_code(staff, code_of(staff)).verdict is Verdict.WRONG  # only confirmed devices count
    client, response = password_step()
    assert response["Location"] == NEXT  # not asked, and no code step to use it in
    assert client.get("/login/code/")["Location"] == "/login/"


def test_turning_on_again_needs_turning_off_first(logged_in, staff):
    enrol(staff)
    logged_in.post("/account/two-factor/", {"action": "start"})
    assert TotpDevice.objects.get(user=staff).confirmed
    assert "turn it off first" in logged_in.get("/account/two-factor/").content.decode()


def test_cancel_an_enrolment(logged_in, staff):
    logged_in.post("/account/two-factor/", {"action": "start"})
    logged_in.post("/account/two-factor/", {"action": "cancel"})
    assert not TotpDevice.objects.filter(user=staff).exists()


def test_new_recovery_codes_replace_the_old_ones(logged_in, staff):
    old = enrol(staff)
    refused = logged_in.post("/account/two-factor/", {"action": "recovery_codes", "code": old[0]}).content.decode()
    assert "That code is not right" in refused  # a current app code is asked for
    wait_out_throttle(staff)
    page = logged_in.post("/account/two-factor/", {"action": "recovery_codes", "code": fresh_code(staff)}).content.decode()
    new = re.findall(r"<li><code>([0-9a-z-]{14})</code></li>", page)
    assert len(new) == 10 and not set(new) & set(old)
    assert AuditEvent.objects.filter(kind="2fa.recovery_codes", target="staff phil").count() == 1
    assert two_factor.check_code(staff, old[1]).verdict is Verdict.WRONG
    wait_out_throttle(staff)
    assert two_factor.check_code(staff, new[1]).verdict is Verdict.ACCEPTED


def test_turn_off_with_the_password_or_a_code(logged_in, staff):
    enrol(staff)
    page = logged_in.post("/account/two-factor/", {"action": "off", "password": "wrong"}).content.decode()
    assert "not right" in page and two_factor.is_on(staff)
    wait_out_throttle(staff)
    response = logged_in.post("/account/two-factor/", {"action": "off", "password": "pw"})
    assert response["Location"] == "/account/two-factor/" and not two_factor.is_on(staff)
    assert not RecoveryCode.objects.filter(user=staff).exists()
    enrol(staff)
    logged_in.post("/account/two-factor/", {"action": "off", "code": fresh_code(staff)})
    assert not two_factor.is_on(staff)
    assert AuditEvent.objects.filter(kind="2fa.disabled", target="staff phil", actor=staff).count() == 2
    client, response = password_step()
    assert response["Location"] == NEXT


def test_turn_off_is_refused_while_required(settings, logged_in, staff):
    enrol(staff)
    settings.POSTDESK_REQUIRE_2FA = "all"
    page = logged_in.get("/account/two-factor/").content.decode()
    assert "cannot be turned off" in page and 'value="off"' not in page
    page = logged_in.post("/account/two-factor/", {"action": "off", "password": "pw"}).content.decode()
    assert "requires two-factor sign-in" in page and two_factor.is_on(staff)


def test_the_account_page_needs_a_sign_in(client):
    assert client.get("/account/two-factor/")["Location"].startswith("/login/")


# --- the admin's reset ---------------------------------------------------------------------


def test_reset_2fa_on_the_command_line_ends_nothing_else(staff, logged_in, capsys):
    enrol(staff)
    call_command("staff", "reset-2fa", "phil")
    assert "reset two-factor sign-in of phil" in capsys.readouterr().out
    assert not TotpDevice.objects.filter(user=staff).exists() and not RecoveryCode.objects.filter(user=staff).exists()
    assert AuditEvent.objects.filter(kind="2fa.reset", target="staff phil", actor=None).count() == 1
    assert is_signed_in(logged_in)  # the member's sessions stay open
    client, response = password_step()
    assert response["Location"] == NEXT  # the password alone, until they enrol again
    call_command("staff", "reset-2fa", "phil")
    assert "has no two-factor sign-in" in capsys.readouterr().out
    with pytest.raises(CommandError, match="no staff member 'nobody'"):
        call_command("staff", "reset-2fa", "nobody")


def test_an_admin_resets_from_the_web(as_admin, admin, staff):
    enrol(staff)
    staff_client = Client()
    staff_client.force_login(staff)
    assert staff_client.post("/staff/phil/reset-2fa/").status_code == 403
    assert as_admin.get("/staff/phil/reset-2fa/").status_code == 405
    response = as_admin.post("/staff/phil/reset-2fa/", {"next": "/staff/lockouts/"})
    assert response["Location"] == "/staff/lockouts/" and not two_factor.is_on(staff)
    assert AuditEvent.objects.filter(kind="2fa.reset", target="staff phil", actor=admin).count() == 1
    assert as_admin.post("/staff/nobody/reset-2fa/").status_code == 404
    assert as_admin.post("/staff/phil/reset-2fa/", {"next": "https://evil.example/"})["Location"] == "/"


# --- the requirement on every page ---------------------------------------------------------


def test_a_member_who_must_enrol_sees_only_the_enrolment_page(settings, staff):
    settings.POSTDESK_REQUIRE_2FA = "all"
    client, response = password_step()
    assert response["Location"] == NEXT  # signed in ...
    for path in (NEXT, "/", "/requests/1/", "/admin/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"] == "/account/two-factor/", path
    page = client.get("/account/two-factor/").content.decode()
    assert "requires two-factor sign-in" in page
    assert client.get("/static/postdesk/app.css").status_code == 200
    client.post("/account/two-factor/", {"action": "start"})
    client.post("/account/two-factor/", {"action": "confirm", "code": code_of(staff)})
    assert is_signed_in(client)  # ... and free to go once enrolled
    assert client.post("/logout/").status_code == 302


def test_sign_out_stays_open_to_a_member_who_must_enrol(settings, staff):
    settings.POSTDESK_REQUIRE_2FA = "all"
    client, _ = password_step()
    assert client.post("/logout/")["Location"] == "/login/"
    assert client.get(NEXT)["Location"].startswith("/login/")


def test_the_requirement_for_admins_leaves_other_staff_alone(settings, staff, admin):
    settings.POSTDESK_REQUIRE_2FA = "admins"
    client, _ = password_step()
    assert is_signed_in(client)
    client, _ = password_step("ada")
    assert client.get(NEXT)["Location"] == "/account/two-factor/"


def test_single_sign_on_sessions_are_exempt_from_the_requirement(settings, staff):
    settings.POSTDESK_REQUIRE_2FA = "all"
    client = Client()
    client.force_login(staff)
    session = client.session
    session[sessions.METHOD_KEY] = "sso"
    session.save()
    assert is_signed_in(client)


# --- two at once ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_same_code_sent_twice_at_once_passes_once(staff):
    """The device row is locked while a code is checked (PostgreSQL: SELECT ... FOR
    UPDATE; SQLite takes the write lock at BEGIN IMMEDIATE, so it never races)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises every writing transaction already")
    codes = enrol(staff)
    code = fresh_code(staff)
    for attempt in (code, codes[0]):
        barrier = threading.Barrier(2)
        verdicts = []

        def check(attempt=attempt, barrier=barrier, verdicts=verdicts):
            try:
                barrier.wait()
                verdicts.append(two_factor.check_code(staff, attempt).verdict)
            finally:
                connection.close()

        threads = [threading.Thread(target=check) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(v.value for v in verdicts) == ["accepted", "wrong"], attempt
        wait_out_throttle(staff)
