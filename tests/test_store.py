"""The store: migrations (fresh, twice, upgrade from an older schema), transactions, runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlite_utils

from recon.errors import LockedError, StoreError, UsageError
from recon.models import now_iso
from recon.store import (
    MIGRATIONS,
    finish_run,
    get_run,
    open_store,
    prune_runs,
    resolve_run_id,
    settle_dead_runs,
    start_run,
    store_status,
    transaction,
)

PINNED = {
    "runs",
    "cursors",
    "snapshots",
    "schemas",
    "owners",
    "associations",
    "decisions",
    "locks",
    "match_runs",
    "pairs",
    "clusters",
    "plan_items",
    "journal",
    "audit",
}


def test_fresh_store_has_every_table(fresh_db: sqlite_utils.Database) -> None:
    assert set(fresh_db.table_names()) >= PINNED


def test_open_twice_is_idempotent_and_uses_wal(store_path: Path) -> None:
    db = open_store(store_path)
    db["runs"].insert({"run_id": "r1", "stage": "pull", "status": "ok"})
    db.conn.close()
    again = open_store(store_path)
    assert again["runs"].count == 1
    assert again.execute("pragma journal_mode").fetchone()[0] == "wal"
    names = [m.name for m in MIGRATIONS.applied(again)]
    assert len(names) == len(set(names))


def test_upgrade_from_an_older_schema(store_path: Path) -> None:
    old = sqlite_utils.Database(store_path)
    # an old store: only the first migration applied
    from recon.store import m001_foundation

    m001_foundation(old)
    old["_sqlite_migrations"].insert(
        {"migration_set": "recon", "name": "m001_foundation", "applied_at": "2026-01-01 00:00:00"}
    )
    old["snapshots"].insert(
        {"source": "hubspot", "object": "companies", "record_id": "1", "name": "Acme"}
    )
    old.conn.close()
    db = open_store(store_path)
    assert set(db.table_names()) >= PINNED
    assert db["snapshots"].get(("hubspot", "companies", "1"))["name"] == "Acme"


def test_processes_opening_a_new_store_at_once_take_turns_migrating(tmp_path: Path) -> None:
    import threading

    for attempt in range(5):
        path = tmp_path / f"s{attempt}.db"
        errors: list[BaseException] = []

        def open_it(path: Path = path, errors: list[BaseException] = errors) -> None:
            try:
                open_store(path).conn.close()
            except BaseException as exc:  # collected, asserted below
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        names = [m.name for m in MIGRATIONS.applied(open_store(path))]
        assert (
            len(names)
            == len(set(names))
            == len(MIGRATIONS.pending(sqlite_utils.Database(memory=True)))
        )


def test_a_write_held_past_the_busy_timeout_is_a_locked_error(store_path: Path) -> None:
    holder = open_store(store_path)
    holder.execute("BEGIN IMMEDIATE")
    other = open_store(store_path)
    other.execute("PRAGMA busy_timeout = 50")
    with pytest.raises(LockedError, match="busy") as caught, transaction(other):
        pass
    assert caught.value.exit_code == 5
    holder.execute("ROLLBACK")
    with transaction(other):
        other["runs"].insert({"run_id": "r1", "stage": "pull"})
    assert other["runs"].count == 1


def test_a_busy_store_names_the_holder_of_the_store_lock_within_the_busy_timeout(
    store_path: Path,
) -> None:
    import time

    from recon.lock import store_lock

    holder = open_store(store_path)
    quick = open_store(store_path, busy_timeout=0.3)
    with store_lock(holder, holder="recon run", run_id="run-7"):
        holder.execute("BEGIN IMMEDIATE")  # the run is writing (a plan storing its items)
        started = time.monotonic()
        with pytest.raises(LockedError) as caught, transaction(quick):
            pass
        waited = time.monotonic() - started
        holder.execute("ROLLBACK")
    assert 0.25 < waited < 3
    assert caught.value.message.startswith(
        f"the store is busy: recon run (run run-7, pid {os.getpid()} on "
    ), caught.value.message
    assert "holding the store lock, is writing to it" in caught.value.message
    with transaction(quick):  # released: the write goes through
        quick["runs"].insert({"run_id": "r1", "stage": "pull"})


def test_a_read_only_store_or_folder_is_named_before_the_first_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(root may write anywhere: the access check is stood in for.) A store its user may
    not write failed mid-command with "attempt to write a readonly database"."""
    import os

    path = tmp_path / "data" / "recon.db"
    open_store(path).conn.close()
    for blocked in (path, path.parent, path.with_name("recon.db-wal")):  # a leftover journal too
        if not blocked.exists():
            blocked.touch()
        monkeypatch.setattr(os, "access", lambda f, mode, b=blocked: Path(f) != b)
        with pytest.raises(StoreError, match=f"{blocked} is read-only for this user") as err:
            open_store(path)
        assert "write access" in str(err.value)
    monkeypatch.undo()
    open_store(path).conn.close()


