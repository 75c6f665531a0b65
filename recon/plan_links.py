"""Linked pairs compared: field updates, owners and conflicts for every link.

The pairs are compared one pair of objects at a time (``companies``/``Account``,
``contacts``/``Contact``, ``contacts``/``Lead``), in link order within each: the
group's mapping plan is read once, each record's JSON is decoded once per pair, raw
values are fetched in bulk and only the fields whose raw values differ reach the
conflict rules (:meth:`recon.plan_build.Planner.diff_field`); differing phones are
judged together at the end of their group, each read in its record's country
(:func:`phone_twins`). Links whose objects
carry the lifecycle mapping (companies) come last: the contacts' stages they need
are read from the contacts just compared. Everything that depends on visiting order
(the value memo, the samples of unwritable values) is kept per mapping, hence per pair
of objects, so the plan is the one a pass in link order gives.
"""

from __future__ import annotations

from collections import Counter
from itertools import compress, repeat
from operator import ne
from typing import TYPE_CHECKING, Any

from .plan_derived import lifecycle_sources, plan_lifecycle
from .plan_values import (
    country_key,
    is_opt_out,
    lead_converted,
    norm_fast,
    opted_out,
    values_equal,
)

if TYPE_CHECKING:
    from .mapping import FieldMap
    from .plan_build import Planner
    from .plan_load import Rec

__all__ = [
    "add_hubspot_writes",
    "contact_decides",
    "diff_pairs",
    "diff_plan",
    "linked_records",
    "phone_twins",
    "plan_links",
]

_EQ_CACHED = frozenset({"owner", "bool", "enum", "reference", "country"})
#: a field the stored record does not hold at all (read from a file without that column)
_UNKNOWN: Any = object()
_ATOMS = (str, bool, int, float, type(None))
_NONE: dict[str, Rec] = {}


def linked_records(p: Planner, link: dict[str, Any]) -> tuple[Rec, Rec] | None:
    """The HubSpot and Salesforce records of one link, or None (counted under ``skipped``)
    when either is missing or archived."""
    records = p.view.records
    hs = records.get(("hubspot", link["object"]), _NONE).get(link["hs_id"])
    sf_obj = link["sf_object"]
    sf = (
        records.get(("salesforce", sf_obj), _NONE).get(link["sf_id"])
        if sf_obj is not None
        else p.view.rec("salesforce", None, link["sf_id"])
    )
    if hs is None or sf is None:
        p.skipped["record_missing"] += 1
        return None
    if hs.archived or sf.archived:
        p.skipped["archived"] += 1
        return None
    return hs, sf


def plan_links(p: Planner) -> None:
    """Field updates, owners and conflicts for every (sampled) link.

    Links whose objects carry the lifecycle mapping (companies) come after the others:
    the contacts' stages they need are read from the contacts just compared, so each
    contact is decoded once. Everything that depends on visiting order (value memo,
    unwritable-value samples) is per mapping, hence per pair of objects: the result is
    that of link order.
    """
    groups = p.link_groups = {}
    synced: dict[tuple[str, str | None], bool] = {}  # per pair of objects, asked once
    # a sample takes the first N links per object that can be planned: a link skipped here
    # (an object out of the sync, a record missing or archived, a converted Lead) leaves its
    # place to the next
    taken: Counter[str] = Counter()
    sample, sampled = p.sample, []
    for link in p.norm_links:
        if sample is not None and taken[link["object"]] >= sample:
            continue
        objs = (link["object"], link["sf_object"])
        if (ok := synced.get(objs)) is None:
            ok = synced[objs] = p.cfg.syncs("hubspot", objs[0]) and (
                objs[1] is None or p.cfg.syncs("salesforce", objs[1])
            )
        if not ok:
            # an object the config leaves out of the sync: its stored records are as old as
            # the last pull that read them (the link still keeps both records from creates)
            p.skipped["object_not_synced"] += 1
            continue
        both = linked_records(p, link)
        if both is not None:
            # a converted Lead is skipped when its pair is compared (diff_pairs): in a sample
            # it is still compared (and counted as skipped), but leaves its place to the next
            if sample is None or not (
                link["sf_object"] == "Lead" and lead_converted(both[1].fields)
            ):
                taken[link["object"]] += 1
            sampled.append(link)
            groups.setdefault((link["object"], link["sf_object"]), []).append((link, *both))
    p.sampled_links = sampled
    later = {
        (obj, sf_obj)
        for (obj, sf_obj), maps in p.maps.items()
        if any(m.derived == "lifecycle" and m.rule != "dont_sync" for m in maps)
    }
    stages: dict[str, Any] = {}  # HubSpot contact -> its raw lifecycle stage
    for (obj, sf_obj), pairs in groups.items():
        if (obj, sf_obj) not in later:
            diff_pairs(p, obj, sf_obj, pairs, stages if obj == "contacts" else None)
    lifecycle_sources(p, stages)
    for (obj, sf_obj), pairs in groups.items():
        if (obj, sf_obj) in later:
            diff_pairs(p, obj, sf_obj, pairs)
    add_hubspot_writes(p)


