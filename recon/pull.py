"""Run a pull: CRM pages → snapshot rows + cursor, committed together, page by page.

:func:`run_pull` starts a ``pull`` run, opens each CRM source (HubSpot, Salesforce),
pulls each object from its stored cursor, then the owners, and writes every page in ONE
transaction with the cursor that follows it (dlt-style: closed start, ids at the
boundary, optional lag — see :mod:`recon.sources.crm`). A killed pull therefore resumes
from its last committed page and never duplicates rows (rows are upserted by
``(source, object, record_id)``). Only rows whose content changed get the new run id.

Scoping filters (``[pull] filters``, ``contacts_require_email``) apply on every run
(sources push them into their queries where they can, :mod:`recon.sources.scope`); a
stored record that falls out of scope is marked ``archived = 2``. Schemas and owners are
reused while younger than ``[pull] schema_refresh_hours`` / ``owners_refresh_hours``
(``--full`` re-reads them). ``sample=N`` pulls at most N records per object and leaves
the cursors alone.

Errors: a source's :class:`~recon.errors.BudgetExhausted` stops that source cleanly
(status ``budget``; the next run resumes), other source errors are recorded and the
other source still runs; an error is raised at the end, after the run summary
(calls per CRM, records and pages per object) is stored.

Examples:
    >>> from recon.store import open_store
    >>> from recon.config import ReconConfig
    >>> result = run_pull(open_store(":memory:"), ReconConfig(), sources=())
    >>> result.status
    'ok'
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from .config import ReconConfig
from .errors import (
    BudgetExhausted,
    ConfigError,
    MissingField,
    ReconError,
    SourceError,
    UsageError,
    redact,
)
from .models import canonical_json, now_iso, parse_ts, stable_id
from .sources.crm import CallMeter, Cursor, Page
from .sources.scope import OUT_OF_SCOPE, in_scope
from .store import finish_run, start_run, transaction

__all__ = [
    "PullProgress",
    "PullResult",
    "in_scope",
    "load_cursor",
    "load_file",
    "run_pull",
    "write_page",
]

log = logging.getLogger(__name__)

SOURCES = ("hubspot", "salesforce")
#: cursor state keys of an unfinished pull (its schema is reused on resume)
RESUMABLE = {"full", "bulk", "search", "sweep"}
HASHED = (
    "name", "domain", "website", "email", "phone", "first_name", "last_name", "company",
    "account_id", "city", "country", "owner_id", "external_ids", "created_at", "modified_at",
    "archived", "data",
)  # fmt: skip


@dataclass
class PullProgress:
    """What a progress callback sees after every committed page."""

    source: str
    object: str
    records: int  # records fetched for this object so far in this run
    pages: int  # pages committed for this object so far
    calls: int  # API calls of this source so far
    total: int | None  # records the CRM said the object's pull holds, when known


@dataclass
class PullResult:
    """The outcome of :func:`run_pull`.

    Attributes:
        run_id: the pull run.
        status: ``ok`` | ``budget`` | ``failed`` | ``partial``.
        calls: API calls per CRM.
        records: records fetched per ``source:object``.
        changed: rows written (new or changed content) per ``source:object``.
        pages: pages committed per ``source:object``.
        errors: one line per error (class and message).
    """

    run_id: str
    status: str = "ok"
    calls: dict[str, int] = field(default_factory=dict)
    records: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    pages: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def content_hash(row: dict[str, Any]) -> str:
    """Stable hash of a snapshot row's content (not its run id or origin)."""
    return stable_id(*(row.get(k) for k in HASHED), length=32)


def _stored(
    db: sqlite_utils.Database, source: str, obj: str, ids: list[str], column: str
) -> dict[str, Any]:
    """``column`` of the stored snapshots of ``ids`` (those stored), by record id."""
    found: dict[str, Any] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        found.update(
            db.execute(
                f"select record_id, {column} from snapshots where source = ? and object = ? "
                f"and record_id in ({marks})",
                [source, obj, *chunk],
            ).fetchall()
        )
    return found


