"""Telling staff what happened, by mail, and taking their answers by mail.

One home for notifications (issue 14).  The modules:

- reply_address.py  the signed, per-staff, per-request reply address a
                    notification carries (`reply_address()`), and reading one
                    back from a message's recipients (`read_reply_address()`).
- events.py         `Event` (kind: assigned, customer_wrote, mentioned,
                    new_unassigned) and `who_hears(event)`: the rules (the
                    assignee, the @named, the watchers; never the actor, never
                    for automatic mail or bounces, never an inactive member).
- preferences.py    per-staff settings (NotifyPreference): which events, watch
                    the general queue, immediately or a digest every N minutes.
- compose.py        a notification's bytes: who wrote, subject, first lines,
                    attachment names, link; one References root per request
                    and staff member; Auto-Submitted: auto-generated.
- outbox.py         `plan(event)`: outbox rows (Outgoing kind "notification")
                    or digest entries, inside the caller's transaction.
- hooks.py          the one call each cause makes: arrivals (process/apply.py),
                    assigned (web/views.py Take/Assign), noted (reply.add_note).
- digest.py         due digests, queued by the worker's sending loop.
- account.py        the sending account: POSTDESK_SMTP_URL, else the admins'
                    NotifyAccount, else the request's mailbox's; `status()`.
- answer.py         a staff member's reply to a notification: a staff reply to
                    the customer when the token and the From match, else an
                    internal note "not sent: unverified sender".
"""
