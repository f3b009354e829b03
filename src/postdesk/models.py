"""The database: mailboxes, what was fetched from them, and the requests made of it.

Exactly-once is enforced here, by unique constraints, not by checks in Python:
  - Intake (mailbox, source_key) is unique: a message at a source is taken once.
  - Message.fingerprint is unique: the same message reaching us twice (through
    two mailboxes, or again after a UIDVALIDITY change) is stored once.
Staff are Django users.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import models
from django.utils import timezone
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.oath import TOTP

DEFAULT_SIZE_LIMIT = 50 * 1024 * 1024


class Mailbox(models.Model):
    class Protocol(models.TextChoices):
        IMAP = "imap", "IMAP"
        POP3 = "pop3", "POP3"
        MAILDIR = "maildir", "Maildir"

    class Security(models.TextChoices):
        TLS = "tls", "implicit TLS"
        STARTTLS = "starttls", "STARTTLS"
        NONE = "none", "none (plain text)"

    class After(models.TextChoices):
        KEEP = "keep", "keep (remember what was imported)"
        SEEN = "seen", "mark as seen"
        MOVE = "move", "move to a folder"
        DELETE = "delete", "delete"

    name = models.CharField(max_length=100, unique=True)
    address = models.CharField(max_length=254, blank=True, help_text="the address customers write to")
    signature = models.TextField(blank=True, help_text="added below every staff reply from this mailbox")
    protocol = models.CharField(max_length=10, choices=Protocol.choices)
    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    security = models.CharField(max_length=10, choices=Security.choices, default=Security.TLS)
    verify_tls = models.BooleanField(default=True, help_text="turning this off is shown as a warning everywhere")
    ca_file = models.CharField(max_length=1024, blank=True)
    username = models.CharField(max_length=255, blank=True)
    secret = models.TextField(blank=True, help_text="the password, encrypted (postdesk.secrets)")
    folder = models.CharField(max_length=255, default="INBOX")
    path = models.CharField(max_length=1024, blank=True, help_text="Maildir directory")
    after_import = models.CharField(max_length=10, choices=After.choices, default=After.MOVE)
    move_folder = models.CharField(max_length=255, blank=True, default="Imported")
    assign_to = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    enabled = models.BooleanField(default=True)
    poll_interval = models.PositiveIntegerField(default=60, help_text="seconds")
    size_limit = models.PositiveBigIntegerField(default=DEFAULT_SIZE_LIMIT, help_text="bytes")
    # Sending (acknowledgements, staff replies): an SMTP account, or the fetching
    # account's host and credentials ("same as fetching").
    smtp_same_as_fetch = models.BooleanField(default=False)
    smtp_host = models.CharField(max_length=255, blank=True)
    smtp_port = models.PositiveIntegerField(null=True, blank=True)
    smtp_security = models.CharField(max_length=10, choices=Security.choices, default=Security.STARTTLS)
    smtp_verify_tls = models.BooleanField(default=True)
    smtp_ca_file = models.CharField(max_length=1024, blank=True)
    smtp_username = models.CharField(max_length=255, blank=True)
    smtp_secret = models.TextField(blank=True, help_text="the SMTP password, encrypted (postdesk.secrets)")
    from_address = models.CharField(max_length=254, blank=True, help_text="From of our mail; default: address")
    from_name = models.CharField(max_length=255, blank=True)
    sent_folder = models.CharField(max_length=255, blank=True, help_text="IMAP folder to keep a copy of what we send in")
    # Sign-in.  "password": `secret` above.  "oauth": an OAuth2 grant (OAuthGrant,
    # postdesk.oauth) from the provider below, used for IMAP/POP3 and, when
    # smtp_auth is "oauth", for sending too (Microsoft sends from another host).
    auth = models.CharField(max_length=10, choices=[("password", "password"), ("oauth", "OAuth2")], default="password")
    oauth_provider = models.CharField(max_length=500, blank=True,
                                      help_text='"microsoft", "google", or the issuer URL of another provider')
    oauth_tenant = models.CharField(max_length=100, blank=True, help_text="Microsoft: common, organizations or a tenant id")
    oauth_client_id = models.CharField(max_length=500, blank=True)
    oauth_client_secret = models.TextField(blank=True, help_text="encrypted (postdesk.secrets); blank for a public client")
    oauth_scope = models.CharField(max_length=1000, blank=True, help_text="blank: the provider's mail scopes")
    smtp_auth = models.CharField(max_length=10, choices=[("password", "password"), ("oauth", "OAuth2")], default="password",
                                 help_text="oauth: send with the mailbox's OAuth2 grant (SMTP XOAUTH2)")
    # Acknowledgements: only for a new request from a person (see outbound/policy.py).
    ack_enabled = models.BooleanField(default=False)
    ack_subject = models.CharField(max_length=500, blank=True)
    ack_body = models.TextField(blank=True)
    ack_backlog = models.BooleanField(default=False, help_text="also acknowledge mail that was there when the mailbox was connected")
    ack_daily_limit = models.PositiveIntegerField(default=5, help_text="acknowledgements per sender per day at most")
    # Health, updated on every fetch attempt.
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_error_kind = models.CharField(max_length=20, blank=True, help_text="the kind of last_error (sources.SourceError.kind)")
    # A whole pass (connect, list, fetch, acknowledge) ends by this many seconds,
    # however slowly the server drips its bytes: a slow server costs only itself.
    pass_deadline = models.PositiveIntegerField(default=600, help_text="seconds a whole fetch pass may take")
    # One fetcher per mailbox at a time (postdesk.leases): fetch, worker and a
    # second fetch take turns.  `fetch_lease_token` is bumped by every claim.
    fetch_lease_owner = models.CharField(max_length=100, blank=True, help_text="host:pid fetching it now")
    fetch_lease_until = models.DateTimeField(null=True, blank=True)
    fetch_lease_token = models.PositiveBigIntegerField(default=0)
    # UIDVALIDITY as last seen, and when it changed lately: a server that changes
    # it all the time gives no stable identity and is flagged for the admin.
    uidvalidity = models.BigIntegerField(null=True, blank=True)
    uidvalidity_changes = models.JSONField(default=list, blank=True, help_text="ISO times of recent changes")
    identity_unstable_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "mailboxes"

    def __str__(self) -> str:
        return self.name

    @property
    def error_advice(self) -> str:
        """For the last error: whether retrying can fix it (the worker retries either way)."""
        from postdesk.sources._base import SourceError

        if not self.last_error:
            return ""
        # Rows last written before last_error_kind existed carry the kind as the text's prefix.
        kind = self.last_error_kind or self.last_error.split(":", 1)[0]
        if kind in SourceError.PERMANENT:
            return "will not fix itself: check the mailbox settings"
        return "temporary: retrying with backoff"

    @property
    def after_label(self) -> str:
        return f"move:{self.move_folder}" if self.after_import == self.After.MOVE else self.after_import


class OAuthGrant(models.Model):
    """A mailbox's OAuth2 grant: its tokens (encrypted like passwords) and its health.

    One row per OAuth mailbox, written by postdesk.oauth only.  `generation` is
    bumped by every save of new tokens: a save names the generation it started
    from and fails if another process saved a newer one (compare-and-set), so
    no host ever overwrites a newer refresh token with an older one.  The
    refresh_lease_* columns make one process at a time refresh (postdesk.leases)."""

    class State(models.TextChoices):
        OK = "ok", "signed in"
        FAILING = "failing", "refresh failing (retrying)"  # the provider is down, slow, or answered 5xx
        EXPIRED = "expired", "sign-in expired: reconnect the mailbox"  # invalid_grant, revoked consent

    mailbox = models.OneToOneField(Mailbox, on_delete=models.CASCADE, related_name="oauth_grant")
    refresh_token = models.TextField(blank=True, help_text="encrypted")
    access_token = models.TextField(blank=True, help_text="encrypted")
    access_expires_at = models.DateTimeField(null=True, blank=True)
    granted_scope = models.CharField(max_length=2000, blank=True)
    # When the provider says the grant itself ends (refresh_token_expires_in and the like).
    grant_expires_at = models.DateTimeField(null=True, blank=True)
    generation = models.PositiveBigIntegerField(default=0)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OK)
    connected_at = models.DateTimeField(null=True, blank=True)
    connected_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    refresh_failures = models.PositiveIntegerField(default=0, help_text="failed refreshes in a row")
    last_error = models.CharField(max_length=500, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    refresh_lease_owner = models.CharField(max_length=100, blank=True)
    refresh_lease_until = models.DateTimeField(null=True, blank=True)
    refresh_lease_token = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"OAuth grant of {self.mailbox_id}: {self.state}"


class Customer(models.Model):
    address = models.CharField(max_length=254, unique=True)  # lower case
    name = models.CharField(max_length=255, blank=True)
    note = models.TextField(blank=True, help_text="what staff should know about this customer")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} <{self.address}>" if self.name else self.address


class Blob(models.Model):
    """Content-addressed bytes: a raw message or an attachment, stored once.

    The bytes live in the file store (data dir) or, with POSTDESK_BLOB_STORE=db,
    in `data`; see postdesk.store.blobs."""

    sha256 = models.CharField(max_length=64, primary_key=True)
    size = models.PositiveBigIntegerField()
    data = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)


class Request(models.Model):
    # The moves between statuses are postdesk.desk.status, and only there.
    class Status(models.TextChoices):
        NEW = "new", "new"
        OPEN = "open", "open"
        PENDING = "pending", "waiting on customer"
        CLOSED = "closed", "closed"

    class Priority(models.IntegerChoices):
        LOW = 0, "low"
        NORMAL = 1, "normal"
        HIGH = 2, "high"
        URGENT = 3, "urgent"

    subject = models.CharField(max_length=998, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW, db_index=True)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    # A waiting (pending) request comes back by itself at this time (desk.status.wake_due).
    snooze_until = models.DateTimeField(null=True, blank=True)
    # A merged request points to the one that took its messages (desk.merge); mail
    # naming the merged one's tag joins the target.
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_from")
    tags = models.ManyToManyField("Tag", blank=True, related_name="requests")
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="requests")
    mailbox = models.ForeignKey(Mailbox, null=True, blank=True, on_delete=models.SET_NULL, related_name="requests")
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="requests")
    # Set when a machine opened it (auto-reply, bounce, list mail): never silent.
    auto_submitted = models.CharField(max_length=20, blank=True)
    # A message that named this request's tag but may not join it opens a request
    # of its own that "mentions" the tagged one; both pages show the link.
    mentions = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="mentioned_by")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        # The queue pages (desk.filters): each queue's rows by last activity, read from
        # an index in that order, so a page of 50 out of 100,000 stops after 50 rows.
        indexes = [
            models.Index(fields=["status", "-updated_at"], name="request_status_updated"),
            models.Index(fields=["assignee", "status", "-updated_at"], name="request_assignee_updated"),
            models.Index(fields=["mailbox", "-updated_at"], name="request_mailbox_updated"),
            # The top bar's count of each mailbox's open work (web/queues.nav_counts): only
            # requests not closed, in mailbox order, so the count reads this small index alone
            # (with (status, mailbox), SQLite preferred walking every request in mailbox order).
            models.Index(fields=["mailbox"], condition=~models.Q(status="closed"), name="request_open_mailbox"),
            models.Index(fields=["priority", "-updated_at"], name="request_priority_updated"),
        ]

    @property
    def number(self) -> int:
        return self.pk

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"


class Message(models.Model):
    """One message in a request, as parsed; its raw bytes are `raw`."""

    request = models.ForeignKey(Request, on_delete=models.CASCADE, related_name="messages")
    mailbox = models.ForeignKey(Mailbox, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # sha256 over what makes a message itself (Message-ID, sender, date, subject,
    # text, attachments); unique, so the same message is never stored twice,
    # while two different messages that share a Message-ID are both kept.
    fingerprint = models.CharField(max_length=64, unique=True)
    message_id = models.CharField(max_length=998, blank=True, db_index=True)
    in_reply_to = models.CharField(max_length=998, blank=True)
    references = models.JSONField(default=list)
    subject = models.CharField(max_length=998, blank=True)
    sender_address = models.CharField(max_length=254, blank=True, db_index=True)
    sender_name = models.CharField(max_length=255, blank=True)
    to = models.JSONField(default=list)
    cc = models.JSONField(default=list)
    reply_to = models.JSONField(default=list)
    date = models.DateTimeField(null=True, blank=True)
    text = models.TextField(blank=True)
    html = models.TextField(null=True, blank=True)
    auto_submitted = models.CharField(max_length=20, blank=True)
    auto_reason = models.CharField(max_length=255, blank=True)
    original_message_id = models.CharField(max_length=998, blank=True)
    defects = models.JSONField(default=list)
    raw = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # "in": mail we received; "out": mail we sent (staff reply, acknowledgement;
    # kept here so a customer's answer threads to it by References); "note": an
    # internal note, never sent.
    direction = models.CharField(max_length=5, default="in", db_index=True)
    kind = models.CharField(max_length=12, blank=True)  # "reply", "ack" for direction "out"
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # How it joined its request: "created", "references", "in-reply-to", "bounce", "subject-tag".
    thread_rule = models.CharField(max_length=20, blank=True)
    # Its Reply-To may be used as the address of a staff reply: it opened the
    # request, joined by References, or names only people already taking part.
    # Otherwise the Reply-To is shown, never silently used.
    reply_to_trusted = models.BooleanField(default=True)
    # What the request page shows, computed once at processing time (never per
    # view on hostile input): the text split into new/quoted/signature, the new
    # part of an HTML reply (None: nothing folded), remote images left out.
    text_parts = models.JSONField(null=True, blank=True)
    html_new = models.TextField(null=True, blank=True)
    remote_images = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["created_at", "id"]

    @property
    def outgoing(self) -> bool:
        return self.direction == "out"

    @property
    def note(self) -> bool:
        return self.direction == "note"


class Attachment(models.Model):
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveIntegerField()
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    content_id = models.CharField(max_length=998, blank=True)
    inline = models.BooleanField(default=False)

    class Meta:
        ordering = ["message", "position"]


class Outgoing(models.Model):
    """One mail to send: the outbox.

    Written in the same transaction as what causes it (a staff reply, a new
    request that is acknowledged), with the exact bytes to send, so a crash
    can neither lose it nor change it: a resend after a crash carries the same
    Message-ID and is recognisable as the same mail."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        SENDING = "sending", "sending"
        SENT = "sent", "sent"
        FAILED = "failed", "failed"

    class Kind(models.TextChoices):
        CONVERSATION = "", "conversation"  # a reply or an acknowledgement: `message` is its record
        NOTIFICATION = "notification", "notification"  # to a staff member (postdesk.notify): no Message, `raw` holds it

    kind = models.CharField(max_length=20, choices=Kind.choices, blank=True, default="")
    # A conversation mail: its Message (raw bytes there).  A notification: none.
    message = models.OneToOneField(Message, null=True, blank=True, on_delete=models.CASCADE, related_name="outgoing_mail")
    # The account that sends: this mailbox's; none for a notification sent by the
    # system account (postdesk.notify.account).
    mailbox = models.ForeignKey(Mailbox, null=True, blank=True, on_delete=models.PROTECT, related_name="outbox")
    raw = models.ForeignKey(Blob, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                            help_text="a notification's bytes")
    request = models.ForeignKey(Request, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications",
                                help_text="a notification's request")
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                              help_text="a notification's recipient")
    # A notification's cause arrived then (its message's arrival): the delay metric's start.
    event_at = models.DateTimeField(null=True, blank=True)
    envelope_from = models.CharField(max_length=254)
    recipients = models.JSONField(default=list)  # envelope: To + Cc (+ Bcc)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=100, blank=True)
    last_error = models.CharField(max_length=1000, blank=True)
    smtp_reply = models.CharField(max_length=1000, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    copied_to_sent = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="outgoing_due_idx")]