def _stored_ids(db: sqlite_utils.Database, source: str, obj: str, ids: list[str]) -> set[str]:
    return set(_stored(db, source, obj, ids, "record_id"))


def _stored_stamps(
    db: sqlite_utils.Database, source: str, obj: str, ids: list[str]
) -> dict[str, str | None]:
    """The stored modified times of ``ids`` (those stored), by id."""
    return _stored(db, source, obj, ids, "modified_at")


def load_cursor(db: sqlite_utils.Database, source: str, obj: str, cursor_field: str) -> Cursor:
    """The stored cursor of ``(source, obj)``, or a fresh one."""
    rows = list(db.query("select * from cursors where source = ? and object = ?", [source, obj]))
    if not rows:
        return Cursor(source, obj, cursor_field)
    r = rows[0]
    return Cursor(
        source,
        obj,
        r["cursor_field"] or cursor_field,
        r["value"],
        json.loads(r["ids_at_value"] or "[]"),
        json.loads(r["state"] or "{}"),
    )


def write_page(
    db: sqlite_utils.Database,
    run_id: str,
    source: str,
    page: Page,
    cfg: ReconConfig,
    *,
    commit_cursor: bool = True,
) -> int:
    """Write one page in one transaction: changed rows, associations, schema, cursor.

    A fetched record that is out of scope (``[pull] filters``, ``contacts_require_email``)
    is not stored; when an earlier pull stored it, its row is kept but marked
    ``archived = 2`` (out of scope: matching and planning leave it alone, as they do
    archived rows) with the fetched content, so it comes back as soon as it is in scope.

    Returns:
        how many rows were written (new or changed content, or newly out of scope).
    """
    rows: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for r in page.rows:
        (rows if in_scope(r, cfg) else out).append(r)
    if out:
        stored = _stored_ids(db, source, page.object, [r["record_id"] for r in out])
        # only rows already stored are kept (marked); the archived flag of the CRM wins
        rows += [
            {**r, "archived": r.get("archived") or OUT_OF_SCOPE}
            for r in out
            if r["record_id"] in stored
        ]
    written = 0
    with transaction(db):
        if rows:
            ids = [r["record_id"] for r in rows]
            known = _stored(db, source, page.object, ids, "content_hash")
            changed = []
            for row in rows:
                h = content_hash(row)
                if known.get(row["record_id"]) != h:
                    changed.append({**row, "content_hash": h, "run_id": run_id, "origin": "api"})
            if changed:
                db["snapshots"].upsert_all(changed, pk=("source", "object", "record_id"))
            written = len(changed)
            if source == "hubspot":
                _retire_merged(db, page.object, changed)
                _drop_archived_associations(db, page.object, changed)
            elif page.object == "Account":
                _carry_account_names(db, changed)
        if page.assoc_from is not None:
            from_object, from_ids = page.assoc_from
            for i in range(0, len(from_ids), 500):
                chunk = from_ids[i : i + 500]
                marks = ",".join("?" * len(chunk))
                db.execute(
                    f"delete from associations where source = ? and from_object = ? and from_id in ({marks})",
                    [source, from_object, *chunk],
                )
            if page.associations:
                db["associations"].insert_all(
                    [{**a, "run_id": run_id} for a in page.associations],
                    pk=("source", "from_object", "from_id", "to_object", "to_id"),
                    replace=True,
                )
        if page.schema is not None and page.schema_fetched:
            db["schemas"].upsert(
                {"source": source, "object": page.object, "fields": canonical_json(page.schema),
                 "run_id": run_id, "fetched_at": now_iso()},
                pk=("source", "object"),
            )  # fmt: skip
        if page.owners:
            db["owners"].upsert_all(
                [{**o, "run_id": run_id} for o in page.owners], pk=("source", "owner_id")
            )
        if commit_cursor and page.cursor is not None:
            c = page.cursor
            db["cursors"].upsert(
                {"source": c.source, "object": c.object, "cursor_field": c.field, "value": c.value,
                 "ids_at_value": canonical_json(c.ids_at_value), "state": canonical_json(c.state),
                 "run_id": run_id, "updated_at": now_iso()},
                pk=("source", "object"),
            )  # fmt: skip
    return written


