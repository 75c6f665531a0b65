"""The README documents every command and config section (sqlite-utils' docs test)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer.main

from recon.cli import app
from recon.config import ReconConfig

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def commands() -> list[str]:
    group = typer.main.get_command(app)
    return sorted(group.commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", commands())
def test_command_in_readme(command: str) -> None:
    assert f"`recon {command}" in README, f"recon {command} is not documented in README.md"


@pytest.mark.parametrize("section", [n for n in ReconConfig.model_fields if n != "source_path"])
def test_config_section_in_readme(section: str) -> None:
    assert f"[{section}]" in README


def test_readme_names_two_setup_commands() -> None:
    assert "make demo" in README
    assert "make test" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