class Intake(models.Model):
    """One message taken from a source: the durable hand-off between fetching and processing.

    Written (raw bytes first, then this row, in one transaction) before anything
    is acknowledged at the source; processing marks it done in the same
    transaction that writes the request."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        PROCESSED = "processed", "processed"
        DUPLICATE = "duplicate", "duplicate"
        QUARANTINED = "quarantined", "quarantined"
        DISCARDED = "discarded", "discarded"

    mailbox = models.ForeignKey(Mailbox, on_delete=models.PROTECT, related_name="intakes")
    source_key = models.CharField(max_length=255)
    raw = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="+")
    size = models.PositiveBigIntegerField()
    server_date = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    fetched_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # Processing claims: a worker sets lease_until and bumps attempts (its fencing
    # token); a crashed worker's lease runs out and another takes over.
    attempts = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=100, blank=True)  # "host:pid" of the claiming worker
    last_error = models.TextField(blank=True)
    quarantine_reason = models.TextField(blank=True)
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="intakes")
    # Taken before the mailbox's first complete pass: it was there when the
    # mailbox was connected, and is not acknowledged unless the admin asks.
    backlog = models.BooleanField(default=False)
    # Too large to download: only its headers are here (raw), the message stays
    # at the source untouched, and the row is quarantined saying so.
    left_at_source = models.BooleanField(default=False)
    # Parse time limit: how often the parse of this message overran, and a longer
    # limit (seconds) for a re-run that staff asked for.
    parse_timeouts = models.PositiveSmallIntegerField(default=0)
    parse_timeout = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mailbox", "source_key"], name="intake_unique_source_key")]
        indexes = [models.Index(fields=["status", "id"], name="intake_status_idx")]


class PublicDomain(models.Model):
    """A mail domain shared by strangers (free mail, disposable), added by an admin
    to the shipped lists (postdesk.domains): sharing it proves no relation."""

    domain = models.CharField(max_length=253, unique=True)  # lower case
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.domain


class RequestEvent(models.Model):
    """The history of a request: who did what, when."""

    request = models.ForeignKey(Request, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=30)
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]


class AuditEvent(models.Model):
    """Who changed the installation itself: mailboxes added, edited or tested, quarantined
    messages re-run or discarded.  `target` is text ("mailbox 3", "intake 42") so the
    record outlives what it names; actor is empty for the command line."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=40)  # "mailbox.added", "quarantine.discarded", ...
    target = models.CharField(max_length=100, db_index=True)
    detail = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.target}"

    @classmethod
    def record(cls, actor, kind: str, target: str, detail: str = "") -> AuditEvent:
        # A command-line run has no user: AnonymousUser and None both mean "no actor".
        actor = actor if actor is not None and actor.is_authenticated else None
        return cls.objects.create(actor=actor, kind=kind, target=target[:100], detail=detail[:1000])