def _retire_merged(db: sqlite_utils.Database, obj: str, rows: list[dict[str, Any]]) -> None:
    """HubSpot records merged into a survivor: the survivor lists them in
    ``hs_merged_object_ids``; they are gone from the CRM (no list, search or archived read
    returns them), so the store marks them archived and drops their associations."""
    gone: list[str] = []
    for row in rows:
        try:
            data = json.loads(row.get("data") or "{}")
        except ValueError:
            continue
        props = data.get("properties") if isinstance(data.get("properties"), dict) else data
        merged = str((props or {}).get("hs_merged_object_ids") or "")
        gone += [
            m.strip() for m in merged.split(";") if m.strip() and m.strip() != row["record_id"]
        ]
    for i in range(0, len(gone), 500):
        chunk = gone[i : i + 500]
        marks = ",".join("?" * len(chunk))
        db.execute(
            f"update snapshots set archived = 1 where source = 'hubspot' and object = ? "
            f"and record_id in ({marks}) and archived != 1",
            [obj, *chunk],
        )
        db.execute(
            f"delete from associations where source = 'hubspot' and from_object = ? "
            f"and from_id in ({marks})",
            [obj, *chunk],
        )


def _drop_archived_associations(
    db: sqlite_utils.Database, obj: str, rows: list[dict[str, Any]]
) -> None:
    """Associations from or to a record archived in HubSpot are gone with it (HubSpot's
    association reads no longer return them)."""
    gone = [r["record_id"] for r in rows if r.get("archived") == 1]
    for i in range(0, len(gone), 500):
        chunk = gone[i : i + 500]
        marks = ",".join("?" * len(chunk))
        db.execute(
            f"delete from associations where source = 'hubspot' and ((from_object = ? "
            f"and from_id in ({marks})) or (to_object = ? and to_id in ({marks})))",
            [obj, *chunk, obj, *chunk],
        )


def _carry_account_names(db: sqlite_utils.Database, rows: list[dict[str, Any]]) -> None:
    """A renamed Account: its Contacts' ``Account.Name`` (and ``company``) change with it,
    though their own ``SystemModstamp`` does not (Salesforce's parent-field rule), so an
    incremental pull would never read them again. The store carries the name over, and
    the content hash with it: the next full pull reads those Contacts as they are stored
    (not "changed")."""
    names = {
        str(r["record_id"]): r["name"] for r in rows if r.get("name") and not r.get("archived")
    }
    ids = list(names)
    cols = ", ".join(HASHED)
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        stale = [
            dict(r)
            for r in db.query(
                f"select record_id, {cols} from snapshots where source = 'salesforce' "
                f"and object = 'Contact' and account_id in ({marks})",
                chunk,
            )
            if r["company"] != names[str(r["account_id"])]
        ]
        for row in stale:
            name = names[str(row["account_id"])]
            data = json.loads(row["data"] or "{}")
            data["Account.Name"] = name
            row.update(company=name, data=canonical_json(data))
            db.execute(
                "update snapshots set company = ?, data = ?, content_hash = ? "
                "where source = 'salesforce' and object = 'Contact' and record_id = ?",
                [name, row["data"], content_hash(row), row["record_id"]],
            )


def _open_source(name: str, cfg: ReconConfig, meter: CallMeter) -> Any:
    """The CRM source ``name``, counting its calls on ``meter`` (the run's per-source budget).

    Opened inside :func:`run_pull`'s per-source error handling, so that a source that cannot
    open (no token, refused credentials) fails alone. The pull framework's tests replace this
    function with scripted sources (``tests/test_pull.py``); the real clients are tested
    against the emulators.
    """
    if name == "hubspot":
        from .sources.hubspot import HubSpotSource

        return HubSpotSource(cfg, meter)
    from .sources.salesforce import SalesforceSource

    return SalesforceSource(cfg, meter)