def test_a_store_path_naming_a_folder_says_so(tmp_path: Path) -> None:
    """`[store] path = "data"` (the folder, not the file) failed with SQLite's "unable to
    open database file"."""
    with pytest.raises(StoreError, match=f"the store {tmp_path} is a folder, not a file") as err:
        open_store(tmp_path)
    assert str(tmp_path / "recon.db") in (err.value.hint or "")


def test_another_applications_database_is_not_made_a_store(tmp_path: Path) -> None:
    """Opening it would add recon's tables to someone else's database."""
    import sqlite3

    from recon.sandbox.server import open_state

    foreign = tmp_path / "crm.db"
    conn = sqlite3.connect(foreign)
    conn.execute("create table customers (id)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a recon store: it is another SQLite database"):
        open_store(foreign)
    sandbox = tmp_path / "sandbox.db"
    open_state(sandbox, size=None).conn.close()
    with pytest.raises(StoreError, match="the sandbox's database"):
        open_store(sandbox)
    tables = {r[0] for r in sqlite3.connect(foreign).execute("select name from sqlite_master")}
    assert tables == {"customers"}


def test_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"bad\.db"):
        open_store(bad)


def test_transaction_rolls_back_on_error(fresh_db: sqlite_utils.Database) -> None:
    with pytest.raises(RuntimeError), transaction(fresh_db):
        fresh_db["runs"].insert({"run_id": "x", "stage": "pull"})
        raise RuntimeError("boom")
    assert fresh_db["runs"].count == 0
    with transaction(fresh_db), transaction(fresh_db):
        fresh_db["runs"].insert({"run_id": "y", "stage": "pull"})
    assert fresh_db["runs"].count == 1


def test_runs_nest_and_resolve(fresh_db: sqlite_utils.Database) -> None:
    parent = start_run(fresh_db, "run", config={"dry_run": True})
    pull = start_run(fresh_db, "pull", parent_id=parent)
    finish_run(fresh_db, pull, summary={"records": 3})
    assert get_run(fresh_db, pull)["summary"] == {"records": 3}
    assert get_run(fresh_db, parent)["config"] == {"dry_run": True}
    assert resolve_run_id(fresh_db, parent, "pull") == pull
    assert resolve_run_id(fresh_db, pull, "pull") == pull
    assert resolve_run_id(fresh_db, None, "pull") == pull
    assert resolve_run_id(fresh_db, None, "apply") is None
    with pytest.raises(UsageError, match="no apply run"):
        resolve_run_id(fresh_db, parent, "apply")
    with pytest.raises(UsageError, match="no run"):
        get_run(fresh_db, "missing")


def test_the_latest_finished_run_is_what_later_stages_build_on(
    fresh_db: sqlite_utils.Database,
) -> None:
    done = start_run(fresh_db, "match")
    finish_run(fresh_db, done)
    killed = start_run(fresh_db, "match")  # killed while it computed: still "running"
    failed = start_run(fresh_db, "match")
    finish_run(fresh_db, failed, status="failed", error="boom")
    assert resolve_run_id(fresh_db, None, "match") == failed  # the latest of any status
    assert resolve_run_id(fresh_db, None, "match", finished=True) == done
    assert resolve_run_id(fresh_db, killed, "match", finished=True) == killed  # named: as is


def test_store_status_counts(fresh_db: sqlite_utils.Database) -> None:
    fresh_db["snapshots"].insert_all(
        [
            {"source": "hubspot", "object": "companies", "record_id": str(i), "archived": i % 2}
            for i in range(4)
        ]
    )
    run = start_run(fresh_db, "match")
    fresh_db["pairs"].insert_all(
        [
            {"run_id": run, "pair_id": "p1", "kind": "link", "tier": "review", "score": 0.7},
            {"run_id": run, "pair_id": "p2", "kind": "link", "tier": "auto", "score": 0.99},
        ]
    )
    fresh_db["decisions"].insert({"kind": "link", "label": "match", "item_id": "p2"})
    status = store_status(fresh_db)
    assert status["records"] == [
        {
            "source": "hubspot",
            "object": "companies",
            "records": 4,
            "archived": 2,
            "last_modified": None,
        }
    ]
    assert status["waiting_for_review"] == 1
    assert status["decisions"] == 1
    assert status["runs"]["match"]["run_id"] == run