# --- sign-in (postdesk.signin) ---------------------------------------------------------------


class SignInEvent(models.Model):
    """One line of the sign-in audit an admin reads (/staff/signins/): every sign-in,
    failure, lockout, refused second factor and sign-out, with who, when and from where.
    `username` is what was typed (the account may not exist); `user` is set when it does."""

    SIGNED_IN = "signed_in"
    FAILED = "failed"
    LOCKED = "locked"
    CODE_FAILED = "code_failed"  # a wrong two-factor or recovery code
    SSO_FAILED = "sso_failed"  # single sign-on refused (unverified email, unknown person, provider error)
    SIGNED_OUT = "signed_out"
    SESSION_ENDED = "session_ended"  # ended from the sessions page, or by an admin
    KINDS = [(k, k.replace("_", " ")) for k in (SIGNED_IN, FAILED, LOCKED, CODE_FAILED, SSO_FAILED, SIGNED_OUT, SESSION_ENDED)]

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=20, choices=KINDS)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150, blank=True)
    method = models.CharField(max_length=20, blank=True)  # "password", "password+totp", "password+recovery", "sso"
    address = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-id"]


class StaffSession(models.Model):
    """A staff member's open sign-in, for "your sessions" and for ending one from afar.
    The session itself stays Django's (django_session); this row says what a person
    needs to recognise it.  Deleting the Django session ends it: the row goes with it."""

    session_key = models.CharField(max_length=40, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    method = models.CharField(max_length=20, blank=True)
    address = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-last_seen_at", "-id"]


class SsoIdentity(models.Model):
    """A staff member's account at the single sign-on issuer: (issuer, subject) is the
    stable key an OpenID Connect provider promises; the email is what linked it first."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_identities")
    issuer = models.CharField(max_length=300)
    subject = models.CharField(max_length=255)
    email = models.CharField(max_length=254, blank=True)
    linked_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="sso_identity_once")]


# --- two factors (postdesk.signin.two_factor) ---------------------------------------------


class TotpDevice(TimestampMixin, ThrottlingMixin, Device):
    """A member's authenticator app: a django-otp device whose seed is encrypted at rest.

    django-otp's own TOTPDevice keeps the seed as plain hex, readable by anyone who
    reads the database (or a backup of it); here it is encrypted with postdesk.secrets
    like the mailbox passwords.  The maths is django-otp's (django_otp.oath.TOTP),
    with a tolerance of one step either way for clocks that drift, and no step
    accepted twice (last_t), so a code seen over a shoulder is spent once used.
    The throttling is django-otp's too: after n wrong codes in a row the next is
    not even checked for THROTTLE_FACTOR * 2**(n-1) seconds.

    `confirmed` is False until the member has typed a code from the app: an
    unconfirmed device is never asked for, nor accepted, at sign-in.  One device
    per member (a second phone is the recovery codes' job).
    """

    STEP = 30
    DIGITS = 6
    TOLERANCE = 1  # steps either side of now
    THROTTLE_FACTOR = 1  # seconds; django-otp's OTP_TOTP_THROTTLE_FACTOR overrides

    encrypted_key = models.TextField()  # postdesk.secrets.encrypt(seed as hex)
    last_t = models.BigIntegerField(default=-1)  # the time step of the last code accepted

    confirmed = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user"], name="totp_device_per_member")]

    @property
    def bin_key(self) -> bytes:
        from postdesk import secrets

        return bytes.fromhex(secrets.decrypt(self.encrypted_key))

    def set_key(self, key: bytes) -> None:
        from postdesk import secrets

        self.encrypted_key = secrets.encrypt(key.hex())

    def totp(self, at: float | None = None) -> TOTP:
        totp = TOTP(self.bin_key, self.STEP, 0, self.DIGITS)
        if at is not None:
            totp.time = at
        return totp

    def verify_token(self, token) -> bool:
        """django-otp's contract: True once per good code; a wrong one counts
        towards the throttle, one sent while throttled is not even looked at."""
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        token = str(token).strip()
        totp = self.totp(time.time())
        if len(token) == self.DIGITS and token.isdigit() and totp.verify(int(token), self.TOLERANCE, self.last_t + 1):
            self.last_t = totp.t()
            self.throttle_reset(commit=False)
            self.set_last_used_timestamp(commit=False)
            self.save()
            return True
        self.throttle_increment(commit=True)
        return False

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_TOTP_THROTTLE_FACTOR", self.THROTTLE_FACTOR)

    def verify_is_allowed(self):
        """django-otp's doubling delay, capped at the password throttle's longest wait
        (POSTDESK_SIGNIN_MAX_WAIT): uncapped, someone who knows the password could keep
        sending wrong codes until the real member is locked out for years."""
        allowed, why = super().verify_is_allowed()
        if allowed or self.throttling_failure_timestamp is None:
            return allowed, why
        waited = timezone.now() - self.throttling_failure_timestamp
        return (True, None) if waited >= settings.POSTDESK_SIGNIN_MAX_WAIT else (allowed, why)


class RecoveryCode(models.Model):
    """One of a member's single-use recovery codes, kept as a digest only
    (postdesk.signin.two_factor.digest); used_at is set by the one UPDATE that
    spends it, so two sign-ins racing with the same code cannot both pass."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "digest"], name="recovery_code_once")]


class EmailAnswer(models.Model):
    """A staff member's answer by email to a notification (postdesk.notify.answer): the
    incoming mail's identity and what became of it.

    It is not a Message (it must never show as customer mail); its fingerprint is
    unique, so the same answer taken twice (a second delivery, another mailbox's copy,
    a re-run) is recognised and never sends a second reply."""

    class Outcome(models.TextChoices):
        SENT = "sent", "sent to the customer"
        REFUSED = "refused", "not sent"

    fingerprint = models.CharField(max_length=64, unique=True)
    request = models.ForeignKey(Request, on_delete=models.CASCADE, related_name="email_answers")
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                              help_text="the staff member the reply address names (set for a good or expired token)")
    sender_address = models.CharField(max_length=254, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reason = models.CharField(max_length=500, blank=True, help_text="why it was not sent")
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                help_text="the staff reply it became, or the internal note")
    created_at = models.DateTimeField(auto_now_add=True)


class NotifyPreference(models.Model):
    """A staff member's notification settings (postdesk.notify.preferences).

    No row: every event, not watching the general queue, sent immediately."""

    staff = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notify_preference")
    events = models.JSONField(default=list, help_text="the event kinds heard (postdesk.notify.events.Kind)")
    watch_general = models.BooleanField(default=False, help_text="new unassigned requests")
    digest_minutes = models.PositiveIntegerField(default=0, help_text="0: each at once; else one digest every N minutes")
    last_digest_at = models.DateTimeField(null=True, blank=True)


class PendingNotification(models.Model):
    """An event waiting for its staff member's next digest (postdesk.notify.digest);
    written in the transaction of its cause, deleted by the one that queues the digest."""

    staff = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    request = models.ForeignKey(Request, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20)
    summary = models.TextField()
    event_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]