def _cursor_field(source: str, obj: str) -> str:
    if source == "hubspot":
        from .sources.hubspot import CURSOR_FIELDS

        return CURSOR_FIELDS.get(obj, "hs_lastmodifieddate")
    return "SystemModstamp"


def run_pull(
    db: sqlite_utils.Database,
    cfg: ReconConfig,
    *,
    sources: Iterable[str] = SOURCES,
    objects: Iterable[str] | None = None,
    full: bool = False,
    sample: int | None = None,
    parent_run_id: str | None = None,
    progress: Callable[[PullProgress], None] | None = None,
) -> PullResult:
    """Pull the CRMs into the store; returns what was pulled and what it cost.

    Args:
        db: the store.
        cfg: the configuration.
        sources: ``hubspot`` and/or ``salesforce``.
        objects: only these objects (``companies``, ``Account``...); default: configured ones.
        full: re-read everything (an unfinished full pull is resumed, not restarted).
        sample: at most this many records per object; cursors are left alone.
        parent_run_id: the ``recon run`` this pull belongs to.
        progress: called after every committed page (raising from it stops the pull;
            committed pages stay).

    Raises:
        BudgetExhausted: a CRM's budget was spent (exit 6; the next run resumes).
        AuthError, ConfigError, RateLimited, MissingField, SourceError: a source's error, after
            the other source ran: the one to act on first (see ``_pull_error``), naming the
            other's.

    Examples:
        >>> from recon.store import open_store
        >>> from recon.config import ReconConfig
        >>> run_pull(open_store(":memory:"), ReconConfig(), sources=[]).calls
        {}
    """
    sources = list(sources)
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise UsageError(f"unknown source {unknown[0]!r}", hint="use hubspot, salesforce or all")
    if sample is not None and sample < 1:
        raise UsageError("--sample must be at least 1")
    wanted = list(objects) if objects else None
    if wanted is not None:
        known = [o for s in sources for o in _known_objects(s)]
        bad = [o for o in wanted if o not in known]
        if bad:
            raise UsageError(
                f"no object {bad[0]!r} in {', '.join(sources)}", hint=f"objects: {', '.join(known)}"
            )
        sources = [s for s in sources if set(wanted) & set(_known_objects(s))]
    config = {"sources": sources, "objects": wanted, "full": full, "sample": sample}
    run_id = start_run(db, "pull", parent_id=parent_run_id, config=config)
    result = PullResult(run_id=run_id)
    failures: list[tuple[str, ReconError]] = []  # (source, its error), in source order
    per_source: dict[str, Any] = {}
    for name in sources:
        budget = cfg.budget.hubspot_calls if name == "hubspot" else cfg.budget.salesforce_calls
        max_retries = cfg.hubspot.max_retries if name == "hubspot" else cfg.salesforce.max_retries
        meter = CallMeter(name, budget=budget, max_retries=max_retries)
        info: dict[str, Any] = {"status": "ok", "objects": {}}
        per_source[name] = info
        source: Any = None
        missing: list[MissingField] = []
        try:
            source = _open_source(name, cfg, meter)
            objs = (
                list(source.objects())
                if wanted is None
                else [o for o in wanted if o in _known_objects(name)]
            )
            # owners last: a tight budget goes to the records first; re-read on an interval
            # (a --sample test run reads them too: its plan maps owners like a whole run's)
            steps = objs + (
                ["owners"]
                if full or _due(db, name, "owners", cfg.pull.owners_refresh_hours)
                else []
            )
            # a run a budget stopped resumes with the object (or the owners) it stopped in,
            # then the others: a tight budget must not spend itself on the same first steps
            # run after run, and never reach the owners
            stopped = _stopped_in(db, name) if sample is None else None
            if stopped in steps:
                at = steps.index(stopped)
                steps = steps[at:] + steps[:at]
            for step in steps:
                info["current"] = step
                if step == "owners":
                    _pull_owners(db, cfg, run_id, name, source, sample)
                    continue
                try:
                    _pull_object(
                        db, cfg, run_id, name, source, step, meter, result, full, sample,
                        progress, info, reread_schema=bool(missing),
                    )  # fmt: skip
                except MissingField as exc:
                    # a field recon.toml names is gone: the other objects are read all the
                    # same, so every such field is named at once (and their schemas stored)
                    missing.append(exc)
            info.pop("current", None)
            if stopped is not None and sample is None:
                with transaction(db):
                    db.execute(
                        "delete from cursors where source = ? and object = '_stopped_in'", [name]
                    )
            if missing:  # the other objects and the owners were read: now the missing fields
                raise _all_missing(missing)
        except BudgetExhausted as exc:
            info["status"], info["error"] = "budget", str(exc)
            if sample is None and info.get("current"):
                _remember_stop(db, name, str(info.pop("current")), run_id)
            result.errors.append(_named(name, exc))
            failures.append((name, exc))
            _report_missing(name, missing, result, failures)
        except (SourceError, ConfigError) as exc:
            # a setting this source lacks (a token) stops this source only: the other runs
            info["status"], info["error"] = "failed", str(exc)
            info["error_class"] = (
                exc.error_class.value if isinstance(exc, SourceError) else "configuration"
            )
            result.errors.append(_named(name, exc))
            failures.append((name, exc))
            if not isinstance(exc, MissingField):  # another error stopped the source later
                _report_missing(name, missing, result, failures)
        except BaseException as exc:
            cut = isinstance(exc, KeyboardInterrupt)
            why = "interrupted (Ctrl-C)" if cut else redact(f"{type(exc).__name__}: {exc}")
            info["status"], info["error"] = ("cancelled" if cut else "failed"), why
            result.errors.append(_named(name, why))  # the run's error says why it stopped
            _report_missing(name, missing, result, failures)  # named in the stored run
            _finish(
                db,
                result,
                per_source,
                meter_calls={**result.calls, name: meter.calls},
                status="cancelled" if cut else "failed",
            )
            raise
        finally:
            result.calls[name] = meter.calls
            info["calls"] = meter.summary()
            usage = getattr(source, "api_usage", None)
            if usage:
                info["api_usage"] = {"used": usage[0], "total": usage[1]}
            conn = getattr(source, "conn", None)
            if conn is not None:
                info["token_refreshes"] = conn.refreshes
    statuses = {i["status"] for i in per_source.values()}
    status = "ok"
    if "failed" in statuses:
        status = "failed" if statuses == {"failed"} else "partial"
    elif "budget" in statuses:
        status = "budget"
    _finish(db, result, per_source, meter_calls=result.calls, status=status)
    if failures:
        raise _pull_error(failures, result)
    return result


