"""One store-level lock, so runs, applies and the app's apply tab never overlap.

The lock is a row in the ``locks`` table (holder, pid, host, run id, started,
heartbeat), taken inside a ``BEGIN IMMEDIATE`` transaction so two processes
cannot both win. A holder whose heartbeat is older than ``stale_after``
seconds, or whose process is gone on this host, is taken over.

Examples:
    >>> from recon.store import open_store
    >>> db = open_store(":memory:")
    >>> with store_lock(db, holder="doc") as lock:
    ...     lock.holder
    'doc'
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psutil
import sqlite_utils

from .errors import LockedError
from .models import now_iso, parse_ts
from .store import process_key, process_ran_at, transaction

#: how long taking the lock waits for a holder's write transaction (then: locked, exit 5)
_BUSY_MS = 5000

__all__ = [
    "DEFAULT_STALE_AFTER",
    "Lock",
    "acquire",
    "describe_holder",
    "holder_text",
    "live_lock_info",
    "lock_info",
    "mark_notified",
    "release",
    "store_lock",
]

log = logging.getLogger(__name__)

LOCK_NAME = "store"
DEFAULT_STALE_AFTER = 300.0


@dataclass
class Lock:
    """A held lock."""

    db: sqlite_utils.Database
    holder: str
    pid: int
    host: str
    run_id: str | None
    name: str = LOCK_NAME
    nested: bool = False  # taken again by the process that holds it: release is a no-op

    def heartbeat(self) -> None:
        """Refresh the heartbeat so others don't take the lock over."""
        with transaction(self.db):
            self.db.execute(
                "update locks set heartbeat_at = ? where name = ? and pid = ? and host = ?",
                [now_iso(), self.name, self.pid, self.host],
            )


def lock_info(db: sqlite_utils.Database, name: str = LOCK_NAME) -> dict[str, Any] | None:
    """The current holder's row, or None when free."""
    rows = list(db.query("select * from locks where name = ? and holder is not null", [name]))
    return dict(rows[0]) if rows else None


def live_lock_info(
    db: sqlite_utils.Database,
    name: str = LOCK_NAME,
    stale_after: float = DEFAULT_STALE_AFTER,
) -> dict[str, Any] | None:
    """:func:`lock_info`, but None when the holder is gone (a dead process on this host, or
    no heartbeat for ``stale_after`` seconds): the next taker takes such a lock over, so it
    holds nobody back."""
    row = lock_info(db, name)
    if row is None or _is_stale(row, stale_after):
        return None
    return row


#: holders named after the command that took the lock
_COMMANDS = ("pull", "match", "plan", "apply", "prune", "undo")


def holder_text(
    db: sqlite_utils.Database,
    name: str = LOCK_NAME,
    stale_after: float = DEFAULT_STALE_AFTER,
) -> str | None:
    """Who holds the lock, in words: the command, the stage it is at, its run, its process
    and since when; None when nobody (alive) holds it.

    Examples:
        >>> from recon.store import open_store
        >>> db = open_store(":memory:")
        >>> holder_text(db) is None
        True
        >>> with store_lock(db, holder="apply"):
        ...     holder_text(db).split(" (")[0]
        'recon apply'
    """
    row = live_lock_info(db, name, stale_after)
    return None if row is None else describe_holder(db, row)


def describe_holder(db: sqlite_utils.Database, row: dict[str, Any]) -> str:
    """:func:`holder_text` of a :func:`lock_info` row: the command, the stage it is at, its
    run, its process and since when, in words."""
    holder = str(row.get("holder") or "?")
    parts: list[str] = []
    run_id = row.get("run_id")
    if run_id:
        # a `recon run` holds the lock for its stages: the one running now
        stage = (
            db.execute(
                "select stage from runs where parent_id = ? and status = 'running' "
                "order by started_at desc, rowid desc limit 1",
                [run_id],
            ).fetchone()
            or db.execute("select stage from runs where run_id = ?", [run_id]).fetchone()
        )
        # (between two stages: the run's own row, whose stage is the command's name)
        if stage and stage[0] and stage[0] not in (holder, holder.removeprefix("recon ")):
            parts.append(f"stage {stage[0]}")
        parts.append(f"run {run_id}")
    parts.append(f"pid {row.get('pid')} on {row.get('host')}")
    since = parse_ts(row.get("started_at"))
    if since is not None:
        parts.append(f"since {since.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC")
    who = f"recon {holder}" if holder in _COMMANDS else holder
    return f"{who} ({', '.join(parts)})"


def mark_notified(db: sqlite_utils.Database, holder: dict[str, Any], name: str = LOCK_NAME) -> None:
    """Note that a notice about ``holder`` (a :func:`lock_info` row) went out, while it still
    holds the lock (a new holder starts without the mark)."""
    with transaction(db):
        db.execute(
            "update locks set notified_at = ? where name = ? and pid = ? and host = ? "
            "and started_at = ?",
            [now_iso(), name, holder["pid"], holder["host"], holder["started_at"]],
        )


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, ended but not yet reaped, does not)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _is_stale(row: dict[str, Any], stale_after: float) -> bool:
    if row.get("host") == socket.gethostname() and row.get("pid"):
        pid = int(row["pid"])
        if pid != os.getpid():
            if not _alive(pid):
                return True
            key = row.get("process")
            now_key = process_key(pid) if key else None
            if now_key is not None:
                # the very process that took the lock, still running, holds it whatever a wall
                # clock stepped since (its heartbeat's age is measured by that clock); another
                # process under its pid (pids are reused: pid 1 in a restarted container) means
                # the holder is gone
                return now_key != key
            if not process_ran_at(pid, row.get("started_at")):
                return True  # the pid's process started after the lock was taken: gone

    beat = parse_ts(row.get("heartbeat_at")) or parse_ts(row.get("started_at"))
    if beat is None:
        return True
    age = (datetime.now(UTC) - beat).total_seconds()
    return age > stale_after