def test_plan_items_are_found_by_link_only_for_merges_through_a_partial_index() -> None:
    db = open_store(":memory:")
    names = {
        r[0] for r in db.execute("select name from sqlite_master where tbl_name = 'plan_items'")
    }
    assert "idx_plan_items_merge_link" in names and "idx_plan_items_link_item_id" not in names
    plan = db.execute(
        "explain query plan select item_id from plan_items"
        " where run_id = ? and action = 'merge' and link_item_id = ?",
        ["r", "c"],
    ).fetchall()
    assert "idx_plan_items_merge_link" in str(plan)


def _plan_runs_world() -> tuple[sqlite_utils.Database, str, str, list[str]]:
    """Two match runs and four plan runs (three from the first match run), oldest first."""
    from plan_testdata import World, cfg, linked_leads

    from recon.plan import build_plan

    w = World()
    linked_leads(w, ["0", "1"], {"jobtitle": "CEO"})
    m1 = w.done()
    plans = [build_plan(w.db, cfg()).run_id for _ in range(3)]
    w.match_run = start_run(w.db, "match")
    linked_leads(w, ["0"], {"jobtitle": "CEO"})
    m2 = w.done()
    plans.append(build_plan(w.db, cfg()).run_id)
    return w.db, m1, m2, [str(p) for p in plans]


def _rows(db: sqlite_utils.Database, table: str, run_id: str) -> int:
    return int(db.execute(f"select count(*) from {table} where run_id = ?", [run_id]).fetchone()[0])


def test_prune_keeps_the_newest_runs_and_what_an_apply_journalled() -> None:
    db, m1, m2, plans = _plan_runs_world()
    counts = {p: _rows(db, "plan_items", p) for p in plans}
    assert counts[plans[0]] > 1 and all(counts.values())
    # an apply run sent one item of the oldest plan: that item stays, the others go
    (sent,) = db.execute(
        "select item_id from plan_items where run_id = ? limit 1", [plans[0]]
    ).fetchone()
    db["journal"].insert({"run_id": "apply-1", "item_id": sent, "plan_run_id": plans[0]})
    seen = prune_runs(db, 1, dry_run=True)
    assert seen["runs"] == {"plan": sorted(plans[:3]), "match": [m1]}
    assert seen["rows"]["plan_items"] == sum(counts[p] for p in plans[:3]) - 1
    assert {p: _rows(db, "plan_items", p) for p in plans} == counts  # a dry run deletes nothing
    done = prune_runs(db, 1)
    assert done["runs"] == seen["runs"] and done["rows"] == seen["rows"]
    assert [_rows(db, "plan_items", p) for p in plans] == [1, 0, 0, counts[plans[3]]]
    assert db.execute("select item_id from plan_items where run_id = ?", [plans[0]]).fetchall() == [
        (sent,)
    ]
    assert _rows(db, "pairs", m1) == 0 and _rows(db, "pairs", m2) > 0
    assert get_run(db, plans[1])["summary"]["pruned_at"]  # the run's history stays
    assert "pruned_at" not in get_run(db, plans[3])["summary"]
    assert prune_runs(db, 1)["runs"] == {"plan": [], "match": []}  # nothing twice


def test_prune_keeps_the_plan_of_an_unfinished_apply_and_its_match_run() -> None:
    db, m1, _m2, plans = _plan_runs_world()
    start_run(db, "apply", config={"plan_run_id": plans[0]})  # still running
    result = prune_runs(db, 1)
    assert result["runs"] == {"plan": sorted(plans[1:3]), "match": []}
    assert _rows(db, "plan_items", plans[0]) > 0 and _rows(db, "pairs", m1) > 0


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_runs_whose_process_is_gone_are_settled_as_killed() -> None:
    db = open_store(":memory:")
    mine = start_run(db, "match")
    gone = start_run(db, "match")
    elsewhere = start_run(db, "plan")
    db.execute("update runs set pid = ? where run_id = ?", [_dead_pid(), gone])
    db.execute("update runs set host = 'another-host' where run_id = ?", [elsewhere])
    assert store_status(db)["runs"]["match"]["status"] in ("running", "killed")
    status = dict(db.execute("select run_id, status from runs").fetchall())
    assert status == {mine: "running", gone: "killed", elsewhere: "running"}
    assert get_run(db, gone)["error"] == "the process ended before the run finished"


