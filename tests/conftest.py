"""Shared fixtures: a fresh store, a config in a temp folder, and (added by the
sandbox) one emulator per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlite_utils

from recon.store import open_store


@pytest.fixture
def fresh_db() -> sqlite_utils.Database:
    """A new, migrated, in-memory store."""
    return open_store(":memory:")


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """Path of a new on-disk store in a temp folder."""
    return tmp_path / "recon.db"


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep a developer's RECON_* environment and ./recon.toml out of tests."""
    import os

    for key in list(os.environ):
        if key.startswith("RECON_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