def _named(source: str, error: object) -> str:
    """An error line of the run naming its CRM once ("salesforce: salesforce: the token ..."
    where the error names it itself).

    Examples:
        >>> _named("salesforce", "salesforce: refused"), _named("hubspot", "401")
        ('salesforce: refused', 'hubspot: 401')
    """
    text = str(error)
    return text if text.startswith(f"{source}: ") else f"{source}: {text}"


def _all_missing(missing: list[MissingField]) -> MissingField:
    """One error naming every missing field of a source."""
    if len(missing) == 1:
        return missing[0]
    return MissingField("; ".join(m.message for m in missing), hint=missing[0].hint)


def _report_missing(
    name: str,
    missing: list[MissingField],
    result: PullResult,
    failures: list[tuple[str, ReconError]],
) -> None:
    """Name the missing fields of a source a later error stopped (they are not lost)."""
    if missing:
        exc = _all_missing(missing)
        result.errors.append(_named(name, exc))
        failures.append((name, exc))


#: which source's error a pull reports when more than one failed (lower first): the one a
#: person must act on (credentials, configuration) before one that passes or resumes
_EXIT_RANK = {7: 0, 3: 1, 2: 1, 1: 2, 4: 2, 6: 3}


def _pull_error(failures: list[tuple[str, ReconError]], result: PullResult) -> ReconError:
    """The error a pull raises: the most pressing source's (authentication before a
    server error, a spent budget last), naming the other sources' errors too, with what was
    pulled and spent before (``result``) and every source's error class
    (``error_classes``: a `recon run` counts each)."""
    ranked = sorted(failures, key=lambda f: _EXIT_RANK.get(int(f[1].exit_code), 2))
    name, exc = ranked[0]
    if len(failures) > 1:

        def named(source: str, err: ReconError) -> str:
            said = err.message
            return said if said.lower().startswith(source) else f"{source}: {said}"

        others = "; ".join(named(other, err) for other, err in ranked[1:])
        exc.message = f"{named(name, exc)}; also {others}"
        hints = [err.hint for _, err in ranked if err.hint]
        if len(hints) > 1:  # what to do about each source, not only the first
            exc.hint = "; ".join(dict.fromkeys(hints))
    exc.result = result  # type: ignore[attr-defined]
    exc.error_classes = [  # type: ignore[attr-defined]
        str(getattr(err, "error_class", "") or "configuration") for _, err in failures
    ]
    return exc


