"""The sandbox's state: one SQLite database shared by both emulators.

:class:`SandboxState` owns the database and everything the two API emulators
share: request counts per endpoint, the change log of every record created,
updated, merged or deleted, the runtime :class:`SandboxSettings` (delays,
limits, the HubSpot "Salesforce connector" flag, the server's base URL) and the
:class:`~recon.sandbox.faults.FaultInjector`.

Threading: one ``sqlite3`` connection opened with ``check_same_thread=False``
and guarded by a re-entrant lock. uvicorn serves every request from its event
loop thread while tests and the admin helpers call in from other threads; all
access goes through :meth:`SandboxState.tx`, which holds the lock for the
whole transaction, so SQLite sees one writer at a time. The connection is in
autocommit mode; ``tx()`` opens ``BEGIN IMMEDIATE`` itself (nested ``tx()``
calls join the outer transaction). Async handlers must not ``await`` inside
``tx()``: every coroutine runs on the event loop's one thread, for which the
re-entrant lock is always free, so two requests would share one transaction.

Each side registers its own tables with an ``init_schema(conn)`` function
(``recon.sandbox.hubspot.init_schema``, ``recon.sandbox.salesforce.init_schema``)
that must be idempotent (``CREATE TABLE IF NOT EXISTS``, ``INSERT OR IGNORE``):
it runs at start and again after :meth:`SandboxState.reset`.

Examples:
    >>> state = SandboxState(":memory:")
    >>> rid = state.new_request_id()
    >>> state.count_request("hubspot", "GET /crm/v3/objects/companies")
    >>> state.request_counts()["hubspot"]["GET /crm/v3/objects/companies"]
    1
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..errors import OutputError, UsageError

__all__ = ["SIDES", "SandboxSettings", "SandboxState", "check_sandbox_file", "iso_ms"]


def _lock_path(db_path: str | Path) -> Path:
    return Path(f"{db_path}.lock")


def sandbox_holder(db_path: str | Path) -> dict[str, Any] | None:
    """The sandbox serving from ``db_path`` now (``{"pid", "url"}``), or None.

    A sandbox holds an exclusive lock on ``<db>.lock`` while its database is open, and
    writes its process id and, once it listens, its URL there.

    Examples:
        >>> sandbox_holder("/nonexistent/sandbox.db") is None
        True
    """
    try:
        import fcntl
    except ImportError:  # no advisory locks here (Windows): nothing is known
        return None
    path = _lock_path(db_path)
    if not path.exists():
        return None
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: a sandbox serves from this file
            try:
                info = json.loads(path.read_text(encoding="utf-8") or "{}")
            except (OSError, ValueError):
                info = {}
            return info if isinstance(info, dict) else {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def holder_text(info: dict[str, Any]) -> str:
    """A sandbox holder as words: "process 123, serving on http://127.0.0.1:8765"."""
    parts = [f"process {info['pid']}" if info.get("pid") else "another process"]
    if info.get("url"):
        parts.append(f"serving on {info['url']}")
    return ", ".join(parts)


def refuse_if_served(db_path: str | Path) -> None:
    """Refuse a database another sandbox serves from (before using or deleting it).

    Raises:
        UsageError: naming that sandbox's process and URL.

    Examples:
        >>> refuse_if_served("/nonexistent/sandbox.db")
    """
    holder = None if str(db_path) == ":memory:" else sandbox_holder(db_path)
    if holder is not None:
        raise UsageError(
            f"the sandbox database {db_path} is in use by another sandbox ({holder_text(holder)})",
            hint="use that sandbox, stop it first, or give this one another database (--db)",
        )


def _hold(db_path: str) -> Any:
    """Take ``<db>.lock`` for this sandbox: the open lock file holding it (closing it, or
    its collection, gives the lock up), or None where locks are not available.

    Raises:
        UsageError: another sandbox serves from the same database.
    """
    try:
        import fcntl
    except ImportError:
        return None
    try:
        held = _lock_path(db_path).open("a+", encoding="utf-8")
    except OSError:  # a read-only folder: the database itself will say so
        return None
    try:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        held.close()
        refuse_if_served(db_path)
        raise UsageError(  # (it stopped in between: its lock was still held a moment ago)
            f"the sandbox database {db_path} is in use by another sandbox",
            hint="use that sandbox, stop it first, or give this one another database (--db)",
        ) from None
    _write_holder(held, {"pid": os.getpid()})
    return held


def _write_holder(held: Any, info: dict[str, Any]) -> None:
    held.seek(0)
    held.truncate()
    held.write(json.dumps(info))
    held.flush()


def check_sandbox_file(path: str | Path, *, doing: str) -> None:
    """Refuse a path that is not a sandbox database before ``doing`` something to it (delete
    it, load demo data into it): a folder, a file that is not SQLite, or an SQLite file of
    something else (a recon store, any other database). A missing or empty file is fine.

    Raises:
        UsageError: naming the path and what it is.

    Examples:
        >>> check_sandbox_file("/nonexistent/sandbox.db", doing="delete it")
    """
    p = Path(path)
    if str(path) == ":memory:" or not p.exists():
        return
    if p.is_dir():
        raise UsageError(
            f"{p} is a folder, not a sandbox database: refusing to {doing}",
            hint="give the sandbox's .db file (--db, or [sandbox] db in recon.toml; default data/sandbox.db)",
        )
    if p.stat().st_size == 0:
        return
    try:
        conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        try:
            tables = {
                r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")
            }
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        tables = None
    if tables is None or (tables and "sandbox_meta" not in tables):
        what = (
            "not an SQLite database"
            if tables is None
            else "a recon store"
            if "snapshots" in tables
            else "another SQLite database"
        )
        raise UsageError(
            f"{p} is {what}, not a sandbox database: refusing to {doing}",
            hint="give the sandbox's .db file (--db, or [sandbox] db in recon.toml; default data/sandbox.db), or a new path",
        )


log = logging.getLogger(__name__)

SIDES = ("hubspot", "salesforce")

# Modules whose ``init_schema(conn)`` / ``reset`` hooks define each side's tables.
SIDE_MODULES = {"hubspot": "recon.sandbox.hubspot", "salesforce": "recon.sandbox.salesforce"}


@dataclass
class SandboxSettings:
    """Runtime knobs of the emulators. Everything that would slow tests is off by default.

    Attributes:
        latency_ms: added to every API response (both sides).
        hubspot_rate_limit: requests per ``hubspot_rate_interval_s`` before 429 (0 = off;
            HubSpot Pro/Enterprise allow 190 per 10 s).
        hubspot_rate_interval_s: the rolling window of ``hubspot_rate_limit``.
        hubspot_search_rate_limit: search requests per second before 429 (0 = off; HubSpot: 5).
        hubspot_daily_limit: HubSpot calls per day before 429 ``DAILY`` (0 = off).
        hubspot_search_lag_s: seconds before a created record shows in search (HubSpot's
            indexing lag, about 10 s; 0 = immediately), and an updated one unless
            ``hubspot_search_update_lag_s`` is set.
        hubspot_search_update_lag_s: seconds before an updated record shows in search with
            its new values (HubSpot: about 60 s; 0 = as ``hubspot_search_lag_s``).
        salesforce_daily_budget: Salesforce API requests before 403 ``REQUEST_LIMIT_EXCEEDED``.
        salesforce_bulk_seconds: how long a Bulk API 2.0 query job stays ``InProgress``.
        salesforce_connector_enabled: HubSpot refuses company merges while this is on.
        base_url: the server's own URL (``paging.next.link``, ``instance_url``); set by the server.

    Examples:
        >>> s = SandboxSettings()
        >>> s.update({"hubspot_search_lag_s": 2})["hubspot_search_lag_s"]
        2.0
    """

    latency_ms: int = 0
    hubspot_rate_limit: int = 0
    hubspot_rate_interval_s: float = 10.0
    hubspot_search_rate_limit: int = 0
    hubspot_daily_limit: int = 0
    hubspot_search_lag_s: float = 0.0
    hubspot_search_update_lag_s: float = 0.0
    salesforce_daily_budget: int = 100_000
    salesforce_bulk_seconds: float = 0.0
    salesforce_connector_enabled: bool = False
    base_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict."""
        return asdict(self)

    def update(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply ``changes`` (validated and coerced to each field's type); return all settings.

        Raises:
            UsageError: an unknown key or a value of the wrong type.
        """
        known = {f.name: f for f in fields(self)}
        problems = [k for k in changes if k not in known]
        if problems:
            raise UsageError(
                f"unknown sandbox setting(s): {', '.join(sorted(problems))}",
                hint=f"known settings: {', '.join(sorted(known))}",
            )
        coerced: dict[str, Any] = {}
        for key, value in changes.items():
            default = getattr(SandboxSettings, key, None)
            try:
                if key == "base_url":
                    coerced[key] = None if value is None else str(value).rstrip("/")
                elif isinstance(default, bool):
                    coerced[key] = (
                        value if isinstance(value, bool) else str(value).lower() == "true"
                    )
                elif isinstance(default, int):
                    coerced[key] = int(value)
                elif isinstance(default, float):
                    coerced[key] = float(value)
                else:
                    coerced[key] = value
            except (TypeError, ValueError):
                raise UsageError(f"sandbox setting {key} has an invalid value: {value!r}") from None
        for key, value in coerced.items():
            setattr(self, key, value)
        return self.to_dict()


def iso_ms(ts: datetime) -> str:
    """``2024-01-02T03:04:05.678Z``: HubSpot's timestamp format (UTC, milliseconds).

    Examples:
        >>> iso_ms(datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC))
        '2024-01-02T03:04:05.678Z'
    """
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


CORE_SCHEMA = """
CREATE TABLE IF NOT EXISTS sandbox_requests (
    side TEXT NOT NULL, endpoint TEXT NOT NULL, count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (side, endpoint));
CREATE TABLE IF NOT EXISTS sandbox_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, side TEXT NOT NULL,
    object TEXT NOT NULL, record_id TEXT NOT NULL, action TEXT NOT NULL,
    request_id TEXT, detail TEXT);
