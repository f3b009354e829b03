"""Admin pages: mailboxes with their health, add and edit them, test their connection.

Admins only (user.is_superuser, what `postdesk staff add --admin` makes): an
anonymous visitor is sent to the login page, other staff get 403 on every page
and action, GET or POST.  The settings are applied, validated and audited by
postdesk.mailboxes, the same code as `postdesk mailbox add/edit/test`.
"""

from __future__ import annotations


from django import forms
from django.contrib import messages as flash
from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from postdesk import mailboxes
from postdesk.models import AuditEvent, Intake, Mailbox
from postdesk.outbound import acknowledge
from postdesk.web import oauth_connect
from postdesk.web.access import admin_required
from postdesk.web.views import _nav

CURRENT = "admin:mailboxes"  # marks the nav link of these pages
HISTORY = 20  # audit rows shown on a mailbox's page


# --- the form ------------------------------------------------------------------------


class MailboxForm(forms.Form):
    """The settings of `postdesk mailbox add/edit`, one field each; `changes()` is what
    postdesk.mailboxes.add/edit take.  The password is never put back into the page."""

    name = forms.CharField(max_length=100)
    address = forms.CharField(max_length=254, required=False, help_text="the address customers write to")
    protocol = forms.ChoiceField(choices=Mailbox.Protocol.choices)
    enabled = forms.BooleanField(required=False, initial=True, help_text="off: fetching leaves it alone")
    host = forms.CharField(max_length=255, required=False)
    port = forms.IntegerField(min_value=1, max_value=65535, required=False, help_text="blank: the protocol's usual port")
    security = forms.ChoiceField(choices=Mailbox.Security.choices, initial=Mailbox.Security.TLS)
    verify_tls = forms.BooleanField(required=False, initial=True, label="Verify the server's certificate",
                                    help_text="turning this off is shown as a warning everywhere")
    ca_file = forms.CharField(max_length=1024, required=False, label="CA file (PEM)",
                              help_text="trust this CA for the server's certificate (a path on the server)")
    username = forms.CharField(max_length=255, required=False)
    password = forms.CharField(required=False, strip=False,
                               widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}))
    path = forms.CharField(max_length=1024, required=False, label="Maildir directory", help_text="Maildir only")
    folder = forms.CharField(max_length=255, initial="INBOX", help_text="IMAP folder or Maildir++ subfolder to read")
    after = forms.ChoiceField(choices=Mailbox.After.choices, initial=Mailbox.After.MOVE, label="After import",
                              help_text="POP3 can only keep or delete")
    move_folder = forms.CharField(max_length=255, required=False, initial="Imported", label="Move to folder",
                                  help_text="with “move to a folder”")
    assign = forms.ModelChoiceField(queryset=None, required=False, empty_label="the general queue",
                                    label="New requests go to")
    poll_interval = forms.IntegerField(min_value=1, initial=60, label="Poll interval (seconds)")
    pass_deadline = forms.IntegerField(min_value=mailboxes.MIN_PASS_DEADLINE, initial=600, required=False,
                                       label="Pass deadline (seconds)",
                                       help_text="a whole fetch pass ends by then, however slowly the server answers; "
                                                 "what was stored stays, the rest comes with the next pass (blank: unchanged, 600 for a new mailbox)")
    size_limit = forms.FloatField(min_value=0.001, initial=50, label="Size limit (MB)",
                                  help_text="a bigger message is left on the server (its header is kept in the quarantine); "
                                            "at most POSTDESK_MAX_MESSAGE_MB")
    # Sending: acknowledgements and replies.
    smtp_same_as_fetch = forms.BooleanField(required=False, label="Send through the fetching server with its login",
                                            help_text="IMAP and POP3 only: its host, user name and password, with "
                                                      "STARTTLS (or TLS when fetching uses TLS); the fields below are then not used")
    smtp_host = forms.CharField(max_length=255, required=False, label="SMTP server")
    smtp_port = forms.IntegerField(min_value=1, max_value=65535, required=False, label="SMTP port",
                                   help_text="blank: 465 with implicit TLS, 587 with STARTTLS, 25 without")
    smtp_security = forms.ChoiceField(choices=Mailbox.Security.choices, initial=Mailbox.Security.STARTTLS,
                                      label="SMTP security")
    smtp_verify_tls = forms.BooleanField(required=False, initial=True, label="Verify the SMTP server's certificate",
                                         help_text="turning this off is shown as a warning everywhere")
    smtp_ca_file = forms.CharField(max_length=1024, required=False, label="SMTP CA file (PEM)",
                                   help_text="trust this CA for the SMTP server's certificate (a path on the server)")
    smtp_username = forms.CharField(max_length=255, required=False, label="SMTP user name")
    smtp_password = forms.CharField(required=False, strip=False, label="SMTP password",
                                    widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}))
    from_address = forms.CharField(max_length=254, required=False, label="From address",
                                   help_text="blank: the mailbox's address")
    from_name = forms.CharField(max_length=255, required=False, label="From name",
                                help_text="shown to customers, e.g. “Example Support”; also {{ mailbox_name }}")
    sent_folder = forms.CharField(max_length=255, required=False, label="Keep a copy in this folder",
                                  help_text="IMAP only, e.g. Sent; blank: no copy")
    # Acknowledgements.
    ack_enabled = forms.BooleanField(required=False, label="Acknowledge new requests",
                                     help_text="only a new request from a person: never automatic mail, bounces, "
                                               "lists or our own addresses")
    ack_subject = forms.CharField(max_length=500, required=False, label="Subject template",
                                  help_text=f"blank: {acknowledge.DEFAULT_SUBJECT}; the request's tag is always added")
    ack_body = forms.CharField(required=False, strip=False, label="Body template",
                               widget=forms.Textarea(attrs={"rows": 10, "placeholder": acknowledge.DEFAULT_BODY}),
                               help_text="blank: the default below")
    ack_backlog = forms.BooleanField(required=False, label="Also acknowledge mail that was there when the mailbox was connected")
    ack_daily_limit = forms.IntegerField(min_value=1, initial=5, label="At most this many per sender per day")

    GROUPS = (
        ("Mailbox", ("name", "address", "protocol", "enabled")),
        ("Server (IMAP and POP3)", ("host", "port", "security", "verify_tls", "ca_file", "username", "password")),
        ("Maildir", ("path",)),
        ("Reading", ("folder", "after", "move_folder", "poll_interval", "pass_deadline", "size_limit")),
        ("Routing", ("assign",)),
        ("Sending", ("smtp_same_as_fetch", "smtp_host", "smtp_port", "smtp_security", "smtp_verify_tls", "smtp_ca_file",
                     "smtp_username", "smtp_password", "from_address", "from_name", "sent_folder")),
        ("Acknowledgement", ("ack_enabled", "ack_subject", "ack_body", "ack_backlog", "ack_daily_limit")),
    )
    default_ack_subject = acknowledge.DEFAULT_SUBJECT
    default_ack_body = acknowledge.DEFAULT_BODY
    # Shown under a fieldset's legend.
    NOTES = {"Acknowledgement": "postdesk/mailboxes/_ack_help.html"}
    PLAIN = ("name", "address", "protocol", "enabled", "host", "port", "security", "verify_tls", "ca_file", "username",
             "path", "folder", "poll_interval", "pass_deadline", "size_limit", "smtp_same_as_fetch", "smtp_host", "smtp_port",
             "smtp_security", "smtp_verify_tls", "smtp_ca_file", "smtp_username", "from_address", "from_name",
             "sent_folder", "ack_enabled", "ack_subject", "ack_body", "ack_backlog", "ack_daily_limit")

    def __init__(self, *args, mailbox: Mailbox | None = None, **kwargs):
        if mailbox is not None:
            kwargs.setdefault("initial", initial_for(mailbox))
        super().__init__(*args, **kwargs)
        User = get_user_model()
        self.fields["assign"].queryset = User.objects.filter(is_active=True).order_by(User.USERNAME_FIELD)
        if mailbox is not None and mailbox.secret:
            self.fields["password"].help_text = "a password is set; leave blank to keep it"
        if mailbox is not None and mailbox.smtp_secret:
            self.fields["smtp_password"].help_text = "a password is set; leave blank to keep it"

    def groups(self):
        """(legend, bound fields, note template or None) per fieldset, for the template."""
        return [(legend, [self[name] for name in names], self.NOTES.get(legend)) for legend, names in self.GROUPS]

    def changes(self) -> dict:
        data = self.cleaned_data
        changes = {name: data[name] for name in self.PLAIN}
        if changes["pass_deadline"] is None:
            del changes["pass_deadline"]  # blank: the mailbox's current (or the default) deadline
        changes["after"] = f"move:{data['move_folder']}" if data["after"] == Mailbox.After.MOVE else data["after"]
        if data["assign"] is not None:
            changes["assign"] = data["assign"].get_username()
        else:
            changes["unassign"] = True
        if data["password"]:  # blank: keep the current one
            changes["password"] = data["password"]
        if data["smtp_password"]:
            changes["smtp_password"] = data["smtp_password"]
        return changes

    def add_invalid(self, exc: mailboxes.InvalidSettings) -> None:
        for setting, message in exc.errors.items():
            self.add_error(setting if setting in self.fields else None, message)