def _due(db: sqlite_utils.Database, source: str, what: str, hours: float) -> bool:
    """Whether ``what`` (``owners``) of ``source`` was last read ``hours`` ago or more (or never)."""
    row = db.execute(
        "select value from cursors where source = ? and object = ?", [source, f"_{what}"]
    ).fetchone()
    last = parse_ts(row[0]) if row and row[0] else None
    return last is None or datetime.now(UTC) - last >= timedelta(hours=hours)


def _pull_owners(
    db: sqlite_utils.Database,
    cfg: ReconConfig,
    run_id: str,
    name: str,
    source: Any,
    sample: int | None,
) -> None:
    """Read the whole owner (HubSpot) or User (Salesforce) list of ``source``."""
    for owners in source.owners():
        write_page(db, run_id, name, Page(object="owners", owners=owners), cfg)
    with transaction(db):
        # the whole list was read: an owner it no longer holds (archived in HubSpot, gone) is
        # no longer one to assign records to
        db.execute(
            "update owners set active = 0 where source = ? and active != 0 and run_id is not ?",
            [name, run_id],
        )
        if sample is None:  # a test run leaves the cursors (and stamps) alone
            _stamp(db, name, "owners", run_id)


def _stopped_in(db: sqlite_utils.Database, source: str) -> str | None:
    """The object a budget stopped the last pull of ``source`` in (None: it finished)."""
    row = db.execute(
        "select value from cursors where source = ? and object = '_stopped_in'", [source]
    ).fetchone()
    return str(row[0]) if row and row[0] else None


def _remember_stop(db: sqlite_utils.Database, source: str, obj: str, run_id: str) -> None:
    now = now_iso()
    with transaction(db):
        db["cursors"].upsert(
            {"source": source, "object": "_stopped_in", "cursor_field": "object", "value": obj,
             "ids_at_value": "[]", "state": "{}", "run_id": run_id, "updated_at": now},
            pk=("source", "object"),
        )  # fmt: skip


def _stamp(db: sqlite_utils.Database, source: str, what: str, run_id: str) -> None:
    """Remember when ``what`` of ``source`` was read (a ``cursors`` row ``_owners``)."""
    now = now_iso()
    db["cursors"].upsert(
        {"source": source, "object": f"_{what}", "cursor_field": "fetched_at", "value": now,
         "ids_at_value": "[]", "state": "{}", "run_id": run_id, "updated_at": now},
        pk=("source", "object"),
    )  # fmt: skip


