"""Stale plan items in the review queue: writes apply refused because the record changed since review.

Part of :mod:`recon.review` (import from there). When apply finds a target record
modified after the snapshot its decision was based on, it does not overwrite it:
the journal row becomes ``stale`` with both versions (``journal.error``, also in
``plan_items.reason.stale``). Each such refusal is a *stale event*, queued as a
``stale`` item whose id (:func:`stale_id`) names the plan item, the apply run and
the record's new modification time, so a decision always answers one version of
the record. The reviewer approves (write the planned value anyway, against the
new version), rejects (drop the write) or defers; the decision is a ``plan``
decision on the stale item's id, with choice ``{"stale_of": plan item id,
"modified_at": the new version, "apply_run_id"}``. A record changed again after
an approval goes stale again under a new id, undecided.

The queue holds the latest stale event of each item of the queue's plan run; it
is indexed with the queue and again by apply each time it marks an item stale.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from .models import stable_id
from .normalize import search_text

__all__ = ["index_stale", "stale_detail", "stale_id", "stale_of"]

_ENTITY = {"companies": "companies", "Account": "companies"}


def _loads(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return None


def stale_id(plan_run_id: str, item_id: str, both: dict[str, Any]) -> str:
    """The queue id of one stale event: the plan item, the apply run and the record's new version.

    Examples:
        >>> a = stale_id("plan-1", "it-1", {"apply_run_id": "r1", "current_modified_at": "2026-01-01T00:00:00Z"})
        >>> b = stale_id("plan-1", "it-1", {"apply_run_id": "r1", "current_modified_at": "2026-01-02T00:00:00Z"})
        >>> a.startswith("st-") and a != b
        True
    """
    return stable_id(
        "stale",
        plan_run_id,
        item_id,
        str(both.get("apply_run_id") or ""),
        str(both.get("current_modified_at") or ""),
        prefix="st-",
    )


def _latest_stale(
    db: sqlite_utils.Database, plan_run_id: str, item_ids: list[str] | None = None
) -> list[dict[str, Any]]:
    """The newest journal row of each item of the plan, where that row is ``stale``."""
    where, params = "plan_run_id = ?", [plan_run_id]
    if item_ids is not None:
        where += f" and item_id in ({', '.join('?' * len(item_ids))})"
        params += item_ids
    rows = db.query(
        f"select * from journal where {where} order by updated_at, rowid",
        params,
    )
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        latest[row["item_id"]] = dict(row)
    return [r for r in latest.values() if r["state"] == "stale"]


def _queue_row(db: sqlite_utils.Database, plan_run_id: str, row: dict[str, Any]) -> dict[str, Any]:
    both = _loads(row["error"]) or {}
    item = _loads(row["item"]) or {}
    system, obj = item.get("system"), item.get("object")
    record_id = item.get("record_id") or row.get("crm_record_id")
    snap = list(
        db.query(
            "select name, email, domain, company from snapshots where source = ? and object = ? "
            "and record_id = ?",
            [system, obj, record_id],
        )
    )
    label = (snap[0]["name"] or snap[0]["email"]) if snap else None
    what = item.get("field") or item.get("action") or "record"
    current: dict[str, Any] = both.get("current") or {} if isinstance(both, dict) else {}
    words = [what, label, *(snap[0].values() if snap else ()), record_id, system]
    words += [
        *(current.values() if isinstance(current, dict) else ()),
        item.get("after"),
    ]  # the CRM's new value and the planned one
    return {
        "item_id": stale_id(plan_run_id, row["item_id"], both),
        "kind": "stale",
        "object": _ENTITY.get(str(obj), "contacts"),
        "tier": "review",
        "tier_rank": 0,
        "score": None,
        "closeness": 0.0,
        "run_id": plan_run_id,
        "source_l": system,
        "object_l": obj,
        "record_id_l": record_id,
        "source_r": None,
        "object_r": None,
        "record_id_r": None,
        "title": f"{what}:  {label or record_id}  "
        + (
            "(recon's own merge left another value)"
            if isinstance(both, dict) and both.get("by_recon_merge")
            else "(changed in the CRM since review)"
        ),
        "search": " ".join(search_text(str(w)) or "" for w in words if w),
        "field": item.get("field"),
        "link_item_id": row["item_id"],
        "members": 1,
        "flags": json.dumps(["stale"]),
    }


def index_stale(
    db: sqlite_utils.Database, plan_run_id: str | None, item_ids: list[str] | None = None
) -> int:
    """(Re-)index the stale items of ``plan_run_id`` (only ``item_ids`` when given) into the queue.

    Each item keeps one queue row: its latest stale event (older events of the
    item, and items no longer stale, leave the queue). Call inside the caller's
    transaction. Returns the number of stale items indexed.

    Examples:
        >>> from recon.store import open_store
        >>> index_stale(open_store(":memory:"), "plan-x")
        0
    """
    if not plan_run_id:
        return 0
    drop, params = "kind = 'stale' and run_id = ?", [plan_run_id]
    if item_ids is not None:
        drop += f" and link_item_id in ({', '.join('?' * len(item_ids))})"
        params += item_ids
    db.execute(f"delete from review_queue where {drop}", params)
    rows = [_queue_row(db, plan_run_id, r) for r in _latest_stale(db, plan_run_id, item_ids)]
    if rows:
        db["review_queue"].insert_all(rows, pk="item_id", replace=True)
    return len(rows)


def stale_of(db: sqlite_utils.Database, queue_item: dict[str, Any]) -> dict[str, Any]:
    """The stale journal row behind a ``stale`` queue item, with ``both`` and ``item`` decoded."""
    rows = _latest_stale(db, queue_item["run_id"], [queue_item["link_item_id"]])
    if not rows:
        return {}
    row = rows[0]
    row["both"] = _loads(row["error"]) or {}
    row["item"] = _loads(row["item"]) or {}
    return row


def stale_detail(db: sqlite_utils.Database, queue_item: dict[str, Any]) -> dict[str, Any]:
    """Both versions of a stale item side by side: per field the snapshot, current and planned value.

    Returns ``{"plan_item_id", "action", "apply_run_id", "snapshot_modified_at",
    "current_modified_at", "fields": [{"field", "snapshot", "current", "planned"}],
    "by_recon_merge", "changed_members"}`` (empty when the item is no longer stale);
    ``by_recon_merge`` names the plan's merge item when the value in the way is one that merge
    left, not an edit; ``changed_members`` (a merge) maps each member modified since review
    to ``{"reviewed", "now"}`` times.
    """
    row = stale_of(db, queue_item)
    if not row:
        return {}
    both, item = row["both"], row["item"]
    payload = item.get("payload") if isinstance(item.get("payload"), dict) else {}
    planned = dict(payload.get("properties") or payload.get("fields") or {})
    if not planned and item.get("field"):
        planned = {item["field"]: item.get("after")}
    current = both.get("current") if isinstance(both.get("current"), dict) else {}
    data: dict[str, Any] = {}
    found = db.execute(
        "select data from snapshots where source = ? and object = ? and record_id = ?",
        [item.get("system"), item.get("object"), item.get("record_id")],
    ).fetchone()
    if found:
        data = _loads(found[0]) or {}
    fields = []
    for name in sorted(set(planned) | set(current)):
        snapshot = both.get("planned_before") if name == item.get("field") else data.get(name)
        fields.append(
            {
                "field": name,
                "snapshot": snapshot,
                "current": current.get(name),
                "planned": planned.get(name),
            }
        )
    return {
        "plan_item_id": row["item_id"],
        "action": item.get("action"),
        "system": item.get("system"),
        "apply_run_id": both.get("apply_run_id"),
        "snapshot_modified_at": both.get("snapshot_modified_at"),
        "current_modified_at": both.get("current_modified_at"),
        "fields": fields,
        "by_recon_merge": both.get("by_recon_merge"),
        "changed_members": both.get("changed_members") or {},
    }
