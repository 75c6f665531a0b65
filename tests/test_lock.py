"""The store lock: one holder at a time (exit 5 for the second), stale holders taken over."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from recon.errors import ExitCode, LockedError
from recon.lock import acquire, holder_text, lock_info, release, store_lock
from recon.models import now_iso
from recon.store import open_store, transaction


def test_second_holder_refused_with_exit_5(store_path: Path) -> None:
    import socket

    db = open_store(store_path)
    with transaction(db):
        db["locks"].insert(
            {
                "name": "store",
                "holder": "run",
                "pid": 999999,
                "host": "other-host",
                "run_id": "run-1",
                "started_at": now_iso(),
                "heartbeat_at": now_iso(),
            }
        )
    with pytest.raises(LockedError) as err:
        acquire(db, holder="apply")
    assert err.value.exit_code == ExitCode.LOCKED == 5
    assert "run-1" in str(err.value) and "other-host" in str(err.value)
    assert socket.gethostname() != "other-host"
    db.execute("delete from locks")
    lock = acquire(db, holder="apply")
    assert lock_info(db)["holder"] == "apply"
    release(lock)
    assert lock_info(db) is None


def test_stale_heartbeat_is_taken_over(store_path: Path) -> None:
    db = open_store(store_path)
    with transaction(db):
        db["locks"].insert(
            {
                "name": "store",
                "holder": "old-run",
                "pid": 1,
                "host": "elsewhere",
                "started_at": "2020-01-01T00:00:00.000Z",
                "heartbeat_at": "2020-01-01T00:00:00.000Z",
            }
        )
    lock = acquire(db, holder="new-run", stale_after=60)
    assert lock_info(db)["holder"] == "new-run"
    release(lock)


def test_dead_process_on_this_host_is_taken_over(store_path: Path) -> None:
    db = open_store(store_path)
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(proc.stdout)
    import socket

    with transaction(db):
        db["locks"].insert(
            {
                "name": "store",
                "holder": "crashed",
                "pid": dead_pid,
                "host": socket.gethostname(),
                "started_at": now_iso(),
                "heartbeat_at": now_iso(),
            }
        )
    lock = acquire(db, holder="next")
    assert lock.holder == "next"
    release(lock)


def test_a_lock_whose_pid_is_now_a_younger_process_is_taken_over(store_path: Path) -> None:
    """The holder's pid belongs to a process started after the lock was taken (pids are
    reused): scheduled runs exited 5 for up to five minutes."""
    import socket
    from datetime import UTC, datetime, timedelta

    db = open_store(store_path)
    younger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        taken = (datetime.now(UTC) - timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        with transaction(db):
            db["locks"].insert(
                {"name": "store", "holder": "recon run", "pid": younger.pid,
                 "host": socket.gethostname(), "started_at": taken, "heartbeat_at": taken}
            )  # fmt: skip
        lock = acquire(db, holder="next")
        assert lock.holder == "next"
        release(lock)
    finally:
        younger.kill()
        younger.wait()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process keys need /proc")
def test_a_live_holder_is_not_taken_over_after_the_clock_stepped(store_path: Path) -> None:
    """The wall clock stepped forward (NTP at boot) after the holder took the lock: its
    process now looks younger than its lock by the clock, but its recorded process key says
    it is the same process. Taking such a lock over let two runs write at once."""
    import socket
    from datetime import UTC, datetime, timedelta

    from recon.store import process_key, settle_dead_runs, start_run

    db = open_store(store_path)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        key = process_key(holder.pid)
        assert key is not None
        # stepped by more than the stale age: its start and its last beat look old
        before_step = (datetime.now(UTC) - timedelta(seconds=600)).strftime(
            "%Y-%m-%dT%H:%M:%S.000Z"
        )
        with transaction(db):
            db["locks"].insert(
                {"name": "store", "holder": "recon run", "pid": holder.pid, "process": key,
                 "host": socket.gethostname(), "started_at": before_step,
                 "heartbeat_at": before_step}
            )  # fmt: skip
        with pytest.raises(LockedError):
            acquire(db, holder="next")
        run = start_run(db, "apply")
        with transaction(db):
            db["runs"].update(run, {"pid": holder.pid, "process": key, "started_at": before_step})
        assert settle_dead_runs(db) == []
        # another process under that pid (a reused pid) has another key: taken over
        with transaction(db):
            db.execute("update locks set process = 'another-boot:1'")
            db.execute("update runs set process = 'another-boot:1'")
        lock = acquire(db, holder="next")
        assert lock.holder == "next"
        release(lock)
        assert settle_dead_runs(db) == [run]
    finally:
        holder.kill()
        holder.wait()


def test_lock_held_by_another_process(store_path: Path) -> None:
    open_store(store_path).conn.close()
    script = textwrap.dedent(
        f"""
        import sys, time
        from recon.store import open_store
        from recon.lock import store_lock
        db = open_store({str(store_path)!r})
        with store_lock(db, holder="other-process", heartbeat_every=0.2):
            print("held", flush=True)
            sys.stdin.readline()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        db = open_store(store_path)
        with pytest.raises(LockedError, match="other-process"):
            acquire(db, holder="me")
    finally:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=20)
    assert lock_info(open_store(store_path)) is None


