"""The sandbox server: in-process start/stop, state, error shapes, and the `recon sandbox` CLI."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from recon.cli import main
from recon.config import load_config
from recon.errors import SourceError
from recon.sandbox import SandboxServer, SandboxSettings, SandboxState, config_toml, open_state


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_server_starts_on_a_free_port_and_stops(tmp_path: Path) -> None:
    state = SandboxState(tmp_path / "s.db")
    with SandboxServer(state) as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert state.settings.base_url == server.url
        health = requests.get(f"{server.url}/_sandbox/health", timeout=10).json()
        assert health["ok"] is True and "hubspot" in health["sides"]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/_sandbox/health", timeout=2)


def test_a_busy_port_is_a_clear_error() -> None:
    with (
        SandboxServer(SandboxState(":memory:")) as server,
        pytest.raises(SourceError, match="cannot listen") as err,
    ):
        SandboxServer(SandboxState(":memory:"), port=server.port)
    assert "pick another --port" in str(err.value)


@pytest.mark.parametrize("host", ["256.1.1.1", "192.0.2.1"])
def test_a_host_that_is_no_address_here_is_named_as_such(host: str) -> None:
    """It said "pick another --port" for a --host no interface of this machine has."""
    from recon.sandbox.server import _bind

    with pytest.raises(SourceError, match="give --host an address of this machine"):
        _bind(host, 0)


def test_state_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "sandbox.db"
    state = open_state(db, size="tiny")
    counts = state.get_meta("demo")["counts"]
    state.close()
    again = open_state(db, size="tiny")  # same size and seed: kept, not regenerated
    assert again.get_meta("demo")["counts"] == counts
    with again.tx() as conn:
        assert conn.execute("SELECT count(*) FROM hs_records").fetchone()[0] == (
            counts["hubspot.companies"] + counts["hubspot.contacts"]
        )
    again.close()
    fresh = open_state(db, size=None, reset=True)
    assert fresh.get_meta("demo") is None
    fresh.close()


@pytest.mark.parametrize(
    ("path", "shape"),
    [
        ("/crm/v3/nothing/here", dict),
        ("/services/data/v59.0/nothing/here", list),
        ("/_sandbox/nope", dict),
    ],
)
def test_unknown_paths_answer_in_each_sides_error_shape(
    sandbox: Any, path: str, shape: type
) -> None:
    resp = requests.get(f"{sandbox.url}{path}", headers={"Authorization": "Bearer x"}, timeout=10)
    assert resp.status_code == 404
    assert isinstance(resp.json(), shape)


def test_settings_validate_keys_and_types() -> None:
    settings = SandboxSettings()
    assert (
        settings.update({"salesforce_connector_enabled": "true", "latency_ms": "5"})["latency_ms"]
        == 5
    )
    assert settings.salesforce_connector_enabled is True
    from recon.errors import UsageError

    with pytest.raises(UsageError, match="unknown sandbox setting"):
        settings.update({"no_such": 1})
    with pytest.raises(UsageError, match="invalid value"):
        settings.update({"latency_ms": "slow"})


def test_now_is_strictly_increasing() -> None:
    state = SandboxState(":memory:")
    stamps = [state.now() for _ in range(200)]
    assert stamps == sorted(set(stamps))


def test_checkpoint_and_restore(tmp_path: Path) -> None:
    from recon.sandbox.hubspot import create_records

    state = open_state(tmp_path / "s.db", size="tiny")
    state.checkpoint()
    create_records(state, "companies", [{"name": "Temporary"}])
    state.faults.add({"kind": "server_error"})
    state.restore()
    with state.tx() as conn:
        names = [r[0] for r in conn.execute("SELECT json_extract(props, '$.name') FROM hs_records")]
    assert "Temporary" not in names
    assert state.faults.rules() == []


# --------------------------------------------------------------------------- CLI


def test_cli_config_prints_a_valid_loopback_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["sandbox", "config", "--port", "9123"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert text == config_toml("http://127.0.0.1:9123")
    (tmp_path / "recon.toml").write_text(text)
    cfg = load_config(tmp_path / "recon.toml")
    assert cfg.hubspot.base_url == cfg.salesforce.instance_url == "http://127.0.0.1:9123"
    assert cfg.salesforce.auth == "client_credentials"
    assert cfg.sandbox.port == 9123


def test_cli_reset_deletes_a_stopped_sandbox_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "sandbox.db"
    open_state(db, size=None).close()
    with pytest.raises(SystemExit) as done:
        main(["sandbox", "reset", "--db", str(db)])
    assert done.value.code == 0 and not db.exists()
    assert "deleted" in capsys.readouterr().out


def test_cli_reset_of_a_running_sandbox(
    sandbox_reset: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from recon.sandbox.hubspot import create_records

    create_records(sandbox_reset.state, "companies", [{"name": "Gone after reset"}])
    with pytest.raises(SystemExit) as done:
        main(["sandbox", "reset", "--port", str(sandbox_reset.port)])
    assert done.value.code == 0
    assert "reset the sandbox" in capsys.readouterr().out
    with sandbox_reset.state.tx() as conn:
        names = [r[0] for r in conn.execute("SELECT json_extract(props, '$.name') FROM hs_records")]
    assert "Gone after reset" not in names and names


def test_cli_reset_without_a_sandbox_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["sandbox", "reset", "--port", str(free_port())])
    assert done.value.code == 1
    assert "no sandbox answered" in capsys.readouterr().err


def test_cli_serve_answers_then_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recon",
            "sandbox",
            "serve",
            "--port",
            str(port),
            "--size",
            "tiny",
            "--db",
            str(tmp_path / "s.db"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                health = requests.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=10).json()
                break
            except requests.RequestException:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert health["demo"]["size"] == "tiny"
        resp = requests.get(
            f"http://127.0.0.1:{port}/crm/v3/objects/companies?limit=1",
            headers={"Authorization": "Bearer x"},
            timeout=10,
        )
        assert resp.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"sandbox on http://127.0.0.1:{port}" in out


def test_cli_serve_refuses_an_unknown_size(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["sandbox", "serve", "--size", "huge"])
    assert done.value.code == 2


def test_a_client_hanging_up_mid_request_is_answered_quietly() -> None:
    """A client that disconnects before its body arrives (a timeout, a killed apply) gets no
    error page and leaves no traceback: nothing was read, nothing was written."""
    import asyncio

    from recon.sandbox.server import create_app

    app = create_app(SandboxState(":memory:"))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/crm/v3/objects/companies/batch/update",
        "raw_path": b"/crm/v3/objects/companies/batch/update",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"authorization", b"Bearer x"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 499


def test_serve_on_a_database_it_cannot_create_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`recon sandbox serve --db` under a file, or where SQLite cannot create a file, ended in
    "unexpected error: FileExistsError" (or OperationalError) and a crash log."""
    (tmp_path / "afile").write_text("in the way", encoding="utf-8")
    with socket.socket() as s:  # a port nothing serves on: the database is refused first
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    for db, why in (
        (tmp_path / "afile" / "s.db", f"{tmp_path / 'afile'} is a file, not a folder"),
        (Path("/proc/recon-sandbox.db"), "SQLite cannot create it"),
    ):
        with pytest.raises(SystemExit) as exit_:
            main(["sandbox", "serve", "--port", port, "--db", str(db), "--size", "tiny"])
        err = " ".join(capsys.readouterr().err.split())
        assert exit_.value.code == 1, err
        assert f"error: cannot write the sandbox database {db}: {why}" in err
        assert "another --db or [sandbox] db" in err and "unexpected" not in err
