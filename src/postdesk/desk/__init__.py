"""The agent's desk: the rules behind working requests, apart from the pages that show them.

One module per concept; the web pages (postdesk.web) and the commands call these and
hold no rules of their own.

  status.py    the moves between new, open, waiting on customer (pending) and closed,
               snoozing and waking: the only code that changes Request.status
  snooze.py    when a snooze ends: the quick choices and a picked time, in the agent's zone
  tagging.py   tags on requests (not the request tag [PD-n]: that is postdesk.tags)
  filters.py   a queue's filters and sort order, read from and written to a URL; saved views
  search.py    the full-text index (SQLite FTS5, PostgreSQL tsvector) and the query language
  bulk.py      one action on many requests
  merge.py     merging one request into another
  canned.py    canned replies and their placeholders
  signature.py the staff member's and the mailbox's signature under a reply
  drafts.py    drafts saved as one types
  profile.py   a staff member's time zone and signature
  customers.py a customer's page: organisation (by domain), requests, note
"""