def add_hubspot_writes(p: Planner) -> None:
    """Add the HubSpot writes kept per (record, property), in the order they were first made.

    A HubSpot contact linked to a Salesforce Contact takes that Contact's values: a write
    from one of its Lead links onto a property the Contact link decides is dropped
    (``hubspot_write_superseded``), even when the Contact link planned nothing there, but for
    a consent flag a Lead's opt-out ticks (an opt-out is only ever set). A write onto the
    Lead of the HubSpot value the Contact link replaces is dropped too
    (``lead_write_superseded``).
    """
    decided = p.decided_by_contact()
    items, skipped = p.items, p.skipped
    for (obj, rid, fname), (rank, item, iid) in p.hs_writes.items():
        if obj == "contacts":
            if rank[0]:
                # the Contact link replaces this HubSpot value: a linked Lead given the value
                # it replaces would stay behind for good (its own writes to HubSpot never
                # win); the next plan gives the Lead what HubSpot then holds
                for lead_iid in p.lead_writes.pop((rid, fname), ()):
                    if items.pop(lead_iid, None) is not None:
                        skipped["lead_write_superseded"] += 1
            elif fname in decided.get(rid, ()) and not (
                # a Lead's opt-out still reaches HubSpot: consent is only ever set
                is_opt_out(fname) and opted_out(item["after"])
            ):
                # a HubSpot contact linked to a Salesforce Contact takes that Contact's value,
                # even when it equals HubSpot's (no write planned): a linked Lead's value
                # never wins
                skipped["hubspot_write_superseded"] += 1
                continue
        if iid in items:  # Planner.add, inlined (a call per write is measurable)
            skipped["duplicate_item"] += 1
        else:
            items[iid] = item


def contact_decides(p: Planner) -> dict[str, frozenset[str]]:
    """HubSpot contact id -> the properties its link to a Salesforce Contact decides.

    Every link to a Contact whose records are both present and live counts, sampled or not:
    its mappings that can write HubSpot (rule not ``dont_sync``, derived ones included)
    settle those properties.
    """
    records = p.view.records
    hs_recs = records.get(("hubspot", "contacts"), _NONE)
    sf_recs = records.get(("salesforce", "Contact"), _NONE)
    props = frozenset(
        m.hubspot
        for m in p.maps.get(("contacts", "Contact"), ())
        if m.rule != "dont_sync" and m.to_hubspot
    )
    out: dict[str, frozenset[str]] = {}
    if not props or p.direction["contacts"] in ("off", "hubspot_to_salesforce"):
        return out
    for link in p.norm_links:
        if link["sf_object"] != "Contact" or link["object"] != "contacts":
            continue
        hs, sf = hs_recs.get(link["hs_id"]), sf_recs.get(link["sf_id"])
        if hs is not None and sf is not None and not hs.archived and not sf.archived:
            out[link["hs_id"]] = props
    return out


def diff_plan(
    p: Planner, obj: str, sf_obj: str
) -> tuple[list[FieldMap], list[str], list[str], list[FieldMap]]:
    """Plain mappings with their field names (compared in bulk), and derived ones."""
    key = ("diff", obj, sf_obj)
    if key not in p.cache:
        active = [m for m in p.maps.get((obj, sf_obj), ()) if m.rule != "dont_sync"]
        plain = [m for m in active if m.derived is None]
        derived = [m for m in active if m.derived is not None]
        p.cache[key] = (
            plain,
            [m.hubspot for m in plain],
            [m.salesforce for m in plain],
            derived,
        )
    result: tuple[list[FieldMap], list[str], list[str], list[FieldMap]] = p.cache[key]
    return result