def _stored_schema(
    db: sqlite_utils.Database, source: str, obj: str
) -> tuple[list[dict[str, Any]] | None, datetime | None]:
    row = db.execute(
        "select fields, fetched_at from schemas where source = ? and object = ?", [source, obj]
    ).fetchone()
    if not row:
        return None, None
    return json.loads(row[0]), parse_ts(row[1])


def _known_objects(source: str) -> tuple[str, ...]:
    if source == "hubspot":
        return ("companies", "contacts")
    return ("Account", "Contact", "Lead", "Campaign", "CampaignMember")


def _pull_object(
    db: sqlite_utils.Database,
    cfg: ReconConfig,
    run_id: str,
    name: str,
    source: Any,
    obj: str,
    meter: CallMeter,
    result: PullResult,
    full: bool,
    sample: int | None,
    progress: Callable[[PullProgress], None] | None,
    info: dict[str, Any],
    *,
    reread_schema: bool = False,
) -> None:
    """Pull one object. ``reread_schema``: an object before it named a configured field gone
    since its schema was stored, so this one's stored schema is not trusted either."""
    cursor = load_cursor(db, name, obj, _cursor_field(name, obj))
    schema = None
    schema_since = None
    cached = False
    stored, fetched_at = _stored_schema(db, name, obj)
    if reread_schema:
        pass  # read again (a HubSpot answer shows a deleted property only on changed records)
    elif sample is None and set(cursor.state) & RESUMABLE:
        # resuming an unfinished pull: reuse the schema stored with its first page (re-read
        # when a field it names is gone, or one configured since is missing from it)
        schema, cached = stored, stored is not None
    elif stored is not None and not full:
        hours = cfg.pull.schema_refresh_hours
        if fetched_at is not None and datetime.now(UTC) - fetched_at < timedelta(hours=hours):
            schema, cached = stored, True  # fresh enough: no properties/describe call this run
        else:
            schema_since = (stored, fetched_at)  # a conditional re-read where the API has one
    stats = info["objects"].setdefault(obj, {"fetched": 0, "written": 0, "pages": 0})
    calls_before, kinds_before = meter.calls, dict(meter.by_kind)
    try:
        base: dict[str, Any] = {}
        if name == "hubspot":  # records its lag margin reads again, unchanged, are dropped
            base["stored"] = functools.partial(_stored_stamps, db, name, obj)
        kwargs = {**base, "schema_since": schema_since} if schema_since else dict(base)
        try:
            _pages(db, cfg, run_id, name, source, obj, cursor, meter, result, full, sample,
                   progress, stats, schema, kwargs)  # fmt: skip
        except MissingField:
            if not cached:
                raise
            # the stored schema may predate a field or property created since: read it again
            log.info(
                "%s %s: a field is missing from the stored schema; reading it again", name, obj
            )
            cursor = load_cursor(db, name, obj, _cursor_field(name, obj))
            _pages(db, cfg, run_id, name, source, obj, cursor, meter, result, full, sample,
                   progress, stats, None, base)  # fmt: skip
    except MissingField as exc:
        fields = getattr(exc, "schema", None)
        if fields is not None:  # read just now: stored, so `recon plan` names every gone field
            write_page(db, run_id, name, Page(object=obj, schema=fields, schema_fetched=True), cfg,
                       commit_cursor=False)  # fmt: skip
        raise
    finally:
        stats["calls"] = meter.calls - calls_before
        stats["calls_by_kind"] = {
            k: v - kinds_before.get(k, 0)
            for k, v in sorted(meter.by_kind.items())
            if v != kinds_before.get(k, 0)
        }


