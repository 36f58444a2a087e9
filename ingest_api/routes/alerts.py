"""Routes of the alerts area (filled in by the owner of that area)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
