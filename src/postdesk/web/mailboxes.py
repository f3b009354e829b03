"""Admin pages: mailboxes with their health, add and edit them, test their connection.

Admins only (user.is_superuser, what `postdesk staff add --admin` makes): an
anonymous visitor is sent to the login page, other staff get 403 on every page
and action, GET or POST.  The settings are applied, validated and audited by
postdesk.mailboxes, the same code as `postdesk mailbox add/edit/test`.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib import messages as flash
from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from postdesk import mailbox_settings, mailboxes
from postdesk.mailbox_settings import Setting
from postdesk.models import AuditEvent, Intake, Mailbox
from postdesk.outbound import acknowledge
from postdesk.web import oauth_connect
from postdesk.web.access import admin_required
from postdesk.web.views import _nav

CURRENT = "admin:mailboxes"  # marks the nav link of these pages
HISTORY = 20  # audit rows shown on a mailbox's page


# --- the form ------------------------------------------------------------------------


def form_field(setting: Setting) -> forms.Field:
    """The form field of one setting, from its row in the table."""
    common = {"label": setting.label, "help_text": setting.help, "required": setting.required,
              "initial": mailbox_settings.model_default(setting)}
    make = _FIELD_MAKERS[setting.kind]
    return make(setting, common)


def _max_length(setting: Setting) -> int | None:
    return Mailbox._meta.get_field(setting.stored_in).max_length


def _text_field(setting, common):
    if setting.widget == "textarea":
        return forms.CharField(strip=False, widget=forms.Textarea(attrs={"rows": 10}), **common)
    return forms.CharField(max_length=_max_length(setting), **common)


def _secret_field(setting, common):
    widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
    return forms.CharField(strip=False, widget=widget, **common)


def _int_field(setting, common):
    return forms.IntegerField(min_value=setting.minimum, max_value=setting.maximum, **common)


def _float_field(setting, common):
    return forms.FloatField(min_value=setting.minimum, max_value=setting.maximum, **common)


def _bool_field(setting, common):
    return forms.BooleanField(**{**common, "required": False})


def _choice_field(setting, common):
    return forms.ChoiceField(choices=setting.choices, **common)


def _user_field(setting, common):
    return forms.ModelChoiceField(queryset=get_user_model().objects.none(), empty_label="the general queue", **common)


_FIELD_MAKERS = {"text": _text_field, "secret": _secret_field, "int": _int_field, "float": _float_field,
                 "bool": _bool_field, "choice": _choice_field, "after": _choice_field, "user": _user_field}


@dataclass(frozen=True)
class Fieldset:
    """One group of the form, as the template draws it.  rows: (bound field, setting, hidden).
    A group that folds is a <details>, open when the mailbox uses it or it holds an error."""

    legend: str
    rows: list
    note: str | None
    hidden: bool
    folds: bool
    open: bool
    hint: str = ""


def _checked(value) -> bool:
    return value not in (None, False, "", "off")


def _same(value, default) -> bool:
    """A posted "50" is the default 50.0; blank is blank whatever its type."""
    if value in (None, "") or default in (None, ""):
        return value in (None, "") and default in (None, "")
    try:
        return float(value) == float(default)
    except (TypeError, ValueError):
        return str(value) == str(default)


def _changed_from_default(*names: str):
    """Open the section when one of these settings is not at its default (an admin changed it)."""
    def in_use(values) -> bool:
        return any(name in values and not _same(values.get(name), mailbox_settings.model_default(mailbox_settings.BY_NAME[name]))
                   for name in names)
    return in_use


def _always(values) -> bool:
    return True


# Every section but the first folds (a <details>); open on the page when in use, else
# folded so the form stays short.  A section holding an error always opens.
FOLDING = {
    "Connection": _always,
    "Sign-in": _always,
    "After import": _changed_from_default("folder", "after", "move_folder"),
    "Sending": lambda values: bool(values.get("smtp_host")) or _checked(values.get("smtp_same_as_fetch")),
    "Acknowledgement": lambda values: _checked(values.get("ack_enabled")),
    "Advanced": _changed_from_default("poll_interval", "pass_deadline", "size_limit"),
}
# What a folded section holds, after its name.
HINTS = {
    "Connection": "server, port, encryption, certificate",
    "Sign-in": "user name, password or OAuth2",
    "After import": "folder to read; keep, mark seen, move or delete",
    "Sending": "SMTP server, From, signature",
    "Acknowledgement": "an automatic answer to each new request",
    "Advanced": "how often, how long and how large",
}


class MailboxForm(forms.Form):
    """The settings of `postdesk mailbox add/edit`, one field each, made from
    postdesk.mailbox_settings.SETTINGS; `changes()` is what postdesk.mailboxes.add/edit
    take.  Secrets are never put back into the page.

    A field that does not apply to the mailbox's protocol or sign-in is rendered with
    `hidden` (still posted, so nothing changes by being hidden); mailbox-form.js hides
    and shows them as the protocol or sign-in is changed on the page."""

    default_ack_subject = acknowledge.DEFAULT_SUBJECT
    default_ack_body = acknowledge.DEFAULT_BODY
    # Shown under a fieldset's legend.
    NOTES = {"Acknowledgement": "postdesk/mailboxes/_ack_help.html"}

    def __init__(self, *args, mailbox: Mailbox | None = None, **kwargs):
        if mailbox is not None:
            kwargs.setdefault("initial", initial_for(mailbox))
        super().__init__(*args, **kwargs)
        self.mailbox = mailbox
        for setting in FORM_SETTINGS:
            self.fields[setting.name] = form_field(setting)
        User = get_user_model()
        self.fields["assign"].queryset = User.objects.filter(is_active=True).order_by(User.USERNAME_FIELD)
        self.fields["ack_subject"].help_text = f"blank: {acknowledge.DEFAULT_SUBJECT}; the request's tag is always added"
        self.fields["ack_body"].widget.attrs["placeholder"] = acknowledge.DEFAULT_BODY
        for setting in mailbox_settings.SECRETS:
            if mailbox is not None and getattr(mailbox, setting.stored_in):
                self.fields[setting.name].help_text = "a secret is set; leave blank to keep it" if setting.name != "password" \
                    else "a password is set; leave blank to keep it"

    def _chosen(self, name: str) -> str:
        """The protocol or sign-in the page is about: as posted, else as saved ("" on a new form: show all)."""
        if self.is_bound:
            return self.data.get(name, "") or (getattr(self.mailbox, name, "") if self.mailbox else "")
        return getattr(self.mailbox, name, "") if self.mailbox else ""

    def groups(self) -> list[Fieldset]:
        protocol, auth = self._chosen("protocol"), self._chosen("auth")
        values = self.data if self.is_bound else self.initial
        shown = []
        for legend in mailbox_settings.GROUPS:
            rows = [(self[s.name], s, not s.applies(protocol, auth) and not self[s.name].errors)
                    for s in FORM_SETTINGS if s.group == legend]
            if not rows:
                continue
            in_use = FOLDING.get(legend)
            shown.append(Fieldset(legend, rows, self.NOTES.get(legend), all(hidden for _, _, hidden in rows),
                                  folds=in_use is not None,
                                  open=in_use is None or in_use(values) or any(f.errors for f, _, _ in rows),
                                  hint=HINTS.get(legend, "")))
        return shown

    def changes(self) -> dict:
        data = self.cleaned_data
        changes = {}
        for setting in FORM_SETTINGS:
            value = data[setting.name]
            if setting.blank_keeps and value in (None, ""):
                continue  # blank: keep the current value (a secret, the pass deadline...)
            if setting.kind == "user":
                value = value.get_username() if value is not None else None
            changes[setting.name] = value
        if data["after"] != Mailbox.After.MOVE:
            changes.pop("move_folder", None)  # only "move" uses it; another policy keeps it as it was
        return changes

    def add_invalid(self, exc: mailboxes.InvalidSettings) -> None:
        for setting, message in exc.errors.items():
            self.add_error(setting if setting in self.fields else None, message)


# Every setting with a form field (the rest say why not: mailbox_settings.Setting.no_form).
FORM_SETTINGS = tuple(s for s in mailbox_settings.SETTINGS if s.form)


def initial_for(mailbox: Mailbox) -> dict:
    """The form's values for a saved mailbox (secrets left out: never sent back to the page)."""
    initial = {}
    for setting in FORM_SETTINGS:
        if setting.kind == "secret":
            continue
        value = getattr(mailbox, setting.stored_in + ("_id" if setting.kind == "user" else ""))
        initial[setting.name] = round(value / mailboxes.MB, 3) if setting.name == "size_limit" else value
    return initial


