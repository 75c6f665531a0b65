"""Decisions on plan items that need their own approval (creates), counted and written in bulk.

Part of :mod:`recon.review` (import from there). A plan item whose ``requires``
lists its own id (a create of a record on the other side) is applied only once
a ``plan`` decision approves it; these functions label the latest plan's
undecided ones, one transaction per batch, with a ``bulk:<id>`` note that
:func:`recon.review.undo_last` undoes as one.
"""

from __future__ import annotations

import json
import os
from typing import Any

import sqlite_utils

from .errors import ReviewerConflict, ReviewError
from .models import now_iso, stable_id
from .review_queue import _latest_run
from .store import transaction

_CHAIN = (
    "d.item_id = pi.item_id and d.kind = 'plan' "
    "and coalesce(json_extract(d.choice, '$.field'), '') = ''"
)
_ENTITY = "case when pi.object in ('companies', 'Account') then 'companies' else 'contacts' end"


#: the ``action`` of :func:`count_plan_approvals` for the writes held for a person: a write an
#: applied undo took back, or a stale write a reviewer dropped, proposed again
HELD = "held"


def _where(run: str | None, action: str | None, system: str | None) -> tuple[str, list[Any]]:
    sql = [
        "pi.run_id = ?",
        "pi.status != 'blocked'",
        "exists (select 1 from json_each(pi.requires) where value = pi.item_id)",
        f"coalesce((select d.label from decisions d where {_CHAIN} and d.superseded = 0 "
        "order by d.decision_id desc limit 1), 'defer') in ('defer', 'unsure')",
    ]
    # a conflict requires itself too, but is answered with a value in the queue (a bare
    # approval here writes nothing and takes it out of the queue)
    sql.append("pi.action != 'conflict'")
    params: list[Any] = [run]
    if action == HELD:
        sql.append("json_extract(pi.reason, '$.why') in ('undone_before', 'dropped_before')")
    elif action:
        sql.append("pi.action = ?")
        params.append(action)
    if system:
        sql.append("pi.system = ?")
        params.append(system)
    return " and ".join(sql), params


def plan_item_counts(db: sqlite_utils.Database, run_id: str) -> list[dict[str, Any]]:
    """Items of a plan run per (action, system, object, status), sorted that way.

    Read from the counts the plan stored with its run while no apply run has read the plan
    (an apply may send items back to review); else counted from its rows (2 s at 1.5M).

    Examples:
        >>> from recon.store import open_store
        >>> plan_item_counts(open_store(":memory:"), "plan-x")
        []
    """
    row = db.execute("select summary from runs where run_id = ?", [run_id]).fetchone()
    applied = db.execute(
        "select 1 from runs where stage = 'apply' and json_extract(config, '$.plan_run_id') = ? "
        "limit 1",
        [run_id],
    ).fetchone()
    stored = json.loads(row[0] or "{}").get("counts") if row else None
    if isinstance(stored, list) and not applied:
        keys = ("action", "system", "object", "status", "items")
        rows = [{k: c.get(k) for k in keys} for c in stored]
        return sorted(rows, key=lambda c: (c["action"], c["system"], c["object"], c["status"]))
    return [
        dict(r)
        for r in db.query(
            "select action, system, object, status, count(*) as items from plan_items "
            "where run_id = ? group by action, system, object, status "
            "order by action, system, object, status",
            [run_id],
        )
    ]


#: the columns of a plan item shown on a page of the review app's plan tab
PAGE_COLUMNS = (
    "seq, item_id, action, system, object, record_id, field, before, after, status, "
    "link_item_id, reason"
)


def plan_page(
    db: sqlite_utils.Database,
    run_id: str,
    *,
    action: str | None = None,
    page: int = 1,
    size: int = 200,
) -> list[dict[str, Any]]:
    """One page of a plan run's items in run order (seq, item_id).

    A plan stores its rows in run order under consecutive rowids and records their span
    with the run (``summary.rowids``): a page is then read by rowid, without sorting the
    whole run (0.7 s a page at 1.6M items). Other runs (undo plans, plans stored by older
    versions) are sorted.

    Args:
        run_id: the plan run.
        action: only items of this action (None: all).
        page: 1-based page number.
        size: items per page.

    Examples:
        >>> from recon.store import open_store
        >>> plan_page(open_store(":memory:"), "plan-x")
        []
    """
    if page < 1 or size < 1:
        raise ReviewError(f"page {page} of size {size}: both must be at least 1")
    row = db.execute("select summary from runs where run_id = ?", [run_id]).fetchone()
    span = json.loads(row[0] or "{}").get("rowids") if row else None
    where, args = "run_id = ?", [run_id]
    if action is not None:
        where += " and action = ?"
        args.append(action)
    offset = (page - 1) * size
    if isinstance(span, list) and len(span) == 2:
        first, last = int(span[0]), int(span[1])
        if action is None:  # consecutive rowids: the page is a rowid range
            first += offset
            offset = 0
        sql = (
            f"select {PAGE_COLUMNS} from plan_items not indexed "
            f"where rowid between {first} and {last} "
            f"and {where} "
            "order by rowid limit ? offset ?"
        )
    else:
        sql = (
            f"select {PAGE_COLUMNS} from plan_items where {where} "
            "order by seq, item_id limit ? offset ?"
        )
    return [dict(r) for r in db.query(sql, [*args, size, offset])]


