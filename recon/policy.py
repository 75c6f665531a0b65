"""The auto-approve policy of headless runs: which items a run may approve on its own.

``[policy]`` names the tiers of cross-system links a run approves
(``link_tiers``, default only ``auto``), the objects it acts on, and whether
it may approve merges of duplicate clusters (``merges``, which stands for
``--confirm-merges``; off by default), creates, and conflict values the plan
proposes. The policy only decides items nobody has decided: a person's
decision (including a deferral) is never overridden. Its decisions are stored
like a reviewer's, with ``decided_by = "policy"``, so they never train weights
or measure precision.

Examples:
    >>> from recon.config import PolicySection
    >>> from recon.store import open_store
    >>> auto_approve(open_store(":memory:"), PolicySection(), match_run_id=None)
    {'links': 0, 'merges': 0, 'creates': 0, 'conflicts': 0}
"""

from __future__ import annotations

import json
import logging

import sqlite_utils

from .config import PolicySection
from .models import now_iso
from .plan import proposed_choice
from .store import transaction

__all__ = ["POLICY_REVIEWER", "auto_approve"]

log = logging.getLogger(__name__)

POLICY_REVIEWER = "policy"

_UNDECIDED = "not exists (select 1 from decisions d where d.item_id = {id} and coalesce(d.superseded, 0) = 0)"
_NEXT_VERSION = "(select coalesce(max(d.version), 0) + 1 from decisions d where d.item_id = {id})"


def _marks(values: list[str]) -> str:
    return ", ".join("?" for _ in values) or "null"


def auto_approve(
    db: sqlite_utils.Database,
    policy: PolicySection,
    *,
    match_run_id: str | None,
    plan_run_id: str | None = None,
) -> dict[str, int]:
    """Approve, as the policy, the undecided items ``policy`` allows; return counts per kind.

    Args:
        db: the store.
        policy: the ``[policy]`` section.
        match_run_id: links and clusters come from this match run.
        plan_run_id: creates and conflict values come from this plan run.
    """
    counts = {"links": 0, "merges": 0, "creates": 0, "conflicts": 0}
    if not policy.enabled:
        return counts
    now = now_iso()
    objects: list[str] = list(policy.objects)
    with transaction(db):
        if match_run_id and policy.link_tiers:
            tiers: list[str] = list(policy.link_tiers)
            cur = db.execute(
                f"""
                insert into decisions (kind, object, source_l, record_id_l, source_r, record_id_r,
                    salesforce_object, label, choice, item_id, decided_by, reviewer, decided_at,
                    version, based_on_version, run_id, superseded, note)
                select 'link', p.object, p.source_l, p.record_id_l, p.source_r, p.record_id_r,
                    case when p.object = 'contacts' then p.object_r end,
                    'match', null, p.pair_id, 'policy', ?, ?,
                    {_NEXT_VERSION.format(id="p.pair_id")}, 0, p.run_id, 0, 'auto-approved by policy'
                from pairs p
                where p.run_id = ? and p.kind = 'link' and p.tier in ({_marks(tiers)})
                  and p.object in ({_marks(objects)}) and {_UNDECIDED.format(id="p.pair_id")}
                """,
                [POLICY_REVIEWER, now, match_run_id, *tiers, *objects],
            )
            counts["links"] = cur.rowcount
        if match_run_id and policy.merges and policy.duplicate_tiers:
            tiers = list(policy.duplicate_tiers)
            cur = db.execute(
                f"""
                insert into decisions (kind, object, label, item_id, decided_by, reviewer, decided_at,
                    version, based_on_version, run_id, superseded, note)
                select 'duplicate', c.object, 'match', c.cluster_id, 'policy', ?, ?,
                    {_NEXT_VERSION.format(id="c.cluster_id")}, 0, c.run_id, 0, 'auto-approved by policy'
                from (select distinct run_id, cluster_id, object, tier from clusters where run_id = ?) c
                where c.tier in ({_marks(tiers)}) and c.object in ({_marks(objects)})
                  and {_UNDECIDED.format(id="c.cluster_id")}
                """,
                [POLICY_REVIEWER, now, match_run_id, *tiers, *objects],
            )
            counts["merges"] = cur.rowcount
        if plan_run_id:
            counts["creates"] = _approve_plan_items(
                db, plan_run_id, "create", policy.creates, objects, now
            )
            counts["conflicts"] = _approve_plan_items(
                db, plan_run_id, "conflict", policy.conflicts, objects, now
            )
    log.info("policy approved %s", counts)
    return counts


def _approve_plan_items(
    db: sqlite_utils.Database,
    plan_run_id: str,
    action: str,
    allowed: bool,
    objects: list[str],
    now: str,
) -> int:
    """Approve plan items of ``action`` that name themselves in ``requires`` (a ``plan`` decision)."""
    if not allowed:
        return 0
    entity = {"companies": ("companies", "Account"), "contacts": ("contacts", "Contact", "Lead")}
    targets = [o for obj in objects for o in entity[obj]]
    rows = list(
        db.query(
            f"""
            select item_id, object, field, after from plan_items i
            where i.run_id = ? and i.action = ? and i.status != 'blocked' and i.object in ({_marks(targets)})
              and exists (select 1 from json_each(i.requires) r where r.value = i.item_id)
              and {_UNDECIDED.format(id="i.item_id")}
            """,
            [plan_run_id, action, *targets],
        )
    )
    written = 0
    for row in rows:
        choice = None
        kind = "plan"
        if action == "conflict":
            proposed = proposed_choice(json.loads(row["after"]) if row["after"] else None)
            if proposed is None:
                continue  # nothing proposed (the review rule, times missing): a person chooses
            kind, choice = "conflict_value", {"field": row["field"], **proposed}
        db["decisions"].insert(
            {
                "kind": kind,
                "label": "approve",
                "choice": json.dumps(choice) if choice is not None else None,
                "item_id": row["item_id"],
                "decided_by": "policy",
                "reviewer": POLICY_REVIEWER,
                "decided_at": now,
                "version": db.execute(
                    "select coalesce(max(version), 0) + 1 from decisions where item_id = ?",
                    [row["item_id"]],
                ).fetchone()[0],
                "based_on_version": 0,
                "run_id": plan_run_id,
                "superseded": 0,
                "note": "auto-approved by policy",
            }
        )
        written += 1
    return written
