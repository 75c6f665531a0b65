"""`recon review`: serves the page inside the package on 127.0.0.1, with the config passed on."""

from __future__ import annotations

import os
import signal
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from review_server import free_port, serve
from typer.testing import CliRunner

from recon.app import PAGE, port_in_use, streamlit_command
from recon.cli import app
from recon.config import load_config


def test_page_ships_inside_the_package() -> None:
    assert PAGE.is_file() and PAGE.parent.name == "app"
    assert "run_page()" in PAGE.read_text(encoding="utf-8")
    entry = Path(__file__).resolve().parents[2] / "app.py"
    assert "from recon.app.entry import run_page" in entry.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("review", "port", "open_browser", "expected"),
    [
        ({}, None, None, ("127.0.0.1", "8501", "false")),
        ({"port": 9100, "open_browser": False}, None, None, ("127.0.0.1", "9100", "true")),
        ({"host": "0.0.0.0"}, 9200, False, ("0.0.0.0", "9200", "true")),
    ],
)
def test_streamlit_command(
    tmp_path: Path, review: dict, port: int | None, open_browser: bool | None, expected: tuple
) -> None:
    toml = tmp_path / "recon.toml"
    toml.write_text(
        "[review]\n"
        + "".join(f"{k} = {v!r}\n".replace("False", "false") for k, v in review.items()),
        encoding="utf-8",
    )
    argv, env = streamlit_command(load_config(toml), port=port, open_browser=open_browser)
    assert argv[:5] == [sys.executable, "-m", "streamlit", "run", str(PAGE)]
    got = tuple(
        argv[argv.index(flag) + 1]
        for flag in ("--server.address", "--server.port", "--server.headless")
    )
    assert got == expected
    assert env["RECON_CONFIG"] == str(toml.resolve())


def test_review_help_lists_its_options() -> None:
    result = CliRunner().invoke(app, ["review", "--help"])
    assert result.exit_code == 0
    assert (
        "--port" in result.output
        and "--no-browser" in result.output
        and "127.0.0.1" in result.output
    )


@pytest.mark.timeout(180)
def test_recon_review_serves_the_page(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    cfg = tmp_path / "recon.toml"
    cfg.write_text('[store]\npath = "data/recon.db"\n', encoding="utf-8")
    from recon.store import open_store

    open_store(tmp_path / "data" / "recon.db").conn.close()  # a project's store (`recon pull`)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECON_")}
    argv = [
        sys.executable,
        "-m",
        "recon",
        "review",
        "--config",
        str(cfg),
        "--port",
        str(port),
        "--no-browser",
    ]
    started: list = []
    url = serve(request, argv, env, port, tmp_path / "review.log", started=started)
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200 and b"<html" in resp.read().lower()
    assert f"serving http://127.0.0.1:{port}/" in (tmp_path / "review.log").read_text()
    # a SIGTERM to `recon review` alone (a service manager's stop) stops the app as well
    (proc,) = started
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 15
    while port_in_use("127.0.0.1", port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not port_in_use("127.0.0.1", port)


def test_streamlit_run_in_a_checkout_binds_loopback() -> None:
    import tomllib

    config = Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml"
    assert tomllib.loads(config.read_text(encoding="utf-8"))["server"]["address"] == "127.0.0.1"
