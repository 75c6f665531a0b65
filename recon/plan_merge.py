"""Merges of duplicate clusters: master-record rules and per-field survivorship.

Master rules (``[mapping] master_rule``), each ending in the oldest record, then the
smallest id, so the ranking is total and stable (a record marked as a stale copy, "DO NOT
USE - Acme" or "Acme (old)", ranks after every unmarked one):

- ``oldest``: earliest ``created_at``;
- ``most_recent``: latest ``modified_at``;
- ``most_complete``: most non-blank fields;
- ``most_associated``: most related records (a company's contacts, a contact's companies,
  a Salesforce record's campaign memberships and Account);
- ``source_priority``: records linked to the other CRM first, then the order of
  ``[mapping] source_priority`` (e.g. a Contact before a Lead).

A reviewer's ``master`` decision on the cluster (choice: the master record id, or
``{"master": id, "fields": {field: value}}``) and ``conflict_value`` decisions on the merge
item (choice ``{field: value}``) override the rule. Salesforce merges run first
(seq 10); a HubSpot company merge is ``blocked`` while HubSpot's Salesforce connector is
active (``[hubspot] salesforce_connector_active``): merge in Salesforce and let the
connector carry the result. A cluster mixing Leads and Contacts is ``blocked`` (convert
the Leads first).
"""

from __future__ import annotations

from collections import Counter
from itertools import compress
from operator import is_not, ne, or_
from typing import TYPE_CHECKING, Any

from .models import parse_ts
from .normalize import stale_mark
from .plan import survivorship
from .plan_values import (
    fast_stable_id,
    is_blank,
    is_opt_out,
    lead_converted,
    norm_fast,
    same_value,
)

if TYPE_CHECKING:
    from .plan_build import Planner
    from .plan_load import Rec

__all__ = ["MASTER_RULES", "plan_merges", "rank_members"]

#: the HubSpot field times a two_way rule stores with a record (no field of it)
_FIELD_TIMES = "propertiesWithHistory"

MASTER_RULES = ("oldest", "most_recent", "most_complete", "most_associated", "source_priority")


def _ts(value: str | None) -> float | None:
    try:
        t = parse_ts(value) if value else None
    except ValueError:
        return None
    return t.timestamp() if t else None


def _association_counts(p: Planner) -> Counter[tuple[str, str]]:
    """Related records per record (``most_associated``): a record archived in the store is
    none (an association to a record the store does not hold still counts)."""
    counts: Counter[tuple[str, str]] = Counter()
    records = p.view.records
    hs_contacts = records.get(("hubspot", "contacts"), {})
    hs_companies = records.get(("hubspot", "companies"), {})
    for contact, companies in p.view.hs_company_of.items():
        if (rec := hs_contacts.get(contact)) is not None and rec.archived:
            continue
        live = [c for c in companies if (co := hs_companies.get(c)) is None or not co.archived]
        counts[("hubspot", contact)] += len(live)
        for c in live:
            counts[("hubspot", c)] += 1
    for obj in ("Contact", "Lead"):
        for rid, rec in records.get(("salesforce", obj), {}).items():
            if rec.archived:
                continue
            if rec.account_id:
                counts[("salesforce", str(rec.account_id))] += 1
                counts[("salesforce", rid)] += 1
            counts[("salesforce", rid)] += len(p.view.campaigns.get(rid, ()))
    return counts


def rank_members(p: Planner, recs: list[Rec], rule: str) -> list[Rec]:
    """Cluster members best-first under a master rule (ties: oldest, then smallest id); a
    record whose name is marked as a stale copy ("DO NOT USE - Acme", "Acme (old)") after
    every unmarked one, under every rule: merging into it would keep the copy and delete the
    live record.

    Examples:
        >>> MASTER_RULES[0]
        'oldest'
    """
    return sorted(_by_rule(p, recs, rule), key=lambda r: stale_mark(r.name))


def _by_rule(p: Planner, recs: list[Rec], rule: str) -> list[Rec]:

    def created(r: Rec) -> tuple[bool, float, str]:
        t = _ts(r.created_at)
        return (t is None, t or 0.0, r.record_id)

    base = sorted(recs, key=created)
    if rule == "oldest":
        return base
    if rule == "most_recent":
        return sorted(base, key=lambda r: -(_ts(r.modified_at) or float("-inf")))
    if rule == "most_complete":
        return sorted(
            base,
            key=lambda r: (
                -sum(1 for k, v in r.fields.items() if k != _FIELD_TIMES and not is_blank(v))
            ),
        )
    if rule == "most_associated":
        if p.assoc_counts is None:
            p.assoc_counts = _association_counts(p)
        counts = p.assoc_counts
        return sorted(base, key=lambda r: -counts[(r.source, r.record_id)])
    if rule == "source_priority":
        pri = list(p.cfg.mapping.source_priority)
        return sorted(
            base,
            key=lambda r: (
                r.record_id not in p.linked.get(r.source, ()),
                pri.index(r.object) if r.object in pri else len(pri),
            ),
        )
    raise ValueError(f"unknown master rule {rule!r}; use one of {', '.join(MASTER_RULES)}")


