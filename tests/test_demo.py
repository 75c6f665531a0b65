"""`recon demo`: emulators + pull + match + plan + the review app, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from recon.store import open_store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_serves_a_populated_review_queue_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    folder = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "recon", "demo", "--size", "tiny", "--dir", str(folder),
         "--port", str(port), "--sandbox-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "review app: http://" in line:
                break
        assert any("review app: http://127.0.0.1:" in line for line in lines), "".join(lines)
        health = None
        while time.monotonic() < deadline:
            try:
                health = requests.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                if health.ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        assert health is not None and health.ok and health.text == "ok"
        page = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.ok and "<html" in page.text.lower()
        waiting = [line for line in lines if "items wait for review" in line]
        assert waiting and int(waiting[0].split()[0]) > 0
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, "".join(lines) + out
    db = open_store(folder / "recon.db")
    assert db.execute("select count(*) from snapshots").fetchone()[0] > 0
    # something for a person: review-tier pairs (the tiny demo may match every pair surely)
    # or items that need a decision (conflicts, merges, creates)
    review = db.execute("select count(*) from pairs where tier = 'review'").fetchone()[0]
    asked = db.execute(
        "select count(*) from plan_items where status = 'needs_review' or action = 'merge'"
    ).fetchone()[0]
    assert review + asked > 0
    assert db.execute("select count(*) from plan_items").fetchone()[0] > 0


def test_demo_data_of_another_seed_starts_a_new_store(tmp_path: Path) -> None:
    """The emulators regenerate their data for another size or seed; the store was kept and
    pulled incrementally over the old data: two datasets mixed in one review queue."""
    from recon.demo import prepare_demo

    said: list[str] = []
    for seed in (0, 1):
        _result, server = prepare_demo(tmp_path, size="tiny", seed=seed, say=said.append)
        try:
            db = open_store(tmp_path / "recon.db")
            stored = {
                r[0]: r[1]
                for r in db.execute(
                    "select record_id, name from snapshots where source = 'hubspot' "
                    "and object = 'companies'"
                )
            }
            served = requests.get(
                f"{server.url}/crm/v3/objects/companies?limit=100&properties=name",
                headers={"Authorization": "Bearer pat-na1-demo"},
                timeout=10,
            ).json()["results"]
            assert all(stored.get(c["id"]) == c["properties"]["name"] for c in served)
            db.conn.close()
        finally:
            server.stop()
            server.state.close()  # the emulators' database is given up for the next start
    assert any("starting a new store for tiny, seed 1" in m for m in said)
    # `recon sandbox serve` with the demo's recon.toml serves the same data (not the default size)
    from recon.config import load_config

    sandbox = load_config(tmp_path / "recon.toml").sandbox
    assert (sandbox.size, sandbox.seed) == ("tiny", 1)


def test_a_review_port_in_use_is_said_before_the_demo_starts(tmp_path: Path) -> None:
    """With --port taken, the demo pulled, matched and planned, printed "review app:
    http://127.0.0.1:PORT" (something else's address), then failed: "the review app exited
    with code 1"."""
    import pytest

    from recon.demo import run_demo
    from recon.errors import UsageError

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        said: list[str] = []
        with pytest.raises(UsageError, match=f"port {port} on 127.0.0.1 is in use") as error:
            run_demo(tmp_path / "demo", size="tiny", review_port=port, say=said.append)
    assert "--port" in (error.value.hint or "")
    assert said == [] and not (tmp_path / "demo").exists()  # no emulators, no store