def diff_pairs(
    p: Planner,
    obj: str,
    sf_obj: str,
    pairs: list[tuple[dict[str, Any], Rec, Rec]],
    stages: dict[str, Any] | None = None,
) -> None:
    """Compare every mapped field of linked pairs of one pair of objects (in order); plan updates.

    Each pair's records are decoded once and its raw values fetched in bulk; only the
    fields whose raw values differ reach :meth:`~recon.plan_build.Planner.diff_field`.
    Differing phones are judged together after the pass (:func:`phone_twins`).

    ``stages``: filled with each HubSpot record's raw ``lifecyclestage`` as it is read.
    """
    if not pairs:
        return
    if p.direction[obj] == "off":
        p.skipped["direction_off"] += len(pairs)
        return
    plain, hs_names, sf_names, derived = diff_plan(p, obj, sf_obj)
    converted_leads = sf_obj == "Lead"
    country = next((fm for fm in plain if fm.kind == "country"), None)
    eq_cache, om, diff_field = p.eq_cache, p.om, p.diff_field
    phones: list[tuple[dict[str, Any], Rec, Rec, FieldMap, Any, Any]] = []
    countries: list[tuple[Any, Any]] = []
    for link, hs, sf in pairs:
        # decoded once for the whole pair; raw values fetched in bulk and only the
        # fields whose raw values differ are looked at
        hs_fields, sf_fields = hs.fields, sf.fields
        if stages is not None:
            stages[hs.record_id] = hs_fields.get("lifecyclestage")
        if converted_leads and lead_converted(sf_fields):
            # history: Salesforce refuses every write to it, and its values are the converted
            # Contact's to give (the HubSpot contact follows that Contact's link)
            p.skipped["lead_converted"] += 1
            continue
        # a field a record loaded from an export file lacks (no such column) is unknown, not
        # blank: nothing is planned on it (an API pull reads every mapped field, blank or not)
        if hs.from_file or sf.from_file:
            hs_vals = list(map(hs_fields.get, hs_names, repeat(_UNKNOWN if hs.from_file else None)))
            sf_vals = list(map(sf_fields.get, sf_names, repeat(_UNKNOWN if sf.from_file else None)))
        else:  # a pull's records hold every mapped field (the common case: one argument)
            hs_vals = list(map(hs_fields.get, hs_names))
            sf_vals = list(map(sf_fields.get, sf_names))
        if hs_vals != sf_vals:
            # only the fields whose raw values differ (picked in C: most are equal)
            for fm, hs_raw, sf_raw in compress(
                zip(plain, hs_vals, sf_vals, strict=True), map(ne, hs_vals, sf_vals)
            ):
                if hs_raw is _UNKNOWN or sf_raw is _UNKNOWN:
                    p.skipped["field_not_read"] += 1
                    continue
                kind = fm.kind
                if kind == "number" and type(hs_raw) is str and type(sf_raw) in (int, float):
                    try:  # HubSpot "17" against Salesforce 17.0, the usual case
                        if float(hs_raw) == sf_raw:
                            continue
                    except ValueError:
                        pass
                elif kind == "phone":  # judged together, after the pass
                    phones.append((link, hs, sf, fm, hs_raw, sf_raw))
                    if country is not None:
                        countries.append(
                            (hs_fields.get(country.hubspot), sf_fields.get(country.salesforce))
                        )
                    continue
                elif (
                    kind in _EQ_CACHED
                    and (hs_type := type(hs_raw)) in _ATOMS
                    and (sf_type := type(sf_raw)) in _ATOMS
                ):
                    # owners, flags and options repeat: decide each pair of raw values once
                    # (typed: True, 1 and 1.0 are one dict key but not one option)
                    key = (id(fm), hs_type, hs_raw, sf_type, sf_raw)
                    eq = eq_cache.get(key)
                    if eq is None:
                        eq = eq_cache[key] = values_equal(
                            fm, norm_fast(kind, hs_raw), norm_fast(kind, sf_raw), om
                        )
                    if eq:
                        continue
                diff_field(link, hs, sf, fm, hs_raw, sf_raw)
        for fm in derived:
            if hs.from_file and fm.hubspot not in hs_fields:
                p.skipped["field_not_read"] += 1  # a file without that column: unknown
                continue
            if fm.derived == "lifecycle":
                plan_lifecycle(p, fm, link, hs, hs_fields)
                continue
            hs_raw, sf_raw = hs_fields.get(fm.hubspot), p.sf_value(sf, fm, sf_fields)
            if hs_raw != sf_raw:
                diff_field(link, hs, sf, fm, hs_raw, sf_raw)
    if phones:
        twins = phone_twins([(ph[4], ph[5]) for ph in phones], countries or None)
        for (link, hs, sf, fm, hs_raw, sf_raw), twin in zip(phones, twins, strict=True):
            if not twin:
                diff_field(link, hs, sf, fm, hs_raw, sf_raw)


def phone_twins(
    texts: list[tuple[Any, Any]], countries: list[tuple[Any, Any]] | None = None
) -> list[bool]:
    """Whether each (HubSpot, Salesforce) pair of phone texts is one number in its records' countries.

    A national number is read in the country of the record that holds it ("070 004 4132"
    on a French company is +33 70 004 4132), with :func:`recon.normalize.phones` (the
    matcher's phone keys, vectorised). Pairs not found alike here are still compared by
    :func:`~recon.plan_values.values_equal`: one number is never planned as a change.

    Args:
        texts: raw phone values, one (HubSpot, Salesforce) pair per linked pair.
        countries: the records' raw country values, one (HubSpot, Salesforce) pair per
            linked pair, or None (the default region).

    Examples:
        >>> phone_twins([("070 004 4132", "+33 (70) 0044132"), ("1", "2")], [("France", "FR"), (None, None)])
        [True, False]
    """
    import polars as pl

    from .normalize import phones

    keep = [k for k, (h, s) in enumerate(texts) if type(h) is str and type(s) is str]
    out = [False] * len(texts)
    if not keep:
        return out

    def keys(side: int) -> list[str | None]:
        values = pl.Series([texts[k][side] for k in keep], dtype=pl.String)
        regions = None
        if countries is not None:
            named = (countries[k][side] for k in keep)
            regions = pl.Series(
                [(country_key(c) or None) if isinstance(c, str) else None for c in named],
                dtype=pl.String,
            )
        return phones(values, regions).to_list()

    for k, h, s in zip(keep, keys(0), keys(1), strict=True):
        out[k] = h is not None and h == s
    return out
