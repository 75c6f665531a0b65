"""HubSpot CRM v3 emulator (work in progress)."""

from __future__ import annotations

import sqlite3
from typing import Any

from starlette.routing import BaseRoute


def init_schema(conn: sqlite3.Connection) -> None:
    """Create the HubSpot tables."""


def routes(state: Any) -> list[BaseRoute]:
    """The HubSpot routes."""
    return []
