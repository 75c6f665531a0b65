"""Linked pairs compared: field updates, owners and conflicts for every link.

The pairs are compared one pair of objects at a time (``companies``/``Account``,
``contacts``/``Contact``, ``contacts``/``Lead``), in link order within each: the
group's mapping plan is read once, each record's JSON is decoded once per pair, raw
values are fetched in bulk and only the fields whose raw values differ reach the
conflict rules (:meth:`recon.plan_build.Planner.diff_field`). Links whose objects
carry the lifecycle mapping (companies) come last: the contacts' stages they need
are read from the contacts just compared. Everything that depends on visiting order
(the value memo, the samples of unwritable values) is kept per mapping, hence per pair
of objects, so the plan is the one a pass in link order gives.
"""

from __future__ import annotations

from itertools import compress
from operator import ne
from typing import TYPE_CHECKING, Any

from .plan_derived import lifecycle_sources, plan_lifecycle
from .plan_values import country_key, norm_fast, values_equal

if TYPE_CHECKING:
    from .mapping import FieldMap
    from .plan_build import Planner
    from .plan_load import Rec

__all__ = ["diff_pairs", "diff_plan", "linked_records", "phone_twins", "plan_links"]

_EQ_CACHED = frozenset({"owner", "bool", "enum", "reference", "phone", "country"})
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
    p.sampled_links = p._sampled(p.norm_links, key=lambda r: r["object"])
    groups = p.link_groups = {}
    for link in p.sampled_links:
        both = linked_records(p, link)
        if both is not None:
            groups.setdefault((link["object"], link["sf_object"]), []).append((link, *both))
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
    p.add_all(item for _rank, item in p.hs_writes.values())


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
    """Compare every mapped field of linked pairs of one pair of objects; plan updates.

    Each pair's records are decoded once (derived mappings and ``stages`` are handled
    then); the plain mappings are then compared a column at a time, so a column's values
    can be judged together (phones, see :func:`phone_twins`). Only fields whose raw values
    differ reach :meth:`~recon.plan_build.Planner.diff_field`.

    ``stages``: filled with each HubSpot record's raw ``lifecyclestage`` as it is read.
    """
    if not pairs:
        return
    if p.direction[obj] == "off":
        p.skipped["direction_off"] += len(pairs)
        return
    plain, hs_names, sf_names, derived = diff_plan(p, obj, sf_obj)
    diff_field = p.diff_field
    hs_rows: list[list[Any]] = []
    sf_rows: list[list[Any]] = []
    for link, hs, sf in pairs:
        hs_fields, sf_fields = hs.fields, sf.fields
        if stages is not None:
            stages[hs.record_id] = hs_fields.get("lifecyclestage")
        hs_rows.append(list(map(hs_fields.get, hs_names)))
        sf_rows.append(list(map(sf_fields.get, sf_names)))
        for fm in derived:
            if fm.derived == "lifecycle":
                plan_lifecycle(p, fm, link, hs, hs_fields)
                continue
            hs_raw, sf_raw = hs_fields.get(fm.hubspot), p.sf_value(sf, fm, sf_fields)
            if hs_raw != sf_raw:
                diff_field(link, hs, sf, fm, hs_raw, sf_raw)
    if not plain:
        return
    hs_cols = list(zip(*hs_rows, strict=True))
    sf_cols = list(zip(*sf_rows, strict=True))
    del hs_rows, sf_rows
    country = next((j for j, fm in enumerate(plain) if fm.kind == "country"), None)
    eq_cache, om = p.eq_cache, p.om
    for j, fm in enumerate(plain):
        hv, sv, kind = hs_cols[j], sf_cols[j], fm.kind
        # only the pairs whose raw values differ (picked in C: most are equal)
        at = list(compress(range(len(pairs)), map(ne, hv, sv)))
        if not at:
            continue
        same: set[int] = set()
        if kind == "phone":
            regions = (hs_cols[country], sf_cols[country]) if country is not None else None
            same = phone_twins(at, hv, sv, regions)
        for i in at:
            hs_raw, sf_raw = hv[i], sv[i]
            if kind == "number" and type(hs_raw) is str and type(sf_raw) in (int, float):
                try:  # HubSpot "17" against Salesforce 17.0, the usual case
                    if float(hs_raw) == sf_raw:
                        continue
                except ValueError:
                    pass
            elif kind in _EQ_CACHED and type(hs_raw) in _ATOMS and type(sf_raw) in _ATOMS:
                if i in same:
                    continue
                # owners, flags and options repeat: decide each pair of raw values once
                key = (id(fm), hs_raw, sf_raw)
                eq = eq_cache.get(key)
                if eq is None:
                    eq = eq_cache[key] = values_equal(
                        fm, norm_fast(kind, hs_raw), norm_fast(kind, sf_raw), om
                    )
                if eq:
                    continue
            link, hs, sf = pairs[i]
            diff_field(link, hs, sf, fm, hs_raw, sf_raw)


def phone_twins(
    at: list[int],
    hs_vals: tuple[Any, ...],
    sf_vals: tuple[Any, ...],
    countries: tuple[tuple[Any, ...], tuple[Any, ...]] | None,
) -> set[int]:
    """The positions in ``at`` whose two phone texts are one number in their records' countries.

    A national number is read in the country of the record that holds it ("070 004 4132"
    on a French company is +33 70 004 4132), with :func:`recon.normalize.phones` (the
    matcher's phone keys, vectorised). Pairs not found alike here are still compared by
    :func:`~recon.plan_values.values_equal`: one number is never planned as a change.

    Args:
        at: positions of the pairs to judge.
        hs_vals / sf_vals: raw phone values per pair position.
        countries: raw country values per pair position (HubSpot, Salesforce), or None.

    Examples:
        >>> sorted(phone_twins([0, 1], ("070 004 4132", "1"), ("+33 (70) 0044132", "2"), (("France", None), ("FR", None))))
        [0]
    """
    import polars as pl

    from .normalize import phones

    texts = [(hs_vals[i], sf_vals[i]) for i in at]
    keep = [k for k, (h, s) in enumerate(texts) if type(h) is str and type(s) is str]
    if not keep:
        return set()

    def keys(side: int) -> list[str | None]:
        values = pl.Series([texts[k][side] for k in keep], dtype=pl.String)
        regions = None
        if countries is not None:
            regions = pl.Series(
                [
                    country_key(c) or None if c else None
                    for c in (countries[side][at[k]] for k in keep)
                ],
                dtype=pl.String,
            )
        return phones(values, regions).to_list()

    return {
        at[k] for k, h, s in zip(keep, keys(0), keys(1), strict=True) if h is not None and h == s
    }