class NotifyAccount(models.Model):
    """The system account notifications are sent through, as an admin set it (one row).
    POSTDESK_SMTP_URL in the environment wins over it (postdesk.notify.account)."""

    smtp_url = models.CharField(max_length=1000, blank=True, help_text="smtp://user@host:587 or smtps://user@host:465")
    secret = models.TextField(blank=True, help_text="the password, encrypted (postdesk.secrets)")
    from_address = models.CharField(max_length=254, blank=True)
    updated_at = models.DateTimeField(auto_now=True)


class ReadMark(models.Model):
    """When a staff member last opened a request (postdesk.web.unread): the request is
    unread for them, bold in the queues, while its last customer message is newer."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    request = models.ForeignKey(Request, on_delete=models.CASCADE, related_name="read_marks")
    read_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "request"], name="read_mark_once")]


class Presence(models.Model):
    """A staff member with a request's page open (postdesk.web.presence): heartbeats from the
    page's polling, kept in the database so every web host sees them; older than
    presence.EXPIRES it counts for nothing and is deleted."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    request = models.ForeignKey(Request, on_delete=models.CASCADE, related_name="presences")
    seen_at = models.DateTimeField(db_index=True)
    replying = models.BooleanField(default=False)  # typing in the reply box

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "request"], name="presence_once")]


