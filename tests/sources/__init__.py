"""Mail sources against real servers: the private Dovecot of tests/servers."""
