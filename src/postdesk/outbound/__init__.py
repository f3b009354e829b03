"""Outbound mail: acknowledgements and staff replies, through an outbox.

    cause (new request / staff reply)   compose.py builds the exact bytes, with our Message-ID
      -> outbox row                     queue.py: Message(direction="out") + Outgoing, in the
                                        SAME transaction as the cause: never one without the other
      -> sender (worker thread)         sender.py: claim with a lease, SMTP (smtp.py), record
                                        4xx/network: retried with backoff; 5xx: failed, reason kept

Loops cannot start (policy.py): we acknowledge only a new request from a
person, never auto-submitted mail, bounces, lists, our own addresses, a
mailbox's backlog, or past a per-sender daily limit; everything we send
automatically carries `Auto-Submitted: auto-replied`.
"""
