"""Real servers for tests: a private Dovecot, a TLS CA, and misbehaving sockets.

Tests use them through the fixtures in ``tests.servers.fixtures`` (imported by
``tests/conftest.py``).
"""