def test_a_run_taken_over_later_is_judged_by_its_takeover_time() -> None:
    """A resumed apply keeps the time it started; the process check reads when this process
    took it over (a run started before this process did is not this process's)."""
    db = open_store(":memory:")
    old = start_run(db, "apply")
    db.execute("update runs set started_at = '2000-01-01T00:00:00Z' where run_id = ?", [old])
    taken = start_run(db, "apply")
    db.execute(
        "update runs set started_at = '2000-01-01T00:00:00Z', "
        "config = json_set(config, '$.process_started_at', ?) where run_id = ?",
        [now_iso(), taken],
    )
    # rows recorded without a process key (before it was recorded) are judged by the times
    db.execute("update runs set process = null")
    assert settle_dead_runs(db) == [old]  # its pid's process started after it: not its own


def test_prune_keeps_the_plan_of_a_killed_apply_with_items_left() -> None:
    db, _m1, _m2, plans = _plan_runs_world()
    apply_run = start_run(db, "apply", config={"plan_run_id": plans[0]})
    db["journal"].insert(
        {"run_id": apply_run, "item_id": "x", "plan_run_id": plans[0], "state": "planned"}
    )
    db.execute("update runs set pid = ? where run_id = ?", [_dead_pid(), apply_run])
    prune_runs(db, 1)
    assert get_run(db, apply_run)["status"] == "killed"
    assert _rows(db, "plan_items", plans[0]) > 0  # the resume still needs it


def test_prune_drops_a_match_run_no_kept_plan_needs() -> None:
    db, m1, m2, plans = _plan_runs_world()
    result = prune_runs(db, 1)
    assert result["runs"] == {"plan": sorted(plans[:3]), "match": [m1]}
    assert _rows(db, "pairs", m1) == 0 and _rows(db, "pairs", m2) > 0
    assert result["rows"]["pairs"] > 0


def test_prune_keeps_at_least_one_run() -> None:
    with pytest.raises(UsageError, match="at least 1"):
        prune_runs(open_store(":memory:"), 0)


def test_prune_never_counts_a_killed_run_as_the_newest() -> None:
    db, _m1, _m2, plans = _plan_runs_world()
    latest = plans[-1]
    killed = start_run(db, "plan")  # a plan killed while it stored its rows
    db["runs"].update(killed, {"status": "killed"})
    prune_runs(db, 1)
    assert _rows(db, "plan_items", latest) > 0  # the plan apply and review use stays whole


def test_prune_dry_run_writes_nothing() -> None:
    db, _m1, _m2, _plans = _plan_runs_world()
    dead = start_run(db, "plan")
    import socket

    # a run of this machine whose process is gone: a real prune would mark it killed
    db["runs"].update(dead, {"status": "running", "pid": 4_194_000, "host": socket.gethostname()})
    before = db.execute("select run_id, status from runs order by run_id").fetchall()
    prune_runs(db, 1, dry_run=True)
    assert db.execute("select run_id, status from runs order by run_id").fetchall() == before


def test_a_store_that_cannot_be_written_is_a_store_error(tmp_path: Path) -> None:
    """A full disk or a store made read-only under a running app raised SQLite's own
    error (a traceback on the review page); it is a StoreError naming the store, and
    nothing of the transaction is kept."""
    from recon.errors import StoreError
    from recon.store import transaction

    db = open_store(tmp_path / "recon.db")
    db.execute("pragma query_only = 1")  # every write refused, as on a read-only file
    with pytest.raises(StoreError, match="cannot write to the store") as refused, transaction(db):
        db["locks"].insert({"name": "x"})
    assert str(tmp_path / "recon.db") in str(refused.value) and "nothing" in str(refused.value)
    db.execute("pragma query_only = 0")
    assert not db.conn.in_transaction and db["locks"].count == 0
    with transaction(db):  # the connection goes on
        db["locks"].insert({"name": "y"})
    assert db["locks"].count == 1
