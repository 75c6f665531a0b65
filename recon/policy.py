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
    {'links': 0, 'merges': 0, 'creates': 0, 'conflicts': 0, 'lapsed': 0}
"""

from __future__ import annotations

import json
import logging
from typing import Any

import sqlite_utils

from .config import PolicySection
from .models import entity_objects, now_iso
from .plan import proposed_choice
from .store import transaction

__all__ = ["POLICY_REVIEWER", "auto_approve", "human_distinct"]

log = logging.getLogger(__name__)

POLICY_REVIEWER = "policy"

_UNDECIDED = "not exists (select 1 from decisions d where d.item_id = {id} and coalesce(d.superseded, 0) = 0)"
_NEXT_VERSION = "(select coalesce(max(d.version), 0) + 1 from decisions d where d.item_id = {id})"


def _marks(values: list[str]) -> str:
    # an empty list gives `in (null)`: NULL, never true (callers coalesce where "not" matters)
    return ", ".join("?" for _ in values) or "null"


def auto_approve(
    db: sqlite_utils.Database,
    policy: PolicySection,
    *,
    match_run_id: str | None,
    plan_run_id: str | None = None,
    note: str = "auto-approved by policy",
    lapsed_ids: list[int] | None = None,
) -> dict[str, int]:
    """Approve, as the policy, the undecided items ``policy`` allows; return counts per kind.

    First the policy's own earlier approvals of links and clusters the policy no longer allows
    lapse (a link that fell to the review tier, a cluster of an object no longer named): they
    are superseded, so the items are undecided again (``lapsed``). A cluster holding two
    records a person said are distinct (a rejected cluster, a split) is never approved.

    Args:
        db: the store.
        policy: the ``[policy]`` section.
        match_run_id: links and clusters come from this match run.
        plan_run_id: creates and conflict values come from this plan run.
        note: stored with every decision (a dry run tags its own, to take them back).
        lapsed_ids: receives the ids of the decisions that lapsed (a dry run restores them).
    """
    counts = {"links": 0, "merges": 0, "creates": 0, "conflicts": 0, "lapsed": 0}
    if not policy.enabled:
        # a policy switched off allows nothing: what it approved before lapses too (else the
        # next run would still create and write what only the policy had approved)
        policy = policy.model_copy(
            update={"link_tiers": [], "duplicate_tiers": [], "creates": False, "conflicts": False}
        )
        with transaction(db):
            counts["lapsed"] = _lapse(
                db, policy, match_run_id, plan_run_id, list(policy.objects), lapsed_ids
            )
        return counts
    now = now_iso()
    objects: list[str] = list(policy.objects)
    with transaction(db):
        counts["lapsed"] = _lapse(db, policy, match_run_id, plan_run_id, objects, lapsed_ids)
        if match_run_id and policy.link_tiers:
            tiers: list[str] = list(policy.link_tiers)
            _claimed_ends(db)
            cur = db.execute(
                f"""
                insert into decisions (kind, object, source_l, record_id_l, source_r, record_id_r,
                    salesforce_object, label, choice, item_id, decided_by, reviewer, decided_at,
                    version, based_on_version, run_id, superseded, note)
                select 'link', p.object, p.source_l, p.record_id_l, p.source_r, p.record_id_r,
                    case when p.object = 'contacts' then p.object_r end,
                    'match', null, p.pair_id, 'policy', ?, ?,
                    {_NEXT_VERSION.format(id="p.pair_id")}, 0, p.run_id, 0, ?
                from pairs p
                where p.run_id = ? and p.kind = 'link' and p.tier in ({_marks(tiers)})
                  and p.object in ({_marks(objects)}) and {_UNDECIDED.format(id="p.pair_id")}
                  and not exists (select 1 from temp._claimed c where c.record_id = p.record_id_l
                    and c.source = 'hubspot' and c.pair_id != p.pair_id and c.object = p.object
                    and (p.object = 'companies' or c.sf_object = p.object_r))
                  and not exists (select 1 from temp._claimed c where c.record_id = p.record_id_r
                    and c.source = 'salesforce' and c.pair_id != p.pair_id)
                """,
                [POLICY_REVIEWER, now, note, match_run_id, *tiers, *objects],
            )
            counts["links"] = cur.rowcount
            db.execute("drop table temp._claimed")
        if match_run_id and policy.merges and policy.duplicate_tiers:
            tiers = list(policy.duplicate_tiers)
            distinct = human_distinct(db)
            clusters: dict[str, dict[str, Any]] = {}
            for cid, obj, run_id, source, rid in db.execute(
                f"""
                select c.cluster_id, c.object, c.run_id, c.source, c.record_id from clusters c
                where c.run_id = ? and c.tier in ({_marks(tiers)}) and c.object in ({_marks(objects)})
                  and {_UNDECIDED.format(id="c.cluster_id")}
                order by c.cluster_id, c.record_id
                """,
                [match_run_id, *tiers, *objects],
            ):
                c = clusters.setdefault(cid, {"object": obj, "run_id": run_id, "members": []})
                c["members"].append((source, str(rid)))
            for cid, c in clusters.items():
                members = c["members"]
                if any(
                    frozenset((a, b)) in distinct
                    for i, a in enumerate(members)
                    for b in members[i + 1 :]
                ):
                    continue  # a person said two of them are distinct: a person decides
                db["decisions"].insert(
                    {"kind": "duplicate", "object": c["object"], "label": "match",
                     "item_id": cid, "decided_by": "policy", "reviewer": POLICY_REVIEWER,
                     "decided_at": now, "version": _next_version(db, cid), "based_on_version": 0,
                     "run_id": c["run_id"], "superseded": 0, "note": note}
                )  # fmt: skip
                counts["merges"] += 1
        if plan_run_id:
            counts["creates"] = _approve_plan_items(
                db, plan_run_id, "create", policy.creates, objects, now, note
            )
            counts["conflicts"] = _approve_plan_items(
                db, plan_run_id, "conflict", policy.conflicts, objects, now, note
            )
    log.info("policy approved %s", counts)
    return counts


def _claimed_ends(db: sqlite_utils.Database) -> None:
    """``temp._claimed``: the record ends of the links a person approved (current decisions).

    A link of this match run sharing such an end with another pair (the matcher now pairs a
    record a person linked elsewhere) is not the policy's to approve: it would replace a
    person's link. It waits for a person in the queue.
    """
    db.execute("drop table if exists temp._claimed")
    db.execute(
        "create temp table _claimed (source text, object text, sf_object text, record_id text, "
        "pair_id text)"
    )
    rows = []
    for obj, sl, rl, sr, rr, sf_obj, pid in db.execute(
        "select object, source_l, record_id_l, source_r, record_id_r, salesforce_object, item_id "
        "from decisions where kind = 'link' and decided_by = 'human' "
        "and coalesce(superseded, 0) = 0 and label in ('match', 'approve')"
    ):
        sides = {sl: rl, sr: rr}
        if sides.get("hubspot") and sides.get("salesforce"):
            sf = "Account" if obj == "companies" else sf_obj
            rows.append(("hubspot", obj, sf, str(sides["hubspot"]), pid))
            rows.append(("salesforce", obj, sf, str(sides["salesforce"]), pid))
    db.conn.executemany("insert into temp._claimed values (?, ?, ?, ?, ?)", rows)
    db.execute("create index temp._claimed_end on _claimed (record_id, source)")


def _next_version(db: sqlite_utils.Database, item_id: str) -> int:
    row = db.execute(
        "select coalesce(max(version), 0) + 1 from decisions where item_id = ?", [item_id]
    ).fetchone()
    return int(row[0])


def _lapse(
    db: sqlite_utils.Database,
    policy: PolicySection,
    match_run_id: str | None,
    plan_run_id: str | None,
    objects: list[str],
    lapsed_ids: list[int] | None = None,
) -> int:
    """Supersede the policy's own current approvals that it would not make now; how many.

    Links and clusters of this match run: tier or object no longer allowed, merges off.
    Creates and conflict values: `creates` or `conflicts` off (whichever plan they were
    approved in), or an item of this plan run whose object is no longer allowed. A person's
    decisions are never touched.
    """
    link_tiers: list[str] = list(policy.link_tiers)
    dup_tiers: list[str] = list(policy.duplicate_tiers) if policy.merges else []
    targets = [o for obj in objects for o in entity_objects(obj)]
    # creates are approved with a `plan` decision, conflict values with a `conflict_value` one
    allowed = [
        k for k, on in (("plan", policy.creates), ("conflict_value", policy.conflicts)) if on
    ]
    ids = [
        r[0]
        for r in db.execute(
            f"""
        select decision_id from decisions
        where decided_by = 'policy' and coalesce(superseded, 0) = 0 and (
          (kind = 'link' and item_id in (
             select p.pair_id from pairs p where p.run_id = ? and p.kind = 'link'
               and not coalesce(p.tier in ({_marks(link_tiers)})
                                and p.object in ({_marks(objects)}), 0)))
          or (kind = 'duplicate' and item_id in (
             select c.cluster_id from clusters c where c.run_id = ?
               and not coalesce(c.tier in ({_marks(dup_tiers)})
                                and c.object in ({_marks(objects)}), 0)))
          or (kind in ('plan', 'conflict_value') and (
             not coalesce(kind in ({_marks(allowed)}), 0)
             or exists (select 1 from plan_items i where i.run_id = ?
                          and i.item_id = decisions.item_id
                          and not coalesce(i.object in ({_marks(targets)}), 0))))
        )
        """,
            [
                match_run_id,
                *link_tiers,
                *objects,
                match_run_id,
                *dup_tiers,
                *objects,
                *allowed,
                plan_run_id,
                *targets,
            ],
        )
    ]
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        db.execute(
            f"update decisions set superseded = 1 where decision_id in ({_marks(chunk)})", chunk
        )
    if lapsed_ids is not None:
        lapsed_ids.extend(ids)
    return len(ids)


def human_distinct(db: sqlite_utils.Database) -> set[frozenset[tuple[str, str]]]:
    """Pairs of records a person said are not one entity: the members of a cluster they
    rejected, and records a split put in different groups (current decisions only).

    Examples:
        >>> from recon.store import open_store
        >>> human_distinct(open_store(":memory:"))
        set()
    """
    out: set[frozenset[tuple[str, str]]] = set()
    rows = db.execute(
        "select kind, item_id, choice from decisions where decided_by = 'human' "
        "and coalesce(superseded, 0) = 0 and item_id is not null and ("
        "(kind = 'duplicate' and label in ('non_match', 'reject')) or kind = 'split')"
    ).fetchall()
    for kind, item_id, choice in rows:
        if kind == "split":
            try:
                groups = (json.loads(choice or "{}") or {}).get("groups") or []
            except (TypeError, ValueError, AttributeError):
                continue
            sets = []
            for group in groups:
                sets.append(
                    [
                        (str(m.get("source") or ""), str(m.get("record_id")))
                        if isinstance(m, dict)
                        else ("", str(m))
                        for m in group
                    ]
                )
            for i, g in enumerate(sets):
                for h in sets[i + 1 :]:
                    out.update(frozenset((a, b)) for a in g for b in h)
            continue
        members = [
            (str(s), str(r))
            for s, r in db.execute(
                "select distinct source, record_id from clusters where cluster_id = ?", [item_id]
            )
        ]
        out.update(frozenset((a, b)) for i, a in enumerate(members) for b in members[i + 1 :])
    return out


def _approve_plan_items(
    db: sqlite_utils.Database,
    plan_run_id: str,
    action: str,
    allowed: bool,
    objects: list[str],
    now: str,
    note: str,
) -> int:
    """Approve plan items of ``action`` that name themselves in ``requires`` (a ``plan`` decision)."""
    if not allowed:
        return 0
    targets = [o for obj in objects for o in entity_objects(obj)]
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
                "note": note,
            }
        )
        written += 1
    return written
