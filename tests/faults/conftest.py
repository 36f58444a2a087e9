"""Fixtures of the fault tests: reuse the alerting catalog, lake, clock and receiver fixtures."""

from __future__ import annotations

from tests.alerting.conftest import clock, lake_url, receiver, sqlite_engine

__all__ = ["clock", "lake_url", "receiver", "sqlite_engine"]