# --- the agent's desk (postdesk.desk) -------------------------------------------


class Tag(models.Model):
    """A label on requests ("billing", "vip"), set from the page, in bulk or by rules.
    Not the request tag [PD-n] of subjects: that is postdesk.tags."""

    name = models.CharField(max_length=50, unique=True)  # lower case, desk.tagging.clean_name
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class StaffProfile(models.Model):
    """A staff member's own settings: time zone and signature (desk.profile).

    No row: the server's time zone and no signature."""

    staff = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="desk_profile")
    time_zone = models.CharField(max_length=64, blank=True, help_text="an IANA name, e.g. Europe/Berlin")
    signature = models.TextField(blank=True)


class SavedView(models.Model):
    """A staff member's saved queue ("My urgent"): a name and the query string of a queue URL."""

    staff = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=80)
    query = models.CharField(max_length=2000, help_text="a queue URL's query string (desk.filters)")
    queue = models.CharField(max_length=100, default="all", help_text='"general", "mine", "all" or "mailbox:NAME"')
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]
        constraints = [models.UniqueConstraint(fields=["staff", "name"], name="saved_view_name_once")]


class CannedReply(models.Model):
    """A reply text admins keep for everyone, with placeholders (desk.canned)."""

    title = models.CharField(max_length=200, unique=True)
    body = models.TextField()
    mailbox = models.ForeignKey(Mailbox, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                                help_text="offered only on this mailbox's requests; empty: everywhere")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]


class Draft(models.Model):
    """What a staff member is typing on a request, saved as they type (desk.drafts);
    gone once the reply or note is sent."""

    staff = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    request = models.ForeignKey(Request, on_delete=models.CASCADE, related_name="drafts")
    kind = models.CharField(max_length=10, default="reply")  # "reply" or "note"
    text = models.TextField(blank=True)
    cc = models.CharField(max_length=2000, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["staff", "request", "kind"], name="draft_once")]
