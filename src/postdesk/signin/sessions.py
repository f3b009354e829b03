"""How long a sign-in lasts, and what ends it early.

- Lifetime: POSTDESK_SESSION_HOURS of inactivity (default 12; settings.py sets
  SESSION_COOKIE_AGE and saves the session on every request, so each page
  view moves the end forward).
- Browser exit: the session cookie lives only as long as the browser unless
  "keep me signed in" was ticked on the sign-in page (`remember`; applied by
  flow.complete).
- A changed password ends every other session of the member: Django keeps a
  hash of the password in each session and drops a session whose hash no
  longer matches (update_session_auth_hash keeps the one that changed it).
- Lost admin rights end every session of the member (`AdminRightsMiddleware`):
  each session remembers whether it was an admin's, and is signed out on its
  next request once the member no longer is one, however the right was taken
  (Django admin, a command, the database).
"""

from __future__ import annotations

from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

REMEMBER_FIELD = "remember"
_ADMIN_KEY = "postdesk_admin"


@receiver(user_logged_in, dispatch_uid="postdesk.signin.sessions.on_sign_in")
def on_sign_in(sender, request, user, **kwargs) -> None:
    if request is None or not hasattr(request, "session"):
        return
    request.session[_ADMIN_KEY] = user.is_superuser


class AdminRightsMiddleware:
    """Signs out a session opened by an admin whose admin rights were taken away."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated:
            was_admin = request.session.get(_ADMIN_KEY)
            if was_admin and not user.is_superuser:
                logout(request)
            elif was_admin is None or user.is_superuser != was_admin:
                request.session[_ADMIN_KEY] = user.is_superuser
        return self.get_response(request)
