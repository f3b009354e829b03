"""Telling staff what happened, by mail, and taking their answers by mail.

One home for notifications (issue 14).  The modules:

- reply_address.py  the signed, per-staff, per-request reply address a
                    notification carries (`reply_address()`), and reading one
                    back from a message's recipients (`read_reply_address()`).
- (the notification modules: events, preferences, composing, sending, digests
  are added here by the notifications work; see their docstrings)
- answer.py         a staff member's reply to a notification: a staff reply to
                    the customer when the token and the From match, else an
                    internal note "not sent: unverified sender".
"""
