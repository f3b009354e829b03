"""The staff web UI: server-rendered pages (queues, requests, actions)."""
