"""The Django admin (/admin/, superusers): a raw view of the tables for admins.

Day-to-day work happens in the staff UI; here nothing that matters for
exactly-once intake can be edited by hand (intake rows and the audit trail are
read-only), and mailbox secrets are never shown.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin

from postdesk import domains, mailbox_settings
from postdesk.models import (
    AuditEvent,
    Customer,
    Intake,
    Mailbox,
    PublicDomain,
    Request,
    RequestEvent,
)


def _admins_only(request) -> bool:
    """Django's own rule lets in every `is_staff` member (to an empty index at
    worst); the admin is a raw view of every table, so it is for admins only.
    Anyone else is sent to the admin's sign-in page, which says they are not
    authorized."""
    return request.user.is_active and request.user.is_superuser


admin.site.has_permission = _admins_only


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _mailbox_fieldsets() -> tuple:
    """The table's groups (mailbox_settings.SETTINGS), then every other column of a mailbox.
    Secrets are left out: they are set with `postdesk mailbox edit --password-stdin` (and the
    like) or the Mailboxes page, and never shown."""
    groups: dict[str, list[str]] = {}
    for setting in mailbox_settings.SETTINGS:
        if setting.kind != "secret":
            groups.setdefault(setting.group, []).append(setting.stored_in)
    listed = {name for names in groups.values() for name in names} | set(mailbox_settings.SECRET_FIELDS)
    rest = [f.name for f in Mailbox._meta.concrete_fields if f.name not in listed and f.editable and f.name != "id"]
    return (*((group, {"fields": names}) for group, names in groups.items()), ("Health and state", {"fields": rest}))


class MailboxAdminForm(forms.ModelForm):
    class Meta:
        model = Mailbox
        exclude = mailbox_settings.SECRET_FIELDS
        labels = {s.stored_in: s.label for s in mailbox_settings.SETTINGS}
        help_texts = {s.stored_in: s.help for s in mailbox_settings.SETTINGS if s.help}


@admin.register(Mailbox)
class MailboxAdmin(admin.ModelAdmin):
    form = MailboxAdminForm
    list_display = ("name", "protocol", "host", "enabled", "consecutive_failures", "last_success_at")
    exclude = mailbox_settings.SECRET_FIELDS
    fieldsets = _mailbox_fieldsets()
    readonly_fields = ("last_attempt_at", "last_success_at", "last_error", "last_error_at", "consecutive_failures")


@admin.register(Request)
class RequestAdmin(admin.ModelAdmin):
    list_display = ("id", "subject", "status", "assignee", "mailbox", "updated_at")
    list_filter = ("status", "mailbox")
    search_fields = ("subject", "customer__address")
    raw_id_fields = ("customer", "mentions")


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("address", "name", "created_at")
    search_fields = ("address", "name")


class PublicDomainForm(forms.ModelForm):
    class Meta:
        model = PublicDomain
        fields = ("domain",)
        help_texts = {"domain": "mail from it never joins a request by sharing the customer's domain"}

    def clean_domain(self):
        try:
            return domains.addable(self.cleaned_data["domain"])
        except domains.DomainError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(PublicDomain)
class PublicDomainAdmin(admin.ModelAdmin):
    """An admin's additions to the shipped public-domain lists (also `postdesk domains`)."""

    form = PublicDomainForm
    list_display = ("domain", "created_at")
    search_fields = ("domain",)

    def has_change_permission(self, request, obj=None):
        return False  # add or delete; an edited name would be another domain

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        AuditEvent.record(request.user, "public-domain.added", f"domain {obj.domain}")

    def delete_model(self, request, obj):
        AuditEvent.record(request.user, "public-domain.removed", f"domain {obj.domain}")
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for domain in queryset.values_list("domain", flat=True):
            AuditEvent.record(request.user, "public-domain.removed", f"domain {domain}")
        super().delete_queryset(request, queryset)


@admin.register(Intake)
class IntakeAdmin(ReadOnlyAdmin):
    list_display = ("id", "mailbox", "source_key", "status", "attempts", "fetched_at", "processed_at")
    list_filter = ("status", "mailbox")


@admin.register(RequestEvent)
class RequestEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "request", "actor", "kind", "detail")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor", "kind", "target", "detail")
    list_filter = ("kind",)
