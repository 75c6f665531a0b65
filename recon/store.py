"""The local SQLite store: open, migrate, runs, and typed helpers.

One file holds everything recon knows: runs (nested: a ``recon run`` is a parent
whose pull, match, plan and apply runs are its children), sync cursors, record
snapshots, schema snapshots, owners, decisions, the lock row, match results,
plans, the apply journal and the audit chain. The schema is built by
``sqlite_utils.Migrations``; later stages add tables by new migrations at the
end of this module (never by editing an applied one).

Examples:
    >>> db = open_store(":memory:")
    >>> "runs" in db.table_names()
    True
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from .config import config_file
from .errors import LockedError, StoreError, UsageError, redact
from .models import canonical_json, new_run_id, now_iso

__all__ = [
    "MIGRATIONS",
    "close_stores",
    "finish_run",
    "get_run",
    "open_store",
    "prune_runs",
    "resolve_run_id",
    "start_run",
    "store_status",
    "track_stores",
    "transaction",
]

log = logging.getLogger(__name__)

MIGRATIONS = Migrations("recon")


@MIGRATIONS(name="m001_foundation")
def m001_foundation(db: sqlite_utils.Database) -> None:
    """Runs, cursors, snapshots, schemas, owners, associations, decisions, lock."""
    db["runs"].create(
        {
            "run_id": str,
            "parent_id": str,  # the `recon run` this stage ran under, or NULL
            "stage": str,  # pull | match | plan | apply | undo | run | review
            "status": str,  # running | ok | partial | failed | budget | cancelled
            "started_at": str,
            "ended_at": str,
            "config": str,  # JSON: settings that shaped the run (secrets never)
            "summary": str,  # JSON: counts, API calls, error classes, anchor
            "error": str,
        },
        pk="run_id",
    )
    db["runs"].create_index(["parent_id"])
    db["runs"].create_index(["stage", "started_at"])
    # incremental state per (source, object), written in the same transaction as the rows
    db["cursors"].create(
        {
            "source": str,
            "object": str,
            "cursor_field": str,
            "value": str,  # last cursor value (closed start: next query uses >=)
            "ids_at_value": str,  # JSON list of ids already seen at `value`
            "state": str,  # JSON: paging token of an unfinished pull, archived sweep time...
            "run_id": str,
            "updated_at": str,
        },
        pk=("source", "object"),
    )
    # latest values of every record, all fields as JSON plus promoted columns
    db["snapshots"].create(
        {
            "source": str,  # hubspot | salesforce
            "object": str,  # companies | contacts | Account | Contact | Lead | ...
            "record_id": str,
            "name": str,  # company name, or person's full name
            "domain": str,
            "website": str,
            "email": str,
            "phone": str,
            "first_name": str,
            "last_name": str,
            "company": str,  # a person's company name (Lead.Company, contact company)
            "account_id": str,  # Contact.AccountId / contact's primary company id
            "city": str,
            "country": str,
            "owner_id": str,
            "external_ids": str,  # JSON: stored cross-system ids
            "created_at": str,
            "modified_at": str,  # CRM last modified (hs_lastmodifieddate / SystemModstamp)
            "archived": int,
            "data": str,  # JSON: every field as pulled
            "content_hash": str,
            "run_id": str,  # the run that last changed this row
            "origin": str,  # api | file:<path>
        },
        pk=("source", "object", "record_id"),
        not_null={"source", "object", "record_id"},
    )
    db["snapshots"].create_index(["source", "object", "modified_at"])
    db["snapshots"].create_index(["email"])
    db["snapshots"].create_index(["domain"])
    db["snapshots"].create_index(["run_id"])
    db["schemas"].create(
        {
            "source": str,
            "object": str,
            "fields": str,  # JSON list of properties / describe fields as last seen
            "run_id": str,
            "fetched_at": str,
        },
        pk=("source", "object"),
    )
    db["owners"].create(
        {
            "source": str,
            "owner_id": str,
            "email": str,
            "name": str,
            "active": int,
            "data": str,
            "run_id": str,
        },
        pk=("source", "owner_id"),
    )
    db["owners"].create_index(["email"])
    db["associations"].create(
        {
            "source": str,
            "from_object": str,
            "from_id": str,
            "to_object": str,
            "to_id": str,
            "kind": str,
            "run_id": str,
        },
        pk=("source", "from_object", "from_id", "to_object", "to_id"),
    )
    db["associations"].create_index(["source", "to_object", "to_id"])
    # every human or policy decision, in the labels shape (STYLE.md habit 4)
    db["decisions"].create(
        {
            "decision_id": int,
            "kind": str,  # link | duplicate | conflict_value | master | split | plan
            "object": str,  # companies | contacts
            "source_l": str,
            "record_id_l": str,
            "source_r": str,
            "record_id_r": str,
            "salesforce_object": str,
            "label": str,  # match | non_match | unsure | approve | reject | defer
            "choice": str,  # JSON: surviving value, master id, split
            "item_id": str,  # plan item, pair or cluster id
            "decided_by": str,  # human | policy | recon (a created copy's link)
            "reviewer": str,
            "decided_at": str,
            "version": int,  # raised each time the item is decided again
            "based_on_version": int,  # the version the reviewer saw (conflict detection)
            "run_id": str,  # match or plan run the item came from
            "superseded": int,  # 1 once a later decision on the item replaced it
            "note": str,
        },
        pk="decision_id",
        defaults={"superseded": 0, "version": 1, "decided_by": "human"},
    )
    db["decisions"].create_index(["item_id", "version"])
    db["decisions"].create_index(["kind", "object", "record_id_l", "record_id_r"])
    db["locks"].create(
        {
            "name": str,
            "holder": str,
            "pid": int,
            "host": str,
            "run_id": str,
            "started_at": str,
            "heartbeat_at": str,
        },
        pk="name",
    )


@MIGRATIONS(name="m002_match")
def m002_match(db: sqlite_utils.Database) -> None:
    """Match runs, candidate pairs and duplicate clusters."""
    db["match_runs"].create(
        {
            "run_id": str,
            "object": str,  # companies | contacts
            "settings": str,  # JSON: the MatchSettings used (round-trips)
            "weights": str,  # JSON: fitted m/u and weights, stored with the run
            "counts": str,  # JSON: records, candidate pairs per blocking rule, links, clusters
            "created_at": str,
        },
        pk=("run_id", "object"),
    )
    db["pairs"].create(
        {
            "run_id": str,
            "pair_id": str,
            "kind": str,  # link (across systems) | duplicate (inside one system)
            "object": str,  # companies | contacts
            "source_l": str,
            "object_l": str,
            "record_id_l": str,
            "source_r": str,
            "object_r": str,
            "record_id_r": str,
            "score": float,  # 0..1
            "match_weight": float,  # log2 Bayes factor total
            "tier": str,  # auto | review | reject
            "explanation": str,  # JSON list of {comparison, level, weight}
            "cluster_id": str,  # duplicates: the cluster the pair belongs to
            "flags": str,  # JSON list, e.g. ["shared_email_lead_and_contact"]
        },
        pk=("run_id", "pair_id"),
    )
    db["pairs"].create_index(["run_id", "kind", "tier", "score"])
    db["pairs"].create_index(["record_id_l"])
    db["pairs"].create_index(["record_id_r"])
    db["clusters"].create(
        {
            "run_id": str,
            "cluster_id": str,
            "object": str,
            "source": str,
            "record_object": str,
            "record_id": str,
            "score": float,  # the cluster's weakest internal link
            "tier": str,
        },
        pk=("run_id", "cluster_id", "source", "record_id"),
    )
    db["clusters"].create_index(["run_id", "source", "record_id"])


@MIGRATIONS(name="m003_plan")
def m003_plan(db: sqlite_utils.Database) -> None:
    """Change plans: one row per item, with what it needs approved first."""
    db["plan_items"].create(
        {
            "run_id": str,
            "item_id": str,  # stable across runs for the same inputs
            "action": str,  # update | create | associate | merge | owner | conflict
            "system": str,  # hubspot | salesforce: where the write goes
            "object": str,
            "record_id": str,  # target record (NULL for creates)
            "field": str,
            "before": str,  # JSON
            "after": str,  # JSON
            "snapshot_modified_at": str,  # target's modified time the item was computed from
            "link_item_id": str,  # the pair or cluster decision it depends on
            "requires": str,  # JSON list of decision item ids that must be approved
            "reason": str,  # JSON: rule, score, direction
            "status": str,  # proposed | needs_review | blocked
            "seq": int,  # order the item must run in
            "payload": str,  # JSON: everything the writer needs
        },
        pk=("run_id", "item_id"),
    )
    db["plan_items"].create_index(["run_id", "system", "action"])
    db["plan_items"].create_index(["link_item_id"])


@MIGRATIONS(name="m004_apply_audit")
def m004_apply_audit(db: sqlite_utils.Database) -> None:
    """Apply journal and the append-only, hash-chained audit."""
    db["journal"].create(
        {
            "run_id": str,  # the apply run
            "item_id": str,
            "plan_run_id": str,
            "state": str,  # planned | sent | confirmed | failed | skipped | stale
            "batch": int,
            "attempts": int,
            "idempotency_key": str,
            "crm_record_id": str,  # id of the record written (creates: the new id)
            "error_class": str,
            "error": str,
            "updated_at": str,
        },
        pk=("run_id", "item_id"),
    )
    db["journal"].create_index(["run_id", "state"])
    db["audit"].create(
        {
            "seq": int,
            "run_id": str,
            "item_id": str,
            "reviewer": str,
            "decided_at": str,
            "crm": str,
            "object": str,
            "record_id": str,
            "record_link": str,
            "field": str,
            "before": str,
            "after": str,
            "outcome": str,
            "error": str,
            "at": str,
            "prev_hash": str,
            "hash": str,
        },
        pk="seq",
    )
    db["audit"].create_index(["run_id"])


def _connect(path: str | Path, timeout: float = 30.0) -> sqlite3.Connection:
    conn = sqlite3.connect(
        str(path), timeout=timeout, isolation_level=None, check_same_thread=False
    )
    return conn


#: connections kept for :func:`close_stores` (None: not tracked, as in a notebook or the app,
#: where a store no longer referenced is closed when it is collected)
_OPENED: list[sqlite3.Connection] | None = None


def track_stores() -> None:
    """Keep every store connection this process opens, for :func:`close_stores` (the CLI:
    one command, then exit)."""
    global _OPENED
    if _OPENED is None:
        _OPENED = []


def open_store_paths() -> list[str]:
    """The files of the stores opened since :func:`track_stores` (for error messages)."""
    out: list[str] = []
    for conn in _OPENED or ():
        try:
            row = conn.execute("pragma database_list").fetchone()
        except sqlite3.Error:
            continue
        if row and row[2] and row[2] not in out:
            out.append(str(row[2]))
    return out


def store_problem(exc: sqlite3.DatabaseError, path: str | Path | None = None) -> str | None:
    """One line for a store SQLite cannot read or write (damaged, a full disk, an I/O error),
    naming the store (``path``, else those this process opened) and what to do; None for
    other database errors.

    Examples:
        >>> store_problem(sqlite3.DatabaseError("database disk image is malformed"), "r.db")[:39]
        'r.db is damaged (database disk image is'
    """
    text = str(exc).lower()
    where = str(path) if path is not None else ", ".join(open_store_paths()) or "the store"
    if "malformed" in text or "not a database" in text or "corrupt" in text:
        return (
            f"{where} is damaged ({exc}) (restore it from a copy, or look with `sqlite3 "
            f"{where} 'pragma integrity_check'`; `.recover` in the sqlite3 shell saves what it can)"
        )
    if "full" in text:
        return f"the disk holding {where} is full ({exc}) (free space, then run the command again)"
    if "disk i/o" in text:
        return f"{where} could not be read or written ({exc}) (check the disk, then run again)"
    return None


def cancel_my_runs(reason: str) -> list[str]:
    """Mark ``cancelled`` (with ``reason``) the runs this process left ``running`` in the
    stores it opened since :func:`track_stores`: a Ctrl-C stops a command between its
    writes, and its run must not read as running (or, later, as killed). An apply so stopped
    stays resumable (its journal says what is left)."""
    done: list[str] = []
    for conn in _OPENED or ():
        try:
            rows = conn.execute(
                "select run_id from runs where status = 'running' and pid = ? and host = ?",
                [os.getpid(), socket.gethostname()],
            ).fetchall()
            if conn.in_transaction:
                conn.rollback()  # a write the interrupt cut short is not kept
            with conn:
                conn.executemany(
                    "update runs set status = 'cancelled', ended_at = ?, error = ? "
                    "where run_id = ? and status = 'running'",
                    [(now_iso(), reason, r[0]) for r in rows],
                )
            done += [str(r[0]) for r in rows]
        except sqlite3.Error:  # a closed or locked store: `recon status` settles it later
            continue
    return done


def close_stores() -> None:
    """Close every store connection opened since :func:`track_stores`.

    The last connection to close folds the write-ahead log back into the store file
    (``recon.db-wal`` is emptied and removed): a store copied or backed up after a command
    is whole on its own. A connection still alive at exit is otherwise never closed.
    """
    global _OPENED
    for conn in _OPENED or ():
        try:
            conn.close()
        except sqlite3.Error:  # pragma: no cover - closing twice is harmless
            pass
    _OPENED = None


def open_store(
    path: str | Path, *, migrate: bool = True, create: bool = True, busy_timeout: float = 30.0
) -> sqlite_utils.Database:
    """Open (creating if needed) the store at ``path`` and bring its schema up to date.

    WAL mode, a busy timeout and foreign-key checks are switched on. Open one
    store per thread (Streamlit sessions each open their own).

    Args:
        path: file path, or ``":memory:"`` for tests.
        migrate: apply pending migrations (default True).
        create: make a new, empty store when there is none at ``path`` (default True);
            False for readers (status, audit, notebooks): a store that is not there is an
            error, not an empty store that reports nothing.
        busy_timeout: seconds a write waits for another process's write transaction before
            :class:`~recon.errors.LockedError` naming the holder of the store lock (30 by
            default; the review app waits less, so its page says at once who holds the store
            rather than freezing).

    Raises:
        StoreError: the file cannot be opened or is not a recon store, or (``create=False``)
            there is no store at ``path``.
        LockedError: migrating waited ``busy_timeout`` for another process's write.

    Examples:
        >>> db = open_store(":memory:")
        >>> sorted(t for t in db.table_names() if t in {"runs", "decisions"})
        ['decisions', 'runs']
    """
    memory = str(path) == ":memory:"
    if not memory:
        p = Path(path)
        if not create and not p.exists():
            raise StoreError(
                f"there is no recon store at {p}",
                hint="run in your project's folder, or name its recon.toml with --config or "
                "$RECON_CONFIG ([store] path says where the store is); a new project starts "
                "with `recon init` and `recon pull`",
            )
        if p.is_dir():
            raise StoreError(
                f"the store {p} is a folder, not a file",
                hint=f"set [store] path in {config_file()} to the store file, e.g. "
                f"{p / 'recon.db'}",
            )
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the folder for the store {p}: {exc.strerror}",
                hint=f"set [store] path in {config_file()} to a writable location",
            ) from None
        # the store, and the folder its journal (-wal, -shm) and lock live in, must be
        # writable: else the first write fails mid-command ("attempt to write a readonly
        # database")
        journal = [p.with_name(p.name + suffix) for suffix in ("-wal", "-shm")]
        blocked = next(
            (f for f in (p, p.parent, *journal) if f.exists() and not os.access(f, os.W_OK)),
            None,
        )
        if blocked is not None:
            raise StoreError(
                f"the store {p} cannot be written: {blocked} is read-only for this user (recon "
                "writes its runs, lock and journal files there)",
                hint="give this user write access to the store and its folder, or copy the "
                "store somewhere writable and set [store] path",
            )
    try:
        db = sqlite_utils.Database(_connect(path, busy_timeout))
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        _check_recon_store(db, path)
        if not memory:
            _use_wal(db, busy_timeout)
            db.execute("PRAGMA synchronous = NORMAL")
        if migrate:
            _migrate(db)
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"cannot open the store {path}: {exc}",
            hint="check that [store] path points at a recon SQLite file, or at a new file",
        ) from None
    if _OPENED is not None:
        _OPENED.append(db.conn)
    return db


def _check_recon_store(db: sqlite_utils.Database, path: str | Path) -> None:
    """Refuse an SQLite file that holds something else: migrating it would add recon's
    tables to another application's database (or to the sandbox's)."""
    tables = {
        r[0]
        for r in db.execute(
            "select name from sqlite_master where type = 'table' and name not like 'sqlite_%'"
        )
    }
    if not tables:
        return  # a new store
    if (
        "_sqlite_migrations" in tables
        and db.execute(
            "select 1 from _sqlite_migrations where migration_set = ? limit 1", [MIGRATIONS.name]
        ).fetchone()
    ):
        return
    what = "the sandbox's database" if "sandbox_meta" in tables else "another SQLite database"
    shown = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
    db.conn.close()
    raise StoreError(
        f"{path} is not a recon store: it is {what} (tables {shown})",
        hint="set [store] path to a recon store, or to a new file (recon creates it)",
    )


def _use_wal(db: sqlite_utils.Database, timeout: float = 30.0) -> None:
    """Switch the store to WAL. The switch skips SQLite's busy handler, so processes
    opening a new store at once retry it here, as long as the busy timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _migrate(db: sqlite_utils.Database) -> None:
    """Apply the pending migrations in one write transaction.

    Processes opening a store at once (a scheduled run and the review app, right after an
    upgrade) take turns: the first migrates, the others wait on the write lock and then find
    nothing pending. Each migration still runs in its own savepoint.
    """
    if db["_sqlite_migrations"].exists() and not MIGRATIONS.pending(db):
        return  # the common case: no write lock taken
    with transaction(db):
        MIGRATIONS.apply(db)


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One write transaction (``BEGIN IMMEDIATE``): all or nothing.

    Nested use joins the outer transaction.

    Examples:
        >>> db = open_store(":memory:")
        >>> with transaction(db):
        ...     _ = db["locks"].insert({"name": "x"})
    """
    conn = db.conn
    if conn.in_transaction:
        yield db
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            _raise_unwritable(db, exc)
            raise
        # another process held a write past the busy timeout: the store is in use
        raise LockedError(
            f"the store is busy: {_writer(db)} is writing to it",
            hint="wait for it to finish (`recon status` shows what runs), then try again",
        ) from None
    try:
        yield db
    except BaseException as exc:
        with contextlib.suppress(sqlite3.Error):  # a failed write may have ended it already
            conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.OperationalError):
            _raise_unwritable(db, exc)
        raise
    else:
        try:
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            _raise_unwritable(db, exc)
            raise


def _writer(db: sqlite_utils.Database) -> str:
    """Who is likely writing: the holder of the store lock (command, stage, run, pid, since
    when), else another process or review session (indexing a queue, a bulk approve)."""
    # the lock module builds on this one (imported here, when a write found the store busy)
    from .lock import holder_text

    try:
        who = holder_text(db)
    except sqlite3.Error:  # naming the holder is a courtesy: the error is the busy store
        who = None
    return f"{who}, holding the store lock," if who else "another process or review session"


#: what SQLite says when the store's files cannot be written (the disk, permissions)
_UNWRITABLE = ("disk i/o error", "readonly", "read-only", "disk is full", "unable to open")


def _raise_unwritable(db: sqlite_utils.Database, exc: sqlite3.OperationalError) -> None:
    """Raise a store whose files cannot be written as a :class:`StoreError`; return for
    any other error (the caller re-raises it).

    Nothing of the transaction was kept (it was rolled back); the message names the store
    and SQLite's reason.
    """
    reason = str(exc)
    if not any(p in reason.lower() for p in _UNWRITABLE):
        return
    path = next((r[2] for r in db.execute("pragma database_list") if r[1] == "main"), "") or ""
    raise StoreError(
        f"cannot write to the store {path or '(in memory)'}: {reason}; nothing of this change "
        "was kept",
        hint="check the disk's free space and the store's (and its -wal, -shm files') "
        "permissions, then try again",
    ) from None


def start_run(
    db: sqlite_utils.Database,
    stage: str,
    *,
    parent_id: str | None = None,
    config: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> str:
    """Record the start of a run of ``stage`` and return its id."""
    rid = run_id or new_run_id(stage)
    with transaction(db):
        db["runs"].insert(
            {
                "run_id": rid,
                "parent_id": parent_id,
                "stage": stage,
                "status": "running",
                "started_at": now_iso(),
                "ended_at": None,
                "config": canonical_json(config or {}),
                "summary": "{}",
                "error": None,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "process": process_key(os.getpid()),
            }
        )
    return rid


def process_key(pid: int) -> str | None:
    """An identity of process ``pid`` of this host that no clock change moves: the boot it
    runs in and its start in clock ticks since that boot (Linux); None where not known.

    Examples:
        >>> key = process_key(os.getpid())
        >>> key is None or key == process_key(os.getpid())
        True
    """
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
        start = stat[stat.rindex(")") + 2 :].split()[19]  # field 22, starttime
    except (OSError, ValueError, IndexError):
        return None
    return f"{boot}:{start}"


def process_ran_at(pid: int, at: str | None, key: str | None = None) -> bool:
    """Whether process ``pid`` of this host exists and already ran at ``at`` (a timestamp).

    A pid whose process started after ``at`` belongs to a newer process (pids are reused,
    e.g. pid 1 in a restarted container), not to whatever recorded it then. ``key``: the
    :func:`process_key` recorded with ``at``; where both it and the pid's key now are known
    they decide (a wall clock stepped since, at boot by NTP, does not make a live process
    look younger than its record).

    Examples:
        >>> process_ran_at(os.getpid(), "2999-01-01T00:00:00Z"), process_ran_at(os.getpid(), "2000-01-01T00:00:00Z")
        (True, False)
    """
    import psutil

    from .models import parse_ts

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False  # ended, only not yet reaped by its parent
        started = proc.create_time()
    except psutil.NoSuchProcess:
        return False
    if key and (now_key := process_key(pid)) is not None:
        return now_key == key
    when = parse_ts(at) if at else None
    return when is None or started <= when.timestamp() + 1  # clock granularity


def settle_dead_runs(db: sqlite_utils.Database) -> list[str]:
    """Mark ``killed`` the runs still ``running`` whose process on this host has ended.

    A run killed mid-way (SIGKILL, a crash, a reboot) never finishes its row. Left
    ``running`` it would show as running for ever and keep its rows from pruning. Runs of
    other hosts, and runs without a recorded process, are left as they are. An apply marked
    ``killed`` stays resumable (its journal says what is left).

    Examples:
        >>> settle_dead_runs(open_store(":memory:"))
        []
    """
    dead = [
        str(run_id)
        for run_id, pid, started, key in db.execute(
            # a resumed apply's process took it over later (recon.apply: process_started_at)
            "select run_id, pid, coalesce(json_extract(config, '$.process_started_at'), "
            "started_at), process from runs where status = 'running' and host = ? "
            "and pid is not null",
            [socket.gethostname()],
        ).fetchall()
        if not process_ran_at(int(pid), started, key)
    ]
    if dead:
        with transaction(db):
            for run_id in dead:
                db["runs"].update(
                    run_id,
                    {
                        "status": "killed",
                        "ended_at": now_iso(),
                        "error": "the process ended before the run finished",
                    },
                )
        log.warning("runs killed before they finished: %s", ", ".join(dead))
    return dead


def finish_run(
    db: sqlite_utils.Database,
    run_id: str,
    *,
    status: str = "ok",
    summary: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """Record the end of a run with its status and summary."""
    with transaction(db):
        db["runs"].update(
            run_id,
            {
                "status": status,
                "ended_at": now_iso(),
                # an exception's text may echo a secret, in the error or a stage's summary
                "summary": redact(canonical_json(summary or {})),
                "error": redact(error) if error else error,
            },
        )


def get_run(db: sqlite_utils.Database, run_id: str) -> dict[str, Any]:
    """A run row with ``config`` and ``summary`` decoded.

    Raises:
        UsageError: no such run.
    """
    rows = list(db.query("select * from runs where run_id = ?", [run_id]))
    if not rows:
        raise UsageError(
            f"no run {run_id!r} in the store", hint="`recon status --runs all` lists the runs"
        )
    row = dict(rows[0])
    for key in ("config", "summary"):
        row[key] = json.loads(row[key] or "{}")
    return row


#: run statuses whose results are complete enough to build on
FINISHED = ("ok", "partial", "budget")

#: SQL: a ``runs`` row (its ``config``) is a ``recon undo`` plan, naming the apply run it restores
UNDO_PLAN = "(case when json_valid(config) then json_extract(config, '$.undo_of') end) is not null"
#: an apply run ``r`` that has not finished: still running, or items left in its journal
#: (whatever stopped it: a budget, a crash, an authentication or network failure)
UNFINISHED_APPLY = (
    "(r.status = 'running' or exists (select 1 from journal j where j.run_id = r.run_id "
    "and j.state in ('planned', 'sent')))"
)


def resolve_run_id(
    db: sqlite_utils.Database, run_id: str | None, stage: str, *, finished: bool = False
) -> str | None:
    """The ``stage`` run meant by ``run_id``: itself, the child of a parent run, or the latest.

    Commands that take a run id accept either a stage run or its parent ``recon run``.
    Returns None when ``run_id`` is None and no run of ``stage`` exists. ``finished``: the
    latest means the latest that finished (:data:`FINISHED`), never one still running,
    killed or failed (a plan from a match run killed mid-way would plan from no pairs).

    Raises:
        UsageError: ``run_id`` names no run, or a parent with no ``stage`` child.
    """
    if run_id is None:
        done = f" and status in ({', '.join('?' * len(FINISHED))})" if finished else ""
        rows = list(
            db.query(
                f"select run_id from runs where stage = ?{done} "
                "order by started_at desc, rowid desc limit 1",
                [stage, *(FINISHED if finished else ())],
            )
        )
        return rows[0]["run_id"] if rows else None
    run = get_run(db, run_id)
    if run["stage"] == stage:
        return run_id
    rows = list(
        db.query(
            "select run_id from runs where parent_id = ? and stage = ? order by started_at desc, rowid desc limit 1",
            [run_id, stage],
        )
    )
    if not rows:
        kind = (
            "a `recon run`"
            if run["stage"] == "run"
            else f"{_article(run['stage'])} {run['stage']} run"
        )
        raise UsageError(f"run {run_id!r} is {kind} and has no {stage} run under it")
    return str(rows[0]["run_id"])


def _article(word: str) -> str:
    """``a`` or ``an`` before ``word`` (stage names: an apply, an undo, a pull)."""
    return "an" if word[:1] in "aeiou" else "a"


def store_status(db: sqlite_utils.Database) -> dict[str, Any]:
    """What the store holds per stage, as plain data (``recon status`` shows it).

    Examples:
        >>> store_status(open_store(":memory:"))["records"]
        []
    """
    settle_dead_runs(db)  # a run whose process is gone is shown killed, not running
    records = [
        dict(r)
        for r in db.query(
            "select source, object, count(*) as records, sum(archived > 0) as archived, "
            "max(modified_at) as last_modified from snapshots group by source, object order by source, object"
        )
    ]
    last_runs = {}
    for stage in ("pull", "match", "plan", "apply", "run"):
        rows = list(
            db.query(
                "select run_id, status, started_at, ended_at, summary, error, "
                "json_extract(config, '$.sample') as sample, "
                "coalesce(json_extract(config, '$.dry_run'), 0) as dry_run from runs "
                "where stage = ? order by started_at desc, rowid desc limit 1",
                [stage],
            )
        )
        if rows:
            row = dict(rows[0])
            row["summary"] = json.loads(row["summary"] or "{}")
            if row["sample"] is None:  # a test run on a sample says so; others have no key
                del row["sample"]
            if row.pop("dry_run"):  # a dry run (sent or stored nothing) too
                row["dry_run"] = True
            last_runs[stage] = row
    match_runs = db.execute("select count(*) from runs where stage = 'match'").fetchone()[0]
    latest_match = last_runs.get("match", {}).get("run_id")
    waiting = 0
    if latest_match:
        waiting = db.execute(
            "select count(*) from pairs p where p.run_id = ? and p.tier = 'review' and not exists "
            "(select 1 from decisions d where d.item_id = p.pair_id and d.superseded = 0 "
            "and d.label in ('match','non_match','approve','reject'))",
            [latest_match],
        ).fetchone()[0]
    return {
        "records": records,
        "runs": last_runs,
        "match_runs": match_runs,
        "waiting_for_review": waiting,
        "decisions": db.execute("select count(*) from decisions where superseded = 0").fetchone()[
            0
        ],
    }


#: the rows each stage's runs keep, by table (what :func:`prune_runs` deletes)
_RUN_ROWS = {"plan": ("plan_items",), "match": ("pairs", "clusters", "match_runs")}


def prune_runs(db: sqlite_utils.Database, keep: int, *, dry_run: bool = False) -> dict[str, Any]:
    """Delete the rows of old plan and match runs, keeping the newest ``keep`` of each stage.

    A plan run stores one row per proposed change (1.5M on a large store), so a scheduled
    store grows with every run unless old ones go. Kept whole besides the newest ``keep``
    plan and match runs: runs still running, the match runs the kept plan runs were built
    from, the plan runs of applies not finished yet, and the runs the review queue was
    indexed from. Of an older plan run that an apply run read, the items the apply
    journalled stay (the last-synced times of
    ``two_way`` mappings and the stale-item review read them); its other items go. The
    ``runs`` rows themselves stay (the history), with ``summary.pruned_at``; decisions are
    kept by item id and stay too.

    Args:
        db: the store.
        keep: how many of the newest runs of each stage keep their rows (at least 1).
        dry_run: count only; delete nothing.

    Returns:
        ``{"keep", "dry_run", "runs": {stage: [run ids pruned]}, "rows": {table: rows deleted}}``.

    Raises:
        UsageError: ``keep`` is below 1.

    Examples:
        >>> prune_runs(open_store(":memory:"), 3)["rows"]
        {'plan_items': 0, 'pairs': 0, 'clusters': 0, 'match_runs': 0}
    """
    if keep < 1:
        raise UsageError(f"keep must be at least 1, got {keep}", hint="e.g. --keep 3")
    if not dry_run:  # a dry run changes nothing, not even a dead run's status
        settle_dead_runs(db)  # runs killed mid-way are not "still running": their rows may go

    def ids(sql: str, params: list[Any] | None = None) -> set[str]:
        return {r[0] for r in db.execute(sql, params or []) if r[0] is not None}

    # the newest finished runs (a killed or failed one never takes a kept place), and any
    # still running
    newest = (
        "select run_id from (select run_id, status, row_number() over "
        "(partition by status in ('ok', 'partial') order by started_at desc, rowid desc) as n "
        "from runs where stage = ?) "
        "where (n <= ? and status in ('ok', 'partial')) or status = 'running'"
    )
    kept_plans = ids(newest, ["plan", keep]) | ids("select plan_run_id from review_state")
    # an undo plan no apply has read yet is still to be applied
    kept_plans |= ids(
        f"select run_id from runs r where stage = 'plan' and {UNDO_PLAN} "
        "and not exists (select 1 from journal j where j.plan_run_id = r.run_id)"
    )
    kept_plans |= ids(  # an apply that has not finished resumes from its plan
        "select json_extract(config, '$.plan_run_id') from runs r where stage = 'apply' "
        f"and {UNFINISHED_APPLY}"
    )
    kept_matches = ids(newest, ["match", keep]) | ids("select match_run_id from review_state")
    for run_id in kept_plans:
        row = db.execute(
            "select json_extract(config, '$.match_run_id') from runs where run_id = ?", [run_id]
        ).fetchone()
        if row and row[0]:
            kept_matches.add(row[0])
    applied = ids("select distinct plan_run_id from journal")
    kept = {"plan": kept_plans, "match": kept_matches}
    pruned = {
        stage: sorted(
            ids(
                "select run_id from runs where stage = ? and "
                "json_extract(coalesce(summary, '{}'), '$.pruned_at') is null",
                [stage],
            )
            - kept[stage]
        )
        for stage in ("plan", "match")
    }
    rows = {table: 0 for tables in _RUN_ROWS.values() for table in tables}
    with transaction(db):
        for stage, tables in _RUN_ROWS.items():
            for run_id in pruned[stage]:
                for table in tables:
                    where = f"from {table} where run_id = ?"
                    params = [run_id]
                    if run_id in applied:  # what the apply journalled stays
                        where += " and item_id not in (select item_id from journal where plan_run_id = ?)"
                        params.append(run_id)
                    if dry_run:
                        rows[table] += db.execute(f"select count(*) {where}", params).fetchone()[0]
                    else:
                        rows[table] += db.execute(f"delete {where}", params).rowcount
                if not dry_run:
                    db.execute(
                        "update runs set summary = json_set(coalesce(summary, '{}'), '$.pruned_at', ?) "
                        "where run_id = ?",
                        [now_iso(), run_id],
                    )
    return {"keep": keep, "dry_run": dry_run, "runs": pruned, "rows": rows}


@MIGRATIONS(name="m006_apply_journal_item")
def m006_apply_journal_item(db: sqlite_utils.Database) -> None:
    """The journal keeps the item as apply sent it (JSON), so a resumed run needs no re-plan."""
    db["journal"].add_column("item", str)


@MIGRATIONS(name="m005_review_queue")
def m005_review_queue(db: sqlite_utils.Database) -> None:
    """The review queue index (rebuilt per match/plan run by ``recon.review``) and its state."""
    db["review_queue"].create(
        {
            "item_id": str,  # pair id (link), cluster id (duplicate) or plan item id (conflict)
            "kind": str,  # link | duplicate | conflict
            "object": str,  # companies | contacts
            "tier": str,
            "tier_rank": int,  # review 0, auto 1, reject 2
            "score": float,
            "closeness": float,  # |score - auto threshold|: the sort key inside a tier
            "run_id": str,  # the match or plan run the item came from
            "source_l": str,
            "object_l": str,
            "record_id_l": str,
            "source_r": str,
            "object_r": str,
            "record_id_r": str,
            "title": str,
            "search": str,  # lower-cased names, emails, domains, field
            "field": str,
            "link_item_id": str,
            "members": int,
            "flags": str,
        },
        pk="item_id",
    )
    db["review_queue"].create_index(["tier_rank", "closeness", "item_id"])
    db["review_queue"].create_index(["kind", "tier_rank", "closeness"])
    db["review_state"].create(
        {"name": str, "match_run_id": str, "plan_run_id": str, "items": int, "built_at": str},
        pk="name",
    )
    db["decisions"].create_index(["reviewer", "decision_id"])
    db["snapshots"].create_index(["source", "account_id"])  # a company's contacts, for review


@MIGRATIONS(name="m007_review_labels_index")
def m007_review_labels_index(db: sqlite_utils.Database) -> None:
    """A covering index of record labels: indexing a 100k-item review queue reads no record JSON."""
    db["snapshots"].create_index(
        ["source", "object", "record_id", "name", "email", "domain", "company"],
        index_name="idx_snapshots_review_labels",
        if_not_exists=True,
    )


@MIGRATIONS(name="m008_plan_items_merge_link_index")
def m008_plan_items_merge_link_index(db: sqlite_utils.Database) -> None:
    """Plan items are looked up by their link only for merges (the review app's merge of a
    cluster): a partial index of those replaces the index of every item's link, which a
    1.6M-item plan had to extend at random places on every row."""
    db.execute("drop index if exists idx_plan_items_link_item_id")
    db.execute(
        "create index if not exists idx_plan_items_merge_link"
        " on plan_items (run_id, link_item_id) where action = 'merge'"
    )


@MIGRATIONS(name="m009_runs_process")
def m009_runs_process(db: sqlite_utils.Database) -> None:
    """Runs remember the process that ran them: one killed mid-way is told apart from one
    still running (:func:`settle_dead_runs`)."""
    db["runs"].add_column("pid", int)
    db["runs"].add_column("host", str)


@MIGRATIONS(name="m010_conflict_ids_with_values")
def m010_conflict_ids_with_values(db: sqlite_utils.Database) -> None:
    """A conflict's id includes the values it asks about (since this release): decisions
    made on a conflict under its former id are copied to the id its values give now, so an
    upgrade never reopens a question that was answered (the plan stored under the former
    ids still reads them), and the review queue is indexed again."""
    import json

    from .plan_values import fast_stable_id

    if "plan_items" not in db.table_names() or "decisions" not in db.table_names():
        return
    latest: dict[str, tuple[str, str | None, str | None]] = {}
    for iid, link, before, payload in db.execute(
        "select item_id, link_item_id, before, payload from plan_items "
        "where action = 'conflict' order by rowid"
    ):
        latest[iid] = (link, before, payload)
    for old, (link, before, payload) in latest.items():
        try:
            values = json.loads(before or "{}")
            sides = json.loads(payload or "{}")
            new = fast_stable_id(
                "conflict",
                link,
                sides["hubspot"]["field"],
                sides["salesforce"]["object"],
                sides["salesforce"]["field"],
                values.get("hubspot"),
                values.get("salesforce"),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # not a plan's conflict (hand-made): left as it is
        if (
            new != old
            and db.execute("select count(*) from decisions where item_id = ?", [new]).fetchone()[0]
            == 0
        ):
            # copied, not moved: the plan stored under the former ids stays applicable
            cols = [
                c.name for c in db["decisions"].columns if c.name not in ("decision_id", "item_id")
            ]
            names = ", ".join(cols)
            db.execute(
                f"insert into decisions (item_id, {names}) "
                f"select ?, {names} from decisions where item_id = ? order by decision_id",
                [new, old],
            )
    if "review_state" in db.table_names():
        db.execute("delete from review_state")  # the queue is indexed again on next use


@MIGRATIONS(name="m011_locks_notified")
def m011_locks_notified(db: sqlite_utils.Database) -> None:
    """The lock remembers whether a run it kept out sent a notice about it: a scheduled run
    finding the same holder again stays quiet (one notice per holder, not one per attempt)."""
    db["locks"].add_column("notified_at", str)


@MIGRATIONS(name="m012_two_way_indexes")
def m012_two_way_indexes(db: sqlite_utils.Database) -> None:
    """What a plan's ``two_way`` decisions look up: the journal by record (when recon last
    wrote it, :func:`recon.plan_load.recon_writes`) and the conflicts asked before (a
    partial index: conflicts only)."""
    db.execute("create index if not exists journal_crm_record on journal (crm_record_id)")
    db.execute(
        "create index if not exists plan_items_conflicts on plan_items (item_id) "
        "where action = 'conflict'"
    )


@MIGRATIONS(name="m013_journal_by_plan")
def m013_journal_by_plan(db: sqlite_utils.Database) -> None:
    """The journal by plan and item: what an apply of a plan wrote before (confirmed
    writes, merges it sent and did not confirm) and the stale writes a reviewer dropped are
    looked up per plan, not by scanning every apply's rows."""
    db.execute("create index if not exists journal_plan_item on journal (plan_run_id, item_id)")


@MIGRATIONS(name="m014_process_keys")
def m014_process_keys(db: sqlite_utils.Database) -> None:
    """Runs and the lock record their process's :func:`process_key`: whether a pid is still
    the process that started a run or took the lock is told without the wall clock."""
    db["runs"].add_column("process", str)
    db["locks"].add_column("process", str)