# --- pages ---------------------------------------------------------------------------


def _posted(request):
    """The form data of a POST (even an empty one: that is an invalid form, not a blank page)."""
    return request.POST if request.method == "POST" else None


def _page(request, template: str, context: dict, status: int = 200):
    return render(request, template, {"current": CURRENT, **context, **_nav(request)}, status=status)


def with_health(queryset):
    """Each mailbox with imported_today, waiting and quarantined counts.

    "Imported today" counts the Intake rows this mailbox fetched since local
    midnight (whatever became of them: new request, follow-up, duplicate or
    quarantine), because that is what the mailbox itself did; Message rows would
    miss duplicates and credit a message that came through two mailboxes to one."""
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return queryset.select_related("assign_to").annotate(
        imported_today=Count("intakes", filter=Q(intakes__fetched_at__gte=midnight)),
        quarantined=Count("intakes", filter=Q(intakes__status=Intake.Status.QUARANTINED)),
        # Stored but not yet a request: a backlog being worked through, or a stalled worker.
        waiting=Count("intakes", filter=Q(intakes__status=Intake.Status.PENDING)),
    )


@admin_required
def mailbox_list(request):
    rows = list(with_health(Mailbox.objects.order_by("name")))
    threshold = mailboxes.failing_after()
    for mailbox in rows:
        mailbox.failing = mailboxes.is_failing(mailbox, threshold)
        mailbox.warnings = mailboxes.warnings(mailbox)
        mailbox.fetching = mailboxes.fetching(mailbox)
    return _page(request, "postdesk/mailboxes/list.html", {"title": "Mailboxes", "rows": rows})


