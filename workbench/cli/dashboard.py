"""CLI commands of the dashboard area (filled in by the owner of that area)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
