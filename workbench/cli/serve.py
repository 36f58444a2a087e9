"""CLI commands of the serve area (filled in by the owner of that area)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