def test_same_process_may_nest_and_keeps_the_outer_lock(store_path: Path) -> None:
    db = open_store(store_path)
    with store_lock(db, holder="recon run") as outer:
        with store_lock(db, holder="apply") as inner:
            assert inner.nested and not outer.nested
        info = lock_info(db)
        assert info is not None and info["holder"] == "recon run"
    assert lock_info(db) is None


def test_a_holder_inside_a_long_write_means_locked(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Taking the lock while another process writes (a plan's rows in one transaction) is a
    LockedError (exit 5) after a short wait, not a "database is locked" crash (exit 1)."""
    import sqlite3

    import recon.lock

    db = open_store(store_path)
    writer = sqlite3.connect(store_path, isolation_level=None)
    writer.execute("begin immediate")
    monkeypatch.setattr(recon.lock, "_BUSY_MS", 100)
    try:
        with pytest.raises(LockedError, match="writing"):
            acquire(db, holder="second run")
    finally:
        writer.execute("rollback")
        writer.close()
    assert db.execute("pragma busy_timeout").fetchone()[0] > 100  # the store's own wait is back
    release(acquire(db, holder="second run"))


def test_a_lock_left_by_a_dead_process_with_this_pid_is_taken_over(store_path: Path) -> None:
    """A killed run's pid reused by a new process (pid 1 in a restarted container): the new
    run holds the lock for real, not as a nested take of its own lock."""
    import os
    import socket

    db = open_store(store_path)
    with transaction(db):
        db["locks"].insert(
            {
                "name": "store",
                "holder": "killed run",
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started_at": "2020-01-01T00:00:00.000Z",
                "heartbeat_at": "2020-01-01T00:00:00.000Z",
            }
        )
    lock = acquire(db, holder="new run")
    assert not lock.nested and lock_info(db)["holder"] == "new run"
    release(lock)
    assert lock_info(db) is None


def test_the_holder_is_named_by_command_stage_run_process_and_time(store_path: Path) -> None:
    import os
    import socket

    db = open_store(store_path)
    assert holder_text(db) is None
    db["runs"].insert_all(
        [
            {"run_id": "run-1", "stage": "run", "status": "running", "started_at": now_iso()},
            {"run_id": "match-1", "parent_id": "run-1", "stage": "match", "status": "ok",
             "started_at": "2026-01-01T00:00:00.000Z"},
            {"run_id": "plan-1", "parent_id": "run-1", "stage": "plan", "status": "running",
             "started_at": now_iso()},
        ]
    )  # fmt: skip
    with store_lock(db, holder="recon run", run_id="run-1"):
        text = holder_text(db)
        since = lock_info(db)["started_at"][:19].replace("T", " ")
    assert text == (
        f"recon run (stage plan, run run-1, pid {os.getpid()} on {socket.gethostname()}, "
        f"since {since} UTC)"
    )
    with store_lock(db, holder="apply"):
        assert str(holder_text(db)).startswith(f"recon apply (pid {os.getpid()} on ")
    assert holder_text(db) is None