def acquire(
    db: sqlite_utils.Database,
    *,
    holder: str,
    run_id: str | None = None,
    stale_after: float = DEFAULT_STALE_AFTER,
    name: str = LOCK_NAME,
) -> Lock:
    """Take the lock or raise :class:`LockedError` naming who holds it.

    A stale holder (a dead process on this host, or another host's holder without a
    heartbeat for ``stale_after`` seconds) is taken over, with a warning in the log. The
    process of this host that took the lock (by its :func:`recon.store.process_key`) holds
    it while it runs, whatever its heartbeat's age says after a wall clock stepped. The
    process that holds the lock may take it again (a ``recon run`` applying under its own
    lock); the nested lock's release leaves the outer one in place.
    """
    me = Lock(
        db=db, holder=holder, pid=os.getpid(), host=socket.gethostname(), run_id=run_id, name=name
    )
    # the holder may be inside a long write (a plan's rows): that is "locked", not an error
    waited = db.execute("pragma busy_timeout").fetchone()[0]
    db.execute(f"pragma busy_timeout = {_BUSY_MS}")
    try:
        return _acquire(db, me, name, stale_after)
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise
        current = lock_info(db, name)
        who = f" by {describe_holder(db, current)}" if current else ""
        raise LockedError(
            f"the store is locked{who}: another process is writing to it",
            hint="wait for it to finish, then run again",
        ) from None
    finally:
        db.execute(f"pragma busy_timeout = {int(waited)}")


def _acquire(db: sqlite_utils.Database, me: Lock, name: str, stale_after: float) -> Lock:
    with transaction(db):
        current = lock_info(db, name)
        if current is not None:
            mine = current["pid"] == me.pid and current["host"] == me.host
            # taken after this process started (else: a dead run's pid, reused)
            if (
                mine
                and current["started_at"]
                and process_ran_at(me.pid, current["started_at"], current.get("process"))
            ):
                me.nested = True
                return me
            if mine:
                # this pid, but taken before this process started: a dead run's pid, reused
                log.warning("taking over a lock left by an earlier process with this pid")
            elif _is_stale(current, stale_after):
                log.warning(
                    "taking over a stale lock held by %s (%spid %s on %s since %s)",
                    current["holder"],
                    f"run {current['run_id']}, " if current["run_id"] else "",
                    current["pid"],
                    current["host"],
                    current["started_at"],
                )
            else:
                raise LockedError(
                    f"the store is locked by {describe_holder(db, current)}",
                    hint="wait for it to finish; a holder silent for "
                    f"{int(stale_after)} s is taken over automatically",
                )
        now = now_iso()
        db["locks"].upsert(
            {
                "name": name,
                "holder": me.holder,
                "pid": me.pid,
                "host": me.host,
                "run_id": me.run_id,
                "started_at": now,
                "heartbeat_at": now,
                "notified_at": None,  # no notice has gone out about this holder yet
                "process": process_key(me.pid),
            },
            pk="name",
        )
    return me


def release(lock: Lock) -> None:
    """Give the lock back (only if this process still holds it and it is not nested)."""
    if lock.nested:
        return
    with transaction(lock.db):
        lock.db.execute(
            "delete from locks where name = ? and pid = ? and host = ?",
            [lock.name, lock.pid, lock.host],
        )


@contextmanager
def store_lock(
    db: sqlite_utils.Database,
    *,
    holder: str,
    run_id: str | None = None,
    stale_after: float = DEFAULT_STALE_AFTER,
    heartbeat_every: float | None = None,
) -> Iterator[Lock]:
    """Hold the store lock for the ``with`` block, with an optional heartbeat thread.

    The heartbeat thread opens its own connection (SQLite connections are not
    shared across threads).
    """
    lock = acquire(db, holder=holder, run_id=run_id, stale_after=stale_after)
    stop = threading.Event()
    thread = None
    if heartbeat_every and not lock.nested:
        path = db.execute("pragma database_list").fetchone()[2]
        if path:

            def beat() -> None:
                from .store import open_store

                other = open_store(path, migrate=False)
                other_lock = Lock(other, lock.holder, lock.pid, lock.host, lock.run_id, lock.name)
                while not stop.wait(heartbeat_every):
                    try:
                        other_lock.heartbeat()
                    except Exception:  # pragma: no cover - a missed beat is not fatal
                        log.debug("heartbeat failed", exc_info=True)
                other.conn.close()

            thread = threading.Thread(target=beat, name="recon-lock-heartbeat", daemon=True)
            thread.start()
    try:
        yield lock
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=5)
        release(lock)
