"""The member's own account page (/account/): their name and email, password, time zone
and signature; how they sign in (two factors, single sign-on), their open sessions,
ending one, and signing out everywhere else.  The rules are in postdesk.signin
(sessions, two_factor, sso) and postdesk.desk.profile (time zone, signature); two
factors and notifications have their own pages, linked from here.

A new password ends every other session of the member (Django drops a session whose
password hash no longer matches; update_session_auth_hash keeps this one: see
postdesk.signin.sessions).
"""

from __future__ import annotations

import zoneinfo
from functools import cache

from django import forms
from django.contrib import messages as flash
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from postdesk.desk import profile
from postdesk.signin import sessions, two_factor
from postdesk.web.sso import button_label
from postdesk.web.views import _nav

CURRENT = "account"


@cache
def _zone_choices() -> tuple[tuple[str, str], ...]:
    from django.conf import settings

    return (("", f"The server's time zone ({settings.TIME_ZONE})"), *((name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones())))


class DetailsForm(forms.Form):
    """Name, email, time zone and signature: what the member says about themselves."""

    first_name = forms.CharField(label="First name", max_length=150, required=False)
    last_name = forms.CharField(label="Last name", max_length=150, required=False)
    email = forms.EmailField(label="Email", required=False, help_text="where notifications go")
    time_zone = forms.ChoiceField(label="Time zone", required=False, help_text="times on the pages are shown in it")
    signature = forms.CharField(label="Signature", required=False, strip=False,
                                widget=forms.Textarea(attrs={"rows": 4}),
                                help_text="added under your replies (the mailbox's signature follows it)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = _zone_choices()

    def clean_time_zone(self) -> str:
        name = self.cleaned_data["time_zone"]
        if not profile.valid_time_zone(name):
            raise forms.ValidationError("not a time zone this server knows")
        return name


def _details_of(user) -> dict:
    mine = profile.profile_of(user)
    return {"first_name": user.first_name, "last_name": user.last_name, "email": user.email,
            "time_zone": mine.time_zone, "signature": mine.signature}


def _password_form(user, data=None) -> PasswordChangeForm:
    form = PasswordChangeForm(user, data)
    form.fields["old_password"].widget.attrs.pop("autofocus", None)  # the page opens on the details, not here
    return form


def _account_page(request, details: DetailsForm | None = None, password: PasswordChangeForm | None = None, status=200):
    context = {
        "current": CURRENT,
        "title": "Your account",
        "details_form": details or DetailsForm(initial=_details_of(request.user)),
        "password_form": password or _password_form(request.user),
        "password_usable": request.user.has_usable_password(),
        "sessions": sessions.open_sessions(request.user, current_key=request.session.session_key),
        "two_factor": two_factor.status(request.user),
        "sso_emails": [i.email for i in request.user.sso_identities.all()],
        "sso_label": button_label(),  # "" when single sign-on is off
        **_nav(request),
    }
    return render(request, "postdesk/account.html", context, status=status)


@require_GET
@login_required
def account(request):
    return _account_page(request)


@require_POST
@login_required
def save_details(request):
    form = DetailsForm(request.POST)
    if not form.is_valid():
        return _account_page(request, details=form, status=400)
    user, data = request.user, form.cleaned_data
    user.first_name, user.last_name, user.email = data["first_name"], data["last_name"], data["email"]
    user.save(update_fields=["first_name", "last_name", "email"])
    profile.save(user, time_zone=data["time_zone"], signature=data["signature"])
    flash.success(request, "Saved your details.")
    return redirect("postdesk_web:account")


@require_POST
@login_required
def change_password(request):
    form = _password_form(request.user, request.POST)
    if not form.is_valid():
        return _account_page(request, password=form, status=400)
    form.save()
    update_session_auth_hash(request, form.user)  # this browser stays signed in; every other session ends
    flash.success(request, "Changed your password. Your other sessions are signed out.")
    return redirect("postdesk_web:account")


@require_POST
@login_required
def end_session(request, pk: int):
    ended = sessions.end(request, pk, owner=request.user)
    if ended is None:
        flash.error(request, "That session had already ended.")
    elif not request.user.is_authenticated:  # it was this browser's own
        return redirect("postdesk_web:login")
    else:
        flash.success(request, f"Ended the session of {ended.browser}. It is signed out at its next request.")
    return redirect("postdesk_web:account")


@require_POST
@login_required
def end_other_sessions(request):
    ended = sessions.end_others(request)
    flash.success(request, f"Signed out everywhere else: {len(ended)} session{'s' if len(ended) != 1 else ''} ended.")
    return redirect("postdesk_web:account")
