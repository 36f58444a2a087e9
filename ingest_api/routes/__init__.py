"""Routers, one module per area: ingest (POST logs, health), query (GET logs, metrics), alerts."""