def _field_kinds(p: Planner, system: str, entity: str, robj: str) -> list[tuple[str, str]]:
    """``(field, kind)`` of the mapped fields a merge of ``robj`` records compares, by field.

    Only fields the stored schema lets ``system`` write (a read-only or non-updateable one
    never takes a surviving value).
    """
    key = ("merge_kinds", system, entity, robj)
    hit: list[tuple[str, str]] | None = p.cache.get(key)
    if hit is not None:
        return hit
    kinds: dict[str, str] = {}
    for (obj, sf_obj), maps in p.maps.items():
        if obj != entity:
            continue
        for fm in maps:
            if fm.derived:
                continue
            if system == "hubspot":
                kinds.setdefault(fm.hubspot, fm.kind)
            elif sf_obj == robj:
                kinds.setdefault(fm.salesforce, fm.kind)
    fixed = _read_only(p, system, robj)
    out = p.cache[key] = sorted((f, k) for f, k in kinds.items() if f.casefold() not in fixed)
    return out


def _kind_columns(
    p: Planner, kinds: list[tuple[str, str]]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``kinds`` as a tuple of field names and one of their kinds (made once per list)."""
    key = ("merge_columns", id(kinds))
    hit: tuple[tuple[str, ...], tuple[str, ...]] | None = p.cache.get(key)
    if hit is None:
        hit = p.cache[key] = (tuple(f for f, _k in kinds), tuple(k for _f, k in kinds))
    return hit


def _differing(rows: list[list[Any]]) -> list[int]:
    """Positions where the members' raw values are not all one value of one type.

    Compared column-wise in C (``1``, ``1.0`` and ``True`` differ: their types do).

    Examples:
        >>> _differing([["a", 1, None, "x"], ["a", 1.0, None, "y"], ["a", 1, None, "x"]])
        [1, 3]
    """
    first = rows[0]
    first_types = list(map(type, first))
    differ = [False] * len(first)
    for row in rows[1:]:
        differ = list(map(or_, differ, map(ne, first, row)))
        differ = list(map(or_, differ, map(is_not, first_types, map(type, row))))
    return list(compress(range(len(first)), differ))


def _read_only(p: Planner, system: str, robj: str) -> set[str]:
    """Fields of ``robj`` its stored schema says cannot be written (casefolded); none known
    without a schema. A mapping's direction is no guide: a field synced one way only (the
    Contact's AccountId) is still written by a merge of that CRM's own records."""
    out: set[str] = set()
    for f in p.view.schemas.get((system, robj), []):
        if not isinstance(f, dict) or not f.get("name"):
            continue
        if system == "salesforce":
            locked = f.get("updateable") is False or f.get("calculated") is True
        else:
            meta = f.get("modificationMetadata") or {}
            locked = bool(meta.get("readOnlyValue")) or f.get("calculated") is True
        if locked:
            out.add(str(f["name"]).casefold())
    return out


def plan_merges(p: Planner) -> None:
    """One merge item per duplicate cluster (auto and review tiers)."""
    from .plan_build import SEQ

    rule = p.cfg.mapping.master_rule
    connector = p.cfg.hubspot.salesforce_connector_active
    clusters = p._sampled(sorted(p.view.clusters.items()), key=lambda kv: kv[1]["object"])
    claimed: dict[tuple[str, str, str], str] = {}  # member -> the first cluster holding it
    for cid, c in clusters:
        sources = {s for s, _o, _r in c["members"]}
        if len(sources) != 1:
            p.skipped["cluster_mixed_sources"] += 1
            continue
        system = sources.pop()
        if not all(p.cfg.syncs(system, o) for _s, o, _r in c["members"]):
            # an object the config leaves out of the sync: its stored records are as old as
            # the last pull that read them
            p.skipped["object_not_synced"] += 1
            continue
        recs = [p.view.rec(system, o, r) for _s, o, r in c["members"]]
        active = [r for r in recs if r is not None and not r.archived]
        if any(r.object == "Lead" and lead_converted(r.fields) for r in active):
            # a converted Lead is history Salesforce will not merge: the others may still be
            # merged, without it
            p.skipped["merge_lead_converted"] += 1
            active = [r for r in active if not (r.object == "Lead" and lead_converted(r.fields))]
        if len(active) < 2:
            p.skipped["cluster_too_small"] += 1
            continue
        objs = sorted({r.object for r in active})
        robj = objs[0]
        status, why = "proposed", "duplicate_cluster"
        keys = [(system, r.object, r.record_id) for r in active]
        other = next((claimed[k] for k in keys if k in claimed), None)
        for k in keys:
            claimed.setdefault(k, cid)
        if other is not None:
            # one record in two clusters: two merges would chain in an arbitrary order
            status, why = "blocked", f"overlapping_cluster: a member is also in cluster {other}"
        elif len(objs) > 1:
            status, why = (
                "blocked",
                "mixed_objects: convert the Leads to Contacts first, then merge",
            )
        elif system == "hubspot" and c["object"] == "companies" and connector:
            status, why = (
                "blocked",
                (
                    "connector_active: HubSpot refuses company merges while its Salesforce connector is on; "
                    "merge the Accounts in Salesforce and let the connector sync"
                ),
            )
        order = rank_members(p, active, rule)
        ids = [r.record_id for r in order]
        master = ids[0]
        overrides: dict[str, Any] = {}
        choice = p.view.masters.get(cid)
        if isinstance(choice, dict):
            master = str(choice.get("master") or choice.get("record_id") or master)
            overrides.update(choice.get("fields") or {})
        elif choice not in (None, ""):
            master = str(choice)
        chosen_by = "reviewer" if master != ids[0] or choice not in (None, "") else "rule"
        if master not in ids:  # a record no longer in the cluster: the rule's master
            p.skipped["master_choice_not_a_member"] += 1
            master, chosen_by = ids[0], "rule"
        iid = fast_stable_id("merge", system, c["object"], cid)
        overrides.update(p.view.field_choices.get(iid) or {})
        kinds = _field_kinds(p, system, c["object"], robj)
        kinds_of = dict(kinds)
        by_id = {r.record_id: r for r in active}
        fields_of = {rid: by_id[rid].fields for rid in ids}  # each record decoded once
        values: dict[str, dict[str, Any]] = {}
        names, kind_list = _kind_columns(p, kinds)
        rows = [list(map(fields_of[rid].get, names)) for rid in ids]
        for col in _differing(rows):
            # a field whose raw values differ (most fields of most clusters hold one value)
            fname, kind = names[col], kind_list[col]
            got = [row[col] for row in rows]
            normed = [norm_fast(kind, v) for v in got]
            # one number, site or country spelt two ways is one value
            if any(not same_value(kind, normed[0], n) for n in normed[1:]):
                values[fname] = dict(zip(ids, got, strict=True))
        for fname in sorted(overrides.keys() - values.keys()):
            if fname in kinds_of:  # a value chosen for a field all members agree on
                values[fname] = {rid: fields_of[rid].get(fname) for rid in ids}
        # consent flags the members agree on: apply re-reads them on the victims, so an
        # opt-out ticked on one after review makes the merge stale instead of deleting it
        watch = {
            fname: {rid: fields_of[rid].get(fname) for rid in ids}
            for fname in names
            if fname not in values and is_opt_out(fname)
        }
        writes, detail = survivorship(master, ids, values, overrides)
        mrec = by_id[master]
        payload = {
            "object": robj,
            "master": master,
            "victims": [r for r in ids if r != master],
            "fields": writes,
            "survivorship": detail,
            "values": values,
            "order": ids,
            # each member's time as apply checks it (a file's minute: its end)
            "modified": {rid: by_id[rid].snapshot_time for rid in ids},
            "rule": rule,
            "irreversible": True,
        }
        if watch:
            payload["watch"] = watch
        reason = {
            "rule": rule,
            "why": why,
            "score": c["score"],
            "tier": c["tier"],
            "master_chosen_by": chosen_by,
        }
        if stale := [r.record_id for r in order if stale_mark(r.name)]:
            reason["stale_copies"] = stale  # ranked last: marked as no longer used
        p.add(
            p.item(
                iid,
                "merge",
                system,
                robj,
                master,
                None,
                {f: fields_of[master].get(f) for f in writes},
                writes,
                mrec.snapshot_time,
                cid,
                [cid],
                reason,
                payload,
                SEQ["merge_salesforce"] if system == "salesforce" else SEQ["merge_hubspot"],
                status,
            )
        )
