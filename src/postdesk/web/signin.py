"""The sign-in pages: the password form, and the step after it.

The rules are in postdesk.signin (flow, throttle, two_factor, sso); these views
only show forms and follow the flow's answer.
"""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.shortcuts import redirect

from postdesk.signin import flow, sso
from postdesk.signin.sessions import REMEMBER_FIELD
from postdesk.web import sso as sso_pages


class SignInForm(AuthenticationForm):
    """Django's form; the flow decides what a right password leads to."""

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if sso.passwords_off_for(user):  # POSTDESK_SSO_PASSWORDS=off, and the member is linked
            raise ValidationError(f"This account signs in with single sign-on (“{sso.config().label}”).",
                                  code="sso_only")


class SignInView(auth_views.LoginView):
    template_name = "postdesk/login.html"
    form_class = SignInForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "sso_label": sso_pages.button_label()}

    def form_valid(self, form):
        remember = self.request.POST.get(REMEMBER_FIELD) == "on"
        next_url = self.get_success_url()
        step = flow.first_factor_passed(self.request, form.get_user(), method="password", remember=remember, next_url=next_url)
        if step is flow.Step.CODE_NEEDED:
            return redirect("postdesk_web:signin_code")
        return redirect(next_url)


def admin_sign_in(request):
    """/admin/login/ goes through the same steps as /login/: the Django admin's own
    form would sign in with a password alone."""
    target = request.GET.get("next") or "/admin/"
    response = redirect("postdesk_web:login")
    response["Location"] += "?" + _query(next=target)
    return response


def _query(**params) -> str:
    from urllib.parse import urlencode

    return urlencode(params)