def undo_plan_of(db: sqlite_utils.Database) -> str | None:
    """The apply run the latest plan restores, when it is an undo plan (``recon undo``).

    Examples:
        >>> from recon.store import open_store
        >>> undo_plan_of(open_store(":memory:")) is None
        True
    """
    run = _latest_run(db, "plan")
    if run is None:
        return None
    row = db.execute("select config from runs where run_id = ?", [run]).fetchone()
    try:
        config = json.loads(row[0] or "{}") if row else {}
    except ValueError:
        return None
    undo = config.get("undo_of") if isinstance(config, dict) else None
    return str(undo) if undo else None


def count_plan_approvals(
    db: sqlite_utils.Database,
    *,
    action: str | None = "create",
    system: str | None = None,
    plan_run_id: str | None = None,
) -> int:
    """How many undecided items of the latest plan (or ``plan_run_id``) need their own approval
    (``action``, ``system``).

    ``action``: ``create``, another action, :data:`HELD` (writes proposed again after an undo
    or a reviewer's drop), or None for all of them. Conflicts are never among them: they are
    answered with a value in the queue.

    Examples:
        >>> from recon.store import open_store
        >>> count_plan_approvals(open_store(":memory:"))
        0
    """
    run = plan_run_id or _latest_run(db, "plan")
    if run is None:
        return 0
    where, params = _where(run, action, system)
    return int(
        db.execute(f"select count(*) from plan_items pi where {where}", params).fetchone()[0]
    )


def approve_plan_items(
    db: sqlite_utils.Database,
    *,
    action: str | None = "create",
    system: str | None = None,
    reviewer: str | None,
    expected: int,
    label: str = "approve",
    plan_run_id: str | None = None,
) -> int:
    """Label the latest plan's (or ``plan_run_id``'s) undecided self-approved items ``approve``
    (or ``reject``/``defer``).

    ``expected`` is the count shown to the reviewer (:func:`count_plan_approvals`);
    if it changed since, nothing is written.

    Raises:
        ReviewerConflict: the count differs from ``expected``.
        ReviewError: no reviewer, no plan, or an unknown label.
    """
    if not reviewer:
        raise ReviewError("no reviewer: sign in first")
    if label not in ("approve", "reject", "defer"):
        raise ReviewError(f"unknown plan label {label!r}", hint="use approve, reject or defer")
    run = plan_run_id or _latest_run(db, "plan")
    if run is None:
        raise ReviewError("there is no plan to approve", hint="run `recon plan` first")
    where, params = _where(run, action, system)
    batch = "bulk:" + stable_id(reviewer, now_iso(), os.getpid(), "plan", length=10)
    with transaction(db):
        db.execute("create temp table if not exists bulk_plan (item_id text primary key)")
        db.execute("delete from bulk_plan")
        db.execute(
            f"insert into bulk_plan select pi.item_id from plan_items pi where {where}", params
        )
        n = db.execute("select count(*) from bulk_plan").fetchone()[0]
        if n != expected:
            raise ReviewerConflict(
                f"{n} plan items match now, not the {expected} shown", hint="count again"
            )
        db.execute(
            f"""insert into decisions (kind, object, source_l, record_id_l, label, choice, item_id,
                  decided_by, reviewer, decided_at, version, based_on_version, run_id, superseded, note)
                select 'plan', {_ENTITY}, pi.system, pi.record_id, ?, null, pi.item_id, 'human', ?, ?,
                  (select coalesce(max(d.version), 0) + 1 from decisions d where {_CHAIN}),
                  coalesce((select d.version from decisions d where {_CHAIN} and d.superseded = 0), 0),
                  pi.run_id, 0, ?
                from plan_items pi join bulk_plan b on b.item_id = pi.item_id where pi.run_id = ?""",
            [label, reviewer, now_iso(), batch, run],
        )
        db.execute(
            "update decisions set superseded = 1 where superseded = 0 and kind = 'plan' "
            "and coalesce(note, '') != ? and item_id in (select item_id from bulk_plan)",
            [batch],
        )
    return int(n)
