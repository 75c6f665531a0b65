"""Demo data (work in progress)."""

from __future__ import annotations

from typing import Any


def ensure_demo(state: Any, *, size: str, seed: int = 0) -> None:
    """Load demo data unless present."""
    state.set_meta("demo", {"size": size, "seed": seed})
