"""count_incidents: what the dashboard uses to say which filter empties the incident list."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from tests.catalog.conftest import NOW
from tests.catalog.factories import add_incident
from workbench.catalog.incidents import count_incidents
from workbench.errors import ValidationError


def test_counts_by_status_and_service(session: Session) -> None:
    assert count_incidents(session=session) == 0
    add_incident(session, now=NOW, service="a")
    add_incident(session, now=NOW, service="a", status="resolved", resolved_at=NOW)
    add_incident(session, now=NOW, service="b", status="acknowledged")
    assert count_incidents(session=session) == 3
    assert count_incidents(session=session, status="open") == 1
    assert count_incidents(session=session, service="a") == 2
    assert count_incidents(session=session, status="acknowledged", service="a") == 0
    with pytest.raises(ValidationError, match="Invalid status"):
        count_incidents(session=session, status="closed")
