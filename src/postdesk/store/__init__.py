"""Durable storage of bytes (raw messages and attachments)."""