def _detail(request, mailbox: Mailbox, test_result: mailboxes.ConnectionResult | None = None):
    mailbox = with_health(Mailbox.objects.filter(pk=mailbox.pk)).get()
    settings_rows, sending_rows, ack_rows = [], [], []
    for setting in mailbox_settings.SETTINGS:
        if not setting.in_json or setting.name == "name" or not setting.applies(mailbox.protocol, mailbox.auth):
            continue
        value = setting.read(mailbox)
        if setting.group == "Acknowledgement":
            ack_rows.append((setting.label, _ack_shown(setting.name, value), setting.widget == "textarea"))
        else:
            (sending_rows if setting.group == "Sending" else settings_rows).append((setting.label, value))
    mailbox.failing = mailboxes.is_failing(mailbox)
    context = {
        "title": f"Mailbox {mailbox.name}",
        "mailbox": mailbox,
        "settings_rows": settings_rows,
        "sending_rows": sending_rows,
        "ack_rows": ack_rows,
        "warnings": mailboxes.warnings(mailbox),
        "fetching": mailboxes.fetching(mailbox),
        "test_result": test_result,
        "history": AuditEvent.objects.filter(target=mailboxes.target(mailbox)).select_related("actor").order_by("-id")[:HISTORY],
    }
    context["oauth"] = oauth_connect.panel(request, mailbox)
    return _page(request, "postdesk/mailboxes/detail.html", context)


def _ack_shown(name: str, value):
    """A blank template reads as the default it stands for."""
    if name == "ack_subject" and not value:
        return f"(default) {acknowledge.DEFAULT_SUBJECT}"
    if name == "ack_body" and not value:
        return f"(default)\n{acknowledge.DEFAULT_BODY}"
    return value


@admin_required
def mailbox_detail(request, pk: int):
    return _detail(request, get_object_or_404(Mailbox, pk=pk))


@admin_required
@require_POST
def mailbox_test(request, pk: int):
    # Shown on the mailbox's page straight away (not redirected to): the exact
    # failure is the point, and it is not worth keeping in the session.
    mailbox = get_object_or_404(Mailbox, pk=pk)
    return _detail(request, mailbox, test_result=mailboxes.test_connection(mailbox, actor=request.user))


@admin_required
@require_http_methods(["GET", "POST"])
def mailbox_add(request):
    form = MailboxForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            mailbox = mailboxes.add(form.changes(), actor=request.user)
        except mailboxes.InvalidSettings as exc:
            form.add_invalid(exc)
        else:
            flash.success(request, f"Added mailbox {mailbox.name}. Test its connection below.")
            return redirect("postdesk_web:mailbox_detail", pk=mailbox.pk)
    return _page(request, "postdesk/mailboxes/form.html", {"title": "Add a mailbox", "form": form, "mailbox": None})


@admin_required
@require_http_methods(["GET", "POST"])
def mailbox_edit(request, pk: int):
    mailbox = get_object_or_404(Mailbox.objects.select_related("assign_to"), pk=pk)
    form = MailboxForm(_posted(request), mailbox=mailbox)
    if request.method == "POST" and form.is_valid():
        try:
            mailboxes.edit(mailbox, form.changes(), actor=request.user)
        except mailboxes.InvalidSettings as exc:
            form.add_invalid(exc)
            mailbox.refresh_from_db()  # edit() set the rejected values on it; the page shows the saved ones
        else:
            flash.success(request, f"Saved mailbox {mailbox.name}.")
            return redirect("postdesk_web:mailbox_detail", pk=mailbox.pk)
    return _page(request, "postdesk/mailboxes/form.html", {"title": f"Edit mailbox {mailbox.name}", "form": form, "mailbox": mailbox})