CREATE INDEX IF NOT EXISTS sandbox_changes_record ON sandbox_changes (side, object, record_id);
CREATE TABLE IF NOT EXISTS sandbox_meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS sandbox_truth (
    entity TEXT NOT NULL, kind TEXT NOT NULL, side TEXT NOT NULL, object TEXT NOT NULL,
    record_id TEXT NOT NULL, PRIMARY KEY (side, object, record_id));
CREATE INDEX IF NOT EXISTS sandbox_truth_entity ON sandbox_truth (entity);
"""


#: what names a sandbox's database file, for the hint of an error about it
_DB_OPTION = "--db or [sandbox] db"


class SandboxState:
    """One sandbox: its SQLite database, settings, faults, counters and change log.

    Args:
        db_path: the SQLite file (created if missing) or ``":memory:"``.
        settings: runtime settings; defaults to :class:`SandboxSettings()`.

    Examples:
        >>> state = SandboxState(":memory:")
        >>> with state.tx() as conn:
        ...     conn.execute("SELECT count(*) FROM sandbox_changes").fetchone()[0]
        0
    """

    def __init__(self, db_path: str | Path, *, settings: SandboxSettings | None = None) -> None:
        from .faults import FaultInjector

        self.db_path = str(db_path)
        self._held: Any = None
        if self.db_path != ":memory:":
            try:
                Path(self.db_path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # a file where a folder must be, a folder nobody may write
                raise OutputError.writing(
                    "the sandbox database", self.db_path, exc, option=_DB_OPTION
                ) from None
            # two sandboxes on one file would overwrite each other's records, and a reset
            # would delete the file under a running one
            self._held = _hold(self.db_path)
        self.settings = settings or SandboxSettings()
        self.lock = threading.RLock()
        try:
            self.conn = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
        except sqlite3.OperationalError as exc:  # "unable to open database file"
            if self._held is not None:
                self._held.close()
            raise OutputError.writing(
                "the sandbox database", self.db_path, f"SQLite cannot create it ({exc})",
                option=_DB_OPTION,
            ) from None  # fmt: skip
        self.conn.row_factory = sqlite3.Row
        if self.db_path != ":memory:":
            self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self._depth = 0
        self._last_ts = datetime(2000, 1, 1, tzinfo=UTC)
        self._checkpoint: sqlite3.Connection | None = None
        self.faults = FaultInjector(self)
        self._init_schemas()

    # ------------------------------------------------------------------ plumbing

    def _side_module(self, side: str) -> Any | None:
        if side not in SIDE_MODULES:
            return None
        try:
            return importlib.import_module(SIDE_MODULES[side])
        except ModuleNotFoundError as exc:
            if exc.name != SIDE_MODULES[side]:
                raise
            log.debug("sandbox side %s is not available", side)
            return None

    def side_hook(self, side: str, name: str) -> Callable[..., Any] | None:
        """The function ``name`` of a side's module (``init_schema``, ``admin_edit``...), or None."""
        module = self._side_module(side)
        hook = getattr(module, name, None) if module is not None else None
        return hook if callable(hook) else None

    def _init_schemas(self) -> None:
        # executescript commits on its own, so it runs under the lock but outside tx().
        with self.lock:
            self.conn.executescript(CORE_SCHEMA)
            for side in SIDES:
                hook = self.side_hook(side, "init_schema")
                if hook is not None:
                    with self.tx() as conn:
                        hook(conn)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and one transaction; commit on success, roll back on error.

        Nested calls join the outer transaction.
        """
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")
            finally:
                self._depth = 0

    def close(self) -> None:
        """Close the database (and give up its lock file)."""
        with self.lock:
            self.conn.close()
            if self._held is not None:
                self._held.close()
                self._held = None

    def announce(self, url: str) -> None:
        """Write the URL this sandbox serves on into its lock file (``recon sandbox reset``
        finds it there)."""
        if self._held is not None:
            _write_holder(self._held, {"pid": os.getpid(), "url": url})

    # ------------------------------------------------------------------ clock and ids

    def now(self) -> datetime:
        """The current UTC time, strictly later (by ≥1 ms) than any earlier call.

        Modification times must order every change, even two in the same millisecond.
        """
        with self.lock:
            wall = datetime.now(UTC)
            ts = wall.replace(microsecond=wall.microsecond // 1000 * 1000)
            if ts <= self._last_ts:
                ts = self._last_ts + timedelta(milliseconds=1)
            self._last_ts = ts
            return ts

    @staticmethod
    def new_request_id() -> str:
        """A fresh request id (also used as HubSpot's ``correlationId``)."""
        return str(uuid.uuid4())

    # ------------------------------------------------------------------ counters and log

    def count_request(self, side: str, endpoint: str) -> None:
        """Add one to the request count of ``endpoint`` (e.g. ``GET /crm/v3/objects/companies``)."""
        with self.tx() as conn:
            conn.execute(
                "INSERT INTO sandbox_requests (side, endpoint, count) VALUES (?, ?, 1) "
                "ON CONFLICT (side, endpoint) DO UPDATE SET count = count + 1",
                (side, endpoint),
            )

    def request_counts(self) -> dict[str, dict[str, int]]:
        """``{side: {endpoint: count}}`` since the last reset."""
        out: dict[str, dict[str, int]] = {side: {} for side in SIDES}
        with self.tx() as conn:
            for row in conn.execute(
                "SELECT side, endpoint, count FROM sandbox_requests ORDER BY 1, 2"
            ):
                out.setdefault(row["side"], {})[row["endpoint"]] = row["count"]
        return out

    def api_usage(self, side: str) -> int:
        """How many API requests ``side`` has answered since the last reset."""
        with self.tx() as conn:
            row = conn.execute(
                "SELECT coalesce(sum(count), 0) FROM sandbox_requests WHERE side = ?", (side,)
            ).fetchone()
        return int(row[0])

    def log_change(
        self,
        side: str,
        object: str,
        record_id: str,
        action: str,
        request_id: str | None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append to the change log. ``action``: created, updated, merged, deleted, restored, edited."""
        with self.tx() as conn:
            conn.execute(
                "INSERT INTO sandbox_changes (at, side, object, record_id, action, request_id, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    iso_ms(datetime.now(UTC)),
                    side,
                    object,
                    str(record_id),
                    action,
                    request_id,
                    json.dumps(detail, sort_keys=True) if detail else None,
                ),
            )

    def changes(
        self, *, since: int = 0, side: str | None = None, limit: int = 10_000
    ) -> list[dict[str, Any]]:
        """Change-log entries after sequence number ``since`` (oldest first)."""
        sql = "SELECT * FROM sandbox_changes WHERE seq > ?"
        args: list[Any] = [since]
        if side:
            sql += " AND side = ?"
            args.append(side)
        sql += " ORDER BY seq LIMIT ?"
        args.append(limit)
        with self.tx() as conn:
            rows = [dict(r) for r in conn.execute(sql, args)]
        for row in rows:
            row["detail"] = json.loads(row["detail"]) if row["detail"] else None
        return rows

    # ------------------------------------------------------------------ meta and ground truth

    def get_meta(self, key: str, default: Any = None) -> Any:
        """A JSON value stored under ``key`` in ``sandbox_meta``."""
        with self.tx() as conn:
            row = conn.execute("SELECT value FROM sandbox_meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON value under ``key``."""
        with self.tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO sandbox_meta (key, value) VALUES (?, ?)",
                (key, json.dumps(value)),
            )

    def add_truth(self, rows: list[tuple[str, str, str, str, str]]) -> None:
        """Record ground truth: ``(entity, kind, side, object, record_id)`` rows.

        Records sharing ``entity`` stand for the same real company or person.
        """
        with self.tx() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO sandbox_truth (entity, kind, side, object, record_id) VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    def truth(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The ground-truth rows (optionally for ``kind`` ``company`` or ``person``)."""
        sql = "SELECT entity, kind, side, object, record_id FROM sandbox_truth"
        args: tuple[Any, ...] = ()
        if kind:
            sql += " WHERE kind = ?"
            args = (kind,)
        with self.tx() as conn:
            return [
                dict(r)
                for r in conn.execute(sql + " ORDER BY entity, side, object, record_id", args)
            ]

    # ------------------------------------------------------------------ reset / checkpoint

    def reset(self, *, keep_data: bool = False) -> None:
        """Empty every table (or, with ``keep_data``, only counters and the change log) and clear faults.

        Each side's ``init_schema`` runs again to restore its built-in rows.
        """
        with self.lock:
            with self.tx() as conn:
                if keep_data:
                    tables = ["sandbox_requests", "sandbox_changes"]
                else:
                    tables = [
                        r[0]
                        for r in conn.execute(
                            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                        )
                    ]
                for table in tables:
                    conn.execute(f'DELETE FROM "{table}"')
                if (
                    not keep_data
                    and conn.execute(
                        "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'"
                    ).fetchone()
                ):
                    # ids start again where a fresh sandbox starts: the same seed gives the
                    # same records under the same ids
                    conn.execute("DELETE FROM sqlite_sequence")
            self.faults.clear()
            if not keep_data:
                self._init_schemas()

    def checkpoint(self) -> None:
        """Remember the whole database (in memory) so :meth:`restore` can bring it back.

        Tests call this once after loading demo data and ``restore()`` after each
        test that writes.
        """
        with self.lock:
            snap = sqlite3.connect(":memory:", check_same_thread=False)
            self.conn.backup(snap)
            if self._checkpoint is not None:
                self._checkpoint.close()
            self._checkpoint = snap

    def restore(self) -> None:
        """Bring back the database saved by :meth:`checkpoint`; clear faults and counters too.

        Raises:
            UsageError: no checkpoint was taken.
        """
        if self._checkpoint is None:
            raise UsageError(
                "the sandbox has no checkpoint to restore", hint="call checkpoint() first"
            )
        with self.lock:
            self._checkpoint.backup(self.conn)
            self.faults.clear()
            for side in SIDES:
                hook = self.side_hook(side, "after_restore")
                if hook is not None:
                    hook(self)
