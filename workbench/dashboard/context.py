"""What a page needs from outside: settings, a clock, and who acts on incidents."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from workbench import clock
from workbench.clock import Clock
from workbench.config import Settings

#: Who the dashboard records as the actor of an acknowledge or resolve.
DASHBOARD_ACTOR = "dashboard"


@dataclass
class PageContext:
    """What a page needs from outside: settings, a clock (``workbench.clock.now``), and the actor."""

    settings: Settings
    clock: Clock = field(default=clock.now)
    actor: str = DASHBOARD_ACTOR

    def now(self) -> datetime:
        """Return the page's notion of now (UTC)."""
        return self.clock().astimezone(UTC)