def initial_for(mailbox: Mailbox) -> dict:
    initial = {name: getattr(mailbox, name) for name in MailboxForm.PLAIN + ("move_folder",) if name != "size_limit"}
    initial.update(after=mailbox.after_import, assign=mailbox.assign_to_id, size_limit=round(mailbox.size_limit / mailboxes.MB, 3))
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
    for mailbox in rows:
        mailbox.warnings = mailboxes.warnings(mailbox)
        mailbox.fetching = mailboxes.fetching(mailbox)
    return _page(request, "postdesk/mailboxes/list.html", {"title": "Mailboxes", "rows": rows})


def _detail(request, mailbox: Mailbox, test_result: mailboxes.ConnectionResult | None = None):
    mailbox = with_health(Mailbox.objects.filter(pk=mailbox.pk)).get()
    shown = mailboxes.as_dict(mailbox)
    settings_rows = [(key.replace("_", " "), shown[key]) for key in (
        "address", "protocol", "host", "port", "security", "verify_tls", "ca_file", "username", "password", "path",
        "folder", "after", "assign", "enabled", "poll_interval", "pass_deadline", "size_limit_mb")]
    shown["ack_subject"] = shown["ack_subject"] or f"(default) {acknowledge.DEFAULT_SUBJECT}"
    shown["ack_body"] = shown["ack_body"] or f"(default)\n{acknowledge.DEFAULT_BODY}"
    sending_rows = [(key.replace("smtp_", "SMTP ").replace("_", " "), shown[key]) for key in (
        "smtp_same_as_fetch", "smtp_host", "smtp_port", "smtp_security", "smtp_verify_tls", "smtp_ca_file",
        "smtp_username", "smtp_password", "from_address", "from_name", "sent_folder")]
    ack_rows = [(label, shown[key], key == "ack_body") for label, key in (
        ("acknowledge new requests", "ack"), ("subject template", "ack_subject"), ("body template", "ack_body"),
        ("acknowledge the backlog", "ack_backlog"), ("per sender per day", "ack_daily_limit"))]
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
