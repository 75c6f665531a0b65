"""Start a Streamlit server for tests: free port, health wait with a deadline, kill in a finalizer."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(
    request: pytest.FixtureRequest,
    argv: list[str],
    env: dict[str, str],
    port: int,
    log: Path,
    timeout: float = 90,
    started: list[subprocess.Popen[bytes]] | None = None,
) -> str:
    """Run ``argv`` in its own process group, wait for Streamlit's health endpoint, return the base URL.

    The group is killed when the test ends, whatever happens; a server that
    exits or stays unhealthy past ``timeout`` fails the test with its log.
    ``started``: receives the process (for a test that stops it itself).
    """
    out = log.open("wb")
    proc = subprocess.Popen(
        argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent, start_new_session=True
    )

    def stop() -> None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
        out.close()

    request.addfinalizer(stop)
    if started is not None:
        started.append(proc)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"streamlit exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return url
        except OSError:
            time.sleep(0.3)
    pytest.fail(
        f"streamlit did not become healthy in {timeout} s:\n{log.read_text(errors='replace')[-3000:]}"
    )
