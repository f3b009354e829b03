"""Shared helpers for tests that run Postdesk for real: isolated installations
(``installation``), RFC 5322 messages (``mail.make_message``) and Maildir
delivery (``mail.maildir_deliver``).  Fixtures are exported by
``tests.support.fixtures``, which ``tests/conftest.py`` star-imports."""