def _pages(
    db: sqlite_utils.Database,
    cfg: ReconConfig,
    run_id: str,
    name: str,
    source: Any,
    obj: str,
    cursor: Cursor,
    meter: CallMeter,
    result: PullResult,
    full: bool,
    sample: int | None,
    progress: Callable[[PullProgress], None] | None,
    stats: dict[str, Any],
    schema: list[dict[str, Any]] | None,
    kwargs: dict[str, Any],
) -> None:
    """Write every page of one object's pull, keeping the run's counts."""
    key = f"{name}:{obj}"
    total = None
    for page in source.pull(obj, cursor, full=full, sample=sample, schema=schema, **kwargs):
        written = write_page(db, run_id, name, page, cfg, commit_cursor=sample is None)
        if page.schema is not None and not page.rows:
            continue
        if not page.counts:
            stats["written"] += written
            result.changed[key] = stats["written"]
            continue
        total = page.total if page.total is not None else total
        stats["fetched"] += page.fetched
        stats["written"] += written
        stats["pages"] += 1
        result.records[key] = stats["fetched"]
        result.changed[key] = stats["written"]
        result.pages[key] = stats["pages"]
        if progress is not None:
            progress(PullProgress(name, obj, stats["fetched"], stats["pages"], meter.calls, total))


def _finish(
    db: sqlite_utils.Database,
    result: PullResult,
    per_source: dict[str, Any],
    *,
    meter_calls: dict[str, int],
    status: str,
) -> None:
    result.status = status
    result.summary = {
        "calls": dict(meter_calls),
        "records": dict(result.records),
        "changed": dict(result.changed),
        "pages": dict(result.pages),
        "sources": per_source,
    }
    finish_run(
        db,
        result.run_id,
        status=status,
        summary=result.summary,
        error="; ".join(result.errors) or None,
    )
    log.info(
        "pull run %s %s: records %s, changed %s, calls %s",
        result.run_id, status, result.records, result.changed, meter_calls,
    )  # fmt: skip


def load_file(
    db: sqlite_utils.Database,
    path: str | Path,
    as_: str,
    *,
    cfg: ReconConfig | None = None,
    parent_run_id: str | None = None,
) -> PullResult:
    """Load a CRM export file as a pull run (``recon pull --file PATH --as KIND``).

    With ``cfg``, its scoping filters apply as they do to a pull (see
    :func:`recon.sources.files.load_export`).

    Raises:
        FileFormatError: the file is malformed (file, row and column named).

    Examples:
        >>> import tempfile, pathlib
        >>> from recon.store import open_store
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "companies.csv"
        >>> _ = p.write_text("Record ID,Company name\\n101,Acme\\n")
        >>> load_file(open_store(":memory:"), p, "hubspot:companies").records
        {'hubspot:companies': 1}
    """
    from .sources.files import load_export, parse_as

    source, _obj = parse_as(as_, path)
    run_id = start_run(db, "pull", parent_id=parent_run_id, config={"file": str(path), "as": as_})
    stats: dict[str, Any] = {}
    try:
        load_export(db, path, as_, run_id=run_id, stats=stats, cfg=cfg)
    except Exception as exc:
        finish_run(db, run_id, status="failed", error=str(exc))
        raise
    counts = stats.get("objects") or {}
    result = PullResult(run_id=run_id, records={f"{source}:{o}": n for o, n in counts.items()})
    # rows new or changed (by object): an unchanged row keeps the run that last changed it
    written = dict(
        db.execute(
            "select object, count(*) from snapshots where run_id = ? group by object", [run_id]
        ).fetchall()
    )
    result.changed = {f"{source}:{o}": written.get(o, 0) for o in counts}
    result.summary = {"file": str(path), "as": as_, "records": result.records,
                      "changed": result.changed, "calls": {},
                      "out_of_scope": stats.get("out_of_scope", 0),
                      "older": stats.get("older", 0), "no_time": stats.get("no_time", 0),
                      "absent": stats.get("absent", 0)}  # fmt: skip
    finish_run(db, run_id, status="ok", summary=result.summary)
    return result
